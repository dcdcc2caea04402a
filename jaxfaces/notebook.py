"""What the notebooks (notebooks/*.ipynb) need beyond training and translating.

The runtime (`in_colab`, `runtime_accelerator`, `jax_requirement`: which jax build to
install), the device-sized settings (`device_sized`: the batch per device, bfloat16 on TPU),
the tiny setting that CI runs them with (`SMOKE_ENV`, `tiny`), data sources (`use_data`,
`paired_split`), showing images and tables inline (`show`, `side_by_side`, `metrics_table`,
`compare_table`, `loss_table`) and a checkpoint to download (`archive_checkpoint`).

Importing this module imports neither JAX nor IPython: a notebook imports it right after
installing jaxfaces to choose the jax build for its runtime, before anything loads jax.
"""

import html
import importlib.metadata
import importlib.util
import io
import json
import os
import pathlib
import shutil
import zipfile
from collections.abc import Mapping, Sequence
from typing import Any

import ml_collections
import numpy as np

from jaxfaces import outputs, report, sheets

PathLike = str | os.PathLike
#: The environment variable that makes every notebook run its tiny setting (CI sets it to 1).
SMOKE_ENV = "JAXFACES_NOTEBOOK_SMOKE"
ACCELERATORS = ("tpu", "gpu", "cpu")
#: Environment variables that only a TPU runtime sets (Colab's TPU VMs, Cloud TPU).
_TPU_ENV = ("COLAB_TPU_ADDR", "TPU_NAME", "TPU_ACCELERATOR_TYPE")


# --------------------------------------------------------------------------- runtime


def smoke(environ: Mapping[str, str] | None = None) -> bool:
    """Whether $JAXFACES_NOTEBOOK_SMOKE asks for the tiny setting ("1")."""
    return (os.environ if environ is None else environ).get(SMOKE_ENV, "0") == "1"


def in_colab() -> bool:
    """Whether this runs inside Google Colab (its `google.colab` module is importable)."""
    try:
        return importlib.util.find_spec("google.colab") is not None
    except ModuleNotFoundError:  # No `google` package at all.
        return False


def runtime_accelerator(
    environ: Mapping[str, str] | None = None, dev: PathLike = "/dev", which=shutil.which
) -> str:
    """ "tpu", "gpu" or "cpu": what this machine has, found without importing jax.

    TPU: a TPU runtime's environment variable or /dev/accel* (or numbered /dev/vfio/*)
    devices; GPU: /dev/nvidia0 or `nvidia-smi` on the PATH; otherwise CPU.
    """
    environ = os.environ if environ is None else environ
    dev = pathlib.Path(dev)
    vfio = dev / "vfio"
    numbered_vfio = vfio.is_dir() and any(p.name.isdigit() for p in vfio.iterdir())
    if any(environ.get(k) for k in _TPU_ENV) or any(dev.glob("accel*")) or numbered_vfio:
        return "tpu"
    if (dev / "nvidia0").exists() or which("nvidia-smi"):
        return "gpu"
    return "cpu"


def jax_requirement(accelerator: str, cuda: str = "cuda12") -> str | None:
    """The pip requirement that gives the installed jax version its accelerator build:
    `jax[tpu]==V`, `jax[cuda12]==V` (`cuda`: the extra matching the GPU's driver; Colab's
    drivers run CUDA 12), or None on a CPU (the jax that jaxfaces installs runs there).

    Raises:
      ValueError: for an accelerator not in `ACCELERATORS`.
    """
    if accelerator not in ACCELERATORS:
        raise ValueError(f"accelerator {accelerator!r} is not one of {ACCELERATORS}")
    if accelerator == "cpu":
        return None
    extra = "tpu" if accelerator == "tpu" else cuda
    return f"jax[{extra}]=={importlib.metadata.version('jax')}"


def describe_devices() -> str:
    """One line: how many devices of which kind JAX computes on."""
    import jax

    devices = jax.devices()
    kinds = sorted({d.device_kind for d in devices})
    return f"{len(devices)} {devices[0].platform} device(s): {', '.join(kinds)}"


# --------------------------------------------------------------------------- configs


