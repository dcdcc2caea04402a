"""Translating images with a trained (or converted) generator, for any method."""

import functools
import pathlib
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from PIL import Image

from jaxfaces import data as data_lib
from jaxfaces.methods import get_method
from jaxfaces.training import checkpoint

DIRECTIONS = ("AtoB", "BtoA")


class Translator:
    """A generator ready to translate batches of [-1, 1] NHWC images in one direction."""

    def __init__(self, config: ml_collections.ConfigDict, state: dict[str, Any], direction: str):
        if direction not in DIRECTIONS:
            raise ValueError(f"unknown direction {direction!r}; valid: {', '.join(DIRECTIONS)}")
        method = get_method(config.method)
        self.config, self.direction = config, direction
        self.variables = method.generator_variables(state, direction)
        self._fn = jax.jit(method.make_translate(config))

    def __call__(self, images: np.ndarray, batch_size: int = 16) -> np.ndarray:
        """Translates (N, H, W, 3) float images in [-1, 1], `batch_size` at a time."""
        out = [
            np.asarray(self._fn(self.variables, jnp.asarray(images[i : i + batch_size])))
            for i in range(0, len(images), batch_size)
        ]
        return np.concatenate(out) if out else np.zeros_like(images)


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


def working_size(height: int, width: int, size: int | None) -> tuple[int, int]:
    """The (H, W) to translate at: `size` x `size`, else the input rounded to multiples of 4."""
    if size:
        if size % 4:
            raise ValueError(f"--size ({size}) must be a multiple of 4")
        return size, size
    return max(4, round(height / 4) * 4), max(4, round(width / 4) * 4)


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bicubic resize of a uint8 (H, W, 3) image; a no-op when the size already matches."""
    if image.shape[:2] == (height, width):
        return image
    return np.asarray(Image.fromarray(image).resize((width, height), Image.BICUBIC))


def translate_files(
    translator: Translator,
    files: list[pathlib.Path],
    output: str | pathlib.Path,
    size: int | None = None,
    sheet: bool = False,
    sheet_rows: int = 16,
) -> tuple[list[pathlib.Path], list[tuple[pathlib.Path, str]]]:
    """Translates each file to OUTPUT/<same name>; returns (written, [(skipped, why)]).

    Without `size`, an image whose sides are not multiples of 4 is translated at the nearest
    such size and the result resized back; with `size` the output is `size` x `size`.
    Unreadable files are skipped (and reported), never fatal for the others.
    """
    output = pathlib.Path(output)
    written, skipped, pairs = [], [], []
    for i, path in enumerate(files, 1):
        try:
            image = data_lib.read_image(path)
        except (ValueError, OSError) as e:
            skipped.append((path, str(e)))
            print(f"skipping {path}: {e}", flush=True)
            continue
        h, w = working_size(*image.shape[:2], size)
        x = data_lib.to_float(resize(image, h, w))[None]
        y = data_lib.to_uint8(translator(x)[0])
        if not size:
            y = resize(y, *image.shape[:2])
        target = output / path.name
        data_lib.save_image(target, y)
        written.append(target)
        if sheet:
            pairs.append((resize(image, *y.shape[:2]), y))
        if len(files) >= 20 and (i % (len(files) // 10) == 0 or i == len(files)):
            print(f"translated {i}/{len(files)}", flush=True)
    if sheet and pairs:
        written += write_sheets(pairs, output, sheet_rows)
    return written, skipped


def write_sheets(
    pairs: list[tuple[np.ndarray, np.ndarray]],
    output: pathlib.Path,
    rows: int = 16,
    height: int = 128,
) -> list[pathlib.Path]:
    """Writes OUTPUT/sheet_NNN.png grids with rows of input | output, `rows` per sheet."""
    paths = []
    for start in range(0, len(pairs), rows):
        lines = []
        for image, out in pairs[start : start + rows]:
            w = max(1, round(image.shape[1] * height / image.shape[0]))
            lines.append(np.concatenate([resize(image, height, w), resize(out, height, w)], 1))
        width = max(line.shape[1] for line in lines)
        lines = [np.pad(line, ((0, 0), (0, width - line.shape[1]), (0, 0))) for line in lines]
        path = output / f"sheet_{start // rows:03d}.png"
        data_lib.save_image(path, np.concatenate(lines, 0))
        paths.append(path)
    return paths
