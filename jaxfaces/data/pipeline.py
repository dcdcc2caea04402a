"""The training stream and the test images, from `config.data`.

The stream is a pure function of (seed, step), so a run resumes exactly from its step with no
iterator state to save:

* Each domain (A = 0, B = 1; a paired stream uses 0 for both) numbers its samples
  k = step * global_batch + j, j in [0, global_batch). Aligned data (`config.data.aligned`:
  A|B side by side in root/train/) is paired: A and B are the halves of one file.
* Sample k shows file `permutation(seed, domain, epoch)[k % N]`, epoch = k // N: every
  file once per epoch, in a fresh order each epoch. Unpaired A and B have their own N and
  their own orders (two independent streams, as the reference); paired A and B share both.
* Its crop offsets and flip come from a generator seeded by (seed, domain, k) alone.
* Process p of P computes only samples [step*B + p*B/P, step*B + (p+1)*B/P) of each step.

Images are decoded with PIL (aligned files split into their halves), resized to
load_size x load_size (bicubic), cropped to size x size, flipped and scaled to float32
[-1, 1]. Folders are scanned up front: unreadable files are skipped with one warning. Decoded
images are kept in memory while they fit in `config.data.cache_mb`; otherwise each sample is
decoded again from its file. TFDS splits are always read whole into memory.
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import pathlib
import weakref
from collections.abc import Iterator, Sequence

import numpy as np
import tensorflow as tf

from jaxfaces.data import folders, preprocess, sources
from jaxfaces.data import tfds as tfds_source

_PERMUTATION_STREAM, _AUGMENT_STREAM = 0, 1  # Keep file order and augmentation independent.


# ----------------------------------------------------------------------------------------------
# Config.


def _check_sizes(data_cfg) -> tuple[int, int]:
    load_size, size = int(data_cfg.load_size), int(data_cfg.size)
    if size < 1:
        raise ValueError(f"config.data.size ({size}) must be positive")
    if load_size < size:
        raise ValueError(
            f"config.data.size ({size}) must be <= config.data.load_size ({load_size})"
        )
    return load_size, size


# ----------------------------------------------------------------------------------------------
# Sample plan: which file, which crop, which flip for sample k. Pure functions of their inputs.


def _seed_word(seed: int) -> int:
    return int(seed) % 2**64  # SeedSequence takes non-negative integers.


@functools.lru_cache(maxsize=16)
def _permutation(seed: int, domain_id: int, epoch: int, n: int) -> np.ndarray:
    rng = np.random.default_rng([_seed_word(seed), domain_id, _PERMUTATION_STREAM, epoch])
    permutation = rng.permutation(n)
    permutation.flags.writeable = False  # Shared by the parallel workers through the cache.
    return permutation


def sample_index(seed: int, domain_id: int, k: int, n: int) -> int:
    """The file index (in [0, n)) of sample k: each epoch of n samples is a permutation."""
    epoch, position = divmod(k, n)
    return int(_permutation(seed, domain_id, epoch, n)[position])


def augment_params(
    seed: int, domain_id: int, k: int, load_size: int, size: int, flip: bool
) -> tuple[int, int, bool]:
    """Crop offsets (top, left) and flip of sample k, seeded by (seed, domain_id, k)."""
    rng = np.random.default_rng([_seed_word(seed), domain_id, _AUGMENT_STREAM, k])
    top, left = (int(x) for x in rng.integers(0, load_size - size + 1, size=2))
    flipped = bool(rng.random() < 0.5)  # Drawn even when unused: crops don't depend on `flip`.
    return top, left, flip and flipped


def global_sample(local_t: int, batch: int, process_index: int, process_count: int) -> int:
    """The global sample number k of a process's local sample number t (contiguous slices)."""
    local_batch = batch // process_count
    step, j = divmod(local_t, local_batch)
    return step * batch + process_index * local_batch + j


# ----------------------------------------------------------------------------------------------
# Domains: images in memory or files decoded per sample.


@dataclasses.dataclass(frozen=True)
class _Domain:
    """One domain's training images: `images` uint8 (N, L, L, 3) in memory, or `paths`
    (whole images, or that `half` of aligned files)."""

    load_size: int
    images: np.ndarray | None = None
    paths: tuple[pathlib.Path, ...] | None = None
    half: int | None = None

    def __len__(self) -> int:
        return len(self.images) if self.images is not None else len(self.paths)

    def fetch(self, i: int) -> np.ndarray:
        if self.images is not None:
            return self.images[i]
        if self.half is not None:
            return preprocess.read_half(self.paths[i], self.half, self.load_size)
        return preprocess.read_image(self.paths[i], self.load_size)


