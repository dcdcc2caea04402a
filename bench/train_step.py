"""Times the whole CycleGAN train step (2 generator + 2 discriminator updates): JAX vs PyTorch.

  python bench/train_step.py                       # 64 and 128 px, batch 1 and 4, both
  python bench/train_step.py --framework=jax --size 256 --batch 1 --iters 5
  python bench/train_step.py --device              # accelerator: 256 px, batch 1/8/32, fp32+bf16

Each framework runs in its own process with its own defaults, the processes alternated over
`--rounds` rounds (`bench/fair.py`: nothing in the environment is set for either; PyTorch
keeps its default threads and OpenMP wait policy). JAX runs
`jaxfaces.methods.cyclegan.make_train_step`, jitted with `donate_argnums=0`, on
`configs/cyclegan.py` with the size, batch and `train.dtype` set; its compile (ahead of time,
`lower().compile()`) is timed on its own: the time to the first step, cold in round 1 and
from the run's fresh persistent compilation cache in later rounds. PyTorch runs
`bench/torch_cyclegan.ReferenceCycleGAN`, the reference's `optimize_parameters` with the
reference's networks (on a GPU with `--device` where torch has CUDA, bf16 under autocast;
without CUDA, JAX runs alone). Each iteration is timed with the wall clock until its results
are ready; each process runs `--warmup` untimed iterations, then timed ones until they add up
to `--min_time` seconds (at least one, at most `--max_iters`) or `--iters`.

GFLOP/step is the model's work, the same for both frameworks: twice the multiply-adds of
every convolution in the forward and backward passes of the reference layers (`bench/flops.py`
on the step traced with XLA's convolutions; elementwise work not counted). A JAX process
measures the machine's dense matrix-multiply rate (`jnp.dot`) as the ceiling that achieved
GFLOP/s compare to; `--device` adds model FLOPs utilisation (MFU) against it.

Prints (stdout, after the runs) a header, a Markdown table (per framework the median s/iter
over all timed iterations, with the min-max of the per-round medians; the ratio as the median
of per-round ratios, with min-max), each process's seconds, and, last, one line per
configuration: `RATIO train_step 64px batch1 jax/torch = 0.93` (with the dtype when not fp32).
"""

import argparse
import os
import pathlib
import platform
import sys
import time
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # Run as a script from anywhere: `python bench/train_step.py`.

from bench import fair  # noqa: E402  (standard library only: the parent imports no framework)

