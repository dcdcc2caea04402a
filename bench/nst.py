"""Times neural style transfer steps: jaxfaces (one compiled loop) vs the same loop in PyTorch.

  python bench/nst.py                                  # 64 and 256 px, batch 1 and 8
  python bench/nst.py --size 64 --batch 1 --steps 10

Both frameworks run the thesis's setting (content conv3_2, Gram losses on conv1_1..conv5_1
with weights 0.5..4, average pooling, Adam lr 2 on 0-255 pixels, clipping) on the same
random VGG19 weights (drawn with numpy in torchvision's layout; the JAX process converts them
with the project's converter, the PyTorch process loads them into a torchvision-layout VGG19).
One iteration is `--steps` optimisation steps: JAX times `nst.stylize` (its compile, ahead
of time, timed apart: cold in round 1, from the run's persistent cache later), PyTorch runs
the same number of Adam steps. Each framework runs in its own process with its own defaults,
the processes alternated over `--rounds` rounds (`bench/fair.py`). Prints a Markdown table
(s/step: median with the min-max of the per-round medians; images*steps/s; the ratio as the
median of per-round ratios) and, last, one `RATIO nst 64px batch1 jax/torch = ...` line per
configuration (time per step, jax / torch).
"""

import argparse
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import fair, train_step, vgg_layout  # noqa: E402  (none imports a framework)

# nst.Settings()'s defaults (the thesis's), for the PyTorch process, which imports no jax;
# tests/bench_test.py checks that they agree.
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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
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
    return args


def jobs(args: argparse.Namespace) -> list[dict]:
    return [{"size": s, "batch": b} for s in args.size for b in args.batch]


def config_name(job: dict) -> str:
    return f"{job['size']}px batch{job['batch']}"


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


def jax_worker(args: argparse.Namespace, job: dict) -> dict:
    """Compiles (timed) and times `nst.stylize` with `--steps` steps."""
    train_step.use_compile_cache(args.compile_cache)
    import jax

    from jaxfaces.convert import vgg19 as convert
    from jaxfaces.methods import nst

    params = jax.device_put(convert.params_from_state_dict(vgg_state_dict(args.seed)))
    settings = nst.Settings(steps=args.steps)
    content, style = images(args, job)
    compiled, timing = train_step.compile_ahead(
        nst.stylize, params, content, style, content, settings, cache=args.compile_cache
    )
    run = lambda: jax.block_until_ready(compiled(params, content, style, content))  # noqa: E731
    warmup, samples = fair.iterate(run, args, f"jax {config_name(job)}")
    env = train_step.jax_environment()
    return {**timing, "warmup": warmup, "samples": samples, "env": env}


def torch_runner(net, content, style):
    """The same Gatys loop in PyTorch (SETTINGS); returns run(steps) -> final loss."""
    import numpy as np
    import torch

    s = SETTINGS
    layers = [s["content_layer"], *s["style_layers"]]
    weights = dict(zip(s["style_layers"], s["style_layer_weights"], strict=True))
    for p in net.parameters():
        p.requires_grad_(False)
    nchw = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))  # noqa: E731

    def grams(f):
        n, c, h, w = f.shape
        f = f.reshape(n, c, h * w)
        return f @ f.transpose(1, 2) / (h * w)

    with torch.no_grad():
        target_content = net(nchw(content), layers)[s["content_layer"]]
        sf = net(nchw(np.broadcast_to(style, content.shape)), layers)
        target_grams = {name: grams(sf[name]) for name in s["style_layers"]}

    def run(steps: int) -> float:
        pixels = ((nchw(content) + 1) * 127.5).clone().requires_grad_(True)
        opt = torch.optim.Adam([pixels], lr=s["lr"])
        for _ in range(steps):
            opt.zero_grad()
            feats = net(pixels / 127.5 - 1, layers)
            content_loss = 0.5 * ((feats[s["content_layer"]] - target_content) ** 2).sum()
            style_loss = 0.0
            for name, weight in weights.items():
                f = feats[name]
                c, m = f.shape[1], f.shape[2] * f.shape[3]
                diff = grams(f) - target_grams[name]
                style_loss = style_loss + weight * (diff**2).sum() / (4 * c * c * m * m)
            loss = s["content_weight"] * content_loss + s["style_weight"] * style_loss
            loss.backward()
            opt.step()
            with torch.no_grad():
                pixels.clamp_(0, 255)
        return float(loss.detach())

    return run


def torch_worker(args: argparse.Namespace, job: dict) -> dict:
    """Times `--steps` Adam steps of the same loop on a torchvision-layout VGG19."""
    import torch

    from bench.torch_vgg import TorchVGG19

    net = TorchVGG19(pool=SETTINGS["pool"]).eval()
    features = {
        k.removeprefix("features."): torch.from_numpy(v)
        for k, v in vgg_state_dict(args.seed).items()
    }
    net.features.load_state_dict(features)
    run = torch_runner(net, *images(args, job))
    warmup, samples = fair.iterate(lambda: run(args.steps), args, f"torch {config_name(job)}")
    env = fair.environment(
        version=torch.__version__,
        device="cpu",
        threads=torch.get_num_threads(),
        interop_threads=torch.get_num_interop_threads(),
    )
    return {"compile_s": None, "warmup": warmup, "samples": samples, "env": env}


WORKER_FUNCTIONS = {"jax": jax_worker, "torch": torch_worker}


def report(entries: list[dict], steps: int) -> str:
    """The Markdown table, each process's seconds, then one RATIO line per configuration."""
    head = ["config", "jax s/step", "torch s/step", "ratio (jax/torch)"]
    head += ["jax images*steps/s", "jax compile s (cold)", "jax compile s (cached)"]
    rows, ratios, details = [], [], []
    for entry in entries:
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
            ratios.append(f"RATIO nst {name} jax/torch = {rt['median']:.2f}")
        details += train_step.process_lines(name, runs)
    return "\n".join(fair.markdown(head, rows) + [""] + details + [""] + ratios)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if fair.serve_worker(args, WORKER_FUNCTIONS):
        return
    start, load = time.perf_counter(), fair.load_average()
    entries, notes = fair.rounds_or_exit(__file__, jobs(args), args, argv, config_name)
    fair.save_json(args.json, argv=argv, entries=entries, notes=notes)
    by_name = {n: [r for e in entries for r in e["runs"].get(n, [])] for n in fair.FRAMEWORKS}
    lines = [
        f"NST (Adam, thesis layers, random VGG19), {args.steps} steps per iteration. Each "
        f"framework in its own process with its own defaults; {args.rounds} round(s), the "
        f"order alternating (jax first in round 1); per process {args.warmup} warm-up and "
        "timed iterations (see bench/fair.py).",
        *fair.describe_environment(by_name),
        *(f"note: {n}" for n in notes),
        fair.timing_line(start, load),
    ]
    print("\n".join(lines) + "\n")
    print(report(entries, args.steps), flush=True)


if __name__ == "__main__":
    main()
