"""Generator inference (translation) speed, images/s: JAX vs PyTorch.

  python bench/translate.py                        # 64 and 256 px, batch 1, both
  python bench/translate.py --size 256 --batch 1 4 --framework=jax

JAX runs `jaxfaces.methods.cyclegan.make_translate` (the reference ResNet generator, ngf 64,
9 blocks, instance norm, transposed-convolution upsampling) jitted, in inference mode;
PyTorch runs the reference `ResnetGenerator` in eval mode under `torch.inference_mode()`.
Iterations alternate between the frameworks as in `bench/train_step.py`.

Prints a Markdown table (medians) and, last, one line per configuration:
`RATIO translate 64px batch1 jax/torch = 0.80` (seconds per image; below 1: JAX is faster).
"""

import argparse
import pathlib
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from bench import train_step  # noqa: E402  (sets OMP_WAIT_POLICY before torch loads)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--framework", choices=train_step.FRAMEWORKS, default="both")
    p.add_argument("--size", type=int, nargs="+", default=[64, 256], help="image sides (px)")
    p.add_argument("--batch", type=int, nargs="+", default=[1], help="images per call")
    p.add_argument("--ngf", type=int, default=64)
    p.add_argument("--n_blocks", type=int, default=9)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--min_time", type=float, default=10.0, help="seconds per framework")
    p.add_argument("--max_iters", type=int, default=50)
    p.add_argument("--pause", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if any(s % 4 or s <= 0 for s in args.size) or any(b <= 0 for b in args.batch):
        p.error("--size values must be positive multiples of 4, --batch values positive")
    return args


def make_jax_runner(args: argparse.Namespace, size: int, batch: int):
    from jaxfaces import rng as rngs
    from jaxfaces.methods import cyclegan

    config = train_step.jax_config(
        argparse.Namespace(seed=args.seed, ngf=args.ngf, n_blocks=args.n_blocks, ndf=64),
        size,
        batch,
    )
    translate = jax.jit(cyclegan.make_translate(config))
    x = jax.device_put(
        np.random.default_rng(args.seed).uniform(-1, 1, (batch, size, size, 3)).astype("f4")
    )
    g = cyclegan.models(config)["g_a"]
    variables = jax.jit(lambda: g.init(rngs.key(args.seed), x[:1], train=False))()
    start = time.perf_counter()
    compiled = translate.lower(variables, x).compile()
    compile_s = time.perf_counter() - start
    return lambda: jax.block_until_ready(compiled(variables, x)), compile_s


def make_torch_runner(args: argparse.Namespace, size: int, batch: int):
    import torch

    from bench import torch_cyclegan

    torch.manual_seed(args.seed)
    g = torch_cyclegan.ResnetGenerator(3, 3, args.ngf, "instance", args.n_blocks).eval()
    x = torch.from_numpy(
        np.random.default_rng(args.seed).uniform(-1, 1, (batch, 3, size, size)).astype("f4")
    )

    def run():
        with torch.inference_mode():
            return g(x)

    return run


def bench_config(args: argparse.Namespace, size: int, batch: int) -> dict:
    runners, result = {}, {"size": size, "batch": batch, "compile": None}
    if args.framework in ("jax", "both"):
        runners["jax"], result["compile"] = make_jax_runner(args, size, batch)
    if args.framework in ("torch", "both"):
        runners["torch"] = make_torch_runner(args, size, batch)
    label = f"{size}px batch{batch}"
    train_step.alternate(runners, lambda i, _: i < args.warmup, args.pause, f"{label} warm-up")
    more = train_step.keep_going(
        argparse.Namespace(iters=None, min_time=args.min_time, max_iters=args.max_iters)
    )
    result["samples"] = train_step.alternate(runners, more, args.pause, f"{label} timed")
    return result


def report(results: list[dict]) -> str:
    """The Markdown table, then one RATIO line per configuration."""
    fmt = train_step.fmt
    lines = [
        "| config | jax img/s | torch img/s | ratio (jax/torch, s/img) | jax compile s |",
        "|---|---|---|---|---|",
    ]
    ratios = []
    for r in results:
        med = {n: statistics.median(s) for n, s in r["samples"].items() if s}
        j, t = med.get("jax"), med.get("torch")
        ips = {k: None if v is None else r["batch"] / v for k, v in (("jax", j), ("torch", t))}
        ratio = j / t if j is not None and t is not None else None
        name = f"{r['size']}px batch{r['batch']}"
        lines.append(
            f"| {name} | {fmt(ips['jax'], 2)} | {fmt(ips['torch'], 2)} | {fmt(ratio, 2)} "
            f"| {fmt(r['compile'], 1)} |"
        )
        if ratio is not None:
            ratios.append(f"RATIO translate {name} jax/torch = {ratio:.2f}")
    return "\n".join(lines + [""] + ratios)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.framework in ("torch", "both"):
        import torch

        torch.set_num_threads(train_step.available_cores())
    print(
        f"ResNet generator inference (ngf {args.ngf}, {args.n_blocks} blocks), jax "
        f"{jax.__version__} on {jax.devices()[0]}, {train_step.available_cores()} core(s)",
        flush=True,
    )
    results = [bench_config(args, s, b) for s in args.size for b in args.batch]
    print()
    print(report(results), flush=True)


if __name__ == "__main__":
    main()
