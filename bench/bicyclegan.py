"""BicycleGAN on the built-in paired faces: does it learn, and do its samples differ?

  python bench/bicyclegan.py                         # configs/bicyclegan_demo.py as it is
  python bench/bicyclegan.py --steps 800 --pix2pix_steps 2400 --out bicycle.md

Trains configs/bicyclegan_demo.py (--steps steps) and, with --pix2pix_steps, the pix2pix
demo beside it (pick its steps so that both take the same CPU time: each run prints its
wall and CPU seconds), from the same seed on the same data, then scores the test split
both ways: the L1 to the true translations against the identity baseline (input vs truth)
with z = 0 (the plain translation), with z = E(truth) (BicycleGAN's encoded code), the
diversity (mean pairwise L1, 0-1 scale, of 5 outputs of each input with z ~ N(0, I)) and
the SWD of all those samples to the real test images of the target domain. A Markdown
table to --out and printed.
"""

import argparse
import os
import pathlib
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=None, help="BicycleGAN steps (default: demo's)")
    p.add_argument("--pix2pix_steps", type=int, default=0, help="pix2pix demo steps (0: none)")
    p.add_argument("--data", default=None, help="the built-in paired faces (default: temp)")
    p.add_argument("--workdir", default=None, help="where the runs go (default: temp)")
    p.add_argument("--out", default=None, help="Markdown table written here too")
    return p.parse_args(argv)


def train(config, workdir: pathlib.Path) -> tuple[dict, float, float]:
    """loop.train (with its final evaluation) and its wall and CPU seconds (every thread of
    this process)."""
    from jaxfaces.training import loop

    wall, cpu = time.perf_counter(), time.process_time()
    result = loop.train(config, workdir)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def row(name: str, steps: int, wall: float, cpu: float, m: dict) -> str:
    def f(key: str, fmt: str = "{:.3f}") -> str:
        return fmt.format(m[key]) if key in m else "-"

    return (
        f"| {name} | {steps} | {wall:.0f} | {cpu:.0f} | {f('identity_l1')} | {f('l1')} | "
        f"{f('ratio')} | {f('encoded_ratio')} | {f('diversity', '{:.4f}')} | "
        f"{f('swd', '{:.1f}')} | {f('samples_swd', '{:.1f}')} |"
    )


HEADER = (
    "| method | steps | wall s | CPU s | identity L1 | L1 (z = 0) | ratio (z = 0) | "
    "ratio (z = E(truth)) | diversity (5 samples) | SWD | SWD of samples |\n"
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
)


def main(argv=None) -> str:
    args = parse_args(argv)
    from configs import bicyclegan_demo, pix2pix_demo

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bicyclegan_bench_"))
    data = pathlib.Path(args.data) if args.data else tmp / "faces_paired"
    workdir = pathlib.Path(args.workdir) if args.workdir else tmp / "runs"
    runs = [("bicyclegan", bicyclegan_demo.get_config(), args.steps)]
    if args.pix2pix_steps:
        runs.append(("pix2pix", pix2pix_demo.get_config(), args.pix2pix_steps))
    lines = []
    for name, config, steps in runs:
        config.data.root = str(data)
        config.train.eval_every = 0
        if steps:
            config.train.num_steps = steps
        result, wall, cpu = train(config, workdir / name)
        print(
            f"{name}: {config.train.num_steps} steps, {wall:.0f} s wall, {cpu:.0f} s CPU",
            flush=True,
        )
        scores = result["eval"]  # The final evaluation: evaluation.Evaluator's metrics.
        for direction in ("AtoB", "BtoA"):
            label = f"{name} {direction}"
            lines.append(row(label, config.train.num_steps, wall, cpu, scores[direction]))
    table = "\n".join([HEADER, *lines])
    machine = f"{os.cpu_count()} CPU cores visible"
    text = f"{table}\n\n({machine}; wall and CPU seconds of each whole run, both directions.)\n"
    print(text)
    if args.out:
        pathlib.Path(args.out).write_text(text)
    return text


if __name__ == "__main__":
    main()