DTYPES = ("float32", "bfloat16")
DEVICE_DEFAULTS = dict(size=[256], batch=[1, 8, 32], dtype=list(DTYPES), min_time=5.0, max_iters=30)
CPU_DEFAULTS = dict(size=[64, 128], batch=[1, 4], dtype=["float32"], min_time=10.0, max_iters=10)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parses the benchmark's flags (defaults depend on `--device`)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--device",
        action="store_true",
        help="accelerator mode: JAX's default device and torch's CUDA device; defaults "
        "--size 256 --batch 1 8 32 --dtype float32 bfloat16 --min_time 5 --max_iters 30, "
        "and MFU in the table",
    )
    p.add_argument("--size", type=int, nargs="+", help="image sides (px) [64 128]")
    p.add_argument("--batch", type=int, nargs="+", help="batch sizes [1 4]")
    p.add_argument("--dtype", nargs="+", choices=DTYPES, help="compute dtypes [float32]")
    p.add_argument("--ngf", type=int, default=64, help="generator filters")
    p.add_argument("--n_blocks", type=int, default=9, help="generator residual blocks")
    p.add_argument(
        "--scan_blocks",
        action="store_true",
        help="JAX: the residual blocks as one lax.scan (model.generator.scan_blocks)",
    )
    p.add_argument("--ndf", type=int, default=64, help="discriminator filters")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no_ceiling", action="store_true", help="skip the matmul-rate measurement")
    p.add_argument(
        "--ceiling_size", type=int, help="side of the matmul (default 2048 on a CPU, else 8192)"
    )
    fair.add_flags(p, rounds=3, warmup=1, min_time=None)
    p.set_defaults(max_iters=None)
    args = p.parse_args(argv)
    for key, value in (DEVICE_DEFAULTS if args.device else CPU_DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    fair.check_flags(p, args)
    for name in ("size", "batch"):
        if any(v <= 0 for v in getattr(args, name)):
            p.error(f"--{name} values must be positive")
    if any(s % 4 for s in args.size):
        p.error("--size values must be multiples of 4 (the generator's stride)")
    return args


def jobs(args: argparse.Namespace) -> list[dict]:
    """One configuration per (dtype, size, batch), in the order they run."""
    return [
        {"size": size, "batch": batch, "dtype": dtype}
        for dtype in args.dtype
        for size in args.size
        for batch in args.batch
    ]


def config_name(r: dict) -> str:
    name = f"{r['size']}px batch{r['batch']}"
    return name if r.get("dtype", "float32") == "float32" else f"{name} {r['dtype']}"


# The workers (each imports its own framework only).


def jax_config(args: argparse.Namespace, size: int, batch: int, dtype: str = "float32") -> Any:
    """configs/cyclegan.py with the benchmark's sizes (full reference losses and pools)."""
    from configs import cyclegan as cyclegan_config

    config = cyclegan_config.get_config()
    config.seed = args.seed
    config.data.size = size
    config.data.batch_size = batch
    config.model.generator.name = "resnet"
    config.model.generator.ngf = args.ngf
    config.model.generator.n_blocks = args.n_blocks
    config.model.generator.scan_blocks = args.scan_blocks
    config.model.discriminator.ndf = args.ndf
    config.train.dtype = dtype
    return config


def model_flops(config: Any) -> int:
    """FLOPs of one train step as the reference computes it (XLA's convolutions, traced)."""
    import jax
    import jax.numpy as jnp

    from bench import flops
    from jaxfaces import rng as rngs
    from jaxfaces.methods import cyclegan
    from jaxfaces.models import fast_conv

    size, batch = config.data.size, config.data.batch_size
    with fast_conv.impl("xla"):
        state = jax.eval_shape(lambda: cyclegan.init_state(config, rngs.key(0)))
        data = {k: jax.ShapeDtypeStruct((batch, size, size, 3), jnp.float32) for k in "ab"}
        return flops.count(cyclegan.make_train_step(config), state, data)


def xla_flops(compiled: Any) -> float | None:
    """The FLOPs XLA's cost analysis gives for a compiled program (None if it gives none)."""
    try:
        cost = compiled.cost_analysis()
    except Exception:  # Not every backend implements it.
        return None
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else None
    return float(cost["flops"]) if cost and "flops" in cost else None


def jax_environment() -> dict:
    import jax

    devices = ", ".join(str(d) for d in jax.devices())
    return fair.environment(
        version=jax.__version__, device=f"{devices} ({jax.devices()[0].device_kind})"
    )


def use_compile_cache(path: str) -> None:
    """The run's shared persistent cache (JAX's other cache settings stay its defaults)."""
    import jax

    if path:
        jax.config.update("jax_compilation_cache_dir", path)


def compile_ahead(jitted: Any, *args: Any, cache: str = "") -> tuple[Any, dict]:
    """`jitted.lower(*args).compile()`, timed: ({"compile_s": the whole (the time to the
    first step), "lower_s": tracing and lowering alone, "cache": "hit" when the persistent
    cache had the program (it gained no file), "written" when this compile added it, or
    "off" / "not written" (JAX writes only compiles over its minimum time)})."""
    count = lambda: len(os.listdir(cache)) if cache else 0  # noqa: E731
    before = count()
    start = time.perf_counter()
    lowered = jitted.lower(*args)
    lower_s = time.perf_counter() - start
    compiled = lowered.compile()
    compile_s = time.perf_counter() - start
    after = count()
    if not cache:
        state = "off"
    else:
        state = "written" if after > before else ("hit" if before else "not written")
    return compiled, {"compile_s": compile_s, "lower_s": lower_s, "cache": state}


def jax_worker(args: argparse.Namespace, job: dict) -> dict:
    """Compiles (timed) and times the JAX step of one configuration."""
    use_compile_cache(args.compile_cache)
    import jax
    import numpy as np

    from jaxfaces import rng as rngs
    from jaxfaces.methods import cyclegan

    size, batch = job["size"], job["batch"]
    if args.device and jax.default_backend() == "cpu":
        print("warning: --device but JAX's default backend is the CPU", file=sys.stderr)
    config = jax_config(args, size, batch, job["dtype"])
    state = jax.jit(lambda: cyclegan.init_state(config, rngs.key(args.seed)))()
    rng = np.random.default_rng(args.seed)
    data = {
        k: jax.device_put(rng.uniform(-1, 1, (batch, size, size, 3)).astype(np.float32))
        for k in ("a", "b")
    }
    step = jax.jit(cyclegan.make_train_step(config), donate_argnums=0)
    jax.block_until_ready(state)
    compiled, timing = compile_ahead(step, state, data, cache=args.compile_cache)
    holder = {"state": state}

    def run() -> None:
        holder["state"], metrics = compiled(holder["state"], data)
        jax.block_until_ready((holder["state"], metrics))

    warmup, samples = fair.iterate(run, args, f"jax {config_name(job)}")
    return {
        **timing,
        "warmup": warmup,
        "samples": samples,
        "xla_flops": xla_flops(compiled),
        "env": jax_environment(),
    }


def torch_worker(args: argparse.Namespace, job: dict) -> dict:
    """Times the reference PyTorch step of one configuration (torch's defaults)."""
    import numpy as np
    import torch

    from bench import torch_cyclegan

    if args.device and not torch.cuda.is_available():
        return {"skipped": "torch has no CUDA device here: JAX alone, with MFU"}
    device = "cuda" if args.device else "cpu"
    dtype = job["dtype"]
    model = torch_cyclegan.ReferenceCycleGAN(
        ngf=args.ngf,
        n_blocks=args.n_blocks,
        ndf=args.ndf,
        seed=args.seed,
        device=device,
        amp_dtype=None if dtype == "float32" else getattr(torch, dtype),
    )
    rng = np.random.default_rng(args.seed)
    size, batch = job["size"], job["batch"]
    real = [
        torch.from_numpy(rng.uniform(-1, 1, (batch, 3, size, size)).astype(np.float32)).to(device)
        for _ in range(2)
    ]
    # train_step returns floats (.item()): it waits for the step, on a GPU too.
    warmup, samples = fair.iterate(
        lambda: model.train_step(*real), args, f"torch {config_name(job)}"
    )
    name = f"cuda ({torch.cuda.get_device_name()})" if device == "cuda" else "cpu"
    env = fair.torch_environment(name)
    return {"compile_s": None, "warmup": warmup, "samples": samples, "env": env}


def matmul_ceiling(dtype: str = "float32", n: int | None = None, reps: int = 5) -> float:
    """The best rate (FLOP/s) of an n x n x n `jnp.dot` on JAX's default device."""
    import jax
    import jax.numpy as jnp

    if n is None:
        n = 2048 if jax.default_backend() == "cpu" else 8192
    a = jnp.ones((n, n), dtype)
    dot = jax.jit(jnp.dot)
    jax.block_until_ready(dot(a, a))
    best = min(fair.timed(lambda: jax.block_until_ready(dot(a, a))) for _ in range(reps))
    return 2 * n**3 / best


def info_worker(args: argparse.Namespace, all_jobs: list[dict]) -> dict:
    """A JAX process: versions and devices, the matmul ceiling per dtype, FLOPs per config."""
    dtypes = sorted({j["dtype"] for j in all_jobs}, key=DTYPES.index)
    ceilings = {} if args.no_ceiling else {d: matmul_ceiling(d, args.ceiling_size) for d in dtypes}
    counted = {config_name(j): model_flops(jax_config(args, **j)) for j in all_jobs}
    return {"env": jax_environment(), "ceilings": ceilings, "flops": counted}


WORKER_FUNCTIONS = {"jax": jax_worker, "torch": torch_worker, "info": info_worker}


# The parent: table and report.


def report(entries: list[dict], flops: dict[str, int], ceilings: dict[str, float] | None) -> str:
    """The Markdown table, each process's seconds, and the RATIO lines (last).

    `entries`: `fair.run_rounds`'s, one per configuration; with `ceilings` (FLOP/s by
    dtype), adds each framework's MFU against them.
    """
    head = ["config", "jax s/iter", "torch s/iter", "ratio (jax/torch)", "GFLOP/step"]
    head += ["jax GFLOP/s", "torch GFLOP/s", "jax compile s (cold)", "jax compile s (cached)"]
    if ceilings:
        head += ["jax MFU", "torch MFU"]
    rows, ratios, details = [], [], []
    for entry in entries:
        job, runs = entry["job"], entry["runs"]
        name = config_name(job)
        s = {n: fair.summary(fair.samples_by_round(runs.get(n, []))) for n in fair.FRAMEWORKS}
        rt = fair.ratio(*(fair.samples_by_round(runs.get(n, [])) for n in fair.FRAMEWORKS))
        comp = fair.compile_summary([r["compile_s"] for r in runs.get("jax", [])])
        gflop = flops[name] / 1e9 if flops.get(name) else None
        rate = {n: gflop / s[n]["median"] if gflop and s[n] else None for n in s}
        row = [name, fair.cell(s["jax"]), fair.cell(s["torch"]), fair.cell(rt, 2)]
        row += [fair.fmt(gflop, 1), fair.fmt(rate["jax"], 1), fair.fmt(rate["torch"], 1)]
        row += [fair.fmt(comp["cold"], 1), fair.cell(comp["cached"], 1)]
        if ceilings:
            peak = ceilings.get(job.get("dtype", "float32"))
            for n in fair.FRAMEWORKS:
                row.append("-" if not (peak and rate[n]) else f"{100 * rate[n] * 1e9 / peak:.1f}%")
        rows.append(row)
        if rt is not None:
            ratios.append(f"RATIO train_step {name} jax/torch = {rt['median']:.2f}")
        details += process_lines(name, runs)
    return "\n".join(fair.markdown(head, rows) + [""] + details + [""] + ratios)


def process_lines(name: str, runs: dict[str, list[dict]]) -> list[str]:
    """One line per process: its compile, warm-up and timed seconds."""
    lines = []
    for framework, results in runs.items():
        for i, r in enumerate(results):
            parts = []
            if r.get("compile_s") is not None:
                parts.append(f"compile {r['compile_s']:.1f}")
                if "lower_s" in r:
                    parts[-1] += f" (tracing and lowering {r['lower_s']:.1f}; cache {r['cache']})"
            if r["warmup"]:
                parts.append("warm-up " + " ".join(f"{x:.3f}" for x in r["warmup"]))
            parts.append("timed " + " ".join(f"{x:.3f}" for x in r["samples"]))
            if r.get("xla_flops"):
                parts.append(f"XLA cost_analysis {r['xla_flops'] / 1e9:.1f} GFLOP/step")
            lines.append(f"seconds {name} {framework} round {i + 1}: " + "; ".join(parts))
    return lines


def header(args: argparse.Namespace, info: dict, entries: list[dict], notes: list[str]) -> str:
    """What ran where: the method, versions, devices, threads, the matmul ceiling."""
    iters = (
        f"{args.iters} timed"
        if args.iters
        else (f"timed until {args.min_time:g} s (1-{args.max_iters})")
    )
    lines = [
        f"CycleGAN train step (2 G + 2 D updates), ResNet ngf {args.ngf} n_blocks {args.n_blocks}"
        f"{' (JAX: scanned)' if args.scan_blocks else ''}, "
        f"PatchGAN ndf {args.ndf}. Each framework in its own process with its own defaults; "
        f"{args.rounds} round(s), the order alternating (jax first in round 1); per process "
        f"{args.warmup} warm-up and {iters} iterations. s/iter: median of all timed "
        "iterations (min-max of the per-round medians); ratio: median of the per-round ratios "
        "(min-max); compile: round 1 cold, later rounds from the run's persistent cache.",
        f"python {platform.python_version()}, {platform.processor() or platform.machine()}, "
        f"{fair.available_cores()} core(s) for the parent",
        f"info: jax {info['env']['version']} on {info['env']['device']}",
    ]
    for dtype, rate in info.get("ceilings", {}).items():
        lines.append(f"matmul ceiling ({dtype} jnp.dot, a JAX process): {rate / 1e9:.0f} GFLOP/s")
    lines += fair.describe_environment(entries)
    lines += [f"note: {n}" for n in notes]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    entry = fair.enter(argv, parse_args, WORKER_FUNCTIONS)
    if entry is None:  # A worker process: it has run.
        return
    argv, args = entry
    start, load = time.perf_counter(), fair.load_average()
    todo = jobs(args)
    try:
        info = fair.run_info(__file__, todo, argv)
    except fair.WorkerError as e:
        sys.exit(f"error: {e}")
    entries, notes = fair.rounds_or_exit(__file__, todo, args, argv, config_name)
    fair.save_json(args.json, argv=argv, info=info, entries=entries, notes=notes)
    print(header(args, info, entries, notes))
    print(fair.timing_line(start, load) + "\n")
    ceilings = info.get("ceilings") if args.device else None
    print(report(entries, info["flops"], ceilings), flush=True)  # RATIO lines last.


if __name__ == "__main__":
    main()
