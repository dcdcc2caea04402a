"""Times neural style transfer steps: jaxfaces (one compiled loop) vs the same loop in PyTorch.

  python bench/nst.py                                  # 64 and 256 px, batch 1 and 8
  python bench/nst.py --size 64 --batch 1 --steps 10

Both frameworks run the thesis's setting (content conv3_2, Gram losses on conv1_1..conv5_1
with weights 0.5..4, average pooling, Adam lr 2 on 0-255 pixels, clipping) on the same
randomly initialised VGG19 weights: a torchvision-layout PyTorch VGG19 whose state_dict is
converted with the project's converter. JAX times `nst.stylize` with `--steps` steps after an
ahead-of-time compile (timed apart); PyTorch runs the same number of Adam steps. Rounds
alternate between the frameworks. Prints a Markdown table (steps/s, images*steps/s) and one
`RATIO nst 64px batch1 jax/torch = ...` line per configuration (time per step, jax / torch).
"""

import argparse
import os
import pathlib
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # See bench/train_step.py.

import jax  # noqa: E402
import numpy as np  # noqa: E402

from jaxfaces.methods import nst  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, nargs="+", default=[64, 256])
    p.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    p.add_argument("--steps", type=int, default=5, help="optimisation steps per timed round")
    p.add_argument("--rounds", type=int, default=2, help="timed rounds per framework")
    p.add_argument("--framework", choices=("jax", "torch", "both"), default="both")
    return p.parse_args(argv)


def weights() -> tuple[dict, object]:
    """(jax params, torch VGG19) with the same random weights, through the converter."""
    import torch

    from bench.torch_vgg import TorchVGG19
    from jaxfaces.convert import vgg19 as convert

    torch.manual_seed(0)
    net = TorchVGG19(pool="avg").eval()
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "vgg19.pth"
        torch.save(net.state_dict_torchvision(), path)
        sd = {k: v.numpy() for k, v in torch.load(path, weights_only=True).items()}
    return convert.params_from_state_dict(sd), net


def torch_runner(net, settings: nst.Settings, content: np.ndarray, style: np.ndarray):
    """The same Gatys loop in PyTorch; returns run(steps)."""
    import torch

    layers = list(settings.layers)
    for p in net.parameters():
        p.requires_grad_(False)
    nchw = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))  # noqa: E731

    def grams(f):
        n, c, h, w = f.shape
        f = f.reshape(n, c, h * w)
        return f @ f.transpose(1, 2) / (h * w)

    with torch.no_grad():
        target_content = net(nchw(content), layers)[settings.content_layer]
        sf = net(nchw(np.broadcast_to(style, content.shape)), layers)
        target_grams = {name: grams(sf[name]) for name in settings.style_layers}

    def run(steps: int) -> float:
        pixels = ((nchw(content) + 1) * 127.5).clone().requires_grad_(True)
        opt = torch.optim.Adam([pixels], lr=settings.lr)
        for _ in range(steps):
            opt.zero_grad()
            feats = net(pixels / 127.5 - 1, layers)
            content_loss = 0.5 * ((feats[settings.content_layer] - target_content) ** 2).sum()
            style_loss = 0.0
            for name, weight in settings.weights.items():
                f = feats[name]
                c, m = f.shape[1], f.shape[2] * f.shape[3]
                diff = grams(f) - target_grams[name]
                style_loss = style_loss + weight * (diff**2).sum() / (4 * c * c * m * m)
            loss = settings.content_weight * content_loss + settings.style_weight * style_loss
            loss.backward()
            opt.step()
            with torch.no_grad():
                pixels.clamp_(0, 255)
        return float(loss)

    return run


def jax_runner(params, settings: nst.Settings, content: np.ndarray, style: np.ndarray):
    """Returns (run(), compile seconds) for `nst.stylize` with the settings' steps."""
    start = time.perf_counter()
    compiled = nst.stylize.lower(params, content, style, content, settings).compile()
    compile_s = time.perf_counter() - start

    def run() -> None:
        jax.block_until_ready(compiled(params, content, style, content))

    return run, compile_s


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    params, net = weights()
    settings = nst.Settings(steps=args.steps)
    rng = np.random.default_rng(0)
    rows, ratios = [], []
    for size in args.size:
        for batch in args.batch:
            content = rng.uniform(-1, 1, (batch, size, size, 3)).astype(np.float32)
            style = rng.uniform(-1, 1, (1, size, size, 3)).astype(np.float32)
            runners, compile_s = {}, None
            if args.framework in ("jax", "both"):
                runners["jax"], compile_s = jax_runner(params, settings, content, style)
            if args.framework in ("torch", "both"):
                torch_run = torch_runner(net, settings, content, style)
                runners["torch"] = lambda run=torch_run: run(args.steps)
            times = {name: [] for name in runners}
            for r in range(args.rounds + 1):  # The first round warms up.
                for name in list(runners) if r % 2 else list(runners)[::-1]:
                    start = time.perf_counter()
                    runners[name]()
                    if r:
                        times[name].append((time.perf_counter() - start) / args.steps)
            per_step = {name: statistics.median(t) for name, t in times.items()}
            print(
                f"{size}px batch{batch}: "
                + ", ".join(f"{n} {t:.3f} s/step" for n, t in per_step.items()),
                flush=True,
            )
            rows.append((size, batch, per_step, compile_s))
            if len(per_step) == 2:
                ratios.append((size, batch, per_step["jax"] / per_step["torch"]))
    print(f"\nNST (Adam, thesis layers), {os.cpu_count()} CPU(s), {args.steps} steps per round\n")
    print("| config | jax s/step | torch s/step | ratio | jax images*steps/s | jax compile s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for size, batch, t, compile_s in rows:
        j, p = t.get("jax"), t.get("torch")
        fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        ratio = f"{j / p:.2f}" if j and p else "-"
        throughput = f"{batch / j:.2f}" if j else "-"
        print(
            f"| {size}px batch{batch} | {fmt(j)} | {fmt(p)} | {ratio} | {throughput} "
            f"| {fmt(compile_s)} |"
        )
    for size, batch, ratio in ratios:
        print(f"RATIO nst {size}px batch{batch} jax/torch = {ratio:.2f}")


if __name__ == "__main__":
    main()
