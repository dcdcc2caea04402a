"""Ablation of the thesis's CycleGAN switches on the built-in faces, same budget for each.

  python bench/ablation.py                          # every variant, 64 px, CPU-sized nets
  python bench/ablation.py --steps 300 --variants baseline pacgan --out ablation.md
  python bench/ablation.py --variants baseline --seed 1   # seed noise: the same run reseeded
  python bench/ablation.py --variants baseline cyclegan_vae --vae_steps 500 --latent_steps 700
  python bench/ablation.py --size 32 --batch 8 --variants unit --unit_steps 500

Each variant is the CPU-sized baseline (configs/demo.py's networks at --size px, with the
ResNet generator of the earlier demo: ngf 16, 3 residual blocks) with one switch of
configs/cyclegan_thesis.py turned on, or all of them ("thesis"); `unet` is the demo's own
U-Net generator (num_downs 5: --size a multiple of 32). Every run trains
--steps steps from the same seed on the same data, then translates the test split both
ways; the table gives the L1 and PSNR of the translations to the true translations, the
cycle reconstruction L1, each against the identity baseline (input vs truth), and the
training speed. VGG-based variants use the converted VGG19 weights when found and say
"random VGG" in the table otherwise (the numbers then say little about the method).
Written as Markdown to --out and printed.

`cyclegan_vae` is another method, not a switch: configs/cyclegan_vae_demo.py's networks
at --size px (latent map --size / 4), trained --vae_steps VAE steps then --latent_steps
latent CycleGAN steps (pick them so that its CPU time matches the baseline's: each run
prints its wall and CPU seconds; the note gives both stages' steps, the seconds, and the
VAE's reconstruction L1 of the test images).

`unit` is UNIT (configs/unit_demo.py's networks at --size px), trained --unit_steps steps
(default --steps); its note gives the steps and its wall and CPU seconds.

`dtn` likewise: configs/dtn_demo.py's networks at --size px (f = the project's own VAE
encoder, latent map --size / 4), --dtn_vae_steps VAE steps then --dtn_steps DTN steps. DTN
translates one way: its B->A and cycle cells are "-".
"""

import argparse
import pathlib
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import ml_collections  # noqa: E402


def _uniform_noise(c):
    c.loss.d_noise.kind = "uniform"
    c.loss.d_noise.start = 0.5
    c.loss.d_noise.anneal_steps = c.train.num_steps


def _resize_conv(c):
    c.model.generator.upsample = "nearest"


def _tv(c):
    c.loss.tv_weight = 1e-4


def _pacgan(c):
    c.model.discriminator.pack = 2


def _nst(c, form="features_l1"):
    c.loss.identity = "vgg"
    c.loss.vgg.style_form = form


def _thesis(c):
    for switch in (_uniform_noise, _resize_conv, _tv, _pacgan, _nst):
        switch(c)


def _unet(c):
    c.model.generator.name = "unet"  # configs/demo.py's generator (num_downs 5, no dropout).


def _resnet_baseline(c):
    """The tables' baseline generator: the ResNet of configs/demo.py until 2026-12-02 (ngf 16,
    3 blocks; the demo now has a U-Net, the `unet` variant)."""
    c.model.generator.name = "resnet"
    c.model.generator.n_blocks = 3


VARIANTS = {
    "baseline": lambda c: None,
    "unet": _unet,
    "resize_conv": _resize_conv,
    "d_noise": _uniform_noise,
    "tv": _tv,
    "pacgan": _pacgan,
    "cyclegan_nst": _nst,
    "cyclegan_nst_gram": lambda c: _nst(c, "gram"),
    "wgan_gp": lambda c: setattr(c.loss, "gan_mode", "wgan-gp"),
    "hinge": lambda c: setattr(c.loss, "gan_mode", "hinge"),
    "thesis": _thesis,
}
#: Other methods, run beside the pixel CycleGAN from their own demo configs at --size.
METHODS = ("cyclegan_vae", "dtn", "unit")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    names = [*VARIANTS, *METHODS]
    p.add_argument("--variants", nargs="+", default=names, choices=names)
    p.add_argument("--steps", type=int, default=400, help="training steps per variant")
    p.add_argument("--size", type=int, default=64, help="image side (px)")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seed", type=int, default=0, help="config.seed (initialisation, data order)")
    p.add_argument("--data", default=None, help="built-in data folder (default: a temp dir)")
    p.add_argument("--workdir", default=None, help="keep the runs here (default: a temp dir)")
    p.add_argument("--out", default="ablation.md", help="Markdown table file")
    p.add_argument("--vae_steps", type=int, default=None, help="cyclegan_vae: stage 1 steps")
    p.add_argument("--latent_steps", type=int, default=None, help="cyclegan_vae: stage 2 steps")
    p.add_argument("--dtn_vae_steps", type=int, default=None, help="dtn: stage 1 (VAE) steps")
    p.add_argument("--dtn_steps", type=int, default=None, help="dtn: stage 2 (DTN) steps")
    p.add_argument("--unit_steps", type=int, default=None, help="unit: steps (default --steps)")
    return p.parse_args(argv)


