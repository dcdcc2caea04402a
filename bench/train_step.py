"""Times the whole CycleGAN train step (2 generator + 2 discriminator updates): JAX vs PyTorch.

  python bench/train_step.py                       # 64 and 128 px, batch 1 and 4, both
  python bench/train_step.py --framework=jax --size 256 --batch 1 --iters 5
  python bench/train_step.py --device              # accelerator: 256 px, batch 1/8/32, fp32+bf16

JAX runs `jaxfaces.methods.cyclegan.make_train_step`, jitted with `donate_argnums=0`, on
`configs/cyclegan.py` with the size, batch and `train.dtype` set; PyTorch runs
`ReferenceCycleGAN`, the reference's `optimize_parameters`, with one intra-op thread per
available core (on a GPU, on the same device, bf16 under autocast). The JAX compile (ahead
of time, `lower().compile()`) is timed on its own: it is the time to the first step. After
the warm-up, iterations alternate between the frameworks (and which goes first), with a
short pause between them so that neither one's spinning worker threads eat into the other's
time, and background load falls on both. Each iteration is timed with the wall clock until
its results are ready.

Without `--iters`, each configuration runs timed iterations until the slower framework has
spent `--min_time` seconds (at least one, at most `--max_iters`), so the default run (full-size
networks, four configurations, both frameworks) stays near ten minutes on two CPU cores.

GFLOP/step is the model's work, the same for both frameworks: twice the multiply-adds of
every convolution in the forward and backward passes of the reference layers (`bench/flops.py`
on the step traced with XLA's convolutions; elementwise work not counted). The header gives
the machine's dense matrix-multiply rate (`jnp.dot`, this process) as the ceiling that
achieved GFLOP/s compare to; `--device` adds model FLOPs utilisation (MFU) against it.

Prints a Markdown table (medians of the timed iterations) and, last, one line per
configuration: `RATIO train_step 64px batch1 jax/torch = 0.93` (with the dtype when not fp32).
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
import jax.numpy as jnp  # noqa: E402
import ml_collections  # noqa: E402
import numpy as np  # noqa: E402

from bench import flops  # noqa: E402

FRAMEWORKS = ("jax", "torch", "both")
DTYPES = ("float32", "bfloat16")
DEVICE_DEFAULTS = dict(size=[256], batch=[1, 8, 32], dtype=list(DTYPES), min_time=10.0)
CPU_DEFAULTS = dict(size=[64, 128], batch=[1, 4], dtype=["float32"], min_time=20.0)


def available_cores() -> int:
    """Cores this process may run on (the affinity mask, where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parses the benchmark's flags (defaults depend on `--device`)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--framework", choices=FRAMEWORKS, default="both")
    p.add_argument(
        "--device",
        action="store_true",
        help="accelerator mode: JAX's default device and torch's CUDA device; defaults "
        "--size 256 --batch 1 8 32 --dtype float32 bfloat16, and MFU in the table",
    )
    p.add_argument("--size", type=int, nargs="+", help="image sides (px) [64 128]")
    p.add_argument("--batch", type=int, nargs="+", help="batch sizes [1 4]")
    p.add_argument("--dtype", nargs="+", choices=DTYPES, help="compute dtypes [float32]")
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
    p.add_argument("--min_time", type=float, help="see --iters [20; 10 with --device]")
    p.add_argument("--max_iters", type=int, default=10, help="see --iters")
    p.add_argument("--pause", type=float, default=0.2, help="seconds idle between iterations")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no_ceiling", action="store_true", help="skip the matmul-rate measurement")
    args = p.parse_args(argv)
    for key, value in (DEVICE_DEFAULTS if args.device else CPU_DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.warmup < 0 or (args.iters is not None and args.iters < 1) or args.max_iters < 1:
        p.error("--warmup must be >= 0, --iters and --max_iters >= 1")
    for name in ("size", "batch"):
        if any(v <= 0 for v in getattr(args, name)):
            p.error(f"--{name} values must be positive")
    if any(s % 4 for s in args.size):
        p.error("--size values must be multiples of 4 (the generator's stride)")
    return args


def jax_config(
    args: argparse.Namespace, size: int, batch: int, dtype: str = "float32"
) -> ml_collections.ConfigDict:
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
    config.train.dtype = dtype
    return config


def model_flops(config: ml_collections.ConfigDict) -> int:
    """FLOPs of one train step as the reference computes it (XLA's convolutions, traced)."""
    from jaxfaces import rng as rngs
    from jaxfaces.methods import cyclegan
    from jaxfaces.models import fast_conv

    size, batch = config.data.size, config.data.batch_size
    with fast_conv.impl("xla"):
        state = jax.eval_shape(lambda: cyclegan.init_state(config, rngs.key(0)))
        data = {k: jax.ShapeDtypeStruct((batch, size, size, 3), jnp.float32) for k in "ab"}
        return flops.count(cyclegan.make_train_step(config), state, data)


def make_jax_runner(
    args: argparse.Namespace, size: int, batch: int, dtype: str = "float32"
) -> tuple[Callable[[], None], float, float | None]:
    """Returns (run one step and wait for it, compile seconds, XLA cost_analysis FLOPs)."""
    from jaxfaces import rng as rngs
    from jaxfaces.methods import cyclegan

    config = jax_config(args, size, batch, dtype)
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

    return run, compile_s, xla_flops(compiled)


def xla_flops(compiled: Any) -> float | None:
    """The FLOPs XLA's cost analysis gives for a compiled program (None if it gives none)."""
    try:
        cost = compiled.cost_analysis()
    except Exception:  # Not every backend implements it.
        return None
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else None
    return float(cost["flops"]) if cost and "flops" in cost else None


def torch_device(args: argparse.Namespace) -> str:
    import torch

    return "cuda" if args.device and torch.cuda.is_available() else "cpu"


def make_torch_runner(
    args: argparse.Namespace, size: int, batch: int, dtype: str = "float32"
) -> Callable[[], Any]:
    """Returns a function running one step of the reference PyTorch CycleGAN."""
    import torch

    from bench import torch_cyclegan

    device = torch_device(args)
    model = torch_cyclegan.ReferenceCycleGAN(
        ngf=args.ngf,
        n_blocks=args.n_blocks,
        ndf=args.ndf,
        seed=args.seed,
        device=device,
        amp_dtype=None if dtype == "float32" else getattr(torch, dtype),
    )
    rng = np.random.default_rng(args.seed)
    real = [
        torch.from_numpy(rng.uniform(-1, 1, (batch, 3, size, size)).astype(np.float32)).to(device)
        for _ in range(2)
    ]
    return lambda: model.train_step(*real)  # Returns floats (.item()): it waits for the step.


def timed(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_config(args: argparse.Namespace, size: int, batch: int, dtype: str) -> dict:
    """Warm-up then alternating timed iterations; returns the samples, compile time, FLOPs."""
    runners = {}
    result = {"size": size, "batch": batch, "dtype": dtype, "compile": None, "xla_flops": None}
    result["flops"] = model_flops(jax_config(args, size, batch, dtype))
    if args.framework in ("jax", "both"):
        runners["jax"], result["compile"], result["xla_flops"] = make_jax_runner(
            args, size, batch, dtype
        )
    if args.framework in ("torch", "both"):
        runners["torch"] = make_torch_runner(args, size, batch, dtype)
    label = config_name(result)
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


def matmul_ceiling(dtype: str = "float32", n: int | None = None, reps: int = 5) -> float:
    """The best rate (FLOP/s) of an n x n x n `jnp.dot` on JAX's default device."""
    if n is None:
        n = 2048 if jax.default_backend() == "cpu" else 8192
    a = jnp.ones((n, n), dtype)
    dot = jax.jit(jnp.dot)
    jax.block_until_ready(dot(a, a))
    best = min(timed(lambda: jax.block_until_ready(dot(a, a))) for _ in range(reps))
    return 2 * n**3 / best


def config_name(r: dict) -> str:
    name = f"{r['size']}px batch{r['batch']}"
    return name if r.get("dtype", "float32") == "float32" else f"{name} {r['dtype']}"


def fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def report(results: list[dict], ceilings: dict[str, float] | None = None) -> str:
    """The Markdown table, the per-configuration details, and the RATIO lines (last).

    With `ceilings` (FLOP/s by dtype), adds each framework's MFU against them.
    """
    head = [
        "config",
        "jax s/iter",
        "torch s/iter",
        "ratio (jax/torch)",
        "GFLOP/step",
        "jax GFLOP/s",
        "torch GFLOP/s",
        "jax compile s",
    ]
    if ceilings:
        head += ["jax MFU", "torch MFU"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    ratios, details = [], []
    for r in results:
        med = {n: statistics.median(s) for n, s in r["samples"].items() if s}
        j, t = med.get("jax"), med.get("torch")
        ratio = j / t if j is not None and t is not None else None
        gflop = r["flops"] / 1e9 if r.get("flops") else None
        rate = {k: (gflop / v if gflop and v else None) for k, v in (("jax", j), ("torch", t))}
        row = [config_name(r), fmt(j), fmt(t), fmt(ratio, 2), fmt(gflop, 1)]
        row += [fmt(rate["jax"], 1), fmt(rate["torch"], 1), fmt(r.get("compile"), 1)]
        if ceilings:
            peak = ceilings.get(r.get("dtype", "float32"))
            for k in ("jax", "torch"):
                row.append("-" if not (peak and rate[k]) else f"{100 * rate[k] * 1e9 / peak:.1f}%")
        lines.append("| " + " | ".join(row) + " |")
        if ratio is not None:
            ratios.append(f"RATIO train_step {config_name(r)} jax/torch = {ratio:.2f}")
        parts = [
            f"{kind} {n} " + " ".join(f"{s:.3f}" for s in r[key][n])
            for key, kind in (("warmup", "warm-up"), ("samples", "timed"))
            for n in r[key]
            if r[key][n]
        ]
        if r.get("xla_flops"):
            parts.append(f"XLA cost_analysis {r['xla_flops'] / 1e9:.1f} GFLOP/step (as compiled)")
        details.append(f"seconds {config_name(r)}: " + "; ".join(parts))
    return "\n".join(lines + [""] + details + [""] + ratios)


def header(args: argparse.Namespace, ceilings: dict[str, float]) -> str:
    """What ran where: versions, devices, threads, the matmul ceiling, load."""
    parts = [
        f"CycleGAN train step (2 G + 2 D updates), ResNet ngf {args.ngf} n_blocks {args.n_blocks}, "
        f"PatchGAN ndf {args.ndf}; median of timed iterations after {args.warmup} "
        "warm-up",
        f"python {platform.python_version()}, jax {jax.__version__} on "
        f"{', '.join(str(d) for d in jax.devices())} ({jax.devices()[0].device_kind}), "
        f"{available_cores()} core(s), {platform.processor() or platform.machine()}",
    ]
    for dtype, rate in ceilings.items():
        parts.append(f"matmul ceiling ({dtype} jnp.dot, this process): {rate / 1e9:.0f} GFLOP/s")
    if args.framework in ("torch", "both"):
        import torch

        device = torch_device(args)
        if device == "cuda":
            device += f" ({torch.cuda.get_device_name()})"
        parts.append(
            f"torch {torch.__version__} on {device}, {torch.get_num_threads()} intra-op threads, "
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
    if args.device and jax.default_backend() == "cpu":
        print("warning: --device but JAX's default backend is the CPU", file=sys.stderr)
    ceilings = {} if args.no_ceiling else {d: matmul_ceiling(d) for d in args.dtype}
    print(header(args, ceilings), flush=True)
    start = time.perf_counter()
    results = [
        bench_config(args, size, batch, dtype)
        for dtype in args.dtype
        for size in args.size
        for batch in args.batch
    ]
    tail = f"total {time.perf_counter() - start:.0f} s"
    if hasattr(os, "getloadavg"):
        tail += "; load average at end: " + " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\n{tail}\n")
    print(report(results, ceilings if args.device else None), flush=True)  # RATIO lines last.


if __name__ == "__main__":
    main()