def _aligned_domains(data_cfg, load_size: int) -> tuple[_Domain, _Domain]:
    """Lists, scans and (if they fit) caches the aligned training files: A and B are their
    halves, so a pair is one file (an unreadable file is dropped whole)."""
    folder = sources.aligned_folder(data_cfg, "train")
    if not folder.is_dir():
        raise FileNotFoundError(
            f"config.data.aligned=True: no folder {folder} (training images A|B side by side)"
        )
    paths = folders.list_images(folder)
    budget = float(sources.field(data_cfg, "cache_mb", 0)) * 2**20
    cache = 2 * len(paths) * load_size * load_size * 3 <= budget
    scan = folders.scan_images(paths, size=load_size if cache else None, aligned=True)
    if scan.images is not None:
        images = scan.images if scan.ok.all() else scan.images[scan.ok]
        return tuple(_Domain(load_size, images=images[:, h]) for h in (0, 1))
    kept = tuple(p for p, ok in zip(paths, scan.ok, strict=True) if ok)
    return tuple(_Domain(load_size, paths=kept, half=h) for h in (0, 1))


def _folder_domains(data_cfg, load_size: int) -> tuple[_Domain, _Domain]:
    """Lists, pairs (if asked), scans and (if they fit) caches the training folders."""
    if sources.aligned(data_cfg):
        return _aligned_domains(data_cfg, load_size)
    folder_a, folder_b = sources.train_folders(data_cfg)
    paths = [folders.list_images(folder_a), folders.list_images(folder_b)]
    if sources.field(data_cfg, "paired", False):
        paths = list(folders.pair_by_stem(*paths))
    budget = float(sources.field(data_cfg, "cache_mb", 0)) * 2**20
    scans = []
    for domain_paths in paths:
        need = len(domain_paths) * load_size * load_size * 3
        cache = need <= budget
        budget -= need if cache else 0
        scans.append(folders.scan_images(domain_paths, size=load_size if cache else None))
    if sources.field(data_cfg, "paired", False):
        keep = scans[0].ok & scans[1].ok  # A pair with one unreadable side is dropped.
        if not keep.any():
            raise ValueError(f"No readable pair of images in {folder_a} and {folder_b}")
        keeps = [keep, keep]
    else:
        keeps = [scan.ok for scan in scans]
    domains = []
    for domain_paths, scan, keep in zip(paths, scans, keeps, strict=True):
        if scan.images is not None:
            images = scan.images if keep.all() else scan.images[keep]
            domains.append(_Domain(load_size, images=images))
        else:
            kept = tuple(p for p, k in zip(domain_paths, keep, strict=True) if k)
            domains.append(_Domain(load_size, paths=kept))
    return domains[0], domains[1]


def _tfds_domains(data_cfg, load_size: int) -> tuple[_Domain, _Domain]:
    name, data_dir = data_cfg.tfds, sources.field(data_cfg, "tfds_data_dir", "")
    a, b = (
        tfds_source.load_split(name, sources.TRAIN_SPLIT[d], size=load_size, data_dir=data_dir)[0]
        for d in sources.DOMAINS
    )
    if sources.field(data_cfg, "paired", False) and len(a) != len(b):
        raise ValueError(
            f"config.data.paired with config.data.tfds={name!r} pairs examples by position, "
            f"but trainA has {len(a)} and trainB {len(b)}"
        )
    return _Domain(load_size, images=a), _Domain(load_size, images=b)


# ----------------------------------------------------------------------------------------------
# The training stream.


def _hide_gpus_from_tf() -> None:
    """Keeps TensorFlow off accelerators (JAX owns them); a no-op once TF has started."""
    try:
        tf.config.set_visible_devices([], "GPU")
    except RuntimeError:
        pass


def _make_sample_fn(
    domains: Sequence[_Domain],
    *,
    seed: int,
    paired: bool,
    load_size: int,
    size: int,
    flip: bool,
    batch: int,
    process_index: int,
    process_count: int,
):
    """Returns t -> (a, b): the float32 (size, size, 3) images of local sample t."""

    def sample(local_t: np.int64) -> tuple[np.ndarray, np.ndarray]:
        k = global_sample(int(local_t), batch, process_index, process_count)
        out = []
        for domain_id, domain in enumerate(domains):
            plan_id = 0 if paired else domain_id  # A pair shares its file, crop and flip.
            i = sample_index(seed, plan_id, k, len(domain))
            top, left, flipped = augment_params(seed, plan_id, k, load_size, size, flip)
            crop = preprocess.crop_and_flip(domain.fetch(i), top, left, size, flipped)
            out.append(preprocess.to_float(crop))
        return out[0], out[1]

    return sample


class _Stream(Iterator[dict[str, np.ndarray]]):
    """A tf.data NumPy iterator that is closed before the interpreter shuts down.

    Destroying a tf.data iterator while its parallel `map` is inside `tf.numpy_function`
    deadlocks once Python has begun finalizing (the workers wait for the GIL forever), so live
    streams are closed by an `atexit` hook, while Python still runs.
    """

    _live: weakref.WeakSet[_Stream] = weakref.WeakSet()

    def __init__(self, ds: tf.data.Dataset):
        self._it = ds.as_numpy_iterator()
        _Stream._live.add(self)

    def __next__(self) -> dict[str, np.ndarray]:
        if self._it is None:
            raise StopIteration
        return next(self._it)

    def close(self) -> None:
        """Stops the stream and frees its buffers and threads."""
        self._it = None


@atexit.register
def _close_streams() -> None:
    for stream in list(_Stream._live):
        stream.close()


