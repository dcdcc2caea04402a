"""Fair JAX-vs-PyTorch timing: each framework in its own process, with its own defaults.

The benchmark scripts (`bench/train_step.py`, `bench/translate.py`, `bench/nst.py`) are both
the parent and the workers. The parent (this module and the script's table code; it never
imports jax or torch) runs, for each configuration and each of `--rounds` rounds,

  python bench/<script>.py --worker=jax   --job='{"size": 64, ...}' <the parent's flags>
  python bench/<script>.py --worker=torch --job='{"size": 64, ...}' <the parent's flags>

alternating which goes first (jax, torch; then torch, jax; ...), so that load on the machine
falls on both. A worker imports only its own framework and changes nothing of its defaults
or of the environment it inherits (no `OMP_WAIT_POLICY`, no `torch.set_num_threads`): it is
the framework as its users run it. It builds the work, warms up (JAX: the ahead-of-time
compile, timed on its own, then the warm-up iterations), runs the timed iterations and prints
one line, `FAIR-RESULT {json}`, last on its stdout.

All JAX workers of one benchmark run share a fresh temporary `jax_compilation_cache_dir`
(JAX's defaults otherwise, as `train.py` uses it): round 1 compiles cold, later rounds load
from the persistent cache, which is what a user's second run pays before its first step.

The table gives per framework the median seconds per iteration over all timed iterations of
all rounds, with the spread (min-max) of the per-round medians; the ratio jax/torch is the
median of the per-round ratios (each round's two processes ran next to each other), with its
min-max.
"""

import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

RESULT_PREFIX = "FAIR-RESULT "
FRAMEWORKS = ("jax", "torch")
WORKERS = (*FRAMEWORKS, "info")
# Environment variables a worker reports as it found them (threading and XLA settings).
ENV_PREFIXES = ("OMP_", "MKL_", "KMP_", "OPENBLAS_", "XLA_", "JAX_", "TORCH_", "CUDA_VISIBLE")


class WorkerError(RuntimeError):
    """A worker process failed or printed no result line."""


def available_cores() -> int:
    """Cores this process may run on (the affinity mask, where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def add_flags(p: Any, rounds: int = 3, warmup: int = 1, min_time: float | None = 10.0) -> None:
    """Adds the flags every fair benchmark shares to an `argparse.ArgumentParser`."""
    p.add_argument("--framework", choices=(*FRAMEWORKS, "both"), default="both")
    p.add_argument("--rounds", type=int, default=rounds, help="processes per framework")
    p.add_argument("--warmup", type=int, default=warmup, help="untimed iterations per process")
    p.add_argument(
        "--iters",
        type=int,
        default=None,
        help="timed iterations per process (default: until it has run --min_time seconds; "
        "at least 1, at most --max_iters)",
    )
    p.add_argument("--min_time", type=float, default=min_time, help="see --iters")
    p.add_argument("--max_iters", type=int, default=10, help="see --iters")
    p.add_argument("--json", default="", help="also write every process's result to this file")
    # Set by the parent for its workers.
    p.add_argument("--worker", choices=WORKERS, help=argparse.SUPPRESS)
    p.add_argument("--job", help=argparse.SUPPRESS)
    p.add_argument("--compile_cache", default="", help=argparse.SUPPRESS)


def check_flags(p: Any, args: Any) -> None:
    """Errors of the shared flags (through `p.error`: exit 2 with one line)."""
    if args.rounds < 1 or args.warmup < 0 or args.max_iters < 1:
        p.error("--rounds and --max_iters must be >= 1, --warmup >= 0")
    if args.iters is not None and args.iters < 1:
        p.error("--iters must be >= 1")


def frameworks(args: Any) -> list[str]:
    return list(FRAMEWORKS) if args.framework == "both" else [args.framework]


# Parent side.


def round_order(names: Sequence[str], round_index: int) -> list[str]:
    """Who runs when in round `round_index` (0-based): as given, then reversed, and so on."""
    return list(names) if round_index % 2 == 0 else list(names)[::-1]


def schedule(jobs: Sequence[Any], names: Sequence[str], rounds: int) -> list[tuple[Any, int, str]]:
    """Every (job, round, framework) process in the order they run."""
    return [(job, r, name) for job in jobs for r in range(rounds) for name in round_order(names, r)]


def worker_command(
    script: str | pathlib.Path, worker: str, job: Any, argv: Sequence[str], cache: str = ""
) -> list[str]:
    """The worker's command line: this Python, the script, the parent's own flags."""
    cmd = [sys.executable, str(script), *argv, f"--worker={worker}", f"--job={json.dumps(job)}"]
    return cmd + [f"--compile_cache={cache}"] if cache else cmd


def parse_result(stdout: str) -> dict | None:
    """The last `FAIR-RESULT` line's JSON (None if there is none)."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    return None


