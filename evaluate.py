"""Evaluates a trained checkpoint on test images, both ways, and writes an HTML report.

  python evaluate.py --ckpt=runs/demo [--a=DIR --b=DIR --truth_a2b=DIR --truth_b2a=DIR]
      [--report=OUTDIR]

The test folders default to the checkpoint config's test split (so `--ckpt` alone works on
the built-in data). Writes OUTDIR/index.html (metrics, image grids), metrics.json and
metrics.csv; OUTDIR defaults to WORKDIR/report. See docs/EVALUATION.md.
"""

import pathlib
import sys

from absl import app, flags

from jaxfaces import cli

flags.DEFINE_string("ckpt", None, "Workdir (or its checkpoints/ folder) of a trained model.")
flags.DEFINE_integer("step", None, "Checkpoint step to use (default: the newest).")
flags.DEFINE_string("a", None, "Folder of domain-A test images (default: the config's).")
flags.DEFINE_string("b", None, "Folder of domain-B test images (default: the config's).")
flags.DEFINE_string("truth_a2b", None, "Folder of the true B translations of the A images.")
flags.DEFINE_string("truth_b2a", None, "Folder of the true A translations of the B images.")
flags.DEFINE_string("report", None, "Report folder (default: WORKDIR/report).")
flags.DEFINE_bool(
    "overwrite", False, "Replace files in --report that jaxfaces did not write (never inputs)."
)
flags.DEFINE_string("inception", None, "InceptionV3 weights for FID / KID (default: none).")
flags.mark_flags_as_required(["ckpt"])
FLAGS = flags.FLAGS


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    cli.quiet_library_logs()
    for name in ("ckpt", "a", "b", "truth_a2b", "truth_b2a"):
        value = FLAGS[name].value
        if value and not pathlib.Path(value).expanduser().is_dir():
            print(f"error: --{name}: no folder at {value}", file=sys.stderr)
            return 2
    from jaxfaces import evaluation

    try:
        result, page = evaluation.evaluate_checkpoint(
            FLAGS.ckpt,
            FLAGS.report,
            FLAGS.step,
            test={"a": FLAGS.a, "b": FLAGS.b},
            truth={"AtoB": FLAGS.truth_a2b, "BtoA": FLAGS.truth_b2a},
            inception_weights=FLAGS.inception,
            overwrite=FLAGS.overwrite,
        )
    except (FileNotFoundError, ValueError) as e:
        if cli.input_error(e) is None:  # Not one of our checks: a bug, keep its traceback.
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(result.summary(page), flush=True)
    return 0


if __name__ == "__main__":
    app.run(main)
