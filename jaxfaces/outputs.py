"""Output files: which files a command may write, and the record of the files it wrote.

Every command that writes into a place the user names (`translate.py --output`,
`evaluate.py --report`, `python -m jaxfaces.convert ... --out`) lists the files it is about
to write and goes through `guard`:

1. Before anything is written, every target is checked (`check`). A target that is one of
   the command's inputs (the same path once resolved, or the same file through a link) is
   refused, always. A target that exists and that jaxfaces has no record of writing is
   refused unless `overwrite` is given. All targets are checked first, so a refusal leaves
   the folder as it was.
2. After writing, each file written is recorded with its SHA-256 in the folder's manifest,
   FOLDER/.jaxfaces-outputs.json. A later run may replace a recorded file as long as its
   content is still what jaxfaces wrote, so re-running into the same folder works; a
   recorded file that has since been edited is treated as someone else's.

Inputs are never replaced, not even with `--overwrite`: an input overwritten by its own
translation is lost for good (the reason for this module), and results computed from files
that the same run replaces can be wrong (`translate.py --truth` reads the true translations
after writing its outputs, so with `--output` set to the truth folder it would score each
translation against itself). Writing to another folder always fixes such a refusal.
"""

import contextlib
import dataclasses
import hashlib
import json
import os
import pathlib
from collections.abc import Iterable, Iterator, Sequence

PathLike = str | os.PathLike
MANIFEST = ".jaxfaces-outputs.json"
_FORMAT = "jaxfaces outputs, version 1"


class OutputError(ValueError):
    """Writing would replace an input, or an existing file that jaxfaces did not write."""


@dataclasses.dataclass(frozen=True)
class Plan:
    """The targets that `check` passed, and how each looked before writing (None: absent)."""

    folder: pathlib.Path
    targets: tuple[pathlib.Path, ...]
    before: dict[pathlib.Path, tuple | None]


