"""Per-layer convolution times of the reference CycleGAN: jaxfaces' paths vs PyTorch.

  python bench/conv_layers.py                      # 128 px, batch 4, 3 rounds
  python bench/conv_layers.py --size 256 --batch 1 --pass fwd --impl auto

For every distinct convolution of the reference generator (resnet_9blocks, ngf 64) and the
70x70 PatchGAN (ndf 64) at the given image size, times the forward pass (`fwd`) and the
forward pass plus both gradients (`grad`: input and kernel, as in a train step) of
`fast_conv.conv2d` / `conv_transpose2x` under "auto" (the path the models take on this
backend) and under "xla" (XLA's own convolution), beside `torch.nn.functional.conv2d` /
`conv_transpose2d` on the same shapes. Padding is not included (the layers pad explicitly).

Fair terms as the other benchmarks (`bench/fair.py`): one process per framework and round,
each with its own defaults (nothing set in the environment, PyTorch's default threads), the
order alternating over `--rounds` rounds; each process times every layer (`--warmup`
untimed calls, then `--iters` timed ones). Prints one Markdown table, milliseconds (median
of all timed calls, min-max of the per-round medians), the count of each layer in one
generator or discriminator, the ratio auto/torch as the median of the per-round ratios,
and the totals weighted by that count.
"""

import argparse
import pathlib
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import fair, train_step  # noqa: E402  (neither imports a framework)

PASSES = ("fwd", "grad")


