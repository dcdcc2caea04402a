"""Translating images with a trained (or converted) generator, for any method."""

import copy
import csv
import functools
import pathlib
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxfaces import batching, metrics, outputs, sheets
from jaxfaces import data as data_lib
from jaxfaces.data import preprocess
from jaxfaces.methods import base, get_method
from jaxfaces.training import checkpoint


class Translator:
    """A trained method ready to translate batches of [-1, 1] NHWC images in one direction.

    Attributes:
      multiple: image sides must be multiples of it (`Method.spatial_multiple`).
      trained_size: the side the model was trained at (`config.data.load_size`: each training
        image was resized to it before cropping), the scale `translate_files` uses by default.
    """

    def __init__(self, config: ml_collections.ConfigDict, state: dict[str, Any], direction: str):
        method = get_method(config.method)
        variables = method.translator_variables(state, base.check_direction(direction))
        if variables is None:
            have = [d for d in base.DIRECTIONS if method.translator_variables(state, d)]
            raise ValueError(f"this checkpoint has no {direction} generator; it has: {have}")
        self.config, self.direction = config, direction
        self.multiple = int(method.spatial_multiple(config))
        self.trained_size = int(config.data.load_size)
        # On the device once (an LFT checkpoint's variables hold the VGG19 weights).
        self.variables = jax.device_put(variables)
        self._fn = jax.jit(method.make_translate(config))
        # A method whose translations take a latent code z (`Method.make_latent`).
        self.latent = method.make_latent(config)
        self._code: np.ndarray | None = None  # `with_code`: every image gets this z.
        if self.latent is not None:
            self._latent_fn = jax.jit(self.latent.translate)
            self._encode_fn = self.latent.encode and jax.jit(self.latent.encode)

    def __call__(self, images: np.ndarray, batch_size: int = 16) -> np.ndarray:
        """Translates (N, H, W, 3) float images in [-1, 1], `batch_size` at a time
        (`batching.apply_batched`: one compiled program serves every batch)."""
        if not len(images):
            return np.zeros_like(images)
        if self._code is not None:
            codes = np.broadcast_to(self._code, (len(images), len(self._code)))
            return self.translate_codes(images, codes, batch_size)
        fn = lambda x: self._fn(self.variables, jnp.asarray(x, jnp.float32))  # noqa: E731
        return batching.apply_batched(fn, np.asarray(images, np.float32), batch_size)

    def require_latent(self, flag: str) -> base.Latent:
        """The method's `Latent`; ValueError naming `flag` when its translations take none."""
        if self.latent is None:
            raise ValueError(
                f"{flag} needs a method whose translations take a latent code z; "
                f"{self.config.method!r} has none"
            )
        return self.latent

    def translate_codes(
        self, images: np.ndarray, codes: np.ndarray, batch_size: int = 16
    ) -> np.ndarray:
        """Translates images[i] with the latent code codes[i] (N, latent dim)."""
        latent = self.require_latent("a latent code")
        images, codes = np.asarray(images, np.float32), np.asarray(codes, np.float32)
        if codes.shape != (len(images), latent.dim):
            raise ValueError(f"latent codes must be {(len(images), latent.dim)}, got {codes.shape}")

        def fn(index: np.ndarray) -> jax.Array:
            x, z = jnp.asarray(images[index]), jnp.asarray(codes[index])
            return self._latent_fn(self.variables, x, z)

        return batching.apply_batched(fn, np.arange(len(images)), batch_size)

    def with_code(self, z: np.ndarray) -> "Translator":
        """A copy of this translator that gives every image the latent code z (latent dim)."""
        latent = self.require_latent("a latent code")
        z = np.asarray(z, np.float32).reshape(-1)
        if z.shape != (latent.dim,):
            raise ValueError(f"a latent code must have {latent.dim} values, got {z.shape}")
        coded = copy.copy(self)
        coded._code = z
        return coded

    def encode(self, image: np.ndarray, flag: str = "--z_from") -> np.ndarray:
        """The latent code (latent dim,) of a target-domain uint8 image (H, W, 3), resized to
        the training crop (`config.data.size`) as the encoder saw its images."""
        latent = self.require_latent(flag)
        if latent.encode is None:
            raise ValueError(f"{flag}: {self.config.method!r} has no encoder of target images")
        side = int(self.config.data.size)
        x = data_lib.to_float(resize(image, side, side))[None]
        return np.asarray(self._encode_fn(self.variables, jnp.asarray(x, jnp.float32)))[0]


