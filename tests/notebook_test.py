"""jaxfaces.notebook: runtime detection, device sizing, data, tables, images, archives."""

import importlib.metadata
import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from PIL import Image

from configs import demo, lft
from jaxfaces import config_check, notebook, outputs


def test_smoke_reads_its_environment_variable():
    assert notebook.smoke({notebook.SMOKE_ENV: "1"})
    assert not notebook.smoke({notebook.SMOKE_ENV: "0"}) and not notebook.smoke({})


def test_runtime_accelerator_from_environment_and_devices(tmp_path):
    none = lambda name: None  # noqa: E731
    assert notebook.runtime_accelerator({}, tmp_path, none) == "cpu"
    assert (
        notebook.runtime_accelerator({"COLAB_TPU_ADDR": "10.0.0.2:8470"}, tmp_path, none) == "tpu"
    )
    (tmp_path / "vfio").mkdir()
    (tmp_path / "vfio" / "vfio").touch()  # Present on many machines without a TPU.
    assert notebook.runtime_accelerator({}, tmp_path, none) == "cpu"
    (tmp_path / "vfio" / "0").touch()
    assert notebook.runtime_accelerator({}, tmp_path, none) == "tpu"
    gpu = tmp_path / "gpu"
    gpu.mkdir()
    assert notebook.runtime_accelerator({}, gpu, lambda name: "/usr/bin/nvidia-smi") == "gpu"
    (gpu / "nvidia0").touch()
    assert notebook.runtime_accelerator({}, gpu, none) == "gpu"


def test_jax_requirement_pins_the_installed_jax():
    version = importlib.metadata.version("jax")
    assert notebook.jax_requirement("tpu") == f"jax[tpu]=={version}"
    assert notebook.jax_requirement("gpu") == f"jax[cuda12]=={version}"
    assert notebook.jax_requirement("gpu", cuda="cuda13") == f"jax[cuda13]=={version}"
    assert notebook.jax_requirement("cpu") is None
    with pytest.raises(ValueError, match="'npu' is not one of"):
        notebook.jax_requirement("npu")


def test_device_sized_scales_the_batch_per_device_and_uses_bf16_on_tpu():
    config = demo.get_config()  # Batch 8, float32.
    tpu = notebook.device_sized(config, "tpu", 8)
    assert (tpu.data.batch_size, tpu.train.dtype) == (64, "bfloat16")
    gpu = notebook.device_sized(config, "gpu", 2)
    assert (gpu.data.batch_size, gpu.train.dtype) == (16, "float32")
    cpu = notebook.device_sized(config, "cpu", 1)
    assert (cpu.data.batch_size, cpu.train.dtype) == (8, "float32")
    assert (config.data.batch_size, config.train.dtype) == (8, "float32")  # A copy.
    assert notebook.device_sized(lft.get_config(), "tpu", 4).data.batch_size == 16  # No dtype.
    assert notebook.device_sized(config).data.batch_size == 8  # This process: one CPU.


def test_tiny_is_a_valid_small_config_keeping_the_switches():
    config = demo.get_config()
    config.model.discriminator.pack = 4
    config.loss.d_noise.kind = "uniform"
    small = notebook.tiny(notebook.use_data(config, "builtin", "/tmp/faces"), num_steps=6)
    config_check.check(small)
    assert (small.data.size, small.model.generator.ngf, small.model.generator.n_blocks) == (
        32,
        8,
        1,
    )
    assert small.data.synthetic.num_train == 16 and small.train.num_steps == 6
    assert small.data.batch_size == 4 and small.loss.d_noise.anneal_steps == 6  # PacGAN packs.


