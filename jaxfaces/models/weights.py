"""Converted weight files of the pretrained networks (VGG19, FID Inception): find, write, read.

A converter (`python -m jaxfaces.convert vgg19|inception`) writes FILE as Flax msgpack (no
pickle) with its SHA-256 in FILE.sha256 beside it (`save`). A network finds its file with
`find`: the path given, else its environment variable, else its default path, the first of
these that is set being used as it is (a missing file there is an error, never a reason to
try the next place). `load` reads the file back, checked against FILE.sha256 when there is
one. Each network (`models.vgg`, `models.inception`) passes its own names, default path and
how-to text, and checks the structure of what it reads.
"""

import hashlib
import os
import pathlib
from collections.abc import Callable
from typing import Any

from flax import serialization

from jaxfaces.outputs import sha256 as sha256

PathLike = str | os.PathLike
#: Suffix of the checksum file written beside a weight file.
SHA256_SUFFIX = ".sha256"
#: Suffix of the temporary file each file is written to before it is renamed into place.
TMP_SUFFIX = ".tmp"


def cache_path(filename: str) -> pathlib.Path:
    """$XDG_CACHE_HOME/jaxfaces/FILENAME, or ~/.cache/jaxfaces/FILENAME when that is unset."""
    cache = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(cache) / "jaxfaces" / filename


def sha256_path(path: PathLike) -> pathlib.Path:
    """The checksum file beside a weight file: FILE.sha256."""
    path = pathlib.Path(path)
    return path.with_name(path.name + SHA256_SUFFIX)


def files(path: PathLike) -> list[pathlib.Path]:
    """Every file `save(tree, path)` may create: FILE, FILE.sha256 and their temporary files.

    For `outputs.guard`, which must know all of them before anything is written.
    """
    path = pathlib.Path(path).expanduser()
    return [p.with_name(p.name + s) for p in (path, sha256_path(path)) for s in ("", TMP_SUFFIX)]


def _write_atomic(path: pathlib.Path, data: bytes) -> None:
    """Writes `path` through `path.tmp` and a rename: readers see the old file or the new one."""
    tmp = path.with_name(path.name + TMP_SUFFIX)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save(tree: Any, path: PathLike) -> tuple[pathlib.Path, str]:
    """Writes a pytree of arrays as Flax msgpack to `path` and its SHA-256 to `path.sha256`.

    Each file is replaced atomically, the weights first: if the checksum cannot follow (a
    crash in between), the old checksum no longer matches and `load` refuses the file rather
    than read an unchecked one.

    Returns:
      (the path written, with `~` expanded; the hex SHA-256 of its content).
    """
    path = pathlib.Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = serialization.msgpack_serialize(tree)
    digest = hashlib.sha256(blob).hexdigest()
    _write_atomic(path, blob)
    _write_atomic(sha256_path(path), f"{digest}  {path.name}\n".encode())
    return path, digest


def find(
    path: PathLike | None,
    *,
    name: str,
    env_var: str,
    default: PathLike,
    given_as: str,
    how_to: Callable[[pathlib.Path], str],
) -> pathlib.Path:
    """The weight file to read: `path` if given, else $`env_var` if set, else `default`.

    The first of these that is set is used (`None` and "" count as not set); if there is no
    file there, that is an error, not a reason to fall back on the next place.

    Args:
      path: the path given by the caller, or None (or "") to look further.
      name: the network, for the message ("VGG19").
      env_var: the environment variable looked at second.
      default: the path looked at last (`~` is expanded).
      given_as: how a caller gives a path ("config vgg.weights"), for the message.
      how_to: the commands that make the file at a given path, for the message.

    Raises:
      FileNotFoundError: in one line, the file missing, every place looked in order with
        what each holds, and the commands that make the file.
    """
    env = os.environ.get(env_var) or None
    default = pathlib.Path(default).expanduser()
    if path is not None and str(path) != "":
        source = f"the path given; a given path is never swapped for ${env_var} or the default"
        chosen = pathlib.Path(path).expanduser()
    elif env is not None:
        source = f"${env_var}; a set ${env_var} is never swapped for the default path"
        chosen = pathlib.Path(env).expanduser()
    else:
        source = f"the default path, as no path was given and ${env_var} is not set"
        chosen = default
    if chosen.is_file():
        return chosen
    given = "none" if path is None or str(path) == "" else str(path)
    places = (
        f"1. the path given ({given_as}): {given}; 2. ${env_var}: {env or 'not set'}; "
        f"3. the default path: {default}"
    )
    raise FileNotFoundError(
        f"no {name} weights at {chosen} ({source}). Where they are looked for, in order (the "
        f"first one set is used): {places}. To make them: {how_to(chosen)}"
    )


def load(path: PathLike, *, kind: str) -> Any:
    """The pytree in a file written by `save`, checked against FILE.sha256 if that exists.

    Args:
      path: the weight file (see `find`).
      kind: what the file should be, for the messages ("a converted VGG19 weight file").

    Raises:
      FileNotFoundError: if there is no file at `path`.
      ValueError: naming the file, if it does not match its checksum file, the checksum
        file is unreadable, or the file is not msgpack.
    """
    path = pathlib.Path(path).expanduser()
    blob = path.read_bytes()
    check = sha256_path(path)
    if check.is_file():
        fields = check.read_text(errors="replace").split()
        want = fields[0].lower() if fields else ""
        if len(want) != 64:
            raise ValueError(f"{check} holds no SHA-256 for {path}; convert {path.name} again")
        got = hashlib.sha256(blob).hexdigest()
        if got != want:
            raise ValueError(
                f"{path} has SHA-256 {got}, but {check} says {want}: the file is damaged or "
                "was replaced; convert it again"
            )
    try:
        return serialization.msgpack_restore(blob)
    except Exception as e:  # msgpack raises several types on foreign or truncated files.
        raise ValueError(f"{path} is not {kind} ({e})") from e
