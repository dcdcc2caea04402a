"""Results on the thesis's photo <-> portrait pairs: every method, the same CPU time.

  python bench/results.py --minutes 4                # writes its table into docs/RESULTS.md
  python bench/results.py --minutes 0.3 --methods pix2pix --limit_test 4 --out /tmp/r.md
  python bench/results.py --table_from runs/results/RUN/results.json   # the table again

Splits ../shared/data/thesis_faces (--data) by file name: the first pairs train, the last 40
test (the same split in every results table), as a folder of links WORKDIR/data in the
layout the configs read (trainA/ photos, trainB/ their portraits, testA/ testB/, truthAtoB/
truthBtoA/); the data is never copied. Then for each method (configs/<method>_thesis64.py,
64 px, the thesis's size), through train.py:

1. a calibration run of --calib_steps steps after the compiled first one, on the training
   folders only, measures the step time (the loop's own steps/s lines);
2. the real run gets num_steps = --minutes / step time, so every method trains for about the
   same CPU time, and its final evaluation (jaxfaces.evaluation, as evaluate.py) scores the
   translations of the held-back pairs both ways: L1 (and its ratio to the identity
   baseline's, input vs truth), PSNR, SSIM.

The table (with an identity row, the measured training time of each run and the command that
reproduces each row) is printed and written into --out between this script's markers (the
rest of the file is kept); the measurements stay in the run folder's results.json. On a
machine shared with other work the step time can change between the calibration and the
run: the table names the runs more than a fifth off the budget. LFT runs with random VGG19
weights (and says so) when no converted ImageNet weights are found.
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import re
import shlex
import subprocess
import sys
import time
import traceback

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # Run as a script from anywhere: `python bench/results.py`.

DATA_DEFAULT = ROOT.parent / "shared" / "data" / "thesis_faces"
NUM_TEST = 40  # The held-back pairs: the last 40 by file name (every results table).
DOMAIN_FOLDERS = ("photo", "portrait")  # A, B.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
#: name -> (config file, row label). Order: the table's.
METHODS = {
    "pix2pix": ("configs/pix2pix_thesis64.py", "pix2pix"),
    "bicyclegan": ("configs/bicyclegan_thesis64.py", "BicycleGAN (z = 0)"),
    "lft": ("configs/lft_thesis64.py", "LFT"),
    "cyclegan": ("configs/cyclegan_thesis64.py", "CycleGAN (unpaired)"),
    "unit": ("configs/unit_thesis64.py", "UNIT (unpaired)"),
}
DIRECTIONS = ("AtoB", "BtoA")
SECTION = "thesis_faces photo <-> portrait, 64 px"
BEGIN = f"<!-- bench/results.py begin: {SECTION} -->"
END = f"<!-- bench/results.py end: {SECTION} -->"
DOC_HEAD = """# Results on real faces

One table per data set, one row per method, with the command that reproduces each row. Each
table is written by the script named above it; rerun that script to refresh it.
"""
#: The training loop's console line: "step  100/1000 | losses | 3.21 steps/s | ETA 1m05s".
PROGRESS_LINE = re.compile(r"^step\s+(\d+)/(\d+) \|.*\| ([0-9.]+) steps/s \|")
FIRST_STEP_LINE = re.compile(r"^First step \(with compilation\) took (\S+)")


class InputError(ValueError):
    """Bad input to this script (printed as one line, exit status 2)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=str(DATA_DEFAULT), help="folder with photo/ and portrait/")
    p.add_argument("--workdir", default=str(ROOT / "runs" / "results"), help="split and runs")
    p.add_argument("--minutes", type=float, default=5.0, help="training budget per method")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--calib_steps", type=int, default=20, help="timed calibration steps")
    p.add_argument(
        "--limit_test", type=int, default=None, help="development: the first N test pairs only"
    )
    p.add_argument("--out", default=str(ROOT / "docs" / "RESULTS.md"), help="Markdown file")
    p.add_argument(
        "--table_from", default=None, help="a run's results.json: write its table, train nothing"
    )
    args = p.parse_args(argv)
    if args.minutes <= 0:
        p.error("--minutes must be positive")
    if args.calib_steps < 2:
        p.error("--calib_steps must be at least 2")
    if args.limit_test is not None and not 1 <= args.limit_test <= NUM_TEST:
        p.error(f"--limit_test must be in [1, {NUM_TEST}]")
    return args