@functools.cache
def _load(path: str, step: int | None):
    return checkpoint.load(path, step)


def load_translators(
    path: str | pathlib.Path, step: int | None = None
) -> tuple[Callable[[str], Translator], int]:
    """Returns (direction -> Translator, step) for a workdir or checkpoints folder."""
    config, state, step = _load(str(pathlib.Path(path).expanduser().resolve()), step)
    return (lambda direction: Translator(config, state, direction)), step


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


def expand_inputs(spec: str) -> list[pathlib.Path]:
    """Image files named by a file, a folder (its images) or a glob pattern, sorted."""
    path = pathlib.Path(spec).expanduser()
    if path.is_dir():
        return data_lib.list_images(path)
    if path.is_file():
        return [path]
    anchor = pathlib.Path(path.anchor or ".")
    pattern = str(path.relative_to(anchor)) if path.is_absolute() else spec
    files = sorted(p for p in anchor.glob(pattern) if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"--input {spec!r} names no image file, folder or glob match")
    return files


SCALES = ("trained", "native")


def working_size(
    height: int,
    width: int,
    size: int | None,
    multiple: int = 4,
    trained_size: int | None = None,
) -> tuple[int, int]:
    """The (H, W) to translate at, its sides rounded to multiples of `multiple` (the
    translator's `spatial_multiple`): `size` x `size` when given; else, with `trained_size`,
    the input scaled so that its shorter side is `trained_size` (the scale the model saw in
    training, the aspect ratio kept); else the input's own sides."""
    if size:
        if size % multiple:
            raise ValueError(f"--size ({size}) must be a multiple of {multiple}")
        return size, size
    scale = trained_size / min(height, width) if trained_size else 1.0
    return tuple(
        max(multiple, round(side * scale / multiple) * multiple) for side in (height, width)
    )


def describe_scale(translator, size: int | None, scale: str) -> str:
    """One line saying at which size `translate_files` translates (for the console)."""
    if size:
        return f"translating at {size}x{size} px (--size)"
    if scale == "native":
        return "translating at each input's own size (--scale=native)"
    return (
        f"translating at the trained scale: shorter side {translator.trained_size} px, then "
        "resized back to each input's size (--scale=native: at the input's own size)"
    )


resize = preprocess.resize_to


