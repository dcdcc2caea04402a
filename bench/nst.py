"""Times VGG19 image optimisation: jaxfaces (one compiled loop) vs the same loop in PyTorch.

  python bench/nst.py                                  # NST: 64 and 256 px, batch 1 and 8
  python bench/nst.py --method lft                     # LFT synthesis, the same sizes
  python bench/nst.py --method nst lft --size 64 --batch 1 --steps 10

`--method` picks the loops (default `nst` alone; `nst lft` runs both, one table each):

- `nst`: neural style transfer with the thesis's setting (`nst.Settings()`: content conv3_2,
  Gram losses on conv1_1..conv5_1 with weights 0.5..4, average pooling, Adam lr 2 on 0-255
  pixels, clipping). JAX times `nst.stylize`: the content and style targets (VGG19 of both
  images), the steps, and the result's loss; PyTorch does the same work each iteration.
- `lft`: the synthesis of Latent Features Transfer, `lft.synthesise` (= `nst.optimise` with
  `lft.synthesis_settings` of configs/lft.py: the same layers and weights, content 1 : style
  1e3, Adam lr 2, clipping), from the input image, against targets computed before the
  timing. The translator network is not timed: its output is VGG19 features, so the targets
  (content features and Grams, as `lft.translated_targets` builds them) are the VGG19
  features of a second random image. configs/lft.py's synthesis optimiser is Adam; this
  PyTorch side runs Adam only (jaxfaces' L-BFGS is optax's, with its zoom line search,
  which `torch.optim.LBFGS` does not reproduce step for step).

Both frameworks run on the same random VGG19 weights (drawn with numpy in torchvision's
layout; the JAX process converts them with the project's converter, the PyTorch process loads
them into a torchvision-layout VGG19). One iteration is `--steps` optimisation steps, the
result's loss included (jaxfaces records it); JAX's compile is timed apart, ahead of time
(cold in round 1, from the run's persistent cache later). Each framework runs in its own
process with its own defaults, the processes alternated over `--rounds` rounds
(`bench/fair.py`). Prints a Markdown table per method (s/step: median with the min-max of the
per-round medians; images*steps/s; the ratio as the median of per-round ratios) and, last,
one `RATIO nst 64px batch1 jax/torch = ...` (or `RATIO lft ...`) line per configuration
(time per step, jax / torch).
"""

import argparse
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import fair, train_step, vgg_layout  # noqa: E402  (none imports a framework)

METHODS = ("nst", "lft")
TITLES = {"nst": "Neural style transfer", "lft": "LFT synthesis"}

# nst.Settings()'s defaults (the thesis's), for the PyTorch process, which imports no jax;
# tests/bench_test.py checks that they agree. `lft_settings()` has the same keys.
SETTINGS = {
    "content_layer": "conv3_2",
    "style_layers": ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"),
    "style_layer_weights": (0.5, 1.0, 1.5, 3.0, 4.0),
    "content_weight": 1.0,
    "style_weight": 1e5,
    "tv_weight": 0.0,
    "optimizer": "adam",
    "lr": 2.0,
    "pool": "avg",
}