def sha256(path: PathLike) -> str:
    """Hex SHA-256 of a file's content."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _absolute(path: PathLike) -> pathlib.Path:
    return pathlib.Path(os.path.abspath(pathlib.Path(path).expanduser()))


def _signature(path: pathlib.Path) -> tuple | None:
    """Changes whenever the file is written or replaced; None when there is no file."""
    try:
        s = path.stat()
    except OSError:
        return None
    return s.st_dev, s.st_ino, s.st_size, s.st_mtime_ns, s.st_ctime_ns


def read_manifest(folder: PathLike) -> dict[str, str] | None:
    """{relative POSIX path: SHA-256} of the files recorded in FOLDER's manifest.

    Returns {} when there is no manifest, and None when a file of that name exists but is
    not a manifest jaxfaces wrote (unreadable, or another format).
    """
    path = pathlib.Path(folder) / MANIFEST
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        return None
    files = data.get("files")
    if not isinstance(files, dict):
        return None
    return {k: v for k, v in files.items() if isinstance(k, str) and isinstance(v, str)}


def named_after(
    files: Sequence[PathLike], folder: PathLike, flag: str = "--output"
) -> list[pathlib.Path]:
    """FOLDER/<name> for each input file, for commands that keep each input's file name.

    Raises:
      OutputError: two inputs have the same name (their outputs would collide).
    """
    folder, seen = pathlib.Path(folder), {}
    for path in map(pathlib.Path, files):
        if path.name in seen:
            raise OutputError(
                f"the inputs {seen[path.name]} and {path} would both be written to "
                f"{folder / path.name}; give them separate {flag} folders"
            )
        seen[path.name] = path
    return [folder / name for name in seen]


def check(
    folder: PathLike,
    targets: Iterable[PathLike],
    inputs: Iterable[PathLike] = (),
    overwrite: bool = False,
    flag: str = "--output",
) -> Plan:
    """Checks that every target may be written; writes nothing. See the module docstring.

    Args:
      folder: the output folder; its manifest records what jaxfaces wrote there. It need not
        exist yet.
      targets: every file the command may write, each inside `folder` (absolute, or relative
        to the working directory like `folder` itself). Listing a file that is not written
        in the end is harmless.
      inputs: every file the command reads (image files, truth files, weights ...).
      overwrite: allow replacing existing files that jaxfaces has no record of writing.
      flag: the command-line flag naming `folder`, for the error messages.

    Returns:
      The plan that `record` needs once the files are written.

    Raises:
      OutputError: naming the first refused target and the fix, in one line.
    """
    folder = _absolute(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{flag} {folder} is a file, not a folder; choose another {flag}")
    paths = list(dict.fromkeys(_absolute(t) for t in targets))
    for path in paths:
        if folder not in path.parents:
            raise ValueError(f"output {path} is not inside {flag} {folder}")
    input_paths, input_ids = set(), set()
    for path in inputs:
        path = pathlib.Path(path).expanduser()
        input_paths.add(path.resolve())
        with contextlib.suppress(OSError):
            s = path.stat()
            input_ids.add((s.st_dev, s.st_ino))
    foreign = []
    manifest = read_manifest(folder)
    if manifest is None:
        foreign.append(folder / MANIFEST)
        manifest = {}
    for path in paths:
        try:
            s = path.stat()
        except OSError:
            s = None
        if path.resolve() in input_paths or (s and (s.st_dev, s.st_ino) in input_ids):
            raise OutputError(
                f"{path} is an input; choose another {flag} "
                "(inputs are never replaced, not even with --overwrite)"
            )
        if s is None:
            continue
        if path.is_dir():
            raise OutputError(f"{path} is a folder, not a file; choose another {flag}")
        recorded = manifest.get(path.relative_to(folder).as_posix())
        if recorded is None or recorded != sha256(path):
            foreign.append(path)
    if foreign and not overwrite:
        what, them = f"{foreign[0]} exists", "it"
        if len(foreign) > 1:
            what = f"{foreign[0]} (and {len(foreign) - 1} more of the files to write) exist"
            them = "them"
        raise OutputError(
            f"{what} but jaxfaces has no record of writing {them}; choose another {flag}, "
            f"or pass --overwrite to replace {them}"
        )
    return Plan(folder, tuple(paths), {p: _signature(p) for p in paths})


def record(plan: Plan) -> list[pathlib.Path]:
    """Records in the manifest each target written (created or changed) since `check`.

    Entries of files that no longer exist are dropped. Returns the files recorded now.
    """
    written = [p for p in plan.targets if _signature(p) not in (None, plan.before[p])]
    manifest = read_manifest(plan.folder) or {}
    stale = [k for k in manifest if not (plan.folder / k).is_file()]
    if not written and not stale:
        return []
    for key in stale:
        del manifest[key]
    for path in written:
        manifest[path.relative_to(plan.folder).as_posix()] = sha256(path)
    text = json.dumps({"format": _FORMAT, "files": dict(sorted(manifest.items()))}, indent=1)
    path = plan.folder / MANIFEST
    tmp = path.with_name(path.name + ".tmp")
    plan.folder.mkdir(parents=True, exist_ok=True)
    tmp.write_text(text + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return written


@contextlib.contextmanager
def guard(
    folder: PathLike,
    targets: Iterable[PathLike],
    inputs: Iterable[PathLike] = (),
    overwrite: bool = False,
    flag: str = "--output",
) -> Iterator[Plan]:
    """`check`s the targets, runs the body (which writes them), then `record`s them.

    The files written are recorded even when the body raises, so that a rerun after an
    error may replace them. Arguments and errors are those of `check`.

    Example: the report writer of `evaluate.py --report=OUTDIR` lists its files (the pages,
    metrics.json, metrics.csv, each direction's sheet and image folders), reads the test and
    truth images, and is given the command's --overwrite::

        targets = [out_dir / n for n in ("index.html", "metrics.json", "metrics.csv")]
        targets += [out_dir / f"{d}.png" for d in directions]
        targets += [out_dir / d / f"{name}.png" for d, name in translated]  # and columns
        with outputs.guard(out_dir, targets, inputs=test_and_truth_files,
                           overwrite=overwrite, flag="--report"):
            write_the_report(out_dir)

    `OutputError` is a `ValueError`: entry points that print `error: ...` and exit with
    status 2 for ValueError need nothing more.
    """
    plan = check(folder, targets, inputs, overwrite, flag)
    try:
        yield plan
    finally:
        record(plan)
