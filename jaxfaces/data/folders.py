"""Image folders: listing, an up-front scan for unreadable files, and pairing by file name.

Folders follow the PyTorch CycleGAN layout (`root/trainA`, `root/trainB`, `root/testA`,
`root/testB`) or are given one by one. Image files are found by extension, case-insensitively,
non-recursively, and sorted by name.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import logging
import os
import pathlib
from collections.abc import Sequence

import numpy as np

from jaxfaces.data import preprocess

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
_MAX_NAMED = 10  # Files named in warnings and errors before "... and N more".

logger = logging.getLogger(__name__)


def list_images(folder: preprocess.PathLike) -> list[pathlib.Path]:
    """Lists the image files directly inside a folder, sorted by name.

    Args:
      folder: the folder.

    Returns:
      The paths of files whose extension is one of IMAGE_EXTENSIONS (any case). Entries with
      such a name that are not files (a folder "x.png/", a pipe, a broken link) are left out
      with one warning that counts and names them.

    Raises:
      FileNotFoundError: if the folder does not exist.
      ValueError: if it is not a folder or holds no image file.
    """
    folder = pathlib.Path(folder)
    if not folder.exists():
        raise FileNotFoundError(f"Image folder {folder} does not exist")
    if not folder.is_dir():
        raise ValueError(f"Image folder {folder} is not a folder")
    paths, not_files = [], []
    for p in sorted(folder.iterdir(), key=lambda p: p.name):
        if p.suffix.lower() in IMAGE_EXTENSIONS:
            (paths if p.is_file() else not_files).append(p)
    if not_files:
        logger.warning(
            "Skipping %d entr%s named like images in %s that %s not files: %s",
            len(not_files),
            "y" if len(not_files) == 1 else "ies",
            folder,
            "is" if len(not_files) == 1 else "are",
            _name_some([p.name for p in not_files]),
        )
    if not paths:
        raise ValueError(
            f"Image folder {folder} holds no image files (extensions {', '.join(IMAGE_EXTENSIONS)})"
        )
    return paths


def _name_some(names: Sequence[str]) -> str:
    """Joins the first few names, saying how many more there are."""
    shown = ", ".join(names[:_MAX_NAMED])
    more = len(names) - _MAX_NAMED
    return f"{shown}, ... and {more} more" if more > 0 else shown


def _describe_location(paths: Sequence[pathlib.Path]) -> tuple[str, list[str]]:
    """Returns ("in <folder>", file names) when all paths share a folder, else ("", full paths)."""
    parents = {p.parent for p in paths}
    if len(parents) == 1:
        return f" in {parents.pop()}", [p.name for p in paths]
    return "", [str(p) for p in paths]


def pair_by_stem(
    paths_a: Sequence[pathlib.Path], paths_b: Sequence[pathlib.Path]
) -> tuple[list[pathlib.Path], list[pathlib.Path]]:
    """Matches two lists of files by file name without extension.

    Args:
      paths_a: files of domain A.
      paths_b: files of domain B.

    Returns:
      The matched files of A and of B, in the order of A (sorted by name).

    Raises:
      ValueError: if a stem appears twice on one side, or on one side only (lists them).
    """
    for side, paths in (("A", paths_a), ("B", paths_b)):
        counts = collections.Counter(p.stem for p in paths)
        twice = sorted(stem for stem, n in counts.items() if n > 1)
        if twice:
            raise ValueError(
                f"Paired data: {len(twice)} file name(s) appear with several extensions in "
                f"domain {side}, so pairs are ambiguous: {_name_some(twice)}"
            )
    by_stem_b = {p.stem: p for p in paths_b}
    stems_a = {p.stem for p in paths_a}
    only_a = sorted(stems_a - by_stem_b.keys())
    only_b = sorted(by_stem_b.keys() - stems_a)
    if only_a or only_b:
        problems = []
        if only_a:
            problems.append(f"{len(only_a)} only in A: {_name_some(only_a)}")
        if only_b:
            problems.append(f"{len(only_b)} only in B: {_name_some(only_b)}")
        raise ValueError(
            "Paired data (config.data.paired) needs the same file names in A and B; "
            + "; ".join(problems)
        )
    return list(paths_a), [by_stem_b[p.stem] for p in paths_a]


@dataclasses.dataclass(frozen=True)
class ScanResult:
    """What a scan found.

    Attributes:
      ok: bool (N,), whether each file decoded.
      images: uint8 (N, size, size, 3), the decoded and resized images (zeros where not ok),
        or None when the scan was asked not to keep them; aligned files: (N, 2, size, size,
        3), each file's left and right halves.
    """

    ok: np.ndarray
    images: np.ndarray | None


def default_num_threads() -> int:
    """Threads for decoding: the CPU count, at most 8 (PIL releases the GIL while decoding)."""
    return max(1, min(8, os.cpu_count() or 1))


def scan_images(
    paths: Sequence[pathlib.Path],
    *,
    size: int | None = None,
    num_threads: int | None = None,
    aligned: bool = False,
) -> ScanResult:
    """Decodes every file fully, in parallel, to find the unreadable ones up front.

    Unreadable files (empty, truncated, corrupt, not images, over PIL's pixel limit, no read
    permission, folders: see `preprocess.read_image`) are reported in ONE warning on the
    `jaxfaces.data.folders` logger that counts them and names the first few.

    Args:
      paths: the files.
      size: if given, the images are also resized to size x size (bicubic) and returned.
      num_threads: decoding threads (default: `default_num_threads()`).
      aligned: each file holds two images side by side (`preprocess.split_aligned`); with
        `size`, both halves are resized and returned.

    Returns:
      A ScanResult.

    Raises:
      ValueError: if no file at all can be read (names the folder); aligned files: if a
        readable file is not twice as wide as high (names it, its size and how many are).
    """
    n = len(paths)
    ok = np.zeros(n, dtype=bool)
    shape = (n, 2, size, size, 3) if aligned else (n, size, size, 3)
    images = np.zeros(shape, dtype=np.uint8) if size is not None else None
    errors: dict[int, str] = {}
    misshapen: dict[int, str] = {}

    def decode(i: int) -> None:
        try:
            img = preprocess.read_image(paths[i])
        except ValueError as e:
            errors[i] = str(e.__cause__ or e)
            return
        if aligned:
            try:
                halves = preprocess.split_aligned(img, paths[i])
            except ValueError as e:
                misshapen[i] = str(e)
                return
            if images is not None:
                images[i] = [preprocess.resize(np.ascontiguousarray(h), size) for h in halves]
        elif images is not None:
            images[i] = preprocess.resize(img, size)
        ok[i] = True

    with concurrent.futures.ThreadPoolExecutor(num_threads or default_num_threads()) as pool:
        list(pool.map(decode, range(n)))

    if misshapen:
        bad = sorted(misshapen)
        others = ""
        if len(bad) > 1:
            where, names = _describe_location([paths[i] for i in bad])
            others = f" ({len(bad)} such files{where}: {_name_some(names)})"
        raise ValueError(misshapen[bad[0]] + others)
    if errors:
        bad = sorted(errors)
        where, names = _describe_location([paths[i] for i in bad])
        if len(bad) == n:
            raise ValueError(
                f"None of the {n} image files{where} can be read: {_name_some(names)} "
                f"(first error: {errors[bad[0]]})"
            )
        logger.warning(
            "Skipping %d unreadable image file(s) of %d%s: %s (first error: %s)",
            len(bad),
            n,
            where,
            _name_some(names),
            errors[bad[0]],
        )
    return ScanResult(ok=ok, images=images)
