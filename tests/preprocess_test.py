"""Tests of jaxfaces.data.preprocess: decoding any mode and format, scaling, saving."""

import numpy as np
import pytest
from PIL import Image

from jaxfaces.data import preprocess


def _blocks() -> np.ndarray:
    """A 16x24 RGB image of four flat colour blocks (friendly to lossy codecs)."""
    img = np.zeros((16, 24, 3), np.uint8)
    img[:8, :12] = (250, 10, 10)
    img[:8, 12:] = (10, 250, 10)
    img[8:, :12] = (10, 10, 250)
    img[8:, 12:] = (240, 240, 240)
    return img


def _palette_image() -> Image.Image:
    img = Image.new("P", (10, 6), 0)
    img.putpalette([0, 0, 0, 200, 100, 50] + [0, 0, 0] * 254)
    img.paste(1, (5, 0, 10, 6))
    return img


def test_read_gray_png_exact(tmp_path):
    Image.new("L", (20, 12), 77).save(tmp_path / "x.png")
    img = preprocess.read_image(tmp_path / "x.png")
    assert img.shape == (12, 20, 3) and img.dtype == np.uint8
    assert (img == 77).all()


def test_read_gray_alpha_drops_alpha(tmp_path):
    Image.new("LA", (8, 8), (100, 30)).save(tmp_path / "x.png")
    img = preprocess.read_image(tmp_path / "x.png")
    assert img.shape == (8, 8, 3)
    assert (img == 100).all()


def test_read_rgba_drops_alpha(tmp_path):
    Image.new("RGBA", (8, 6), (10, 20, 30, 0)).save(tmp_path / "x.png")
    img = preprocess.read_image(tmp_path / "x.png")
    assert img.shape == (6, 8, 3)
    np.testing.assert_array_equal(img[0, 0], [10, 20, 30])


def test_read_palette_png_exact(tmp_path):
    _palette_image().save(tmp_path / "x.png")
    img = preprocess.read_image(tmp_path / "x.png")
    assert img.shape == (6, 10, 3)
    np.testing.assert_array_equal(img[:, :5], np.zeros((6, 5, 3)))
    np.testing.assert_array_equal(img[:, 5:], np.broadcast_to([200, 100, 50], (6, 5, 3)))


def test_read_palette_with_transparency(tmp_path):
    _palette_image().save(tmp_path / "x.png", transparency=0)
    img = preprocess.read_image(tmp_path / "x.png")
    np.testing.assert_array_equal(img[0, 9], [200, 100, 50])


def test_read_16bit_scales_not_clips(tmp_path):
    values = np.array([[0, 257 * 100, 40000, 65535]], np.uint16)
    Image.fromarray(values).save(tmp_path / "x.png")
    assert Image.open(tmp_path / "x.png").mode == "I;16"
    img = preprocess.read_image(tmp_path / "x.png")
    assert img.shape == (1, 4, 3) and img.dtype == np.uint8
    np.testing.assert_array_equal(img[0, :, 0], [0, 100, 156, 255])  # 40000 / 257 = 155.6
    assert (img[..., 0] == img[..., 2]).all()


def test_read_32bit_int_mode_as_16bit(tmp_path):
    Image.fromarray(np.full((3, 3), 40000, np.int32)).save(tmp_path / "x.tif")
    assert Image.open(tmp_path / "x.tif").mode == "I"
    assert (preprocess.read_image(tmp_path / "x.tif") == 156).all()


def test_read_cmyk_jpeg(tmp_path):
    Image.new("CMYK", (16, 16), (0, 255, 0, 0)).save(tmp_path / "x.jpg")
    img = preprocess.read_image(tmp_path / "x.jpg")
    assert img.shape == (16, 16, 3) and img.dtype == np.uint8
    np.testing.assert_allclose(img.reshape(-1, 3).mean(0), [255, 0, 255], atol=6)  # Magenta.


def test_read_bilevel_bmp(tmp_path):
    img = Image.new("1", (8, 4), 0)
    img.paste(1, (4, 0, 8, 4))
    img.save(tmp_path / "x.bmp")
    out = preprocess.read_image(tmp_path / "x.bmp")
    assert (out[:, :4] == 0).all() and (out[:, 4:] == 255).all()


def _assert_close_lossy(img: np.ndarray, expected: np.ndarray) -> None:
    """Lossy codecs: small mean error, block interiors close (edges blur with chroma)."""
    diff = np.abs(img.astype(int) - expected.astype(int))
    assert diff.mean() < 10, diff.mean()
    for y, x in ((3, 3), (3, 20), (12, 3), (12, 20)):
        np.testing.assert_allclose(img[y, x], expected[y, x], atol=30)


@pytest.mark.parametrize(
    "name, options, lossless",
    [
        ("x.png", {}, True),
        ("x.bmp", {}, True),
        ("x.gif", {}, True),  # Four colours fit the GIF palette exactly.
        ("x.webp", {"lossless": True}, True),
        ("x.webp", {"quality": 90}, False),
        ("x.jpg", {"quality": 95}, False),
        ("x.JPEG", {"quality": 95}, False),
    ],
)
def test_read_formats(tmp_path, name, options, lossless):
    expected = _blocks()
    Image.fromarray(expected).save(tmp_path / name, **options)
    img = preprocess.read_image(tmp_path / name)
    assert img.shape == (16, 24, 3) and img.dtype == np.uint8
    if lossless:
        np.testing.assert_array_equal(img, expected)
    else:
        _assert_close_lossy(img, expected)


