"""What the command-line entry points share."""

import os

from absl import flags, logging


def quiet_library_logs() -> None:
    """Shows libraries' INFO logs (Orbax, CLU, XLA, TensorFlow) only when -v is given.

    Call before TensorFlow or JAX start logging (first thing in an absl `main`).
    """
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