def device_sized(
    config: ml_collections.ConfigDict, platform: str | None = None, device_count: int | None = None
) -> ml_collections.ConfigDict:
    """A copy of `config` sized for the devices: its `data.batch_size` is taken as the batch
    of one device, so the global batch becomes that times the device count, and on TPU the
    networks compute in bfloat16 (`train.dtype`, where the method has it; parameters,
    optimizer states and losses stay float32). `platform` and `device_count` default to
    JAX's.
    """
    if platform is None or device_count is None:
        import jax

        platform = platform or jax.devices()[0].platform
        device_count = device_count or jax.device_count()
    config = config.copy_and_resolve_references()
    config.data.batch_size = int(config.data.batch_size) * int(device_count)
    if platform == "tpu" and "dtype" in config.get("train", {}):
        config.train.dtype = "bfloat16"
    return config


def tiny(config: ml_collections.ConfigDict, num_steps: int = 4) -> ml_collections.ConfigDict:
    """A copy of a CycleGAN-family config at the size of configs/test.py (32 px, ngf 8, one
    residual block, 16 built-in training and 4 test images per domain), for `num_steps` steps
    with one evaluation at the end: what CI runs the notebooks with. Its switches and losses
    are kept."""
    c = config.copy_and_resolve_references()
    c.data.load_size, c.data.size = 36, 32
    c.data.synthetic.size, c.data.synthetic.num_train, c.data.synthetic.num_test = 32, 16, 4
    c.data.batch_size = max(2, int(c.model.discriminator.get("pack", 1)))
    c.model.generator.name, c.model.generator.ngf, c.model.generator.n_blocks = "resnet", 8, 1
    c.model.discriminator.ndf, c.model.discriminator.n_layers = 8, 2
    c.loss.pool_size = 3
    c.train.num_steps = num_steps
    c.train.log_every = max(1, num_steps // 2)
    c.train.log_images_every = c.train.ckpt_every = num_steps
    c.train.eval_every = 0
    if c.loss.get("d_noise") is not None and c.loss.d_noise.kind != "none":
        c.loss.d_noise.anneal_steps = num_steps
    return c


def use_data(
    config: ml_collections.ConfigDict, spec: str, builtin_root: PathLike = "data/faces"
) -> ml_collections.ConfigDict:
    """A copy of `config` reading the data `spec` names.

    Args:
      config: a config with the shared `data` section.
      spec: "builtin" (the procedural faces, written to `builtin_root` first), "tfds:NAME"
        (a TFDS data set with trainA / trainB / testA / testB splits, e.g.
        "tfds:cycle_gan/horse2zebra"), or a folder holding trainA/ trainB/ [testA/ testB/
        truthAtoB/ truthBtoA/] (on Colab, one under /content/drive/MyDrive after mounting
        Drive).
      builtin_root: where the built-in faces go.

    Raises:
      ValueError: naming `spec` when it is none of these (or a folder without trainA/ and
        trainB/).
    """
    c = config.copy_and_resolve_references()
    c.data.root, c.data.tfds = "", ""
    c.data.synthetic.enabled = spec == "builtin"
    if spec == "builtin":
        c.data.root = str(builtin_root)
    elif spec.startswith("tfds:") and spec[5:]:
        c.data.tfds = spec[5:]
    else:
        folder = pathlib.Path(spec).expanduser()
        missing = [s for s in ("trainA", "trainB") if not (folder / s).is_dir()]
        if missing:
            raise ValueError(
                f"data {spec!r} is not 'builtin', 'tfds:NAME' or a folder with trainA/ and "
                f"trainB/ (no {', '.join(f'{folder / m}/' for m in missing)})"
            )
        c.data.root = str(folder)
    return c


#: paired_split's record of what it linked, in the split folder.
SPLIT_RECORD = ".jaxfaces-split.json"


def paired_split(
    a_dir: PathLike, b_dir: PathLike, out: PathLike, num_train: int, num_test: int
) -> pathlib.Path:
    """Splits same-named pairs of two folders into OUT/trainA trainB testA testB truthAtoB
    truthBtoA (the layout `config.data.root` reads), as symbolic links: nothing is copied.

    The first `num_train` names (sorted) train and the last `num_test` test; each test image's
    true translation is its pair. OUT must be new or empty, or hold this very split (then it
    is left as it is).

    Raises:
      FileNotFoundError: a missing folder; ValueError: too few pairs, or OUT holding other
        files (naming it).
    """
    a_dir, b_dir = pathlib.Path(a_dir).resolve(), pathlib.Path(b_dir).resolve()
    for folder in (a_dir, b_dir):
        if not folder.is_dir():
            raise FileNotFoundError(f"no image folder {folder}")
    from jaxfaces.data import folders

    b_names = {p.name for p in folders.list_images(b_dir)}
    names = sorted(p.name for p in folders.list_images(a_dir) if p.name in b_names)
    if num_train < 1 or num_test < 1 or num_train + num_test > len(names):
        raise ValueError(
            f"{a_dir} and {b_dir} share {len(names)} file names: too few for {num_train} "
            f"training and {num_test} test pairs"
        )
    train, test = names[:num_train], names[len(names) - num_test :]
    record = {"a": str(a_dir), "b": str(b_dir), "train": train, "test": test}
    out = pathlib.Path(out)
    if out.is_dir() and any(out.iterdir()):
        path = out / SPLIT_RECORD
        if path.is_file() and json.loads(path.read_text()) == record:
            return out
        raise ValueError(f"split folder {out} is not empty: give a new or empty folder")
    layout = {
        "trainA": (a_dir, train),
        "trainB": (b_dir, train),
        "testA": (a_dir, test),
        "testB": (b_dir, test),
        "truthAtoB": (b_dir, test),
        "truthBtoA": (a_dir, test),
    }
    for sub, (source, chosen) in layout.items():
        (out / sub).mkdir(parents=True)
        for name in chosen:
            (out / sub / name).symlink_to(source / name)
    (out / SPLIT_RECORD).write_text(json.dumps(record, indent=1) + "\n")
    return out


# --------------------------------------------------------------------------- showing


class Table:
    """A table shown as HTML in a notebook and as plain text elsewhere (print, logs)."""

    def __init__(self, html_text: str, text: str):
        self.html, self.text = html_text, text

    def _repr_html_(self) -> str:
        return self.html

    def __str__(self) -> str:
        return self.text

    __repr__ = __str__


def metrics_table(results: Mapping[str, Mapping[str, float]]) -> Table:
    """An evaluation's metrics ({direction: {metric: value}}), one column per direction,
    with the labels and formats of the HTML reports."""
    return Table(report._metrics_html(results), report.format_table(results))


#: Columns of `compare_table`, per direction: what the ablation table reports.
COMPARED = ("l1", "ratio", "ssim", "cycle_l1", "swd")


def compare_table(
    runs: Mapping[str, Mapping[str, Mapping[str, float]]], keys: Sequence[str] = COMPARED
) -> Table:
    """One row per run ({name: {direction: {metric: value}}}), one column per direction and
    metric in `keys` (those some run has), formatted as the reports format them."""
    directions = list(dict.fromkeys(d for r in runs.values() for d in r))
    columns = [
        (d, k) for d in directions for k in keys if any(k in r.get(d, {}) for r in runs.values())
    ]
    names = [f"{d} {k}" for d, k in columns]
    rows = [
        [name, *(report.format_value(k, r.get(d, {}).get(k)) for d, k in columns)]
        for name, r in runs.items()
    ]
    return _table(["run", *names], rows)


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> Table:
    """A Table of string cells: the first column left-aligned, the others right."""
    width = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        pairs = enumerate(zip(cells, width, strict=True))
        return "  ".join(f"{c:<{w}}" if i == 0 else f"{c:>{w}}" for i, (c, w) in pairs)

    th = "".join(f"<th>{html.escape(str(h))}</th>" for h in head)
    trs = [f"<tr>{th}</tr>"]
    for cells in rows:
        tds = [f"<td>{html.escape(str(cells[0]))}</td>"]
        tds += [f'<td class="num">{html.escape(str(c))}</td>' for c in cells[1:]]
        trs.append(f"<tr>{''.join(tds)}</tr>")
    body = '<table class="metrics">\n' + "\n".join(trs) + "\n</table>"
    return Table(body, "\n".join([line(head), *(line(r) for r in rows)]))


def scalars(logdir: PathLike) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of a TensorBoard folder (WORKDIR/tensorboard): {tag: [(step, value)]},
    by step."""
    from tensorboard.backend.event_processing import event_accumulator
    from tensorboard.util import tensor_util

    acc = event_accumulator.EventAccumulator(
        str(logdir), size_guidance={event_accumulator.TENSORS: 0, event_accumulator.SCALARS: 0}
    )
    acc.Reload()
    out: dict[str, list[tuple[int, float]]] = {}
    for tag in acc.Tags().get("tensors", []):
        values = [(e.step, tensor_util.make_ndarray(e.tensor_proto)) for e in acc.Tensors(tag)]
        if values and all(np.ndim(v) == 0 for _, v in values):
            out[tag] = sorted((int(s), float(v)) for s, v in values)
    for tag in acc.Tags().get("scalars", []):
        out[tag] = sorted((int(e.step), float(e.value)) for e in acc.Scalars(tag))
    return out


def loss_table(logdir: PathLike, skip: Sequence[str] = ("eval/", "lr", "steps_per_sec")) -> Table:
    """The logged training scalars of a TensorBoard folder, one row per logged step (the
    losses the console prints), leaving out tags that start with one of `skip`."""
    found = {t: dict(v) for t, v in scalars(logdir).items() if not t.startswith(tuple(skip))}
    tags = sorted(found)
    steps = sorted({s for v in found.values() for s in v})
    rows = [
        [str(s), *(f"{found[t][s]:.4f}" if s in found[t] else "-" for t in tags)] for s in steps
    ]
    return _table(["step", *tags], rows)


def _image(image: np.ndarray | PathLike) -> np.ndarray:
    if isinstance(image, str | os.PathLike):
        from jaxfaces import data as data_lib

        return data_lib.read_image(image)
    image = np.asarray(image)
    return image if image.dtype == np.uint8 else _to_uint8(image)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    from jaxfaces import data as data_lib

    return data_lib.to_uint8(image)


def png(image: np.ndarray) -> bytes:
    """An (H, W, 3) uint8 image (or float in [-1, 1]) as PNG bytes."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(_image(image)).save(buffer, format="PNG")
    return buffer.getvalue()


def show(image: np.ndarray | PathLike | Sequence, min_side: int = sheets.MIN_TILE) -> Any:
    """An image (array, file, or a list of equally sized ones side by side) to `display`,
    each tile enlarged by a whole factor, nearest neighbour, to at least `min_side` px (a
    sheet already that large is shown as it is)."""
    from IPython.display import Image

    if isinstance(image, list | tuple):
        shown = sheets.grid([[_image(i) for i in image]], min_side)
    else:
        shown = sheets.enlarged(_image(image), min_side)
    return Image(data=png(shown), format="png")


def side_by_side(
    workdirs: Mapping[str, PathLike], direction: str = "AtoB", rows: int = 4
) -> np.ndarray:
    """One sheet comparing runs on the same test images: per image a row of input | each
    run's translation | truth (when there is one), from each WORKDIR/samples/ (the final
    evaluation's files), enlarged as every sheet (`sheets.grid`).

    Raises:
      FileNotFoundError: a run without that direction's samples (naming its folder).
    """
    first = pathlib.Path(next(iter(workdirs.values()))) / "samples" / direction
    if not (first / "input").is_dir():
        raise FileNotFoundError(f"no evaluation samples in {first}")
    names = sorted(p.name for p in (first / "input").glob("*.png"))[:rows]
    truth = first / "truth"
    sheet = []
    for name in names:
        row = [_image(first / "input" / name)]
        for workdir in workdirs.values():
            path = pathlib.Path(workdir) / "samples" / direction / name
            if not path.is_file():
                raise FileNotFoundError(f"no translation {path}")
            row.append(_image(path))
        if (truth / name).is_file():
            row.append(_image(truth / name))
        sheet.append(row)
    return sheets.grid(sheet)


# --------------------------------------------------------------------------- checkpoints


def archive_checkpoint(workdir: PathLike, out: PathLike | None = None) -> pathlib.Path:
    """Zips the newest checkpoint of a workdir (its state and config) into `out` (default
    WORKDIR/checkpoint_STEP.zip) as checkpoints/STEP/...: unzipped into a folder, that folder
    is a workdir that translate.py --ckpt and evaluate.py --ckpt read.

    Replaces no file that jaxfaces did not write (`outputs.guard`).

    Raises:
      FileNotFoundError: no checkpoint in the workdir.
    """
    directory = pathlib.Path(workdir) / "checkpoints"
    steps = sorted(int(p.name) for p in directory.glob("*") if p.is_dir() and p.name.isdigit())
    if not steps:
        raise FileNotFoundError(f"no checkpoint in {directory}")
    step = steps[-1]
    out = pathlib.Path(out) if out is not None else pathlib.Path(workdir) / f"checkpoint_{step}.zip"
    source = directory / str(step)
    with outputs.guard(out.parent, [out], flag="archive"):
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
            for path in sorted(source.rglob("*")):
                if path.is_file():
                    z.write(path, pathlib.Path("checkpoints", str(step), path.relative_to(source)))
    return out
