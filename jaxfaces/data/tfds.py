"""TFDS named data sets with trainA / trainB / testA / testB splits (e.g. cycle_gan/horse2zebra).

A split is read whole into memory, each image resized to a square (uint8), so the training
pipeline treats it like a cached image folder. TFDS examples have no file names: images are
named by their position in the split, "000000.png", "000001.png", ...
"""

from __future__ import annotations

import numpy as np

from jaxfaces.data import preprocess

IMAGE_KEY = "image"  # The feature holding the image.


def _builder(name: str, data_dir: str | None):
    import tensorflow_datasets as tfds  # Imported here: slow, and only this source needs it.

    return tfds.builder(name, data_dir=data_dir or None)


def has_split(name: str, split: str, *, data_dir: str | None = None) -> bool:
    """Whether a TFDS data set has a split.

    When the split list is not known before preparation (or TFDS is mocked), the split is
    assumed present and loading it reports the error.
    """
    splits = _builder(name, data_dir).info.splits
    return split in splits if splits else True


def _to_rgb(img: np.ndarray) -> np.ndarray:
    """(H, W, 1|3|4) uint8 -> (H, W, 3): grey repeated, alpha dropped."""
    if img.ndim == 2:
        img = img[:, :, None]
    if img.shape[2] == 1:
        return np.repeat(img, 3, axis=2)
    return img[:, :, :3]


def load_split(
    name: str, split: str, *, size: int, data_dir: str | None = None
) -> tuple[np.ndarray, list[str]]:
    """Reads a TFDS split into memory, each image resized to size x size (bicubic).

    Args:
      name: the TFDS name, e.g. "cycle_gan/horse2zebra" (downloaded and prepared if needed).
      split: the split, e.g. "trainA".
      size: side of the returned images.
      data_dir: TFDS data_dir (default: TFDS's own).

    Returns:
      uint8 images (N, size, size, 3) in the split's order, and their names "000000.png", ...

    Raises:
      ValueError: if the data set has no "image" feature or the split is empty.
    """
    import tensorflow_datasets as tfds

    ds = tfds.load(name, split=split, data_dir=data_dir or None, shuffle_files=False)
    if IMAGE_KEY not in ds.element_spec:
        raise ValueError(
            f"TFDS data set {name} (config.data.tfds) has no {IMAGE_KEY!r} feature; "
            f"features: {sorted(ds.element_spec)}"
        )
    ds = ds.map(lambda example: example[IMAGE_KEY])
    images = []
    for img in tfds.as_numpy(ds):
        img = _to_rgb(np.asarray(img))
        if img.dtype != np.uint8:
            raise ValueError(f"TFDS data set {name}: images must be uint8, got {img.dtype}")
        images.append(preprocess.resize(img, size))
    if not images:
        raise ValueError(f"TFDS data set {name} split {split} is empty")
    names = [f"{i:06d}.png" for i in range(len(images))]
    return np.stack(images), names