def run_worker(cmd: list[str], timeout: float | None = None) -> dict:
    """Runs one worker (the parent's environment, unchanged); its stderr shows as it goes."""
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, timeout=timeout)
    result = parse_result(proc.stdout)
    if proc.returncode != 0 or result is None:
        what = f"exited with status {proc.returncode}" if proc.returncode else "printed no result"
        worker = " ".join(a for a in cmd if a.startswith(("--worker=", "--job=")))
        raise WorkerError(f"{pathlib.Path(cmd[1]).name} {worker} {what}")
    return result


def run_rounds(
    script: str | pathlib.Path,
    jobs: Sequence[dict],
    names: Sequence[str],
    rounds: int,
    argv: Sequence[str],
    label: Callable[[dict], str],
) -> tuple[list[dict], list[str]]:
    """Runs every job's rounds; returns ({"job", "runs": {name: [result per round]}} per job,
    notes). A worker may answer `{"skipped": why}` (e.g. torch without CUDA in --device
    mode): that framework then sits out the rest of the run, and the reason is a note."""
    names, notes = list(names), []
    out = [{"job": job, "runs": {n: [] for n in names}} for job in jobs]
    cache = tempfile.mkdtemp(prefix="jaxfaces-bench-xla-")  # Fresh: round 1 compiles cold.
    try:
        for seq, (i, r, name) in enumerate(schedule(range(len(out)), list(names), rounds)):
            if name not in names:  # Skipped earlier in the run.
                continue
            entry = out[i]
            print(f"[{label(entry['job'])}] round {r + 1}/{rounds}: {name}", file=sys.stderr)
            cmd = worker_command(script, name, entry["job"], argv, cache if name == "jax" else "")
            result = run_worker(cmd)
            if "skipped" in result:
                names.remove(name)
                notes.append(f"{name}: {result['skipped']}")
                for e in out:
                    e["runs"].pop(name, None)
                continue
            result.update(round=r + 1, seq=seq)  # seq: its place in the schedule.
            entry["runs"][name].append(result)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return out, notes


def serve_worker(args: Any, functions: dict[str, Callable[[Any, dict], dict]]) -> bool:
    """In a worker process (`--worker=NAME`): runs `functions[NAME]` on the `--job` JSON and
    prints its result line (`emit`); returns True. In the parent: returns False."""
    if not args.worker:
        return False
    if args.worker not in functions:
        sys.exit(f"error: --worker={args.worker} is not one of this benchmark's")
    emit(functions[args.worker](args, json.loads(args.job)))
    return True


def enter(
    argv: Sequence[str] | None,
    parse_args: Callable[[list[str]], Any],
    functions: dict[str, Callable[[Any, dict], dict]],
) -> tuple[list[str], Any] | None:
    """Where a benchmark's `main` starts: parses `argv` (None: the command line). In a worker
    process runs the worker (`serve_worker`) and returns None; in the parent returns (argv,
    args), argv being what the workers get."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    return None if serve_worker(args, functions) else (argv, args)


def rounds_or_exit(
    script: str | pathlib.Path,
    jobs: Sequence[dict],
    args: Any,
    argv: Sequence[str],
    name: Callable[[dict], str],
) -> tuple[list[dict], list[str]]:
    """`run_rounds` over `frameworks(args)` and `args.rounds`; a failed worker ends the
    parent with its one-line error."""
    try:
        return run_rounds(script, jobs, frameworks(args), args.rounds, argv, name)
    except WorkerError as e:
        sys.exit(f"error: {e}")


def timing_line(start: float, load: str) -> str:
    """The table header's last line: the parent's seconds and the load averages."""
    return (
        f"total {time.perf_counter() - start:.0f} s; load average at start {load}, "
        f"at end {load_average()}"
    )


def run_info(script: str | pathlib.Path, jobs: Sequence[dict], argv: Sequence[str]) -> dict:
    """Runs the script's `--worker=info` (JAX: versions, matmul ceiling, FLOP counts)."""
    return run_worker(worker_command(script, "info", list(jobs), argv))


def save_json(path: str, **content: Any) -> None:
    """Writes the run's raw results (`--json`), if a path is given."""
    if path:
        pathlib.Path(path).write_text(json.dumps(content, indent=1) + "\n")