def test_use_data_builtin_tfds_folders_and_errors(tmp_path):
    config = demo.get_config()
    builtin = notebook.use_data(config, "builtin", tmp_path / "faces")
    assert builtin.data.root == str(tmp_path / "faces") and builtin.data.synthetic.enabled
    tfds = notebook.use_data(config, "tfds:cycle_gan/horse2zebra")
    assert tfds.data.tfds == "cycle_gan/horse2zebra" and tfds.data.root == ""
    assert not tfds.data.synthetic.enabled
    for sub in ("trainA", "trainB"):
        (tmp_path / "mine" / sub).mkdir(parents=True)
    mine = notebook.use_data(config, str(tmp_path / "mine"))
    assert mine.data.root == str(tmp_path / "mine") and not mine.data.synthetic.enabled
    with pytest.raises(ValueError, match=r"no .*trainB/"):
        notebook.use_data(config, str(tmp_path / "mine" / "trainA"))
    with pytest.raises(ValueError, match="'tfds:'"):
        notebook.use_data(config, "tfds:")


def _pairs(tmp_path, n: int = 6):
    for domain in ("photo", "portrait"):
        (tmp_path / domain).mkdir()
        for i in range(n):
            Image.new("RGB", (8, 8), (i, 0, 0)).save(tmp_path / domain / f"{i:03d}.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "photo" / "unpaired.png")
    return tmp_path / "photo", tmp_path / "portrait"


def test_paired_split_links_the_pairs_in_the_root_layout(tmp_path):
    a, b = _pairs(tmp_path)
    out = notebook.paired_split(a, b, tmp_path / "split", num_train=3, num_test=2)
    names = lambda sub: sorted(p.name for p in (out / sub).iterdir())  # noqa: E731
    assert names("trainA") == names("trainB") == ["000.png", "001.png", "002.png"]
    assert names("testA") == names("truthAtoB") == ["004.png", "005.png"]
    assert (out / "truthAtoB" / "004.png").resolve() == (b / "004.png").resolve()
    assert (out / "testB" / "005.png").is_symlink()
    again = notebook.paired_split(a, b, tmp_path / "split", num_train=3, num_test=2)
    assert again == out  # The same split: left as it is.
    with pytest.raises(ValueError, match="is not empty"):
        notebook.paired_split(a, b, tmp_path / "split", num_train=2, num_test=2)
    with pytest.raises(ValueError, match="share 6 file names"):
        notebook.paired_split(a, b, tmp_path / "other", num_train=5, num_test=2)
    with pytest.raises(FileNotFoundError, match="no image folder"):
        notebook.paired_split(tmp_path / "nope", b, tmp_path / "other", 1, 1)


RESULTS = {"AtoB": {"l1": 0.25, "ratio": 0.5, "psnr": 20.0}, "BtoA": {"l1": 0.375}}


def test_tables_in_text_and_html():
    table = notebook.metrics_table(RESULTS)
    assert "0.2500" in str(table) and "<table" in table._repr_html_()
    assert "L1 to truth" in table._repr_html_()
    compared = notebook.compare_table({"baseline": RESULTS, "tv": {"AtoB": {"l1": 0.2}}})
    lines = str(compared).splitlines()
    assert lines[0].split() == ["run", "AtoB", "l1", "AtoB", "ratio", "BtoA", "l1"]
    assert lines[1].split() == ["baseline", "0.2500", "0.5000", "0.3750"]
    assert lines[2].split() == ["tv", "0.2000", "-", "-"]
    assert compared._repr_html_().count("<tr>") == 3


def test_loss_table_reads_what_the_training_loop_writes(tmp_path):
    from clu import metric_writers

    writer = metric_writers.create_default_writer(tmp_path, asynchronous=False)
    for step in (2, 4):
        writer.write_scalars(step, {"loss/g": step / 10, "lr": 1e-3, "eval/AtoB/l1": 0.5})
    writer.write_scalars(6, {"loss/d": 0.125})
    writer.flush()
    found = notebook.scalars(tmp_path)
    assert found["loss/g"] == [(2, pytest.approx(0.2)), (4, pytest.approx(0.4))]
    assert found["eval/AtoB/l1"] == [(2, 0.5), (4, 0.5)]
    lines = str(notebook.loss_table(tmp_path)).splitlines()
    assert [line.split() for line in lines] == [
        ["step", "loss/d", "loss/g"],
        ["2", "-", "0.2000"],
        ["4", "-", "0.4000"],
        ["6", "0.1250", "-"],
    ]


def _decoded(shown) -> np.ndarray:
    import io

    return np.asarray(Image.open(io.BytesIO(shown.data)).convert("RGB"))


def test_show_enlarges_small_images_and_rows(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (32, 24, 3), np.uint8)
    shown = _decoded(notebook.show(image))
    assert shown.shape == (32 * 6, 24 * 6, 3)  # 24 px -> 144 px (6x).
    np.testing.assert_array_equal(shown[::6, ::6], image)
    Image.fromarray(image).save(tmp_path / "x.png")
    row = _decoded(notebook.show([tmp_path / "x.png", np.zeros((32, 24, 3), np.float32)]))
    assert row.shape == (192, 288, 3)
    assert (row[:, 144:] == 128).all()  # Float 0 in [-1, 1] is mid grey.
    big = np.zeros((300, 200, 3), np.uint8)
    assert _decoded(notebook.show(big)).shape == (300, 200, 3)


def test_side_by_side_compares_runs_on_the_same_test_images(tmp_path):
    colours = {"input": 10, "truth": 250, "run_a": 100, "run_b": 200}
    for run in ("run_a", "run_b"):
        samples = tmp_path / run / "samples" / "AtoB"
        for sub in ("input", "truth"):
            (samples / sub).mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (32, 32), (colours[sub],) * 3).save(samples / sub / "f.png")
        Image.new("RGB", (32, 32), (colours[run],) * 3).save(samples / "f.png")
    workdirs = {"a": tmp_path / "run_a", "b": tmp_path / "run_b"}
    sheet = notebook.side_by_side(workdirs, "AtoB")
    assert sheet.shape == (128, 4 * 128, 3)
    assert [int(sheet[0, 128 * i, 0]) for i in range(4)] == [10, 100, 200, 250]
    (tmp_path / "run_b" / "samples" / "AtoB" / "f.png").unlink()
    with pytest.raises(FileNotFoundError, match="no translation"):
        notebook.side_by_side(workdirs, "AtoB")
    with pytest.raises(FileNotFoundError, match="no evaluation samples"):
        notebook.side_by_side(workdirs, "BtoA")