def lft_settings(config=None) -> dict:
    """`lft.synthesis_settings(config)` as SETTINGS' dict, read without jax (configs/lft.py's
    by default; the steps come from --steps; tests/bench_test.py checks the reading)."""
    if config is None:
        from configs import lft as lft_config  # ml_collections only.

        config = lft_config.get_config()
    c, syn = config.lft, config.lft.synthesis
    return {
        "content_layer": c.content_layer,
        "style_layers": tuple(c.style_layers),
        "style_layer_weights": tuple(float(w) for w in c.style_layer_weights),
        "content_weight": float(syn.content_weight),
        "style_weight": float(syn.style_weight),
        "tv_weight": float(syn.tv_weight),
        "optimizer": syn.optimizer,
        "lr": float(syn.lr),
        "pool": config.vgg.pool,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--method", nargs="+", choices=METHODS, default=["nst"], help="the loops timed")
    p.add_argument("--size", type=int, nargs="+", default=[64, 256])
    p.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    p.add_argument("--steps", type=int, default=5, help="optimisation steps per iteration")
    p.add_argument("--seed", type=int, default=0)
    fair.add_flags(p, rounds=3, warmup=1, min_time=5.0)
    p.set_defaults(max_iters=5)
    args = p.parse_args(argv)
    fair.check_flags(p, args)
    if args.steps < 1 or any(v <= 0 for v in args.size + args.batch):
        p.error("--steps, --size and --batch values must be positive")
    args.method = [m for m in METHODS if m in args.method]
    return args


def jobs(args: argparse.Namespace) -> list[dict]:
    return [
        {"method": m, "size": s, "batch": b}
        for m in args.method
        for s in args.size
        for b in args.batch
    ]


def method_of(job: dict) -> str:
    return job.get("method", "nst")


config_name = train_step.config_name  # "64px batch1"


def label(job: dict) -> str:
    """The configuration's name in progress and per-process lines (`lft 64px batch1`)."""
    prefix = "" if method_of(job) == "nst" else f"{method_of(job)} "
    return prefix + config_name(job)


def describe(method: str, steps: int) -> str:
    """The header sentence of one method's loop."""
    if method == "nst":
        return (
            f"NST (Adam, thesis layers, random VGG19), {steps} steps per iteration, with the "
            "targets and the result's loss (as `nst.stylize`)."
        )
    s = lft_settings()
    return (
        f"LFT synthesis (configs/lft.py: {s['optimizer']} lr {s['lr']:g}, content "
        f"{s['content_weight']:g} : style {s['style_weight']:g}, tv {s['tv_weight']:g}, content "
        f"{s['content_layer']}, style {','.join(s['style_layers'])}, {s['pool']} pooling; random "
        f"VGG19), {steps} steps per iteration and the "
        "result's loss (as `lft.synthesise`); targets: VGG19 features of a random image in "
        "place of the translator's output (the translator is not timed)."
    )


def vgg_state_dict(seed: int = 0) -> dict:
    """Random VGG19 weights in torchvision's layout (`features.{i}.weight`, OIHW), as numpy:
    PyTorch's default convolution init, U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    import numpy as np

    rng = np.random.default_rng(seed)
    sd, in_channels = {}, 3
    for b, (features, n) in enumerate(vgg_layout.BLOCKS):
        for i in range(n):
            index = vgg_layout.torchvision_index(f"conv{b + 1}_{i + 1}")
            bound = 1 / np.sqrt(in_channels * 9)
            shape = (features, in_channels, 3, 3)
            sd[f"features.{index}.weight"] = rng.uniform(-bound, bound, shape).astype(np.float32)
            sd[f"features.{index}.bias"] = rng.uniform(-bound, bound, features).astype(np.float32)
            in_channels = features
    return sd


def images(args: argparse.Namespace, job: dict):
    """(content (N, H, W, 3), style (1, H, W, 3)) in [-1, 1], the same in both processes."""
    import numpy as np

    rng = np.random.default_rng([args.seed, job["size"], job["batch"]])
    shape = (job["size"], job["size"], 3)
    content = rng.uniform(-1, 1, (job["batch"], *shape)).astype(np.float32)
    return content, rng.uniform(-1, 1, (1, *shape)).astype(np.float32)


def lft_images(args: argparse.Namespace, job: dict):
    """(inputs, target images), each (N, H, W, 3) in [-1, 1], the same in both processes:
    the synthesis starts from the inputs and matches the target images' VGG19 features."""
    import numpy as np

    rng = np.random.default_rng([args.seed, job["size"], job["batch"], 1])
    shape = (job["batch"], job["size"], job["size"], 3)
    return tuple(rng.uniform(-1, 1, shape).astype(np.float32) for _ in range(2))


# JAX side.


def jax_nst_work(args: argparse.Namespace, job: dict, params) -> tuple:
    """(`nst.stylize`, its array arguments, its settings)."""
    from jaxfaces.methods import nst

    content, style = images(args, job)
    return nst.stylize, (params, content, style, content), nst.Settings(steps=args.steps)


def jax_lft_work(args: argparse.Namespace, job: dict, params) -> tuple:
    """(`nst.optimise`, which `lft.synthesise` runs, its array arguments, the synthesis
    settings): the targets are `lft.translated_targets`' without the translator."""
    import jax

    from configs import lft as lft_config
    from jaxfaces.methods import lft, nst

    config = lft_config.get_config()
    config.lft.synthesis.steps = args.steps
    s = lft.synthesis_settings(config)
    inputs, target_images = lft_images(args, job)
    z = jax.jit(lambda p, x: lft.features(config, p, x))(params, target_images)
    target = jax.block_until_ready(nst.targets_from_features(z, z, s))
    return nst.optimise, (params, target, inputs), s


def jax_worker(args: argparse.Namespace, job: dict) -> dict:
    """Compiles (timed) and times the method's jitted loop with `--steps` steps."""
    train_step.use_compile_cache(args.compile_cache)
    import jax

    from jaxfaces.convert import vgg19 as convert

    params = jax.device_put(convert.params_from_state_dict(vgg_state_dict(args.seed)))
    work = jax_nst_work if method_of(job) == "nst" else jax_lft_work
    fn, arrays, settings = work(args, job, params)
    compiled, timing = train_step.compile_ahead(fn, *arrays, settings, cache=args.compile_cache)
    run = lambda: jax.block_until_ready(compiled(*arrays))  # noqa: E731
    warmup, samples = fair.iterate(run, args, f"jax {label(job)}")
    env = train_step.jax_environment()
    return {**timing, "warmup": warmup, "samples": samples, "env": env}


# PyTorch side: `nst.optimise`'s loop on a torchvision-layout VGG19 (NCHW, 0-255 pixels).


def torch_nchw(a):
    """NHWC numpy -> an NCHW tensor."""
    import numpy as np
    import torch

    return torch.from_numpy(np.ascontiguousarray(np.asarray(a).transpose(0, 3, 1, 2)))


def torch_vgg(seed: int, pool: str):
    """The torchvision-layout VGG19 with `vgg_state_dict(seed)`, frozen, in eval mode."""
    import torch

    from bench.torch_vgg import TorchVGG19

    net = TorchVGG19(pool=pool).eval()
    features = {
        k.removeprefix("features."): torch.from_numpy(v) for k, v in vgg_state_dict(seed).items()
    }
    net.features.load_state_dict(features)
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def torch_layers(s: dict) -> list[str]:
    return list(dict.fromkeys((s["content_layer"], *s["style_layers"])))


def torch_normalized_gram(f):
    """G / M of NCHW features (M = H * W): (N, C, C)."""
    n, c, h, w = f.shape
    f = f.reshape(n, c, h * w)
    return f @ f.transpose(1, 2) / (h * w)


def torch_targets(content_features: dict, style_features: dict, s: dict) -> dict:
    """As `nst.targets_from_features`: the content layer's features, the style layers' Grams."""
    grams = {name: torch_normalized_gram(style_features[name]) for name in s["style_layers"]}
    return {"content": content_features[s["content_layer"]], "grams": grams}


def torch_loss_parts(net, pixels, target: dict, s: dict) -> dict:
    """As `nst.loss_parts`: per-example {total, content, style, tv} (each (N,)) of 0-255
    NCHW images."""
    feats = net(pixels / 127.5 - 1, torch_layers(s))
    content = 0.5 * ((feats[s["content_layer"]] - target["content"]) ** 2).sum(dim=(1, 2, 3))
    style = 0.0
    for name, weight in zip(s["style_layers"], s["style_layer_weights"], strict=True):
        f = feats[name]
        c, m = f.shape[1], f.shape[2] * f.shape[3]
        diff = torch_normalized_gram(f) - target["grams"][name]
        style = style + weight * (diff**2).sum(dim=(1, 2)) / (4 * c * c * m * m)
    dy = (pixels[:, :, 1:] - pixels[:, :, :-1]).abs().sum(dim=(1, 2, 3))
    tv = dy + (pixels[..., 1:] - pixels[..., :-1]).abs().sum(dim=(1, 2, 3))
    total = s["content_weight"] * content + s["style_weight"] * style + s["tv_weight"] * tv
    return {"total": total, "content": content, "style": style, "tv": tv}


def torch_optimise(net, target: dict, init, s: dict, steps: int):
    """As `nst.optimise` with Adam: `steps` Adam steps on the 0-255 image, each followed by
    clipping to [0, 255], then the result's loss. The examples are independent problems (their
    summed loss has each one's gradient; Adam is elementwise). Returns (images (N, 3, H, W) in
    [-1, 1], {part: (N, steps + 1)}) as `nst.optimise`."""
    import torch

    if s["optimizer"] != "adam":
        raise ValueError(f"the PyTorch loop runs Adam only, not {s['optimizer']!r}")
    pixels = ((init + 1) * 127.5).clone().requires_grad_(True)
    opt = torch.optim.Adam([pixels], lr=s["lr"])  # optax.adam's defaults: betas, eps 1e-8.
    history = []
    for _ in range(steps):
        opt.zero_grad()
        parts = torch_loss_parts(net, pixels, target, s)
        parts["total"].sum().backward()
        history.append({k: v.detach() for k, v in parts.items()})
        opt.step()
        with torch.no_grad():
            pixels.clamp_(0, 255)
    with torch.no_grad():
        history.append(torch_loss_parts(net, pixels, target, s))
        images = (pixels / 127.5 - 1).clamp_(-1, 1)
    return images, {k: torch.stack([h[k] for h in history], dim=1) for k in history[0]}


def torch_nst_runner(net, content, style, s: dict = SETTINGS):
    """run(steps) -> torch_optimise's result: `nst.stylize`'s work (targets, then the loop)."""
    import numpy as np
    import torch

    content_t = torch_nchw(content)
    style_t = torch_nchw(np.broadcast_to(style, content.shape))

    def run(steps: int):
        with torch.no_grad():
            layers = torch_layers(s)
            target = torch_targets(net(content_t, layers), net(style_t, layers), s)
        return torch_optimise(net, target, content_t, s, steps)

    return run


def torch_lft_runner(net, inputs, target_images, s: dict):
    """run(steps) -> torch_optimise's result: `lft.synthesise`'s work from the inputs, the
    targets (the target images' features) computed once, outside."""
    import torch

    with torch.no_grad():
        z = net(torch_nchw(target_images), torch_layers(s))
        target = torch_targets(z, z, s)
    init = torch_nchw(inputs)
    return lambda steps: torch_optimise(net, target, init, s, steps)


def torch_worker(args: argparse.Namespace, job: dict) -> dict:
    """Times `--steps` Adam steps of the same loop on a torchvision-layout VGG19."""

    s = SETTINGS if method_of(job) == "nst" else lft_settings()
    net = torch_vgg(args.seed, s["pool"])
    if method_of(job) == "nst":
        run = torch_nst_runner(net, *images(args, job), s)
    else:
        run = torch_lft_runner(net, *lft_images(args, job), s)
    warmup, samples = fair.iterate(lambda: run(args.steps), args, f"torch {label(job)}")
    env = fair.torch_environment()
    return {"compile_s": None, "warmup": warmup, "samples": samples, "env": env}


WORKER_FUNCTIONS = {"jax": jax_worker, "torch": torch_worker}


def report(entries: list[dict], steps: int) -> str:
    """Per method: the Markdown table (titled when there are several), each process's
    seconds; then one RATIO line per configuration."""
    head = ["config", "jax s/step", "torch s/step", "ratio (jax/torch)"]
    head += ["jax images*steps/s", "jax compile s (cold)", "jax compile s (cached)"]
    methods = [m for m in METHODS if any(method_of(e["job"]) == m for e in entries)]
    lines, ratios = [], []
    for method in methods:
        rows, details = [], []
        for entry in (e for e in entries if method_of(e["job"]) == method):
            job, runs = entry["job"], entry["runs"]
            name = config_name(job)
            by_round = {
                n: [[t / steps for t in r] for r in fair.samples_by_round(runs.get(n, []))]
                for n in fair.FRAMEWORKS
            }
            s = {n: fair.summary(v) for n, v in by_round.items()}
            rt = fair.ratio(by_round["jax"], by_round["torch"])
            comp = fair.compile_summary([r["compile_s"] for r in runs.get("jax", [])])
            throughput = job["batch"] / s["jax"]["median"] if s["jax"] else None
            rows.append(
                [name, fair.cell(s["jax"]), fair.cell(s["torch"]), fair.cell(rt, 2)]
                + [fair.fmt(throughput, 2), fair.fmt(comp["cold"], 1), fair.cell(comp["cached"], 1)]
            )
            if rt is not None:
                ratios.append(f"RATIO {method} {name} jax/torch = {rt['median']:.2f}")
            details += train_step.process_lines(label(job), runs)
        title = [f"{TITLES[method]}:", ""] if len(methods) > 1 else []
        lines += ([""] if lines else []) + title + fair.markdown(head, rows) + [""] + details
    return "\n".join(lines + [""] + ratios)


def main(argv: list[str] | None = None) -> None:
    entry = fair.enter(argv, parse_args, WORKER_FUNCTIONS)
    if entry is None:  # A worker process: it has run.
        return
    argv, args = entry
    start, load = time.perf_counter(), fair.load_average()
    entries, notes = fair.rounds_or_exit(__file__, jobs(args), args, argv, label)
    fair.save_json(args.json, argv=argv, entries=entries, notes=notes)
    lines = [
        " ".join(describe(m, args.steps) for m in args.method)
        + f" Each framework in its own process with its own defaults; {args.rounds} round(s), "
        f"the order alternating (jax first in round 1); per process {args.warmup} warm-up and "
        "timed iterations (see bench/fair.py).",
        *fair.describe_environment(entries),
        *(f"note: {n}" for n in notes),
        fair.timing_line(start, load),
    ]
    print("\n".join(lines) + "\n")
    print(report(entries, args.steps), flush=True)


if __name__ == "__main__":
    main()
