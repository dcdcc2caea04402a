"""Per-layer convolution times of the reference CycleGAN: jaxfaces' paths vs PyTorch.

  python bench/conv_layers.py                      # 128 px, batch 4
  python bench/conv_layers.py --size 256 --batch 1 --pass fwd

For every distinct convolution of the reference generator (resnet_9blocks, ngf 64) and the
70x70 PatchGAN (ndf 64) at the given image size, times the forward pass (`fwd`) and the
forward pass plus both gradients (`grad`: input and kernel, as in a train step) of
`fast_conv.conv2d` / `conv_transpose2x` under "auto" (the path the models take on this
backend) and under "xla" (XLA's own convolution), beside `torch.nn.functional.conv2d` /
`conv_transpose2d` on the same shapes. Padding is not included (the layers pad explicitly).

Prints one Markdown table, milliseconds (median of `--iters`), with the count of each layer
in one generator or discriminator, and the totals weighted by that count.
"""

import argparse
import os
import pathlib
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from jaxfaces.models import fast_conv  # noqa: E402

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


def _timed(fn, iters: int) -> float:
    fn()  # Warm-up (and compile).
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def jax_runner(layer: dict, batch: int, mode: str, impl: str):
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


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--pass", dest="passes", nargs="+", choices=PASSES, default=list(PASSES))
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--only", nargs="*", help="layer names containing any of these strings")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    rows = []
    totals = {}
    for layer in layers(args.size):
        if args.only and not any(s in layer["name"] for s in args.only):
            continue
        for mode in args.passes:
            auto = _timed(jax_runner(layer, args.batch, mode, "auto"), args.iters)
            xla = _timed(jax_runner(layer, args.batch, mode, "xla"), args.iters)
            ref = _timed(torch_runner(layer, args.batch, mode), args.iters)
            for key, v in (("auto", auto), ("xla", xla), ("torch", ref)):
                totals[mode, key] = totals.get((mode, key), 0.0) + v * layer["count"]
            rows.append(
                f"| {layer['name']} | {mode} | {layer['count']} | {auto:.1f} | {xla:.1f} "
                f"| {ref:.1f} | {auto / ref:.2f} |"
            )
            print(rows[-1], file=sys.stderr, flush=True)
    print(f"\n{args.size} px, batch {args.batch}, ms (median of {args.iters})\n")
    print("| layer | pass | count | jax auto | jax xla | torch | auto/torch |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    for mode in args.passes:
        a, x, t = (totals.get((mode, k), 0.0) for k in ("auto", "xla", "torch"))
        if t:
            print(f"| **total x count** | {mode} | | {a:.0f} | {x:.0f} | {t:.0f} | {a / t:.2f} |")


if __name__ == "__main__":
    main()
