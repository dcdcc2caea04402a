"""Trains a jaxfaces method: `python train.py --config=configs/cyclegan.py --workdir=DIR`.

Any config field can be overridden, e.g. `--config.data.root=PATH --config.train.num_steps=1000`;
a misspelt field is an error naming it, a bad value one line naming the key (exit status 2,
checked before anything compiles). Running the same command again in the same workdir
resumes from the newest checkpoint. On several hosts (a TPU pod slice, a GPU cluster), run
the same command on every host with `--distributed`.
"""

from absl import app, flags
from ml_collections import config_flags

from jaxfaces import cli

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file(
    "config", None, "Config file, e.g. configs/cyclegan.py.", lock_config=True
)
flags.DEFINE_string("workdir", None, "Where checkpoints, logs and samples go.")
flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize() (multi-host runs).")
flags.mark_flags_as_required(["config", "workdir"])


def train() -> None:
    import jax

    if FLAGS.distributed:  # Before anything else touches JAX's backends.
        jax.distributed.initialize()
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
