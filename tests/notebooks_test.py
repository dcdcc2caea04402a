"""The notebooks run top to bottom in their tiny CI setting (nbclient, a real kernel), and
are stored without outputs."""

import base64
import io
import json
import pathlib
import re
import sys

import jax
import numpy as np
import pytest
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
THESIS_FACES = ROOT.parent / "shared" / "data" / "thesis_faces"
sys.path.insert(0, str(ROOT / "tests"))

import check_notebooks  # noqa: E402

nbformat = pytest.importorskip("nbformat", reason="make test installs it")
nbclient = pytest.importorskip("nbclient", reason="make test installs it")


def execute(name: str, tmp_path: pathlib.Path, monkeypatch) -> tuple[str, list[np.ndarray]]:
    """Runs notebooks/NAME from the checkout with JAXFACES_NOTEBOOK_SMOKE=1, its outputs
    under `tmp_path` (a cell after the parameters cell sets WORKDIR and FACES, as papermill
    injects parameters); returns its printed text and the images it showed."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    (params,) = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    paths = f"WORKDIR = {str(tmp_path / 'work')!r}\nFACES = {str(tmp_path / 'faces')!r}"
    nb.cells.insert(params + 1, nbformat.v4.new_code_cell(paths))
    # The kernel: this interpreter, whatever other "python3" kernels are installed.
    spec = tmp_path / "jupyter" / "kernels" / "jaxfaces-tests"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JAXFACES_NOTEBOOK_SMOKE", "1")
    # The session's compilation cache (conftest.py), as for the tests that train in-process.
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", jax.config.jax_compilation_cache_dir)
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="jaxfaces-tests", resources={"metadata": {"path": str(ROOT)}}
    )
    client.execute()  # Raises CellExecutionError, with the cell and traceback, on any error.
    text, images = [], []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            text.append(out.get("text", ""))
            data = out.get("data", {})
            text.append(data.get("text/plain", ""))
            if "image/png" in data:
                png = base64.b64decode(data["image/png"])
                images.append(np.asarray(Image.open(io.BytesIO(png)).convert("RGB")))
    return "\n".join(text), images


@pytest.mark.slow  # Scheduled early (conftest.py), beside the demo's run.
def test_quickstart_trains_shows_and_archives(tmp_path, monkeypatch):
    text, images = execute("quickstart.ipynb", tmp_path, monkeypatch)
    assert "Training cyclegan for 4 steps on 1 cpu device(s)" in text
    assert "global batch 2, compute in float32" in text
    assert "loss/cycle_a" in text and "identity_l1" in text  # Losses, then metrics.
    # Both directions' sheets (4 test images x 4 columns of 32 px, shown at 128 px), then
    # the sheet of 4 translated test photos (input | output).
    assert [i.shape for i in images] == [(512, 512, 3), (512, 512, 3), (512, 256, 3)]
    assert (tmp_path / "work" / "checkpoint_4.zip").is_file()
    assert len(list((tmp_path / "work" / "translated").glob("*.png"))) == 4 + 1


@pytest.mark.slow  # Scheduled early (conftest.py), beside the demo's run.
def test_style_transfer_and_lft_say_the_vgg_weights_are_random(tmp_path, monkeypatch):
    text, images = execute("style_transfer_and_lft.ipynb", tmp_path, monkeypatch)
    assert "VGG19 weights: random (explicitly requested; not ImageNet)" in text
    assert "NOTE: random VGG19 weights" in text
    assert images[0].shape == (128, 3 * 128, 3)  # photo | painting | result, 32 px shown 4x.
    if (THESIS_FACES / "photo").is_dir():
        assert "Training lft for 4 steps" in text and "identity_l1" in text
        assert [i.shape for i in images[1:]] == [(512, 384, 3)]  # AtoB: 4 x (in | out | truth).
    else:
        assert "SKIPPED Latent Features Transfer: no thesis faces" in text
        assert len(images) == 1


@pytest.mark.slow  # Scheduled early (conftest.py), beside the demo's run.
def test_thesis_cyclegan_compares_variants(tmp_path, monkeypatch):
    text, images = execute("thesis_cyclegan.ipynb", tmp_path, monkeypatch)
    assert "thesis: VGG19 weights random" in text
    rows = re.findall(r"^(baseline|thesis) +\d+\.\d+", text, flags=re.M)  # compare_table.
    assert rows == ["baseline", "thesis"]
    # Per direction 4 test images: input | baseline | thesis | truth, 32 px shown at 128.
    assert [i.shape for i in images] == [(512, 512, 3), (512, 512, 3)]


def test_notebooks_are_stored_without_outputs(tmp_path):
    stored = sorted(NOTEBOOKS.glob("*.ipynb"))
    assert [p.name for p in stored] == [
        "quickstart.ipynb",
        "style_transfer_and_lft.ipynb",
        "thesis_cyclegan.ipynb",
    ]
    assert check_notebooks.main([str(NOTEBOOKS)]) == 0
    nb = json.loads(stored[0].read_text())
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    code["execution_count"] = 3
    code["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["hi\n"]}]
    (tmp_path / "run.ipynb").write_text(json.dumps(nb))
    assert check_notebooks.problems(tmp_path / "run.ipynb") == [
        f"{tmp_path / 'run.ipynb'}: cell {nb['cells'].index(code)} has 1 output(s)",
        f"{tmp_path / 'run.ipynb'}: cell {nb['cells'].index(code)} has execution count 3",
    ]
    assert check_notebooks.main([str(tmp_path)]) == 1
