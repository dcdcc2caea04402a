"""Sheets: grids of image tiles for people to look at, small tiles enlarged without smoothing.

The images a model reads and writes are small (32 px in the demos). Wherever they are shown
(the sheet PNGs, the HTML reports, the notebooks), each tile is enlarged by a whole factor,
nearest neighbour (every pixel becomes a k x k block, nothing is blurred or invented), so
that its shorter side is at least `MIN_TILE` px. Only what is shown is enlarged: the
translated image files and every metric stay at the model's size.
"""

from collections.abc import Sequence

import numpy as np

#: The shorter side, in px, that a shown tile reaches at least.
MIN_TILE = 128


def factor(height: int, width: int, min_side: int = MIN_TILE) -> int:
    """The smallest whole factor k >= 1 with k * min(height, width) >= min_side.

    Raises:
      ValueError: for a side under 1 px.
    """
    if height < 1 or width < 1:
        raise ValueError(f"an image of {height} x {width} px has no tile size")
    return max(1, -(-min_side // min(height, width)))


def enlarge(image: np.ndarray, k: int) -> np.ndarray:
    """An (H, W, ...) image enlarged k times, nearest neighbour: (k H, k W, ...)."""
    if k < 1:
        raise ValueError(f"enlargement factor {k} must be a whole number >= 1")
    image = np.asarray(image)
    return image if k == 1 else np.repeat(np.repeat(image, k, axis=0), k, axis=1)


def enlarged(image: np.ndarray, min_side: int = MIN_TILE) -> np.ndarray:
    """`image` enlarged by `factor` of its size (unchanged when already that large)."""
    return enlarge(image, factor(*np.shape(image)[:2], min_side))


def grid(rows: Sequence[Sequence[np.ndarray]], min_side: int = MIN_TILE) -> np.ndarray:
    """One image of tiles: `rows` of equally sized (H, W, 3) images, each enlarged by the
    one factor that brings the tile size to `min_side` (see `factor`).

    Raises:
      ValueError: no tiles, rows of different lengths, or tiles of different shapes.
    """
    tiles = [np.asarray(t) for row in rows for t in row]
    if not tiles:
        raise ValueError("a sheet needs at least one image")
    if len({len(row) for row in rows}) != 1:
        raise ValueError(f"sheet rows differ in length: {[len(row) for row in rows]}")
    shapes = {t.shape for t in tiles}
    if len(shapes) != 1:
        raise ValueError(f"sheet tiles differ in shape: {sorted(shapes)}")
    sheet = np.concatenate([np.concatenate([np.asarray(t) for t in row], 1) for row in rows], 0)
    return enlarge(sheet, factor(*tiles[0].shape[:2], min_side))
