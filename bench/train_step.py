"""Times the whole CycleGAN train step (2 generator + 2 discriminator updates): JAX vs PyTorch.

  python bench/train_step.py                       # 64 and 128 px, batch 1 and 4, both
  python bench/train_step.py --framework=jax --size 256 --batch 1 --iters 5

JAX runs `jaxfaces.methods.cyclegan.make_train_step`, jitted with `donate_argnums=0`, on
`configs/cyclegan.py` with the size and batch set; PyTorch runs `ReferenceCycleGAN`, the
reference's `optimize_parameters`, with one intra-op thread per available core. The JAX
compile (ahead of time, `lower().compile()`) is timed on its own. After the warm-up,
iterations alternate between the frameworks (and which goes first), with a short pause
between them so that neither one's spinning worker threads eat into the other's time, and
background load falls on both. Each iteration is timed with the wall clock until its results
are ready (`jax.block_until_ready`; PyTorch on the CPU is synchronous).

Without `--iters`, each configuration runs timed iterations until the slower framework has
spent `--min_time` seconds (at least one, at most `--max_iters`), so the default run (full-size
networks, four configurations, both frameworks) stays near ten minutes on two CPU cores; a
128 px batch-4 step takes about a minute there, so it gets a single timed iteration.

Prints a Markdown table (medians of the timed iterations, JAX compile time) and one line per
configuration: `RATIO train_step 64px batch1 jax/torch = 1.23`.
"""

import argparse
import os
import pathlib
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # Run as a script from anywhere: `python bench/train_step.py`.
# PyTorch's OpenMP threads spin while they wait for each other; on a machine that other work
# shares, a descheduled thread leaves the others spinning, and a step can take ten times as
# long. Sleeping waits cost little for layers this size. Read when torch loads, so set here.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import jax  # noqa: E402
import ml_collections  # noqa: E402
import numpy as np  # noqa: E402

FRAMEWORKS = ("jax", "torch", "both")


def available_cores() -> int:
    """Cores this process may run on (the affinity mask, where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parses the benchmark's flags."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--framework", choices=FRAMEWORKS, default="both")
    p.add_argument("--size", type=int, nargs="+", default=[64, 128], help="image sides (px)")
    p.add_argument("--batch", type=int, nargs="+", default=[1, 4], help="batch sizes")
    p.add_argument("--ngf", type=int, default=64, help="generator filters")
    p.add_argument("--n_blocks", type=int, default=9, help="generator residual blocks")
    p.add_argument("--ndf", type=int, default=64, help="discriminator filters")
    p.add_argument("--warmup", type=int, default=1, help="untimed iterations per framework")
    p.add_argument(
        "--iters",
        type=int,
        default=None,
        help="timed iterations per framework (default: until the slower framework has run "
        "--min_time seconds; at least 1, at most --max_iters)",
    )
    p.add_argument("--min_time", type=float, default=20.0, help="see --iters")
    p.add_argument("--max_iters", type=int, default=10, help="see --iters")
    p.add_argument("--pause", type=float, default=0.2, help="seconds idle between iterations")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.warmup < 0 or (args.iters is not None and args.iters < 1) or args.max_iters < 1:
        p.error("--warmup must be >= 0, --iters and --max_iters >= 1")
    for name in ("size", "batch"):
        if any(v <= 0 for v in getattr(args, name)):
            p.error(f"--{name} values must be positive")
    if any(s % 4 for s in args.size):
        p.error("--size values must be multiples of 4 (the generator's stride)")
    return args


def jax_config(args: argparse.Namespace, size: int, batch: int) -> ml_collections.ConfigDict:
    """configs/cyclegan.py with the benchmark's sizes (full reference losses and pools)."""
    from configs import cyclegan as cyclegan_config

    config = cyclegan_config.get_config()
    config.seed = args.seed
    config.data.size = size
    config.data.batch_size = batch
    config.model.generator.name = "resnet"
    config.model.generator.ngf = args.ngf
    config.model.generator.n_blocks = args.n_blocks
    config.model.discriminator.ndf = args.ndf
    return config


def make_jax_runner(
    args: argparse.Namespace, size: int, batch: int
) -> tuple[Callable[[], None], float]:
    """Returns (run one step and wait for it, compile seconds)."""
    from jaxfaces import rng as rngs
    from jaxfaces.methods import cyclegan

    config = jax_config(args, size, batch)
    state = jax.jit(lambda: cyclegan.init_state(config, rngs.key(args.seed)))()
    rng = np.random.default_rng(args.seed)
    data = {
        k: jax.device_put(rng.uniform(-1, 1, (batch, size, size, 3)).astype(np.float32))
        for k in ("a", "b")
    }
    step = jax.jit(cyclegan.make_train_step(config), donate_argnums=0)
    jax.block_until_ready(state)
    start = time.perf_counter()
    compiled = step.lower(state, data).compile()
    compile_s = time.perf_counter() - start
    holder = {"state": state}

    def run() -> None:
        holder["state"], metrics = compiled(holder["state"], data)
        jax.block_until_ready((holder["state"], metrics))

    return run, compile_s