def test_read_animated_gif_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "x.gif", save_all=True, append_images=frames[1:])
    img = preprocess.read_image(tmp_path / "x.gif")
    np.testing.assert_array_equal(img[0, 0], [255, 0, 0])


def test_read_applies_exif_orientation(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display.
    Image.new("RGB", (20, 10), (0, 0, 0)).save(tmp_path / "x.jpg", exif=exif)
    assert preprocess.read_image(tmp_path / "x.jpg").shape == (20, 10, 3)


@pytest.mark.parametrize(
    "content", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40]
)
def test_read_bad_file_raises_value_error_naming_it(tmp_path, content):
    path = tmp_path / "broken_file.png"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="broken_file.png"):
        preprocess.read_image(path)


def test_read_truncated_jpeg_raises(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(tmp_path / "t.jpg")
    data = (tmp_path / "t.jpg").read_bytes()
    (tmp_path / "t.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="t.jpg"):
        preprocess.read_image(tmp_path / "t.jpg")


def test_read_missing_file_raises(tmp_path):
    with pytest.raises(ValueError, match="nothing.png"):
        preprocess.read_image(tmp_path / "nothing.png")


def test_to_float_range_and_round_trip():
    all_values = np.arange(256, dtype=np.uint8).reshape(16, 16)
    scaled = preprocess.to_float(all_values)
    assert scaled.dtype == np.float32
    assert scaled.min() == -1.0 and scaled.max() == 1.0
    np.testing.assert_array_equal(preprocess.to_uint8(scaled), all_values)


def test_to_float_rejects_non_uint8():
    with pytest.raises(TypeError):
        preprocess.to_float(np.zeros((2, 2), np.float32))


def test_to_uint8_clips_and_rounds():
    out = preprocess.to_uint8(np.array([-3.0, -1.0, 0.0, 0.999, 2.5]))
    np.testing.assert_array_equal(out, [0, 0, 128, 255, 255])  # 0 -> 127.5 rounds to even.


def test_resize_shape_and_constant():
    img = np.full((10, 30, 3), 90, np.uint8)
    out = preprocess.resize(img, 16)
    assert out.shape == (16, 16, 3) and out.dtype == np.uint8
    assert (out == 90).all()


def test_read_with_size_resizes(tmp_path):
    Image.fromarray(_blocks()).save(tmp_path / "x.png")
    img = preprocess.read_image(tmp_path / "x.png", 12)
    assert img.shape == (12, 12, 3) and img.dtype == np.uint8
    np.testing.assert_array_equal(img, preprocess.resize(_blocks(), 12))
    np.testing.assert_array_equal(img[2, 2], [250, 10, 10])


def test_crop_and_flip():
    img = np.arange(5 * 6).reshape(5, 6, 1)
    crop = preprocess.crop_and_flip(img, 1, 2, 3, False)
    np.testing.assert_array_equal(crop[..., 0], img[1:4, 2:5, 0])
    flipped = preprocess.crop_and_flip(img, 1, 2, 3, True)
    np.testing.assert_array_equal(flipped[..., 0], img[1:4, 2:5, 0][:, ::-1])
    with pytest.raises(ValueError):
        preprocess.crop_and_flip(img, 3, 0, 3, False)


def test_save_float_png_round_trip_and_parents(tmp_path):
    img = preprocess.to_float(_blocks())
    path = tmp_path / "new" / "dir" / "out.png"
    preprocess.save_image(path, img)
    np.testing.assert_array_equal(preprocess.read_image(path), _blocks())


def test_save_uint8_jpeg_and_gray(tmp_path):
    preprocess.save_image(tmp_path / "out.jpg", _blocks())
    assert Image.open(tmp_path / "out.jpg").format == "JPEG"
    _assert_close_lossy(preprocess.read_image(tmp_path / "out.jpg"), _blocks())
    preprocess.save_image(tmp_path / "gray.png", np.full((4, 5), 33, np.uint8))
    assert (preprocess.read_image(tmp_path / "gray.png") == 33).all()


def test_save_rejects_bad_shape(tmp_path):
    with pytest.raises(ValueError):
        preprocess.save_image(tmp_path / "x.png", np.zeros((4, 4, 2), np.uint8))


def test_read_refuses_more_pixels_than_pil_allows(tmp_path, monkeypatch):
    Image.new("L", (20, 12), 5).save(tmp_path / "x.png")  # 240 pixels.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 200)  # PIL alone only warns up to 400.
    with pytest.warns(Image.DecompressionBombWarning), pytest.raises(ValueError) as info:
        preprocess.read_image(tmp_path / "x.png")
    assert "x.png" in str(info.value) and "MAX_IMAGE_PIXELS = 200" in str(info.value)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # No limit, as in PIL.
    assert (preprocess.read_image(tmp_path / "x.png") == 5).all()


def test_read_folder_and_empty_file_say_so(tmp_path):
    (tmp_path / "d.png").mkdir()
    with pytest.raises(ValueError, match="d.png: it is a folder"):
        preprocess.read_image(tmp_path / "d.png")
    (tmp_path / "e.jpg").write_bytes(b"")
    with pytest.raises(ValueError, match=r"e.jpg: the file is empty \(0 bytes\)"):
        preprocess.read_image(tmp_path / "e.jpg")