# Worker side.


def emit(result: dict) -> None:
    """Prints the worker's result line (last on stdout)."""
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def environment(**extra: Any) -> dict:
    """What the worker found: cores, the threading/XLA environment variables, and `extra`;
    `frameworks`: those this process has imported (its own only)."""
    found = {k: v for k, v in sorted(os.environ.items()) if k.startswith(ENV_PREFIXES)}
    loaded = [m for m in FRAMEWORKS if m in sys.modules]
    return {"cores": available_cores(), "vars": found, "frameworks": loaded, **extra}


def torch_environment(device: str = "cpu") -> dict:
    """`environment` of a PyTorch worker: its version, device and thread counts (call it in
    the worker, which has imported torch)."""
    import torch

    return environment(
        version=torch.__version__,
        device=device,
        threads=torch.get_num_threads(),
        interop_threads=torch.get_num_interop_threads(),
    )


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def iterate(run: Callable[[], Any], args: Any, label: str) -> tuple[list[float], list[float]]:
    """`--warmup` untimed iterations, then the timed ones: `--iters`, or until they add up to
    `--min_time` seconds (at least one, at most `--max_iters`). Returns (warm-up, timed)."""
    warm = [timed(run) for _ in range(args.warmup)]
    samples: list[float] = []
    while True:
        if args.iters is not None:
            more = len(samples) < args.iters
        else:
            more = not samples or (
                len(samples) < args.max_iters and sum(samples) < (args.min_time or 0)
            )
        if not more:
            break
        samples.append(timed(run))
    times = " ".join(f"{s:.3f}" for s in samples)
    print(f"  {label}: warm-up {len(warm)}, timed {times}", file=sys.stderr, flush=True)
    return warm, samples


# Statistics and table cells.


def summary(rounds: Sequence[Sequence[float]]) -> dict | None:
    """Median of all samples; min and max of the per-round medians."""
    medians = [statistics.median(r) for r in rounds if r]
    if not medians:
        return None
    every = [x for r in rounds for x in r]
    return {"median": statistics.median(every), "lo": min(medians), "hi": max(medians)}


def ratio(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]]) -> dict | None:
    """Median (and min-max) of the per-round ratios median(a_r) / median(b_r)."""
    per_round = [
        statistics.median(x) / statistics.median(y) for x, y in zip(a, b, strict=False) if x and y
    ]
    if not per_round:
        return None
    return {"median": statistics.median(per_round), "lo": min(per_round), "hi": max(per_round)}


def compile_summary(values: Sequence[float | None]) -> dict:
    """Round 1's compile (cold), and the later rounds' (from the persistent cache)."""
    cold = values[0] if values else None
    later = [v for v in values[1:] if v is not None]
    return {"cold": cold, "cached": summary([[v] for v in later])}


def fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def cell(s: dict | None, digits: int = 3, scale: Callable[[float], float] = lambda v: v) -> str:
    """`median (lo-hi)`, or `median` when the rounds agree to the digits shown, or `-`."""
    if s is None:
        return "-"
    med, lo, hi = (fmt(scale(s[k]), digits) for k in ("median", "lo", "hi"))
    lo, hi = sorted((lo, hi), key=float)  # A decreasing `scale` swaps the ends.
    return med if lo == hi else f"{med} ({lo}-{hi})"


def samples_by_round(runs: Iterable[dict], key: str = "samples") -> list[list[float]]:
    return [list(r[key]) for r in runs]


def markdown(head: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def load_average() -> str:
    if not hasattr(os, "getloadavg"):
        return "n/a"
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def describe_environment(entries: Sequence[dict]) -> list[str]:
    """One header line per framework from its first worker's report (`entries` as
    `run_rounds` returns them)."""
    lines = []
    for name in FRAMEWORKS:
        runs = [r for e in entries for r in e["runs"].get(name, [])]
        if not runs:
            continue
        env = runs[0]["env"]
        found = ", ".join(f"{k}={v}" for k, v in env["vars"].items()) or "none set"
        parts = [f"{name} {env.get('version', '?')} on {env.get('device', '?')}"]
        if "threads" in env:
            parts.append(
                f"{env['threads']} intra-op / {env.get('interop_threads')} inter-op threads"
            )
        parts.append(f"{env['cores']} core(s)")
        parts.append(f"environment: {found}")
        lines.append(", ".join(parts) + " (the framework's defaults; nothing set by the benchmark)")
    return lines