def variant_config(name: str, args: argparse.Namespace, data: str) -> ml_collections.ConfigDict:
    """configs/demo.py at --size with the variant's switch (a method: its demo config)."""
    from configs import cyclegan_vae_demo, demo, dtn_demo, unit_demo

    demos = {"cyclegan_vae": cyclegan_vae_demo, "dtn": dtn_demo, "unit": unit_demo}
    c = demos.get(name, demo).get_config()
    if name not in demos:
        _resnet_baseline(c)
    c.data.root = data
    c.data.synthetic.enabled = True
    c.data.synthetic.size = args.size
    c.data.size = args.size
    c.data.load_size = args.size + args.size // 8
    c.data.batch_size = args.batch
    c.seed = args.seed
    steps = args.steps
    if name == "cyclegan_vae":
        c.model.vae.latent_size = args.size // 4
        c.vae_stage.num_steps = args.steps if args.vae_steps is None else args.vae_steps
        steps = args.steps if args.latent_steps is None else args.latent_steps
    if name == "dtn":
        c.model.vae.latent_size = args.size // 4
        c.vae_stage.num_steps = args.steps if args.dtn_vae_steps is None else args.dtn_vae_steps
        steps = args.steps if args.dtn_steps is None else args.dtn_steps
    if name == "unit":
        steps = args.steps if args.unit_steps is None else args.unit_steps
    c.train.num_steps = steps
    c.train.decay_steps = steps // 2
    c.train.log_every = max(1, args.steps // 4)
    c.train.log_images_every = args.steps
    c.train.ckpt_every = args.steps
    c.train.eval_every = 0
    if name in VARIANTS:
        VARIANTS[name](c)
    return c


def total_steps(config: ml_collections.ConfigDict) -> int:
    """Steps of every stage of the run."""
    from jaxfaces.methods import get_method

    return get_method(config.method).stages(config)[-1].stop


def method_note(config: ml_collections.ConfigDict, state, seconds: float, cpu: float) -> str:
    """cyclegan_vae: its stages' steps, its wall and CPU time (all threads) and the VAE's
    reconstruction L1 of the test images; unit: its steps and times; "" for the pixel
    CycleGAN."""
    if config.method == "unit":
        return f"{config.train.num_steps} steps, {seconds:.0f} s ({cpu:.0f} CPU s)"
    if config.method not in ("cyclegan_vae", "dtn"):
        return ""
    from jaxfaces import data as data_lib
    from jaxfaces.methods import cyclegan_vae

    rec = [
        cyclegan_vae.reconstruction_l1(config, state, data_lib.test_images(config.data, d)[0])
        for d in ("a", "b")
    ]
    second = "DTN" if config.method == "dtn" else "latent"
    return (
        f"VAE {config.vae_stage.num_steps} + {second} {config.train.num_steps} steps, "
        f"{seconds:.0f} s ({cpu:.0f} CPU s); VAE rec. L1 A / B {rec[0]:.4f} / {rec[1]:.4f}"
    )


def vgg_note(config: ml_collections.ConfigDict) -> str:
    """ "" without the VGG loss; else whether real weights were found."""
    from jaxfaces.models import vgg

    if config.loss.get("identity", "pixel") != "vgg":
        return ""
    try:
        vgg.find_weights(config.vgg.weights or None)
        return "VGG19 ImageNet"
    except FileNotFoundError:
        config.vgg.weights = "random"
        return "random VGG"


def markdown_table(rows: list[tuple], args: argparse.Namespace) -> str:
    """The report: one row per (name, note, eval metrics, steps/s); the first row's identity
    L1 (input vs truth) as the baseline line."""
    lines = [
        f"Ablation: {args.steps} steps at {args.size} px, batch {args.batch}, seed {args.seed}, "
        "built-in faces "
        "(L1 in [-1, 1] units; ratio = L1 / identity L1; steps/s includes compile + eval)",
        "",
        "| variant | A->B L1 (ratio) | A->B PSNR | B->A L1 (ratio) | B->A PSNR "
        "| cycle L1 A / B | steps/s | note |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, note, ev, speed in rows:
        a, b = ev["AtoB"], ev.get("BtoA")  # A one-way method (DTN) has no B->A.
        psnr = lambda m: f"{m['psnr']:.2f}" if "psnr" in m else "-"  # noqa: E731
        back = f"{b['l1']:.4f} ({b['ratio']:.2f}) | {psnr(b)}" if b else "- | -"
        cycle = f"{a['cycle_l1']:.4f} / {b['cycle_l1']:.4f}" if b else "-"
        lines.append(
            f"| {name} | {a['l1']:.4f} ({a['ratio']:.2f}) | {psnr(a)} | {back} "
            f"| {cycle} | {speed:.2f} | {note} |"
        )
    baseline = rows[0][2]
    back = f"{baseline['BtoA']['identity_l1']:.4f}" if "BtoA" in baseline else "-"
    lines.append(f"\nIdentity baseline: A->B {baseline['AtoB']['identity_l1']:.4f}, B->A {back}")
    return "\n".join(lines)


def main(argv=None) -> None:
    args = parse_args(argv)
    from jaxfaces.training import loop

    tmp = tempfile.TemporaryDirectory()
    data = args.data or str(pathlib.Path(tmp.name) / "faces")
    work = pathlib.Path(args.workdir or tmp.name)
    rows = []
    for name in args.variants:
        config = variant_config(name, args, data)
        note = vgg_note(config)
        print(f"=== {name} {note}", flush=True)
        start, cpu = time.perf_counter(), time.process_time()
        result = loop.train(config, work / name)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        print(f"=== {name}: {seconds:.0f} s, {cpu:.0f} CPU s", flush=True)
        ev = result["eval"]
        note = note or method_note(config, result["state"], seconds, cpu)
        rows.append((name, note, ev, total_steps(config) / seconds))
    table = markdown_table(rows, args)
    pathlib.Path(args.out).write_text(table + "\n")
    print("\n" + table)
    tmp.cleanup()


if __name__ == "__main__":
    main()
