"""Trains a jaxfaces method: `python train.py --config=configs/cyclegan.py --workdir=DIR`.

Any config field can be overridden, e.g. `--config.data.root=PATH --config.train.num_steps=1000`;
a misspelt field is an error naming it, a bad value one line naming the key (exit status 2,
checked before anything compiles). Running the same command again in the same workdir
resumes from the newest checkpoint. On several hosts (a TPU pod slice, a GPU cluster), run
the same command on every host with `--distributed`; where JAX cannot detect the cluster, add
`--coordinator_address=HOST:PORT --num_processes=N --process_id=I` (I = 0 on HOST).
"""

import re

from absl import app, flags
from ml_collections import config_flags

from jaxfaces import cli

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file(
    "config", None, "Config file, e.g. configs/cyclegan.py.", lock_config=True
)
flags.DEFINE_string("workdir", None, "Where checkpoints, logs and samples go.")
flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize() (multi-host runs).")
flags.DEFINE_string(
    "coordinator_address", None, "With --distributed: HOST:PORT of process 0 (else auto-detected)."
)
flags.DEFINE_integer(
    "num_processes", None, "With --distributed: how many processes (else auto-detected)."
)
flags.DEFINE_integer(
    "process_id", None, "With --distributed: this process, 0..num_processes-1 (else auto-detected)."
)
flags.mark_flags_as_required(["config", "workdir"])


def distributed_args() -> dict[str, str | int]:
    """The `jax.distributed.initialize` arguments given by flags (those not given: detected).

    Raises:
      ValueError: naming the flag, for one given without --distributed or a bad value.
    """
    names = ("coordinator_address", "num_processes", "process_id")
    given = {k: FLAGS[k].value for k in names if FLAGS[k].value is not None}
    if given and not FLAGS.distributed:
        raise ValueError(f"--{next(iter(given))} needs --distributed")
    address, count, index = (given.get(k) for k in names)
    if address is not None and not re.fullmatch(r".+:\d+", address):
        raise ValueError(f"--coordinator_address ({address!r}) must be HOST:PORT")
    if count is not None and count < 1:
        raise ValueError(f"--num_processes ({count}) must be at least 1")
    if index is not None and not 0 <= index < (count or index + 1):
        raise ValueError(f"--process_id ({index}) must be in [0, --num_processes)")
    return given


def train() -> None:
    import jax

    args = distributed_args()
    if FLAGS.distributed:  # Before anything else touches JAX's backends.
        jax.distributed.initialize(**args)
    from jaxfaces import config_check

    config_check.check(FLAGS.config)  # Every bad value, before anything compiles.
    from jaxfaces.training import loop

    loop.train(FLAGS.config, FLAGS.workdir)


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    cli.quiet_library_logs()
    return cli.report_input_errors(train)  # `error: MESSAGE`, exit status 2.


if __name__ == "__main__":
    app.run(main)