def test_archive_checkpoint_zips_the_newest_step_as_a_workdir(tmp_path):
    for step in (3, 12):
        folder = tmp_path / "checkpoints" / str(step) / "state"
        folder.mkdir(parents=True)
        (folder / "data").write_text(f"step {step}")
    (tmp_path / "checkpoints" / "12" / "config").mkdir()
    (tmp_path / "checkpoints" / "12" / "config" / "c.json").write_text(json.dumps({"a": 1}))
    path = notebook.archive_checkpoint(tmp_path)
    assert path == tmp_path / "checkpoint_12.zip"
    with zipfile.ZipFile(path) as z:
        assert sorted(z.namelist()) == ["checkpoints/12/config/c.json", "checkpoints/12/state/data"]
        assert z.read("checkpoints/12/state/data") == b"step 12"
    assert notebook.archive_checkpoint(tmp_path) == path  # Its own file: replaced.
    theirs = tmp_path / "theirs.zip"
    theirs.write_text("someone's file")
    with pytest.raises(outputs.OutputError, match="theirs.zip"):
        notebook.archive_checkpoint(tmp_path, theirs)
    assert theirs.read_text() == "someone's file"
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        notebook.archive_checkpoint(tmp_path / "empty")


def test_importing_the_module_loads_neither_jax_nor_ipython():
    code = "import sys, jaxfaces.notebook; print('jax' in sys.modules, 'IPython' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.stdout.split() == ["False", "False"], r.stderr[-2000:]
