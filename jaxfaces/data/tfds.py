"""TFDS named data sets with trainA / trainB / testA / testB splits (e.g. cycle_gan/horse2zebra).

A split is read whole into memory, each image resized to a square (uint8), so the training
pipeline treats it like a cached image folder. TFDS examples have no file names: images are
named by their position in the split, "000000.png", "000001.png", ...

A data set not yet prepared in the data_dir is downloaded and prepared on first use; a failed
download (no internet, a server error, a bad checksum) is one FileNotFoundError that names the
data set, the cause and the ways around it (prepare it elsewhere, or use image folders). To
prepare a data set on a machine with internet (TFDS's own `tfds build` also needs apache_beam):

  python -m jaxfaces.data.tfds cycle_gan/horse2zebra --data_dir=DIR
"""

from __future__ import annotations

import argparse
import sys
import urllib.error

import numpy as np

from jaxfaces.data import preprocess

IMAGE_KEY = "image"  # The feature holding the image.


def _builder(name: str, data_dir: str | None):
    """The TFDS builder; an unknown name or config is a ValueError of one line naming it."""
    import tensorflow_datasets as tfds  # Imported here: slow, and only this source needs it.

    try:
        return tfds.builder(name, data_dir=data_dir or None)
    except ValueError as e:  # DatasetNotFoundError (which lists every data set) or a config.
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(
            f"config.data.tfds={name!r} is not a TFDS data set: {first_line} "
            "(names: https://www.tensorflow.org/datasets/catalog/overview)"
        ) from e


def _download_errors() -> tuple[type[BaseException], ...]:
    """What a failed download raises out of `download_and_prepare` (after TFDS's retries)."""
    import requests
    import tensorflow_datasets as tfds
    from tensorflow_datasets.core.download import download_manager

    return (
        requests.RequestException,  # No network, DNS, refused, timeouts, HTTP errors.
        tfds.download.DownloadError,  # An HTTP status other than 200.
        download_manager.NonMatchingChecksumError,  # A corrupted or changed download.
        urllib.error.URLError,  # FTP downloads.
        ConnectionError,
        TimeoutError,
    )


def download_failed_message(name: str, data_dir: str, error: BaseException) -> str:
    """The one-line explanation of a failed TFDS download: data set, cause, alternatives."""
    cause = " ".join(f"{type(error).__name__}: {error}".split())  # One line.
    return (
        f"TFDS data set {name} (config.data.tfds) is not prepared in {data_dir} and "
        f"downloading it failed ({cause}); prepare it on a machine with internet "
        f"(`python -m jaxfaces.data.tfds {name} --data_dir=DIR`), copy DIR here and pass "
        f"--config.data.tfds_data_dir=DIR, or train on image folders "
        f"(--config.data.root=PATH holding trainA/ trainB/)"
    )


def prepare(name: str, *, data_dir: str | None = None):
    """Returns the TFDS builder of `name`, downloading and preparing the data set if needed.

    Args:
      name: the TFDS name, e.g. "cycle_gan/horse2zebra".
      data_dir: TFDS data_dir (default: TFDS's own, ~/tensorflow_datasets).

    Returns:
      The prepared `tfds.core.DatasetBuilder`.

    Raises:
      FileNotFoundError: if the data set is not prepared and its download fails (one line:
        `download_failed_message`).
    """
    builder = _builder(name, data_dir)
    if builder.is_prepared():
        return builder
    try:
        builder.download_and_prepare()
    except _download_errors() as e:
        raise FileNotFoundError(download_failed_message(name, str(builder.data_dir_root), e)) from e
    return builder


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
      FileNotFoundError: if it must be downloaded and the download fails (see `prepare`).
    """
    import tensorflow_datasets as tfds

    ds = prepare(name, data_dir=data_dir).as_dataset(split=split, shuffle_files=False)
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


def main(argv: list[str] | None = None) -> int:
    """Downloads and prepares a TFDS data set: `python -m jaxfaces.data.tfds NAME --data_dir=DIR`.

    Returns:
      0, or 2 after printing one line `error: MESSAGE` when the download fails.
    """
    parser = argparse.ArgumentParser(
        prog="python -m jaxfaces.data.tfds", description=main.__doc__.splitlines()[0]
    )
    parser.add_argument("name", help="TFDS name, e.g. cycle_gan/horse2zebra")
    parser.add_argument("--data_dir", default=None, help="TFDS data_dir (default: TFDS's own)")
    args = parser.parse_args(argv)
    try:
        builder = prepare(args.name, data_dir=args.data_dir)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 2
    splits = ", ".join(f"{k} ({v.num_examples})" for k, v in sorted(builder.info.splits.items()))
    print(f"{args.name} is prepared in {builder.data_dir_root}: {splits}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
