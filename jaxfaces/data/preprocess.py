"""Decode, resize, crop, flip and scale images (NumPy and PIL only, no TensorFlow).

Images travel as uint8 RGB arrays of shape (H, W, 3) until the last step, which scales them
to float32 in [-1, 1] as the generators expect.
"""

from __future__ import annotations

import os
import pathlib
import stat

import numpy as np
from PIL import Image, ImageOps

PathLike = str | os.PathLike

# Single-channel integer modes whose values span 16 bits ("I" is read as 16-bit too: that is
# what 16-bit PNG and TIFF files decode to in older Pillow versions).
_WIDE_GRAY_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def _to_rgb_array(image: Image.Image) -> np.ndarray:
    """Converts a PIL image of any mode to a uint8 (H, W, 3) RGB array.

    Alpha is dropped (not composited), as `Image.convert("RGB")` in the PyTorch reference does.
    16-bit grey levels are scaled to 8 bits (v / 257, rounded), not clipped.
    """
    if image.mode in _WIDE_GRAY_MODES:
        values = np.asarray(image).astype(np.float64)
        gray = np.rint(np.clip(values, 0, 65535) / 257.0).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if image.mode == "RGB":
        return np.asarray(image, dtype=np.uint8)
    if image.mode in ("P", "PA") or "transparency" in image.info:
        # Going through RGBA applies palette or colour-key transparency without PIL's warning.
        image = image.convert("RGBA")
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def resize(img: np.ndarray, size: int) -> np.ndarray:
    """Resizes a uint8 RGB image to size x size with bicubic filtering (as the reference).

    Args:
      img: uint8 array (H, W, 3).
      size: side of the output.

    Returns:
      A uint8 array (size, size, 3).
    """
    if img.shape[:2] == (size, size):
        return img
    resized = Image.fromarray(img).resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(resized, dtype=np.uint8)


