"""What the command-line entry points share."""

import os
import pathlib
import sys
import traceback
from collections.abc import Callable

from absl import flags, logging

#: The repository: code under jaxfaces/ and configs/, and the entry points beside them.
_ROOT = pathlib.Path(__file__).resolve().parents[1]
_OWN_FOLDERS = (_ROOT / "jaxfaces", _ROOT / "configs")


def quiet_library_logs() -> None:
    """Shows libraries' INFO logs (Orbax, CLU, XLA, TensorFlow) only when -v is given.

    Call before TensorFlow or JAX start logging (first thing in an absl `main`).
    """
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _is_own_file(filename: str) -> bool:
    path = pathlib.Path(filename).resolve()
    return path.parent == _ROOT or any(path.is_relative_to(f) for f in _OWN_FOLDERS)


def input_error(error: BaseException) -> str | None:
    """The message of a bad-input error raised by jaxfaces's own checks, else None.

    That is a ValueError or FileNotFoundError raised by a `raise` statement in this
    repository (a config check, the data or checkpoint loaders); the same types raised
    inside a library (NumPy, JAX, ...) are bugs to show with their traceback.
    """
    if not isinstance(error, (ValueError, FileNotFoundError)):
        return None
    frames = traceback.extract_tb(error.__traceback__)
    if not frames or not _is_own_file(frames[-1].filename):
        return None
    if not (frames[-1].line or "").startswith("raise"):  # e.g. open() of a missing file.
        return None
    return str(error)


def report_input_errors(run: Callable[[], int | None]) -> int:
    """Runs `run`; a bad-input error (`input_error`) is printed as one line, `error: MESSAGE`,
    on stderr and gives exit status 2. Anything else propagates with its traceback.

    Returns:
      `run`'s exit status (None counts as 0), or 2.
    """
    try:
        return run() or 0
    except (ValueError, FileNotFoundError) as e:
        message = input_error(e)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr, flush=True)
        return 2