def layers(size: int, ngf: int = 64, ndf: int = 64, n_blocks: int = 9) -> list[dict]:
    """The reference layers: name, kind, input (H, C), kernel, stride, out channels, count."""
    s = size
    return [
        dict(name="G in 7x7", kind="conv", h=s + 6, c=3, k=7, stride=1, o=ngf, count=1),
        dict(name="G down 1", kind="conv", h=s + 2, c=ngf, k=3, stride=2, o=2 * ngf, count=1),
        dict(
            name="G down 2", kind="conv", h=s // 2 + 2, c=2 * ngf, k=3, stride=2, o=4 * ngf, count=1
        ),
        dict(
            name="G res 3x3",
            kind="conv",
            h=s // 4 + 2,
            c=4 * ngf,
            k=3,
            stride=1,
            o=4 * ngf,
            count=2 * n_blocks,
        ),
        dict(name="G up 1", kind="convT", h=s // 4, c=4 * ngf, k=3, stride=2, o=2 * ngf, count=1),
        dict(name="G up 2", kind="convT", h=s // 2, c=2 * ngf, k=3, stride=2, o=ngf, count=1),
        dict(name="G out 7x7", kind="conv", h=s + 6, c=ngf, k=7, stride=1, o=3, count=1),
        dict(name="D 1", kind="conv", h=s + 2, c=3, k=4, stride=2, o=ndf, count=1),
        dict(name="D 2", kind="conv", h=s // 2 + 2, c=ndf, k=4, stride=2, o=2 * ndf, count=1),
        dict(name="D 3", kind="conv", h=s // 4 + 2, c=2 * ndf, k=4, stride=2, o=4 * ndf, count=1),
        dict(name="D 4", kind="conv", h=s // 8 + 2, c=4 * ndf, k=4, stride=1, o=8 * ndf, count=1),
        dict(name="D out", kind="conv", h=s // 8 + 1, c=8 * ndf, k=4, stride=1, o=1, count=1),
    ]


def macs(layer: dict) -> int:
    """Multiply-adds of one application (batch 1), the taps that read zero padding excluded.

    A x2 transposed convolution of an H-pixel input makes 2H outputs per axis from 3H - 1
    input taps (one per even output, two per odd one, the last of which falls off the edge).
    """
    h, k, c, o = layer["h"], layer["k"], layer["c"], layer["o"]
    if layer["kind"] == "convT":
        return (3 * h - 1) ** 2 * c * o
    out = (h - k) // layer["stride"] + 1
    return out * out * k * k * c * o


def jax_runner(layer: dict, batch: int, mode: str, impl: str):
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jaxfaces.models import fast_conv

    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(batch, layer["h"], layer["h"], layer["c"])), jnp.float32)
    shape = (layer["k"], layer["k"], layer["c"], layer["o"])
    w = jnp.asarray(rng.normal(size=shape) * 0.05, jnp.float32)
    if layer["kind"] == "convT":

        def f(x, w):
            return fast_conv.conv_transpose2x(x, w)
    else:

        def f(x, w):
            return fast_conv.conv2d(x, w, layer["stride"])

    with fast_conv.impl(impl):
        if mode == "fwd":
            fn = jax.jit(f)
        else:

            def loss(x, w):
                y = f(x, w)
                return jnp.vdot(y, y) * 0.5

            fn = jax.jit(jax.grad(loss, argnums=(0, 1)))
        fn = fn.lower(x, w).compile()
    return lambda: jax.block_until_ready(fn(x, w))


def torch_runner(layer: dict, batch: int, mode: str):
    import numpy as np
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(batch, layer["c"], layer["h"], layer["h"])).astype("f4"))
    if layer["kind"] == "convT":
        w = torch.from_numpy(rng.normal(size=(layer["c"], layer["o"], 3, 3)).astype("f4") * 0.05)

        def f(x, w):
            return F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1)
    else:
        k = layer["k"]
        w = torch.from_numpy(rng.normal(size=(layer["o"], layer["c"], k, k)).astype("f4") * 0.05)

        def f(x, w):
            return F.conv2d(x, w, stride=layer["stride"])

    if mode == "fwd":

        def run():
            with torch.no_grad():
                f(x, w)
    else:
        xr, wr = x.clone().requires_grad_(), w.clone().requires_grad_()

        def run():
            y = f(xr, wr)
            (0.5 * (y * y).sum()).backward()
            xr.grad = wr.grad = None

    return run


IMPLS = ("auto", "xla")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--pass", dest="passes", nargs="+", choices=PASSES, default=list(PASSES))
    p.add_argument("--impl", nargs="+", choices=IMPLS, default=list(IMPLS), help="JAX paths")
    p.add_argument("--only", nargs="*", help="layer names containing any of these strings")
    fair.add_flags(p, rounds=3, warmup=1, min_time=None)
    p.set_defaults(iters=5)
    args = p.parse_args(argv)
    fair.check_flags(p, args)
    if args.size % 8 or args.size < 32 or args.batch < 1:
        p.error(
            "--size must be a multiple of 8 and >= 32 (the PatchGAN's last layers), --batch >= 1"
        )
    return args


def selected(args: argparse.Namespace) -> list[dict]:
    return [
        layer
        for layer in layers(args.size)
        if not args.only or any(s in layer["name"] for s in args.only)
    ]


def key(layer: dict, mode: str, column: str) -> str:
    return f"{layer['name']}|{mode}|{column}"


def time_all(args: argparse.Namespace, make_run, columns: list[str] | tuple[str, ...]) -> dict:
    """{key: timed seconds} for every selected layer, pass and column (`make_run(layer,
    mode, column)` builds the call; `--warmup` untimed calls first)."""
    out = {}
    for layer in selected(args):
        for mode in args.passes:
            for column in columns:
                run = make_run(layer, mode, column)
                for _ in range(args.warmup):
                    run()
                out[key(layer, mode, column)] = [fair.timed(run) for _ in range(args.iters)]
                ms = statistics.median(out[key(layer, mode, column)]) * 1e3
                print(f"  {layer['name']} {mode} {column}: {ms:.1f} ms", file=sys.stderr)
    return out


def jax_worker(args: argparse.Namespace, job: dict) -> dict:
    times = time_all(
        args, lambda layer, mode, impl: jax_runner(layer, job["batch"], mode, impl), args.impl
    )
    return {"times": times, "env": train_step.jax_environment()}


def torch_worker(args: argparse.Namespace, job: dict) -> dict:

    times = time_all(
        args, lambda layer, mode, _: torch_runner(layer, job["batch"], mode), ("torch",)
    )
    env = fair.torch_environment()
    return {"times": times, "env": env}


WORKER_FUNCTIONS = {"jax": jax_worker, "torch": torch_worker}


def report(args: argparse.Namespace, entry: dict) -> str:
    """The Markdown table (ms) with the count-weighted totals per pass."""
    runs = entry["runs"]
    columns = [c for c in args.impl if runs.get("jax")] + ["torch"] * bool(runs.get("torch"))

    def rounds(layer: dict, mode: str, column: str) -> list[list[float]]:
        """The column's timed seconds, one list per round."""
        side = runs["torch" if column == "torch" else "jax"]
        return [r["times"][key(layer, mode, column)] for r in side]

    def ratio_cell(a: list[list[float]], b: list[list[float]]) -> str:
        return fair.cell(fair.ratio(a, b), 2)

    compare = "auto" in columns and "torch" in columns
    head = ["layer", "pass", "count", *(f"{'jax ' * (c != 'torch')}{c} ms" for c in columns)]
    head += ["auto/torch"] * compare
    ms = lambda v: v * 1e3  # noqa: E731
    rows = []
    for mode in args.passes:
        # Per column, per round: the sum over layers of count x the round's median.
        totals = {c: [0.0] * len(rounds(selected(args)[0], mode, c)) for c in columns}
        for layer in selected(args):
            cells = [layer["name"], mode, str(layer["count"])]
            for c in columns:
                per_round = rounds(layer, mode, c)
                cells.append(fair.cell(fair.summary(per_round), 1, ms))
                for i, r in enumerate(per_round):
                    totals[c][i] += statistics.median(r) * layer["count"]
            if compare:
                cells.append(ratio_cell(rounds(layer, mode, "auto"), rounds(layer, mode, "torch")))
            rows.append(cells)
        cells = ["**total x count**", mode, ""]
        cells += [fair.cell(fair.summary([[t] for t in totals[c]]), 0, ms) for c in columns]
        if compare:
            cells.append(ratio_cell(*([[t] for t in totals[c]] for c in ("auto", "torch"))))
        rows.append(cells)
    return "\n".join(fair.markdown(head, rows))


def main(argv: list[str] | None = None) -> None:
    entry = fair.enter(argv, parse_args, WORKER_FUNCTIONS)
    if entry is None:  # A worker process: it has run.
        return
    argv, args = entry
    start, load = time.perf_counter(), fair.load_average()
    job = {"size": args.size, "batch": args.batch}
    name = train_step.config_name
    entries, notes = fair.rounds_or_exit(__file__, [job], args, argv, name)
    fair.save_json(args.json, argv=argv, entries=entries, notes=notes)
    lines = [
        f"Reference CycleGAN convolutions at {name(job)}, ms. Each framework in its own process "
        f"with its own defaults; {args.rounds} round(s), the order alternating (jax first in "
        f"round 1); per process and layer {args.warmup} warm-up and {args.iters} timed calls. "
        "Cells: median of all timed calls (min-max of the per-round medians); auto/torch: "
        "median of the per-round ratios; totals weight each layer by its count.",
        *fair.describe_environment(entries),
        *(f"note: {n}" for n in notes),
        fair.timing_line(start, load),
    ]
    print("\n".join(lines) + "\n")
    print(report(args, entries[0]), flush=True)


if __name__ == "__main__":
    main()