def resize_to(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bicubic resize of a uint8 (H, W, 3) image to (height, width); a no-op if it matches."""
    if img.shape[:2] == (height, width):
        return img
    resized = Image.fromarray(img).resize((width, height), Image.Resampling.BICUBIC)
    return np.asarray(resized, dtype=np.uint8)


def _check_file(path: pathlib.Path) -> None:
    """Raises ValueError naming `path` unless it is a non-empty regular file.

    Checked before PIL opens it: a folder or a pipe named like an image must not be opened
    (a pipe would block forever), and an empty file deserves a plainer message than PIL's.
    """
    try:
        info = path.stat()
    except OSError as e:
        raise ValueError(f"Cannot read image {path}: {type(e).__name__}: {e.strerror}") from e
    if stat.S_ISDIR(info.st_mode):
        raise ValueError(f"Cannot read image {path}: it is a folder, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"Cannot read image {path}: not a regular file (a pipe, socket or device)")
    if info.st_size == 0:
        raise ValueError(f"Cannot read image {path}: the file is empty (0 bytes)")


def _check_pixels(image: Image.Image) -> None:
    """Refuses images over `Image.MAX_IMAGE_PIXELS` before they are decoded.

    PIL itself only warns (DecompressionBombWarning) between 1x and 2x the limit and raises
    DecompressionBombError above 2x; here both are errors. Setting `Image.MAX_IMAGE_PIXELS`
    to None lifts the limit, as in PIL.
    """
    limit = Image.MAX_IMAGE_PIXELS
    width, height = image.size
    if limit is not None and width * height > limit:
        raise Image.DecompressionBombError(
            f"{width}x{height} = {width * height} pixels exceeds PIL's limit "
            f"Image.MAX_IMAGE_PIXELS = {limit}: a possible decompression bomb, not decoded"
        )


def read_image(path: PathLike, size: int | None = None) -> np.ndarray:
    """Reads an image file as RGB.

    Any format PIL reads (JPEG, PNG, BMP, GIF, WebP, ...) and any mode (L, LA, RGBA, P, CMYK,
    16-bit I;16 / I, ...) become 8-bit RGB. Animated files give their first frame. The EXIF
    orientation, where present, is applied.

    Every unreadable case is the one error type, ValueError, naming the file: missing, a
    folder or pipe, empty, no read permission, not an image, truncated (PIL's default
    `ImageFile.LOAD_TRUNCATED_IMAGES = False`, which jaxfaces never changes), corrupt, or
    declaring more than `PIL.Image.MAX_IMAGE_PIXELS` pixels (a decompression bomb: refused
    before decoding).

    Args:
      path: the image file.
      size: if given, the image is resized to size x size (see `resize`), as the pipeline and
        `test_images` resize.

    Returns:
      A uint8 array of shape (H, W, 3), or (size, size, 3).

    Raises:
      ValueError: if the file cannot be read as an image (see above); names the file.
    """
    path = pathlib.Path(path)
    _check_file(path)
    try:
        with Image.open(path) as image:
            _check_pixels(image)
            image.load()  # Decodes the whole first frame: truncated data fails here.
            img = _to_rgb_array(ImageOps.exif_transpose(image))
    except Exception as e:  # PIL raises many types on malformed data (OSError, SyntaxError, ...).
        raise ValueError(f"Cannot read image {path}: {type(e).__name__}: {e}") from e
    return img if size is None else resize(img, size)


def split_aligned(img: np.ndarray, path: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """The halves of an aligned image: A on the left, B on the right, side by side.

    Args:
      img: array (H, 2H, C), read from `path`.
      path: its file, named in the error.

    Returns:
      The left and right halves, each (H, H, C) (views of `img`).

    Raises:
      ValueError: naming the file and its size, when the width is not twice the height.
    """
    height, width = img.shape[:2]
    if width != 2 * height:
        raise ValueError(
            f"Aligned image {path} is {width}x{height} (width x height): an aligned image "
            f"holds A|B side by side, so its width must be 2 x its height"
        )
    return img[:, :height], img[:, height:]


def read_half(path: PathLike, half: int, size: int | None = None) -> np.ndarray:
    """One half of an aligned image file (0: left, A; 1: right, B), resized to size x size
    if given (see `read_image` and `split_aligned` for the errors)."""
    img = np.ascontiguousarray(split_aligned(read_image(path), path)[half])
    return img if size is None else resize(img, size)


def crop_and_flip(img: np.ndarray, top: int, left: int, size: int, flip: bool) -> np.ndarray:
    """Crops a size x size window at (top, left) and optionally mirrors it left to right.

    Args:
      img: array (H, W, C).
      top: first row of the crop.
      left: first column of the crop.
      size: side of the crop.
      flip: whether to flip horizontally.

    Returns:
      An array (size, size, C) of the same dtype.
    """
    height, width = img.shape[:2]
    if not (0 <= top <= height - size and 0 <= left <= width - size):
        raise ValueError(f"Crop {size}x{size} at ({top}, {left}) outside image {height}x{width}")
    crop = img[top : top + size, left : left + size]
    return crop[:, ::-1] if flip else crop


def to_float(img_uint8: np.ndarray) -> np.ndarray:
    """Scales uint8 pixels [0, 255] to float32 [-1, 1]."""
    img_uint8 = np.asarray(img_uint8)
    if img_uint8.dtype != np.uint8:
        raise TypeError(f"to_float expects uint8 pixels, got {img_uint8.dtype}")
    return img_uint8.astype(np.float32) / np.float32(127.5) - np.float32(1.0)


def to_uint8(img_float: np.ndarray) -> np.ndarray:
    """Maps float pixels in [-1, 1] to uint8 [0, 255], clipped and rounded (undoes to_float)."""
    scaled = (np.asarray(img_float, dtype=np.float32) + 1.0) * 127.5
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def save_image(path: PathLike, img: np.ndarray) -> None:
    """Writes an image; the format (PNG, JPEG, ...) follows the file extension.

    Args:
      path: destination file; missing parent folders are created.
      img: uint8 in [0, 255] or float in [-1, 1]; shape (H, W, 3), (H, W, 1) or (H, W).

    Raises:
      ValueError: for an unsupported shape or dtype, or an unknown extension.
    """
    path = pathlib.Path(path)
    img = np.asarray(img)
    if np.issubdtype(img.dtype, np.floating):
        img = to_uint8(img)
    elif img.dtype != np.uint8:
        raise ValueError(f"save_image expects uint8 or float pixels, got {img.dtype}")
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if not (img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 3)):
        raise ValueError(f"save_image expects (H, W, 3), (H, W, 1) or (H, W), got {img.shape}")
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"quality": 95} if path.suffix.lower() in (".jpg", ".jpeg") else {}
    Image.fromarray(img).save(path, **options)
