"""Translates images with a trained checkpoint, or by neural style transfer.

  python translate.py --ckpt=runs/demo --direction=AtoB --input=photos/ --output=out/ [--sheet]
      [--truth=portraits/]   # per-image and mean L1, PSNR, SSIM to the true translations
      [--scale=native]       # at each input's own size, not the trained scale (the default)
      [--samples=5 | --z_from=target.png]   # latent-code methods: 5 draws of z, or one image's z
  python translate.py --method=nst --content=photos/ --style=painting.png --output=out/ \
      [--config=configs/nst.py --config.nst.steps=200] [--steps --optimizer --init --size]

--input / --content is a file, a folder or a glob; each image is written under its own name in
--output (style transfer also writes losses.csv). Nothing is written when a file to write is an
input, or exists and was not written by jaxfaces (unless --overwrite): see jaxfaces/outputs.py.
"""

import pathlib
import sys

from absl import app, flags
from ml_collections import config_flags

from jaxfaces import cli, outputs

flags.DEFINE_enum("method", "ckpt", ["ckpt", "nst"], "ckpt: a trained model; nst: style transfer.")
flags.DEFINE_string("ckpt", None, "Workdir (or its checkpoints/ folder) of a trained model.")
flags.DEFINE_integer("step", None, "Checkpoint step to use (default: the newest).")
flags.DEFINE_enum("direction", "AtoB", ["AtoB", "BtoA"], "AtoB: domain A -> B; BtoA: B -> A.")
flags.DEFINE_string("input", None, "Image file, folder of images, or glob pattern.")
flags.DEFINE_string("output", None, "Output folder (created if missing).")
flags.DEFINE_bool(
    "overwrite",
    False,
    "Replace files in --output that jaxfaces did not write (its own earlier outputs are "
    "replaced anyway); inputs (--input, --truth, --content, --style) are never replaced.",
)
flags.DEFINE_enum(
    "scale",
    "trained",
    ["trained", "native"],
    "trained: resize each input so that its shorter side is the model's training size, "
    "translate, resize back (the scale the model learnt); native: at the input's own size.",
)
flags.DEFINE_integer("size", None, "Translate at size x size (a multiple of 4; wins over --scale).")
flags.DEFINE_bool("sheet", False, "Also write input | output grids (sheet_NNN.png).")
flags.DEFINE_string(
    "truth", None, "Folder of true translations (same names): writes OUTPUT/metrics.csv."
)
flags.DEFINE_integer(
    "samples", 0, "N > 0: N translations of each input, z ~ N(0, I), and a sheet per input "
    "(methods whose translations take a latent code z)."
)  # fmt: skip
flags.DEFINE_string("z_from", None, "An image of the target domain: translate with its code z.")
flags.DEFINE_integer("seed", 0, "--samples: the seed of the latent codes drawn.")
config_flags.DEFINE_config_file("config", None, "nst: config file (default configs/nst.py).")
flags.DEFINE_string("content", None, "nst: content image file, folder or glob.")
flags.DEFINE_string("style", None, "nst: the style image.")
flags.DEFINE_integer("steps", None, "nst: optimisation steps (config.nst.steps).")
flags.DEFINE_enum("optimizer", None, ["adam", "lbfgs"], "nst: optimiser (config.nst.optimizer).")
flags.DEFINE_enum("init", None, ["content", "noise", "mean"], "nst: start (config.nst.init).")
flags.DEFINE_string("vgg_weights", None, "nst: VGG19 weight file (config.vgg.weights).")
flags.mark_flags_as_required(["output"])
FLAGS = flags.FLAGS


def style_transfer() -> int:
    from configs import nst as nst_config
    from jaxfaces import config_check, inference
    from jaxfaces.methods import nst

    if not FLAGS.content or not FLAGS.style:
        raise ValueError("--method=nst needs --content and --style")
    config = FLAGS.config or nst_config.get_config()
    overrides = {"steps": FLAGS.steps, "optimizer": FLAGS.optimizer, "init": FLAGS.init}
    overrides["size"] = FLAGS.size
    with config.unlocked():
        config.nst.update({k: v for k, v in overrides.items() if v is not None})
        if FLAGS.vgg_weights is not None:
            config.vgg.weights = FLAGS.vgg_weights
    config_check.check(config)  # Every bad value, before anything compiles.
    files = inference.expand_inputs(FLAGS.content)
    targets = [*outputs.named_after(files, FLAGS.output), pathlib.Path(FLAGS.output, "losses.csv")]
    inputs = [*files, FLAGS.style]
    mean_dir = config.nst.get("mean_dir") if config.nst.init == "mean" else None
    if mean_dir and pathlib.Path(mean_dir).expanduser().is_dir():
        inputs += inference.expand_inputs(mean_dir)
    print(f"style transfer of {len(files)} image(s) after {FLAGS.style}", flush=True)
    with outputs.guard(FLAGS.output, targets, inputs, FLAGS.overwrite):
        written = nst.run_files(config, files, FLAGS.style, FLAGS.output)
    print(f"wrote {len(written)} file(s) to {FLAGS.output}", flush=True)
    return 0


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    cli.quiet_library_logs()
    from jaxfaces import inference

    try:
        if FLAGS.method == "nst":
            return style_transfer()
        if not FLAGS.ckpt or not FLAGS.input:
            raise ValueError("--ckpt and --input are required (or use --method=nst)")
        files = inference.expand_inputs(FLAGS.input)
        translators, step = inference.load_translators(FLAGS.ckpt, FLAGS.step)
        translator = translators(FLAGS.direction)
        print(f"{len(files)} image(s), {FLAGS.direction}, checkpoint step {step}", flush=True)
        print(inference.describe_scale(translator, FLAGS.size, FLAGS.scale), flush=True)
        if FLAGS.samples and FLAGS.z_from:
            raise ValueError("give --samples (codes drawn) or --z_from (an image's code)")
        if FLAGS.z_from:
            translator = translator.with_code(inference.code_of(translator, FLAGS.z_from))
            print(f"latent code z of {FLAGS.z_from} for every input", flush=True)
        if FLAGS.samples:
            written, skipped = inference.translate_samples(
                translator, files, FLAGS.output, FLAGS.samples, FLAGS.seed, FLAGS.size,
                FLAGS.scale, FLAGS.overwrite,
            )  # fmt: skip
            print(f"wrote {len(written)} file(s) to {FLAGS.output}; skipped {len(skipped)}")
            return 1 if skipped and not written else 0
        written, skipped = inference.translate_files(
            translator,
            files,
            FLAGS.output,
            FLAGS.size,
            FLAGS.sheet,
            truth=FLAGS.truth,
            overwrite=FLAGS.overwrite,
            scale=FLAGS.scale,
        )
    except (FileNotFoundError, ValueError) as e:
        if cli.input_error(e) is None:  # Not one of our checks: a bug, keep its traceback.
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {len(written)} file(s) to {FLAGS.output}; skipped {len(skipped)}", flush=True)
    return 1 if skipped and not written else 0


if __name__ == "__main__":
    app.run(main)