def make_torch_runner(args: argparse.Namespace, size: int, batch: int) -> Callable[[], Any]:
    """Returns a function running one step of the reference PyTorch CycleGAN."""
    import torch

    from bench import torch_cyclegan

    model = torch_cyclegan.ReferenceCycleGAN(
        ngf=args.ngf, n_blocks=args.n_blocks, ndf=args.ndf, seed=args.seed
    )
    rng = np.random.default_rng(args.seed)
    real = [
        torch.from_numpy(rng.uniform(-1, 1, (batch, 3, size, size)).astype(np.float32))
        for _ in range(2)
    ]
    return lambda: model.train_step(*real)


def timed(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_config(args: argparse.Namespace, size: int, batch: int) -> dict:
    """Warm-up then alternating timed iterations; returns the samples and compile time."""
    runners, result = {}, {"size": size, "batch": batch, "compile": None}
    if args.framework in ("jax", "both"):
        runners["jax"], result["compile"] = make_jax_runner(args, size, batch)
    if args.framework in ("torch", "both"):
        runners["torch"] = make_torch_runner(args, size, batch)
    label = f"{size}px batch{batch}"
    result["warmup"] = alternate(
        runners, lambda i, _: i < args.warmup, args.pause, f"{label} warm-up"
    )
    result["samples"] = alternate(runners, keep_going(args), args.pause, f"{label} timed")
    return result


def keep_going(args: argparse.Namespace) -> Callable[[int, dict[str, list[float]]], bool]:
    """The rule for running timed iteration `i`.

    `--iters` iterations if given, else until the slower framework has run `--min_time`
    seconds (at least one iteration, at most `--max_iters`).
    """

    def more(i: int, samples: dict[str, list[float]]) -> bool:
        if args.iters:
            return i < args.iters
        slowest = max(sum(times) for times in samples.values())
        return i == 0 or (i < args.max_iters and slowest < args.min_time)

    return more


def alternate(
    runners: dict[str, Callable[[], Any]],
    more: Callable[[int, dict[str, list[float]]], bool],
    pause: float,
    label: str,
) -> dict[str, list[float]]:
    """Runs the frameworks in turn (swapping who goes first) while `more(i, samples)`."""
    names = list(runners)
    samples = {name: [] for name in names}
    i = 0
    while more(i, samples):
        for name in names if i % 2 == 0 else names[::-1]:
            time.sleep(pause)  # Lets the other framework's worker threads go idle.
            samples[name].append(timed(runners[name]))
        i += 1
        times = ", ".join(f"{n} {samples[n][-1]:.3f}s" for n in names)
        print(f"  {label} {i}: {times}", file=sys.stderr, flush=True)
    return samples


def fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def report(args: argparse.Namespace, results: list[dict]) -> str:
    """The Markdown table and the RATIO lines."""
    lines = [
        "| config | jax s/iter | torch s/iter | ratio (jax/torch) | jax img/s | torch img/s "
        "| jax compile s |",
        "|---|---|---|---|---|---|---|",
    ]
    ratios = []
    for r in results:
        med = {n: statistics.median(s) for n, s in r["samples"].items()}
        j, t = med.get("jax"), med.get("torch")
        ratio = j / t if j is not None and t is not None else None
        name = f"{r['size']}px batch{r['batch']}"
        ips = lambda s, b=r["batch"]: None if s is None else b / s
        lines.append(
            f"| {name} | {fmt(j)} | {fmt(t)} | {fmt(ratio, 2)} | {fmt(ips(j), 2)} "
            f"| {fmt(ips(t), 2)} | {fmt(r['compile'], 1)} |"
        )
        if ratio is not None:
            ratios.append(f"RATIO train_step {name} jax/torch = {ratio:.2f}")
    lines.append("")
    for r in results:
        parts = [
            f"{kind} {n} " + " ".join(f"{s:.3f}" for s in r[key][n])
            for key, kind in (("warmup", "warm-up"), ("samples", "timed"))
            for n in r[key]
            if r[key][n]
        ]
        lines.append(f"seconds {r['size']}px batch{r['batch']}: " + "; ".join(parts))
    return "\n".join(lines + [""] + ratios)


def header(args: argparse.Namespace) -> str:
    """What ran where: versions, devices, threads, iterations, load."""
    parts = [
        f"CycleGAN train step (2 G + 2 D updates), ResNet ngf {args.ngf} n_blocks {args.n_blocks}, "
        f"PatchGAN ndf {args.ndf}; median of timed iterations after {args.warmup} "
        "warm-up",
        f"python {platform.python_version()}, jax {jax.__version__} on "
        f"{', '.join(str(d) for d in jax.devices())}, {available_cores()} core(s), "
        f"{platform.processor() or platform.machine()}",
    ]
    if args.framework in ("torch", "both"):
        import torch

        parts.append(
            f"torch {torch.__version__}, {torch.get_num_threads()} intra-op threads, "
            f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}"
        )
    if hasattr(os, "getloadavg"):
        parts.append("load average at start: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.framework in ("torch", "both"):
        import torch

        torch.set_num_threads(available_cores())
    print(header(args), flush=True)
    start = time.perf_counter()
    results = [bench_config(args, size, batch) for size in args.size for batch in args.batch]
    print()
    print(report(args, results))
    tail = f"total {time.perf_counter() - start:.0f} s"
    if hasattr(os, "getloadavg"):
        tail += "; load average at end: " + " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(tail, flush=True)


if __name__ == "__main__":
    main()
