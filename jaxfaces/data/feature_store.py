"""Paired training images and per-image arrays computed from them once (e.g. VGG19 features).

A method whose inputs are fixed functions of the training images (Latent Features Transfer
trains on the frozen VGG19's features) computes them once with `FeatureStore.build` instead
of at every step. The arrays are kept in memory, or in `.npy` files under a cache folder
read through memory maps (reused by later runs when their fingerprint matches). Batches are
drawn as the image pipeline draws paired samples: sample k of the stream is item
`pipeline.sample_index(seed, 0, k, N)`, so the stream is a pure function of (seed, step) and
a resumed run continues it exactly.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from collections.abc import Callable, Iterator

import numpy as np

from jaxfaces.data import folders, sources
from jaxfaces.data import tfds as tfds_source

FINGERPRINT = "fingerprint.json"
_last_read: list = [None, None]  # [key, (a, b, names)] of the last folders read.


def training_pairs(data_cfg) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The paired training images of `config.data`, resized to data.size (no crop, no flip).

    Domain A's and B's training folders (root/trainA and root/trainB, or data.a and data.b)
    are matched by file name; a pair with an unreadable side is dropped (with the folders'
    usual warning). A TFDS source pairs trainA and trainB by position.

    Returns:
      uint8 images A (N, size, size, 3), B (N, size, size, 3), and the names of A's files.

    Raises:
      ValueError: when `data.paired` is off, a name is on one side only, or nothing is read.
    """
    if not data_cfg.get("paired", False):
        raise ValueError("these training data must be paired: set config.data.paired=True")
    size = int(data_cfg.size)
    if sources.source(data_cfg) == "tfds":
        data_dir = data_cfg.get("tfds_data_dir", "")
        a, names = tfds_source.load_split(data_cfg.tfds, "trainA", size=size, data_dir=data_dir)
        b, _ = tfds_source.load_split(data_cfg.tfds, "trainB", size=size, data_dir=data_dir)
        if len(a) != len(b):
            raise ValueError(
                f"config.data.tfds={data_cfg.tfds!r}: trainA has {len(a)} and trainB {len(b)} "
                "examples; paired data pairs them by position"
            )
        return a, b, names
    folder_a, folder_b = sources.train_folders(data_cfg)
    paths_a, paths_b = folders.pair_by_stem(
        folders.list_images(folder_a), folders.list_images(folder_b)
    )
    key = (size, *((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in paths_a + paths_b))
    if _last_read[0] != key:  # Read once per process while the files are unchanged.
        scan_a = folders.scan_images(paths_a, size=size)
        scan_b = folders.scan_images(paths_b, size=size)
        keep = scan_a.ok & scan_b.ok
        if not keep.any():
            raise ValueError(f"no readable pair of images in {folder_a} and {folder_b}")
        names = [p.name for p, k in zip(paths_a, keep, strict=True) if k]
        a, b = scan_a.images[keep], scan_b.images[keep]
        a.flags.writeable = b.flags.writeable = False  # Shared by the callers.
        _last_read[:] = [key, (a, b, names)]
    a, b, names = _last_read[1]
    return a, b, list(names)


@dataclasses.dataclass
class FeatureStore:
    """Named arrays with one row per training item: {name: (N, ...)}.

    `arrays` are NumPy arrays or read-only memory maps; `on_disk` says which.
    """

    arrays: dict[str, np.ndarray]
    on_disk: bool = False

    def __len__(self) -> int:
        return len(next(iter(self.arrays.values())))

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays.values())

    @classmethod
    def build(
        cls,
        n: int,
        specs: dict[str, tuple[tuple[int, ...], np.dtype]],
        compute: Callable[[int, int], dict[str, np.ndarray]],
        chunk: int = 16,
        directory: str | pathlib.Path | None = None,
        fingerprint: dict | None = None,
    ) -> FeatureStore:
        """Fills {name: (n, *shape)} arrays with `compute(start, stop)`, `chunk` rows at a time.

        Args:
          n: rows (training items).
          specs: {name: (shape of one row, dtype)}.
          compute: (start, stop) -> {name: rows start..stop-1}, every name of `specs`.
          chunk: rows per `compute` call.
          directory: if given, the arrays are written there as NAME.npy (names may not
            contain "/"-separated parents other than the folder itself) with FINGERPRINT
            written last, and read back as memory maps; a folder whose fingerprint equals
            `fingerprint` (and whose files match `specs`) is reused without computing.
          fingerprint: JSON-serialisable description of what the arrays depend on.
        """
        if directory is None:
            arrays = {k: np.empty((n, *shape), dtype) for k, (shape, dtype) in specs.items()}
            cls._fill(arrays, n, compute, chunk)
            return cls(arrays)
        directory = pathlib.Path(directory)
        want = json.loads(json.dumps({"n": n, **(fingerprint or {})}))
        files = {k: directory / f"{_file_name(k)}.npy" for k in specs}
        try:
            found = json.loads((directory / FINGERPRINT).read_text())
        except (OSError, ValueError):
            found = None
        if found == want:
            try:
                arrays = {k: np.load(f, mmap_mode="r") for k, f in files.items()}
                if all(
                    a.shape == (n, *specs[k][0]) and a.dtype == specs[k][1]
                    for k, a in arrays.items()
                ):
                    return cls(arrays, on_disk=True)
            except (OSError, ValueError):
                pass
        directory.mkdir(parents=True, exist_ok=True)
        (directory / FINGERPRINT).unlink(missing_ok=True)
        arrays = {
            k: np.lib.format.open_memmap(files[k], mode="w+", dtype=dtype, shape=(n, *shape))
            for k, (shape, dtype) in specs.items()
        }
        cls._fill(arrays, n, compute, chunk)
        for a in arrays.values():
            a.flush()
        del arrays
        (directory / FINGERPRINT).write_text(json.dumps(want, indent=1) + "\n")
        return cls({k: np.load(f, mmap_mode="r") for k, f in files.items()}, on_disk=True)

    @staticmethod
    def _fill(arrays: dict[str, np.ndarray], n: int, compute, chunk: int) -> None:
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            rows = compute(start, stop)
            for k, a in arrays.items():
                a[start:stop] = rows[k]

    def batches(
        self,
        *,
        seed: int,
        batch_size: int,
        start_step: int = 0,
        process_index: int = 0,
        process_count: int = 1,
    ) -> Iterator[dict[str, np.ndarray]]:
        """The infinite stream of this process's batches from `start_step` on.

        Every row once per epoch in a fresh order, as `pipeline` orders paired samples;
        process p of P gets rows for samples [step*B + p*B/P, step*B + (p+1)*B/P).
        """
        from jaxfaces.data import pipeline  # Imports TensorFlow: only when training.

        n, local = len(self), batch_size // process_count
        step = start_step
        while True:
            ks = [
                pipeline.global_sample(step * local + j, batch_size, process_index, process_count)
                for j in range(local)
            ]
            rows = np.asarray([pipeline.sample_index(seed, 0, k, n) for k in ks])
            order = np.argsort(rows)  # Sorted reads are kinder to memory maps.
            out = {}
            for k, a in self.arrays.items():
                taken = np.empty((local, *a.shape[1:]), a.dtype)
                taken[order] = a[rows[order]]
                out[k] = taken
            yield out
            step += 1


def _file_name(key: str) -> str:
    return key.replace("/", "__")