def train_iterator(
    data_cfg,
    *,
    seed: int,
    start_step: int = 0,
    process_index: int = 0,
    process_count: int = 1,
    num_devices: int = 1,
) -> Iterator[dict[str, np.ndarray]]:
    """The infinite training stream of this process.

    Batches depend only on (seed, step): an iterator made with start_step=s yields exactly the
    batches an iterator made with start_step=0 yields from step s on. Folders are listed and
    scanned (and cached) when this is called, so errors and the warning about unreadable files
    come at once.

    Args:
      data_cfg: `config.data` (root | a + b | tfds, load_size, size, flip, batch_size, paired,
        aligned, cache_mb, tfds_data_dir).
      seed: the run's seed.
      start_step: the first step to yield.
      process_index: this process (host) among process_count.
      process_count: processes sharing the global batch config.data.batch_size.
      num_devices: devices of all processes; the global batch must divide over them.

    Returns:
      An iterator of {"a": float32 (B/P, size, size, 3), "b": float32 (B/P, size, size, 3)}
      in [-1, 1], B the global batch and P the process count.

    Raises:
      ValueError, FileNotFoundError: for a bad config or unusable data.
    """
    source = sources.source(data_cfg)
    load_size, size = _check_sizes(data_cfg)
    batch = sources.check_batch(data_cfg, process_index, process_count, num_devices)
    if start_step < 0:
        raise ValueError(f"start_step ({start_step}) must be >= 0")
    aligned = sources.aligned(data_cfg)  # ValueError unless the source is data.root.
    paired = aligned or bool(sources.field(data_cfg, "paired", False))
    if source == "tfds":
        domains = _tfds_domains(data_cfg, load_size)
    else:
        domains = _folder_domains(data_cfg, load_size)

    sample = _make_sample_fn(
        domains,
        seed=seed,
        paired=paired,
        load_size=load_size,
        size=size,
        flip=bool(data_cfg.flip),
        batch=batch,
        process_index=process_index,
        process_count=process_count,
    )

    def sample_tf(local_t: tf.Tensor) -> dict[str, tf.Tensor]:
        a, b = tf.numpy_function(sample, [local_t], (tf.float32, tf.float32), stateful=False)
        a.set_shape((size, size, 3))
        b.set_shape((size, size, 3))
        return {"a": a, "b": b}

    _hide_gpus_from_tf()
    local_batch = batch // process_count
    ds = tf.data.Dataset.counter(start=start_step * local_batch)
    ds = ds.map(sample_tf, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(local_batch, drop_remainder=True)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    return _Stream(ds)


# ----------------------------------------------------------------------------------------------
# Test images.


def test_images(data_cfg, domain: str) -> tuple[np.ndarray, list[str]] | None:
    """The test split of a domain, resized to size x size (no crop, no flip).

    The split is config.data.test_a / test_b when set, else root/testA / root/testB (aligned
    data: the left / right halves of root/test), else the TFDS split testA / testB. Unreadable
    files are skipped with a warning.

    Args:
      data_cfg: `config.data`.
      domain: "a" or "b".

    Returns:
      float32 images (N, size, size, 3) in [-1, 1] and their file names ("000001.png"; TFDS
      examples get names from their position), or None when there is no such split.
    """
    split = sources.test_split(data_cfg, domain)
    if split is None:
        return None
    _, size = _check_sizes(data_cfg)
    if isinstance(split, str):  # A TFDS split.
        name, data_dir = data_cfg.tfds, sources.field(data_cfg, "tfds_data_dir", "")
        if not tfds_source.has_split(name, split, data_dir=data_dir):
            return None
        images, names = tfds_source.load_split(name, split, size=size, data_dir=data_dir)
        return preprocess.to_float(images), names
    half = sources.aligned_half(data_cfg, split, domain)
    paths = folders.list_images(split)
    scan = folders.scan_images(paths, size=size, aligned=half is not None)
    names = [p.name for p, ok in zip(paths, scan.ok, strict=True) if ok]
    images = scan.images[scan.ok] if half is None else scan.images[scan.ok, half]
    return preprocess.to_float(images), names


def truth_images(data_cfg, domain: str, folder: pathlib.Path, names: Sequence[str]) -> np.ndarray:
    """True translations into `domain` of the test images `names`: the files of those names
    in `folder`, resized to size x size; where `folder` is the config's aligned data, their
    `domain` halves (the other halves of the test images themselves).

    Returns:
      float32 (N, size, size, 3) in [-1, 1], in the order of `names`.

    Raises:
      ValueError: naming the folder and the first missing names, or a file that cannot be
        read (or, aligned, is not twice as wide as high).
    """
    folder = pathlib.Path(folder)
    _, size = _check_sizes(data_cfg)
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise ValueError(
            f"{folder} lacks the true translations of {missing[:5]} "
            f"({len(missing)} of {len(names)} test images)"
        )
    half = sources.aligned_half(data_cfg, folder, domain)
    read = (
        functools.partial(preprocess.read_image, size=size)
        if half is None
        else functools.partial(preprocess.read_half, half=half, size=size)
    )
    return np.stack([preprocess.to_float(read(folder / n)) for n in names])
