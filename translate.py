"""Translates images with a trained checkpoint.

  python translate.py --ckpt=runs/demo --direction=AtoB --input=photos/ --output=out/ [--sheet]

--input is a file, a folder or a glob; each image is written under its own name in --output.
"""

import sys

from absl import app, flags

from jaxfaces import cli

flags.DEFINE_string("ckpt", None, "Workdir (or its checkpoints/ folder) of a trained model.")
flags.DEFINE_integer("step", None, "Checkpoint step to use (default: the newest).")
flags.DEFINE_enum("direction", "AtoB", ["AtoB", "BtoA"], "AtoB: domain A -> B; BtoA: B -> A.")
flags.DEFINE_string("input", None, "Image file, folder of images, or glob pattern.")
flags.DEFINE_string("output", None, "Output folder (created if missing).")
flags.DEFINE_integer("size", None, "Translate at size x size (a multiple of 4).")
flags.DEFINE_bool("sheet", False, "Also write input | output grids (sheet_NNN.png).")
flags.mark_flags_as_required(["ckpt", "input", "output"])
FLAGS = flags.FLAGS


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    cli.quiet_library_logs()
    from jaxfaces import inference

    try:
        files = inference.expand_inputs(FLAGS.input)
        translators, step = inference.load_translators(FLAGS.ckpt, FLAGS.step)
        translator = translators(FLAGS.direction)
        print(f"{len(files)} image(s), {FLAGS.direction}, checkpoint step {step}", flush=True)
        written, skipped = inference.translate_files(
            translator, files, FLAGS.output, FLAGS.size, FLAGS.sheet
        )
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {len(written)} file(s) to {FLAGS.output}; skipped {len(skipped)}", flush=True)
    return 1 if skipped and not written else 0


if __name__ == "__main__":
    app.run(main)
