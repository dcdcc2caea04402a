"""Sheets for people: whole-factor nearest-neighbour enlargement of small tiles."""

import numpy as np
import pytest
from PIL import Image

from jaxfaces import inference, sheets


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), np.uint8)


@pytest.mark.parametrize(
    ("h", "w", "k"),
    [(32, 32, 4), (64, 64, 2), (48, 48, 3), (30, 42, 5), (128, 128, 1), (256, 64, 2)],
)
def test_factor_is_the_smallest_whole_factor_reaching_the_tile_size(h, w, k):
    assert sheets.factor(h, w) == k
    assert k * min(h, w) >= sheets.MIN_TILE > (k - 1) * min(h, w) or k == 1


def test_factor_refuses_empty_images():
    with pytest.raises(ValueError, match="0 x 5"):
        sheets.factor(0, 5)
    with pytest.raises(ValueError, match="whole number"):
        sheets.enlarge(_image(2, 2), 0)


def test_enlarge_makes_each_pixel_a_block():
    image = np.array([[[1, 2, 3], [4, 5, 6]]], np.uint8)  # 1 x 2 px.
    out = sheets.enlarge(image, 3)
    assert out.shape == (3, 6, 3)
    np.testing.assert_array_equal(out[:, :3], np.broadcast_to([1, 2, 3], (3, 3, 3)))
    np.testing.assert_array_equal(out[:, 3:], np.broadcast_to([4, 5, 6], (3, 3, 3)))
    big = _image(130, 140)
    np.testing.assert_array_equal(sheets.enlarged(big), big)  # Large enough already.
    assert sheets.enlarged(_image(40, 40)).shape == (160, 160, 3)


def test_grid_places_enlarged_tiles_in_rows_and_columns():
    tiles = [[_image(32, 32, 3 * r + c) for c in range(3)] for r in range(2)]
    sheet = sheets.grid(tiles)
    assert sheet.shape == (2 * 128, 3 * 128, 3)
    for r in range(2):
        for c in range(3):
            tile = sheet[r * 128 : (r + 1) * 128, c * 128 : (c + 1) * 128]
            np.testing.assert_array_equal(tile[::4, ::4], tiles[r][c])  # Blocks of 4 x 4 ...
            np.testing.assert_array_equal(tile[3::4, 3::4], tiles[r][c])  # ... all one colour.


def test_grid_refuses_ragged_input():
    with pytest.raises(ValueError, match="at least one"):
        sheets.grid([])
    with pytest.raises(ValueError, match="differ in length"):
        sheets.grid([[_image(8, 8)], [_image(8, 8), _image(8, 8)]])
    with pytest.raises(ValueError, match="differ in shape"):
        sheets.grid([[_image(8, 8), _image(8, 9)]])


def test_translate_sheets_enlarge_small_pairs_and_reduce_large_ones(tmp_path):
    small = (_image(32, 32, 1), _image(32, 32, 2))
    odd = (_image(30, 42, 3), _image(30, 42, 4))
    large = (_image(256, 192, 5), _image(256, 192, 6))
    (path,) = inference.write_sheets([small, odd, large], tmp_path, rows=16)
    sheet = np.asarray(Image.open(path).convert("RGB"))
    # Rows: 32 px x4 = 128; 30 x 42 px x5 = 150 x 210 (per image); 256 px reduced to 128.
    assert sheet.shape == (128 + 150 + 128, max(2 * 128, 2 * 210, 2 * 96), 3)
    np.testing.assert_array_equal(sheet[0:128:4, 0:128:4], small[0])
    np.testing.assert_array_equal(sheet[0:128:4, 128:256:4], small[1])
    np.testing.assert_array_equal(sheet[128:278:5, 210:420:5], odd[1])
    assert not sheet[:128, 256:].any()  # The short first row is padded with black.