def translate_files(
    translator: Translator,
    files: list[pathlib.Path],
    output: str | pathlib.Path,
    size: int | None = None,
    sheet: bool = False,
    sheet_rows: int = 16,
    batch_size: int = 16,
    truth: str | pathlib.Path | None = None,
    overwrite: bool = False,
    scale: str = "trained",
) -> tuple[list[pathlib.Path], list[tuple[pathlib.Path, str]]]:
    """Translates each file to OUTPUT/<same name>; returns (written, [(skipped, why)]).

    Without `size`, each image is translated at the scale the model was trained at
    (`scale="trained"`: resized so that its shorter side is `translator.trained_size`, the
    reference test script's practice) or at its own size (`scale="native"`), its sides rounded
    to the translator's multiple, and the result resized back to the input's size (bicubic);
    with `size` the output is `size` x `size`.
    Images of one working size are translated `batch_size` at a time (the last batch of a
    size padded when it follows a full one, so one program serves them). Unreadable files
    are skipped (and reported), never fatal for the others. With `truth`, a folder holding
    each input's true translation under the same name (or stem), every translation is
    scored against it (`truth_metrics`) into OUTPUT/metrics.csv.

    Every file to write (translations, metrics.csv, sheets) is checked before any is
    written (`outputs.guard`): an input or truth file is never replaced, nor a file in
    OUTPUT that jaxfaces did not write unless `overwrite`; what is written is recorded in
    OUTPUT's manifest, so that a rerun may replace it.

    Raises:
      outputs.OutputError (a ValueError): a refused target, or two inputs of one name.
    """
    if scale not in SCALES:
        raise ValueError(f"--scale must be one of {', '.join(SCALES)}, not {scale!r}")
    output = pathlib.Path(output)
    truth_files = match_truth(files, truth) if truth is not None else {}
    targets = outputs.named_after(files, output)
    if truth is not None:
        targets.append(output / "metrics.csv")
    if sheet:
        targets += [output / SHEET.format(i) for i in range(-(-len(files) // sheet_rows))]
    with outputs.guard(output, targets, [*files, *truth_files.values()], overwrite):
        trained = translator.trained_size if scale == "trained" else None
        return _translate_files(
            translator, files, output, size, sheet, sheet_rows, batch_size, truth_files, trained
        )


def _translate_files(
    translator: Translator,
    files: list[pathlib.Path],
    output: pathlib.Path,
    size: int | None,
    sheet: bool,
    sheet_rows: int,
    batch_size: int,
    truth_files: dict[pathlib.Path, pathlib.Path],
    trained_size: int | None,
) -> tuple[list[pathlib.Path], list[tuple[pathlib.Path, str]]]:
    written, skipped, results = [], [], {}
    pending: dict[tuple[int, int], list] = {}
    full: set[tuple[int, int]] = set()  # Working sizes already translated as a full batch.

    def flush(hw: tuple[int, int]) -> None:
        group = pending.pop(hw)
        x = np.stack([data_lib.to_float(resize(image, *hw)) for _, _, image in group])
        if hw in full:  # Padded to the full batch's compiled shape.
            x = batching.pad_batch(x, batch_size)
        if len(group) == batch_size:
            full.add(hw)
        ys = translator(x, batch_size)[: len(group)]
        for (i, path, image), y in zip(group, ys, strict=True):
            y = data_lib.to_uint8(y)
            if not size:
                y = resize(y, *image.shape[:2])
            target = output / path.name
            data_lib.save_image(target, y)
            results[i] = (path, image, y, target)
        done, every = len(results), max(1, len(files) // 10)
        if len(files) >= 20 and done // every > (done - len(group)) // every:
            print(f"translated {done}/{len(files)}", flush=True)

    for i, path in enumerate(files):
        try:
            image = data_lib.read_image(path)
        except (ValueError, OSError) as e:
            skipped.append((path, str(e)))
            print(f"skipping {path}: {e}", flush=True)
            continue
        hw = working_size(*image.shape[:2], size, translator.multiple, trained_size)
        pending.setdefault(hw, []).append((i, path, image))
        if len(pending[hw]) == batch_size:
            flush(hw)
    for hw in list(pending):
        flush(hw)
    ordered = [results[i] for i in sorted(results)]
    written += [target for *_, target in ordered]
    if truth_files and ordered:
        rows = [
            (path.name, truth_metrics(y, data_lib.read_image(truth_files[path])))
            for path, _, y, _ in ordered
        ]
        written.append(write_metrics(rows, output / "metrics.csv"))
        print(format_metrics(rows), flush=True)
    if sheet and ordered:
        pairs = [(resize(image, *y.shape[:2]), y) for _, image, y, _ in ordered]
        written += write_sheets(pairs, output, sheet_rows)
    return written, skipped


# --------------------------------------------------------------------------- samples


def code_of(translator: Translator, image_file: str | pathlib.Path) -> np.ndarray:
    """The latent code of a target-domain image file (`translate.py --z_from`).

    Raises:
      ValueError: the method has no latent code or encoder; FileNotFoundError: no such file.
    """
    translator.require_latent("--z_from")
    path = pathlib.Path(image_file).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"--z_from: no image file at {image_file}")
    return translator.encode(data_lib.read_image(path))


SAMPLE = "{stem}_{k}.png"  # The k-th output (1-based) of an input with `--samples`.
SAMPLE_SHEET = "{stem}_samples.png"  # Its sheet: input | output 1 | ... | output N.


def sample_targets(files: list[pathlib.Path], output: pathlib.Path, samples: int) -> list:
    """The files `translate_samples` writes for each input (outputs, then its sheet).

    Raises:
      outputs.OutputError: two inputs of one stem (their outputs would collide).
    """
    stems = [f.stem for f in files]
    outputs.named_after([pathlib.Path(s) for s in stems], output)  # Refuses a repeated stem.
    return [
        output / name.format(stem=stem, k=k)
        for stem in stems
        for name, k in [*((SAMPLE, k) for k in range(1, samples + 1)), (SAMPLE_SHEET, 0)]
    ]


def translate_samples(
    translator: Translator,
    files: list[pathlib.Path],
    output: str | pathlib.Path,
    samples: int,
    seed: int = 0,
    size: int | None = None,
    scale: str = "trained",
    overwrite: bool = False,
) -> tuple[list[pathlib.Path], list[tuple[pathlib.Path, str]]]:
    """`samples` translations of each input, each with its own latent code z ~ N(0, I)
    (drawn from `seed`, the input's index and the sample's): OUTPUT/<stem>_<k>.png (k = 1 ..
    samples, at the input's size as `translate_files` writes them) and one sheet per input,
    OUTPUT/<stem>_samples.png (input | output 1 | ... | output N, enlarged as the sheets).

    Raises:
      ValueError: the method takes no latent code, samples < 1, a refused target.
    """
    latent = translator.require_latent("--samples")
    if samples < 1:
        raise ValueError(f"--samples must be at least 1, got {samples}")
    if scale not in SCALES:
        raise ValueError(f"--scale must be one of {', '.join(SCALES)}, not {scale!r}")
    output = pathlib.Path(output)
    targets = sample_targets(files, output, samples)
    trained = translator.trained_size if scale == "trained" else None
    key = jax.random.key(seed)
    written, skipped = [], []
    with outputs.guard(output, targets, files, overwrite):
        for i, path in enumerate(files):
            try:
                image = data_lib.read_image(path)
            except (ValueError, OSError) as e:
                skipped.append((path, str(e)))
                print(f"skipping {path}: {e}", flush=True)
                continue
            hw = working_size(*image.shape[:2], size, translator.multiple, trained)
            x = np.repeat(data_lib.to_float(resize(image, *hw))[None], samples, axis=0)
            codes = jax.random.normal(jax.random.fold_in(key, i), (samples, latent.dim))
            row = []
            for k, y in enumerate(translator.translate_codes(x, np.asarray(codes)), 1):
                y = data_lib.to_uint8(y)
                if not size:
                    y = resize(y, *image.shape[:2])
                target = output / SAMPLE.format(stem=path.stem, k=k)
                data_lib.save_image(target, y)
                written.append(target)
                row.append(y)
            sheet = output / SAMPLE_SHEET.format(stem=path.stem)
            data_lib.save_image(sheet, sheets.grid([[resize(image, *row[0].shape[:2]), *row]]))
            written.append(sheet)
    return written, skipped


# --------------------------------------------------------------------------- truth


TRUTH_METRICS = ("l1", "psnr", "ssim")


def match_truth(
    files: list[pathlib.Path], folder: str | pathlib.Path
) -> dict[pathlib.Path, pathlib.Path]:
    """The true translation of each input in `folder`: the same file name, else the same stem.

    Raises:
      FileNotFoundError: no such folder; ValueError: inputs without a truth (names some).
    """
    folder = pathlib.Path(folder).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"--truth folder {folder} does not exist")
    by_stem = {p.stem: p for p in data_lib.list_images(folder)}
    found, missing = {}, []
    for path in files:
        match = folder / path.name if (folder / path.name).is_file() else by_stem.get(path.stem)
        if match is None:
            missing.append(path.name)
        else:
            found[path] = match
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise ValueError(
            f"--truth {folder} lacks the true translations of {len(missing)} of {len(files)} "
            f"inputs: {shown}"
        )
    return found


def truth_metrics(translation: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """L1 ([-1, 1] units), PSNR (dB) and SSIM of a uint8 translation against its truth.

    The truth is resized (bicubic) to the translation's size when they differ; SSIM is NaN
    for images under 11 px.
    """
    truth = resize(truth, *translation.shape[:2])
    x = data_lib.to_float(translation)[None]
    y = data_lib.to_float(truth)[None]
    out = {"l1": float(metrics.l1(x, y)[0]), "psnr": float(metrics.psnr(x, y)[0])}
    small = min(x.shape[1:3]) < metrics.SSIM_WINDOW
    out["ssim"] = float("nan") if small else float(metrics.ssim(x, y)[0])
    return out


def mean_metrics(rows: list[tuple[str, dict[str, float]]]) -> dict[str, float]:
    """The mean of each metric over the rows (NaNs left out)."""
    out = {}
    for k in TRUTH_METRICS:
        values = np.asarray([m[k] for _, m in rows], np.float64)
        out[k] = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
    return out


def write_metrics(rows: list[tuple[str, dict[str, float]]], path: pathlib.Path) -> pathlib.Path:
    """Writes `image,l1,psnr,ssim` per image, then a `mean` row, as CSV.

    Writes without checking: callers check `path` first (`outputs.guard`), as
    `translate_files` does.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", *TRUTH_METRICS])
        for name, m in [*rows, ("mean", mean_metrics(rows))]:
            writer.writerow([name, *(f"{m[k]:.6g}" for k in TRUTH_METRICS)])
    return path


def format_metrics(rows: list[tuple[str, dict[str, float]]]) -> str:
    """The console table of `write_metrics`."""
    width = max(len("image"), *(len(name) for name, _ in rows))
    lines = [f"{'image':<{width}}  {'L1':>7}  {'PSNR':>7}  {'SSIM':>7}"]
    for name, m in [*rows, ("mean", mean_metrics(rows))]:
        lines.append(f"{name:<{width}}  {m['l1']:7.4f}  {m['psnr']:7.2f}  {m['ssim']:7.4f}")
    return "\n".join(lines)


SHEET = "sheet_{:03d}.png"  # The name of the i-th sheet of `write_sheets`.


def write_sheets(
    pairs: list[tuple[np.ndarray, np.ndarray]],
    output: pathlib.Path,
    rows: int = 16,
    height: int = 128,
) -> list[pathlib.Path]:
    """Writes OUTPUT/sheet_NNN.png grids with rows of input | output, `rows` per sheet.

    A pair (two images of one size) whose shorter side is under `height` px is enlarged by
    the whole factor that reaches it, nearest neighbour (`sheets.factor`: each pixel a block,
    as made); a larger pair is resized to `height` px tall (bicubic). The translated files
    themselves keep their size. Writes without checking: callers check the sheets first
    (`outputs.guard`), as `translate_files` does.
    """
    paths = []
    for start in range(0, len(pairs), rows):
        lines = []
        for image, out in pairs[start : start + rows]:
            if min(image.shape[:2]) < height:
                k = sheets.factor(*image.shape[:2], height)
                lines.append(sheets.enlarge(np.concatenate([image, out], 1), k))
                continue
            w = max(1, round(image.shape[1] * height / image.shape[0]))
            lines.append(np.concatenate([resize(image, height, w), resize(out, height, w)], 1))
        width = max(line.shape[1] for line in lines)
        lines = [np.pad(line, ((0, 0), (0, width - line.shape[1]), (0, 0))) for line in lines]
        path = output / SHEET.format(start // rows)
        data_lib.save_image(path, np.concatenate(lines, 0))
        paths.append(path)
    return paths
