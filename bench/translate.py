"""Generator inference (translation) speed, images/s: JAX vs PyTorch.

  python bench/translate.py                        # 64 and 256 px, batch 1, both
  python bench/translate.py --size 256 --batch 1 4 --framework=jax

JAX runs `jaxfaces.methods.cyclegan.make_translate` (the reference ResNet generator, ngf 64,
9 blocks, instance norm, transposed-convolution upsampling) jitted, in inference mode, its
compile timed on its own (cold in round 1, from the run's persistent cache later); PyTorch
runs the reference `ResnetGenerator` (`bench/torch_cyclegan.py`) in eval mode under
`torch.inference_mode()`. Each framework runs in its own process with its own defaults, the
processes alternated over `--rounds` rounds, as in `bench/train_step.py` (`bench/fair.py`).

Prints a Markdown table (median seconds per call with the min-max of the per-round medians,
images/s, the ratio as the median of per-round ratios) and, last, one line per
configuration: `RATIO translate 64px batch1 jax/torch = 0.80` (seconds per image; below 1:
JAX is faster).
"""

import argparse
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import fair, train_step  # noqa: E402  (neither imports a framework)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, nargs="+", default=[64, 256], help="image sides (px)")
    p.add_argument("--batch", type=int, nargs="+", default=[1], help="images per call")
    p.add_argument("--ngf", type=int, default=64)
    p.add_argument("--n_blocks", type=int, default=9)
    p.add_argument("--seed", type=int, default=0)
    fair.add_flags(p, rounds=3, warmup=2, min_time=5.0)
    p.set_defaults(max_iters=50)
    args = p.parse_args(argv)
    fair.check_flags(p, args)
    if any(s % 4 or s <= 0 for s in args.size) or any(b <= 0 for b in args.batch):
        p.error("--size values must be positive multiples of 4, --batch values positive")
    return args


def jobs(args: argparse.Namespace) -> list[dict]:
    return [{"size": s, "batch": b} for s in args.size for b in args.batch]


config_name = train_step.config_name  # "64px batch1"


def images(args: argparse.Namespace, job: dict, nchw: bool = False):
    import numpy as np

    shape = (job["batch"], job["size"], job["size"], 3)
    x = np.random.default_rng(args.seed).uniform(-1, 1, shape).astype(np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if nchw else x


def jax_worker(args: argparse.Namespace, job: dict) -> dict:
    train_step.use_compile_cache(args.compile_cache)
    import jax

    from jaxfaces import rng as rngs
    from jaxfaces.methods import cyclegan

    net = argparse.Namespace(
        seed=args.seed, ngf=args.ngf, n_blocks=args.n_blocks, ndf=64, scan_blocks=False
    )
    config = train_step.jax_config(net, job["size"], job["batch"])
    translate = jax.jit(cyclegan.make_translate(config))
    x = jax.device_put(images(args, job))
    g = cyclegan.models(config)["g_a"]
    variables = jax.jit(lambda: g.init(rngs.key(args.seed), x[:1], train=False))()
    jax.block_until_ready(variables)
    compiled, timing = train_step.compile_ahead(translate, variables, x, cache=args.compile_cache)
    run = lambda: jax.block_until_ready(compiled(variables, x))  # noqa: E731
    warmup, samples = fair.iterate(run, args, f"jax {config_name(job)}")
    env = train_step.jax_environment()
    return {**timing, "warmup": warmup, "samples": samples, "env": env}


def torch_worker(args: argparse.Namespace, job: dict) -> dict:
    import torch

    from bench import torch_cyclegan

    torch.manual_seed(args.seed)
    g = torch_cyclegan.ResnetGenerator(3, 3, args.ngf, "instance", args.n_blocks).eval()
    x = torch.from_numpy(images(args, job, nchw=True))

    def run():
        with torch.inference_mode():
            return g(x)

    warmup, samples = fair.iterate(run, args, f"torch {config_name(job)}")
    env = fair.torch_environment()
    return {"compile_s": None, "warmup": warmup, "samples": samples, "env": env}


WORKER_FUNCTIONS = {"jax": jax_worker, "torch": torch_worker}


def report(entries: list[dict]) -> str:
    """The Markdown table, each process's seconds, then one RATIO line per configuration."""
    head = ["config", "jax s/call", "torch s/call", "jax img/s", "torch img/s"]
    head += ["ratio (jax/torch, s/img)", "jax compile s (cold)", "jax compile s (cached)"]
    rows, ratios, details = [], [], []
    for entry in entries:
        job, runs = entry["job"], entry["runs"]
        name = config_name(job)
        by_round = {n: fair.samples_by_round(runs.get(n, [])) for n in fair.FRAMEWORKS}
        s = {n: fair.summary(v) for n, v in by_round.items()}
        rt = fair.ratio(by_round["jax"], by_round["torch"])
        comp = fair.compile_summary([r["compile_s"] for r in runs.get("jax", [])])
        ips = {n: job["batch"] / s[n]["median"] if s[n] else None for n in s}
        rows.append(
            [name, fair.cell(s["jax"]), fair.cell(s["torch"]), fair.fmt(ips["jax"], 2)]
            + [fair.fmt(ips["torch"], 2), fair.cell(rt, 2), fair.fmt(comp["cold"], 1)]
            + [fair.cell(comp["cached"], 1)]
        )
        if rt is not None:
            ratios.append(f"RATIO translate {name} jax/torch = {rt['median']:.2f}")
        details += train_step.process_lines(name, runs)
    return "\n".join(fair.markdown(head, rows) + [""] + details + [""] + ratios)


def main(argv: list[str] | None = None) -> None:
    entry = fair.enter(argv, parse_args, WORKER_FUNCTIONS)
    if entry is None:  # A worker process: it has run.
        return
    argv, args = entry
    start, load = time.perf_counter(), fair.load_average()
    entries, notes = fair.rounds_or_exit(__file__, jobs(args), args, argv, config_name)
    fair.save_json(args.json, argv=argv, entries=entries, notes=notes)
    lines = [
        f"ResNet generator inference (ngf {args.ngf}, {args.n_blocks} blocks). Each framework "
        f"in its own process with its own defaults; {args.rounds} round(s), the order "
        "alternating (jax first in round 1); per process "
        f"{args.warmup} warm-up and timed calls (see bench/fair.py).",
        *fair.describe_environment(entries),
        *(f"note: {n}" for n in notes),
        fair.timing_line(start, load),
    ]
    print("\n".join(lines) + "\n")
    print(report(entries), flush=True)


if __name__ == "__main__":
    main()