# ----------------------------------------------------------------------------------------------
# The split.


def pair_names(data: pathlib.Path) -> list[str]:
    """The sorted file names present in both data/photo/ and data/portrait/ (the pairs).

    Raises:
      InputError: a missing folder, or names in one folder only (naming a few).
    """
    names = {}
    for sub in DOMAIN_FOLDERS:
        folder = data / sub
        if not folder.is_dir():
            raise InputError(f"--data: no folder {folder} (expected {data}/photo and portrait)")
        names[sub] = {p.name for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    a, b = (names[s] for s in DOMAIN_FOLDERS)
    if a != b:
        odd = sorted(a ^ b)
        raise InputError(
            f"--data: {len(odd)} images of {data} have no pair in the other folder: {odd[:5]}"
        )
    if len(a) <= NUM_TEST:
        raise InputError(f"--data: {len(a)} pairs in {data}; need more than {NUM_TEST}")
    return sorted(a)


def split_names(names: list[str], limit_test: int | None = None) -> tuple[list, list]:
    """(train, test): all but the last NUM_TEST names, and the last NUM_TEST (or the first
    `limit_test` of them)."""
    train, test = names[:-NUM_TEST], names[-NUM_TEST:]
    return train, test[:limit_test] if limit_test else test


def split_layout(train: list[str], test: list[str]) -> dict[str, tuple[str, list[str]]]:
    """{folder of the split: (data sub-folder its links point into, names)}."""
    photo, portrait = DOMAIN_FOLDERS
    return {
        "trainA": (photo, train),
        "trainB": (portrait, train),
        "testA": (photo, test),
        "testB": (portrait, test),
        "truthAtoB": (portrait, test),
        "truthBtoA": (photo, test),
    }


def build_split(data: pathlib.Path, out: pathlib.Path, train: list[str], test: list[str]) -> None:
    """Links out/<folder>/<name> -> data/<photo|portrait>/<name> per `split_layout`.

    Existing right links are kept, links of an earlier split (into the same data) that this
    one lacks are removed; anything else in the way is an InputError (never deleted).
    """
    data = data.resolve()
    for folder, (sub, names) in split_layout(train, test).items():
        where = out / folder
        where.mkdir(parents=True, exist_ok=True)
        wanted = {n: data / sub / n for n in names}
        for entry in sorted(where.iterdir()):
            ours = entry.is_symlink() and pathlib.Path(os.readlink(entry)).parent == data / sub
            if not ours:
                raise InputError(f"--workdir: {entry} is not a link this script made; move it")
            if entry.name not in wanted:
                entry.unlink()  # A link of another split (e.g. --limit_test).
            elif pathlib.Path(os.readlink(entry)) != wanted[entry.name]:
                entry.unlink()
        for name, target in wanted.items():
            if not (where / name).is_symlink():
                (where / name).symlink_to(target)


# ----------------------------------------------------------------------------------------------
# Runs.


def shown(path: pathlib.Path) -> str:
    """A path as the commands give it: relative to the repository when inside it."""
    path = pathlib.Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def train_command(
    config: str, workdir: pathlib.Path, data_root: pathlib.Path, num_steps: int, extra: list
) -> list[str]:
    """train.py on the split at data_root for num_steps, logging about ten lines."""
    log_every = max(1, num_steps // 10)
    return [
        "python",
        "train.py",
        f"--config={config}",
        f"--workdir={shown(workdir)}",
        f"--config.data.root={shown(data_root)}",
        f"--config.train.num_steps={num_steps}",
        f"--config.train.log_every={log_every}",
        f"--config.train.log_images_every={num_steps}",
        f"--config.train.ckpt_every={num_steps}",
        *extra,
    ]


def calibration_command(
    config: str, workdir: pathlib.Path, data_root: pathlib.Path, steps: int, extra: list
) -> list[str]:
    """train.py for 1 + steps steps on the training folders only (no test split: no final
    evaluation), one progress line timing the last `steps`."""
    return [
        "python",
        "train.py",
        f"--config={config}",
        f"--workdir={shown(workdir)}",
        "--config.data.root=",
        f"--config.data.a={shown(data_root / 'trainA')}",
        f"--config.data.b={shown(data_root / 'trainB')}",
        f"--config.train.num_steps={steps + 1}",
        f"--config.train.log_every={steps + 1}",
        f"--config.train.log_images_every={steps + 1}",
        f"--config.train.ckpt_every={steps + 1}",
        *extra,
    ]


def parse_duration(text: str) -> float:
    """progress.format_duration's text back to seconds: '1h02m', '1m05s', '7s'."""
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text)
    if not text or match is None:
        raise ValueError(f"not a duration: {text!r}")
    h, m, s = (int(g or 0) for g in match.groups())
    return 3600 * h + 60 * m + s


def step_time(lines: list[str]) -> tuple[int, float, float | None]:
    """(timed steps, their seconds, first step's seconds or None) from the loop's console.

    The loop times from the end of the compiled first step: each progress line gives the
    steps/s since the previous line, so the steps after the first take sum(dsteps / rate).

    Raises:
      ValueError: no progress line, or a rate of 0.
    """
    seconds, steps, first, last = 0.0, 0, None, None
    for line in lines:
        if m := FIRST_STEP_LINE.match(line):
            first = parse_duration(m.group(1))
        if m := PROGRESS_LINE.match(line):
            step, rate = int(m.group(1)), float(m.group(3))
            previous = 1 if last is None else last
            if step > previous:
                if rate <= 0:
                    raise ValueError(f"a progress line with no rate: {line!r}")
                seconds += (step - previous) / rate
                steps += step - previous
            last = step
    if last is None:
        raise ValueError("no progress line in the training output")
    return steps, seconds, first


def steps_for_budget(budget_s: float, seconds_per_step: float) -> int:
    """Training steps that take about `budget_s` (at least 2: one is compiled, one timed)."""
    return max(2, round(budget_s / seconds_per_step))


def run_logged(command: list[str], log: pathlib.Path) -> tuple[list[str], float]:
    """Runs `command` (its "python" is this interpreter) in the repository, streaming its
    output to the console and to `log`; returns its lines and wall seconds.

    Raises:
      RuntimeError: on a non-zero exit status, naming the log.
    """
    argv = [sys.executable if command[0] == "python" else command[0], *command[1:]]
    log.parent.mkdir(parents=True, exist_ok=True)
    print("$ " + shlex.join(command), flush=True)
    lines = []
    start = time.perf_counter()
    with log.open("w") as f:
        proc = subprocess.Popen(
            argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for line in proc.stdout:
            f.write(line)
            f.flush()
            print("  | " + line, end="", flush=True)
            lines.append(line.rstrip("\n"))
        status = proc.wait()
    wall = time.perf_counter() - start
    if status:
        raise RuntimeError(f"{command[1]} failed (exit status {status}); its output: {log}")
    return lines, wall


def lft_vgg() -> tuple[list[str], str]:
    """(extra train.py flags, row label) of LFT: ImageNet VGG19 weights if found, else random."""
    from jaxfaces.models import vgg

    try:
        vgg.find_weights(None)
        return [], "LFT (VGG19 ImageNet)"
    except FileNotFoundError:
        return ["--config.vgg.weights=random"], "LFT (random VGG19)"


def run_method(name: str, args: argparse.Namespace, data_root: pathlib.Path, runs: pathlib.Path):
    """Calibrates, trains and evaluates one method; returns its table row (a dict)."""
    config, label = METHODS[name]
    extra = []
    if name == "lft":
        extra, label = lft_vgg()
    budget = 60 * args.minutes
    calibration = runs / f"{name}_calibration"
    cal = calibration_command(config, calibration, data_root, args.calib_steps, extra)
    lines, _ = run_logged(cal, runs / f"{name}_calibration.log")
    steps, seconds, _ = step_time(lines)
    num_steps = steps_for_budget(budget, seconds / steps)
    print(f"{name}: {seconds / steps:.3f} s/step measured -> {num_steps} steps", flush=True)
    command = train_command(config, runs / name, data_root, num_steps, extra)
    lines, wall = run_logged(command, runs / f"{name}.log")
    timed, train_s, first = step_time(lines)
    metrics_file = runs / name / "samples" / "metrics.json"
    if not metrics_file.is_file():
        raise RuntimeError(f"{name}: no final evaluation at {metrics_file}")
    return {
        "label": label,
        "metrics": json.loads(metrics_file.read_text()),
        "steps": num_steps,
        "calibration_s_per_step": seconds / steps,
        "train_s": train_s * (timed + 1) / timed,  # The first step counted as one more.
        "first_s": first,
        "wall_s": wall,
        "command": shlex.join(command),
    }


def identity_metrics(data_root: pathlib.Path, size: int = 64) -> dict[str, dict[str, float]]:
    """Input vs truth on the test split, per direction: L1, PSNR, SSIM as the evaluation
    computes them (the same image reading and resizing)."""
    import numpy as np

    from configs import pix2pix_thesis64
    from jaxfaces import evaluation, metrics

    config = pix2pix_thesis64.get_config()
    config.data.root, config.data.size = str(data_root), size
    evaluator = evaluation.Evaluator(config)  # Reads the test splits and their truths.
    out = {}
    for direction, src in (("AtoB", "a"), ("BtoA", "b")):
        images, truth = evaluator.tests[src][0], evaluator.truth[direction]
        out[direction] = {
            "l1": float(np.mean(metrics.l1(images, truth))),
            "ratio": 1.0,
            "psnr": float(np.mean(metrics.psnr(images, truth))),
            "ssim": float(np.mean(metrics.ssim(images, truth))),
        }
    return out


# ----------------------------------------------------------------------------------------------
# The table.


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo) and the cores this process may use."""
    name = platform.processor() or "unknown CPU"
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {len(os.sched_getaffinity(0))} cores"


def format_cell(m: dict[str, float] | None) -> list[str]:
    """A direction's cells: L1 (ratio), PSNR, SSIM; "-" where missing."""
    if not m or "l1" not in m:
        return ["-", "-", "-"]
    ssim = f"{m['ssim']:.3f}" if "ssim" in m else "-"
    return [f"{m['l1']:.4f} ({m['ratio']:.2f}x)", f"{m['psnr']:.2f}", ssim]


def markdown_table(rows: list[dict], identity: dict, meta: dict[str, str]) -> str:
    """The section: what was run, the table (identity first), the commands."""
    lines = [
        f"## {SECTION}",
        "",
        f"Photo (A) -> portrait (B) and back on `{meta['data']}`: the first {meta['train']} "
        f"pairs by file name train, the last {NUM_TEST} are held back and scored"
        + (f" (here only the first {meta['test']} of them)" if meta["test"] < NUM_TEST else "")
        + " (the same split in every results table). 64 px; L1 in [-1, 1] units with its ratio "
        "to the identity baseline's (input vs truth); PSNR in dB (range 2); SSIM (11 px "
        f"Gaussian window). Each method trained for about {meta['minutes']:g} minutes on all "
        "the machine's cores (wall clock; its steps from a step time measured just before "
        "the run); 'train' is the measured time of its steps "
        "(the first, compiled one counted as one more step), 'wall' the whole train.py "
        "command (start-up, compilation, LFT's feature cache and the final evaluation). "
        "'-': a direction the method's config does not train (LFT: photo -> portrait only, "
        "as each test translation is a 100-step synthesis).",
        "",
        f"- Date: {meta['date']}",
        f"- Machine: {meta['machine']}",
        f"- Budget: {meta['minutes']:g} minutes of training per method",
        f"- Command: `{meta['command']}`",
        "",
        "| method | A->B L1 (ratio) | A->B PSNR | A->B SSIM | B->A L1 (ratio) | B->A PSNR "
        "| B->A SSIM | steps | train | wall |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    cells = [*format_cell(identity["AtoB"]), *format_cell(identity["BtoA"])]
    lines.append("| identity (input as output) | " + " | ".join(cells) + " | - | - | - |")
    for row in rows:
        cells = [*format_cell(row["metrics"].get("AtoB")), *format_cell(row["metrics"].get("BtoA"))]
        lines.append(
            f"| {row['label']} | " + " | ".join(cells) + f" | {row['steps']} "
            f"| {row['train_s'] / 60:.1f} min | {row['wall_s'] / 60:.1f} min |"
        )
    off = off_budget(rows, 60 * meta["minutes"])
    if off:
        lines += [
            "",
            "Off the budget by more than a fifth (the steps come from a step time measured "
            "just before each run; other work on the machine changed its speed): "
            + ", ".join(f"{row['label']} {row['train_s'] / 60:.1f} min" for row in off)
            + f" for a budget of {meta['minutes']:g} min.",
        ]
    lines += [
        "",
        f"Each row's run (from the repository root; {meta.get('split', 'runs/results/data')} "
        "is the split the script makes):",
        "",
    ]
    lines += [f"- {row['label']}: `{row['command']}`" for row in rows]
    return "\n".join(lines)


def off_budget(rows: list[dict], budget_s: float, tolerance: float = 0.2) -> list[dict]:
    """The rows whose measured training time is off `budget_s` by more than `tolerance`."""
    return [row for row in rows if abs(row["train_s"] - budget_s) > tolerance * budget_s]


def replace_section(text: str, body: str) -> str:
    """`text` with this script's section (between BEGIN and END) replaced by `body`, or with
    it appended; a new file starts with DOC_HEAD.

    Raises:
      InputError: a BEGIN without its END (or the other way round).
    """
    block = f"{BEGIN}\n{body}\n{END}"
    if not text.strip():
        return f"{DOC_HEAD}\n{block}\n"
    if (BEGIN in text) != (END in text):
        raise InputError(f"--out has one of the markers {BEGIN!r} / {END!r} without the other")
    if BEGIN in text:
        head, rest = text.split(BEGIN, 1)
        return head + block + rest.split(END, 1)[1]
    return text.rstrip("\n") + f"\n\n{block}\n"


def measure(args: argparse.Namespace, argv: list[str] | None) -> dict:
    """Builds the split, runs every method; returns {"meta", "identity", "rows"} (also
    written to the run folder's results.json)."""
    data = pathlib.Path(args.data).expanduser()
    workdir = pathlib.Path(args.workdir).expanduser().resolve()
    load = os.getloadavg()[0]  # The machine may be shared: say how busy it was.
    names = pair_names(data)
    train, test = split_names(names, args.limit_test)
    data_root = workdir / "data"
    build_split(data, data_root, train, test)
    print(f"Split: {len(train)} training pairs, {len(test)} test pairs in {data_root}", flush=True)
    runs = workdir / datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    rows = [run_method(name, args, data_root, runs) for name in args.methods]
    meta = {
        "data": os.path.relpath(data.resolve(), ROOT),
        "split": shown(data_root),
        "train": len(train),
        "test": len(test),
        "minutes": args.minutes,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{cpu_model()}; 1-minute load average {load:.1f} at the start",
        "command": shlex.join(["python", "bench/results.py", *(argv or sys.argv[1:])]),
    }
    measured = {"meta": meta, "identity": identity_metrics(data_root), "rows": rows}
    (runs / "results.json").write_text(json.dumps(measured, indent=2) + "\n")
    print(f"Measurements: {runs / 'results.json'}", flush=True)
    return measured


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.table_from:
        path = pathlib.Path(args.table_from)
        if not path.is_file():
            raise InputError(f"--table_from: no file {path}")
        measured = json.loads(path.read_text())
    else:
        measured = measure(args, argv)
    table = markdown_table(measured["rows"], measured["identity"], measured["meta"])
    print("\n" + table, flush=True)
    out = pathlib.Path(args.out)
    text = out.read_text() if out.is_file() else ""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(replace_section(text, table))
    print(f"\nWritten to {out}", flush=True)
    return 0


def cli(argv: list[str] | None = None) -> int:
    """main, with this script's bad-input errors as one line (exit status 2)."""
    try:
        return main(argv)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:
        if traceback.extract_tb(e.__traceback__)[-1].filename != __file__:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(cli())
