"""Evaluation reports: a self-contained HTML page, metrics.json / metrics.csv, console table.

A page (`OUT/index.html`) has a header, a table of metrics (one column per direction),
notes on what was skipped, then an image grid per direction whose columns are image files
beside the page (relative paths; inline CSS, no scripts). The files stay at the model's size;
the page shows each one enlarged by a whole factor without smoothing, at least
`sheets.MIN_TILE` px a side, and the sheet PNGs are written so enlarged (`jaxfaces.sheets`).
`write_index` writes a page linking a series of such pages (one per evaluation step) with
their headline metrics.
"""

import csv
import dataclasses
import html
import json
import pathlib
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jaxfaces import sheets
from jaxfaces.data import preprocess

Results = Mapping[str, Mapping[str, float]]

#: Known metrics in display order: key -> (label, which way is better).
METRICS = {
    "l1": ("L1 to truth", "lower"),
    "identity_l1": ("L1 of the input to truth (baseline)", "lower"),
    "ratio": ("L1 ratio to the baseline", "lower"),
    "psnr": ("PSNR to truth (dB)", "higher"),
    "ssim": ("SSIM to truth", "higher"),
    "cycle_l1": ("cycle reconstruction L1", "lower"),
    "swd": ("SWD to the real target set (x1e3)", "lower"),
    "identity_swd": ("SWD of the inputs to the target set (baseline, x1e3)", "lower"),
    "checkerboard": ("share of high frequencies in a period-2 grid", "lower"),
    "target_checkerboard": ("the same of the real target images (reference)", "lower"),
    "adversarial_accuracy": ("discriminator accuracy, real vs translated", "lower"),
    "encoded_l1": ("L1 to truth with z = the truth's code (latent-code methods)", "lower"),
    "encoded_ratio": ("its ratio to the baseline", "lower"),
    "diversity": ("mean pairwise L1 (0-1) of 5 outputs, z ~ N(0, I)", "higher"),
    "samples_swd": ("SWD of those outputs to the real target set (x1e3)", "lower"),
    "fid": ("FID to the real target set", "lower"),
    "kid": ("KID to the real target set (x1e3)", "lower"),
    "kid_std": ("KID standard deviation over subsets (x1e3)", ""),
}

#: Metrics shown in the index of a series of evaluations.
HEADLINE = ("l1", "ratio", "ssim", "cycle_l1", "swd", "adversarial_accuracy", "fid")

STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; background: #fff; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; }
th { background: #e8edf3; } td.num { text-align: right; font-family: monospace; }
td.better { color: #666; font-size: 0.9em; }
table.grid td { padding: 2px; text-align: center; font-size: 0.8em; }
table.grid img { image-rendering: pixelated; display: block; }
table.grid img:not([width]) { width: 128px; height: 128px; }
p.meta, ul.notes { color: #444; }
"""


@dataclasses.dataclass
class Grid:
    """An image grid: `rows` of (row label, [relative image path per column]).

    `image_size` (height, width) is the images' size in px, when known: the page then shows
    them enlarged by `sheets.factor` of it (else at 128 x 128 px), without smoothing.
    """

    title: str
    columns: Sequence[str]
    rows: Sequence[tuple[str, Sequence[str]]]
    image_size: tuple[int, int] | None = None


def metric_keys(results: Results) -> list[str]:
    """The metrics present in `results`: the known ones in display order, then the others."""
    present = {k for m in results.values() for k in m}
    return [k for k in METRICS if k in present] + sorted(present - set(METRICS))


def format_value(key: str, value: float | None) -> str:
    """A metric value as displayed (KID scaled by 1e3, as its label says; SWD comes so)."""
    if value is None:
        return "-"
    if key in ("kid", "kid_std"):
        value = value * 1e3
    if key in ("psnr", "fid"):
        return f"{value:.2f}"
    return f"{value:.4f}" if abs(value) < 10 else f"{value:.2f}"


def format_table(results: Results) -> str:
    """A compact plain-text table: one row per metric (by its key), one column per direction."""
    directions = list(results)
    keys = metric_keys(results)
    if not keys:
        return "(no metrics)"
    width = max(len(k) for k in [*keys, "metric"]) + 2
    lines = [f"  {'metric':<{width}}" + "".join(f"{d:>10}" for d in directions)]
    for key in keys:
        cells = "".join(f"{format_value(key, results[d].get(key)):>10}" for d in directions)
        lines.append(f"  {key:<{width}}{cells}")
    return "\n".join(lines)


def write_json(path: pathlib.Path, results: Results) -> None:
    """{direction: {metric: value}} as JSON."""
    path.write_text(json.dumps({d: dict(m) for d, m in results.items()}, indent=2) + "\n")


def write_csv(path: pathlib.Path, results: Results) -> None:
    """One row per direction, one column per metric (empty where it does not apply)."""
    keys = metric_keys(results)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["direction", *keys])
        for direction, m in results.items():
            writer.writerow([direction, *(repr(float(m[k])) if k in m else "" for k in keys)])


def _metrics_html(results: Results) -> str:
    directions = list(results)
    head = "".join(f"<th>{html.escape(d)}</th>" for d in directions)
    rows = [f"<tr><th>metric</th>{head}<th>better</th></tr>"]
    for key in metric_keys(results):
        label, better = METRICS.get(key, (key, ""))
        cells = "".join(
            f'<td class="num">{html.escape(format_value(key, results[d].get(key)))}</td>'
            for d in directions
        )
        rows.append(
            f"<tr><td>{html.escape(label)}</td>{cells}"
            f'<td class="better">{html.escape(better)}</td></tr>'
        )
    return '<table class="metrics">\n' + "\n".join(rows) + "\n</table>"


def _url(path: str) -> str:
    """A relative file path as an HTML attribute value (percent-encoded, then escaped)."""
    return html.escape(urllib.parse.quote(path), quote=True)


def _grid_html(grid: Grid) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ("", *grid.columns))
    rows = [f"<tr>{head}</tr>"]
    size = ""
    if grid.image_size is not None:
        h, w = grid.image_size
        k = sheets.factor(h, w)
        size = f' width="{k * w}" height="{k * h}"'
    for label, paths in grid.rows:
        cells = "".join(
            f'<td><img src="{_url(path)}" alt="{html.escape(column)}"{size}></td>'
            for column, path in zip(grid.columns, paths, strict=True)
        )
        rows.append(f"<tr><td>{html.escape(label)}</td>{cells}</tr>")
    return '<table class="grid">\n' + "\n".join(rows) + "\n</table>"


def _page(title: str, body: Sequence[str]) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )


def write_page(
    out_dir: str | pathlib.Path,
    title: str,
    results: Results,
    grids: Sequence[Grid] = (),
    notes: Sequence[str] = (),
    meta: Mapping[str, str] | None = None,
    up_link: str | None = None,
) -> pathlib.Path:
    """Writes OUT_DIR/index.html, metrics.json and metrics.csv; returns the page's path.

    Args:
      out_dir: the report folder; the grids' image paths are relative to it.
      title: the page's heading.
      results: {direction: {metric: value}}.
      grids: image grids, shown after the metrics.
      notes: sentences on what was skipped or how to read the page.
      meta: facts shown under the title (checkpoint, step, data folders ...).
      up_link: relative link to an index of related pages, if any.
    """
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    body = []
    if up_link:
        body.append(f'<p><a href="{html.escape(up_link, quote=True)}">all evaluations</a></p>')
    if meta:
        facts = "<br>\n".join(
            f"<b>{html.escape(k)}</b>: {html.escape(str(v))}" for k, v in meta.items()
        )
        body.append(f'<p class="meta">{facts}</p>')
    body.append("<h2>Metrics</h2>")
    body.append(_metrics_html(results) if results else "<p>No metrics: no test images.</p>")
    if notes:
        items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
        body.append(f'<ul class="notes">{items}</ul>')
    for grid in grids:
        body.append(f"<h2>{html.escape(grid.title)}</h2>")
        body.append(_grid_html(grid))
    page = out_dir / "index.html"
    page.write_text(_page(title, body), encoding="utf-8")
    write_json(out_dir / "metrics.json", results)
    write_csv(out_dir / "metrics.csv", results)
    return page


STEP_DIR = re.compile(r"step_(\d+)$")


def step_dir(eval_dir: str | pathlib.Path, step: int) -> pathlib.Path:
    """EVAL_DIR/step_NNNNNN: the folder of the evaluation at `step`."""
    return pathlib.Path(eval_dir) / f"step_{step:06d}"


def write_index(eval_dir: str | pathlib.Path, title: str = "Evaluations") -> pathlib.Path:
    """Writes EVAL_DIR/index.html: a table of every step_NNNNNN/ page with headline metrics."""
    eval_dir = pathlib.Path(eval_dir)
    pages = []
    for sub in eval_dir.iterdir() if eval_dir.is_dir() else ():
        match = STEP_DIR.match(sub.name)
        if match and (sub / "index.html").is_file():
            path = sub / "metrics.json"
            results = json.loads(path.read_text()) if path.is_file() else {}
            pages.append((int(match.group(1)), sub.name, results))
    pages.sort()
    columns = [
        (d, k)
        for d in sorted({d for _, _, r in pages for d in r})
        for k in HEADLINE
        if any(k in r.get(d, {}) for _, _, r in pages)
    ]
    head = "".join(f"<th>{html.escape(d)}<br>{html.escape(METRICS[k][0])}</th>" for d, k in columns)
    rows = [f"<tr><th>step</th>{head}</tr>"]
    for step, name, results in pages:
        cells = "".join(
            f'<td class="num">{html.escape(format_value(k, results.get(d, {}).get(k)))}</td>'
            for d, k in columns
        )
        link = f'<a href="{_url(name)}/index.html">{step}</a>'
        rows.append(f"<tr><td>{link}</td>{cells}</tr>")
    table = '<table class="metrics">\n' + "\n".join(rows) + "\n</table>"
    body = [table if pages else "<p>No evaluations yet.</p>"]
    eval_dir.mkdir(parents=True, exist_ok=True)
    page = eval_dir / "index.html"
    page.write_text(_page(title, body), encoding="utf-8")
    return page


# --------------------------------------------------------------------------- evaluations


def _png(name: str) -> str:
    """The file name an image is written under: its test image's, as PNG (lossless)."""
    return f"{pathlib.Path(name).stem}.png"


PAGE_FILES = ("index.html", "metrics.json", "metrics.csv")


def evaluation_files(
    evaluation: Any, max_sheet_rows: int = 8, max_grid_rows: int = 16
) -> tuple[dict[str, np.ndarray], list[Grid]]:
    """The images of an `evaluation.Evaluation`'s report, {relative path: image}, and its
    grids (which show some of them).

    Per direction: DIR.png, a sheet of rows input | translation | reconstruction [| truth]
    whose tiles are enlarged for people (`sheets.grid`: nearest neighbour, whole factor, at
    least `sheets.MIN_TILE` px); DIR/NAME.png, every translation at the model's size (PNG:
    lossless); DIR/{input,truth,reconstruction}/NAME.png, the grid's other images.
    """
    files, grids = {}, []
    for direction, o in evaluation.outputs.items():
        for name, image in zip(o.names, o.translations, strict=True):
            files[f"{direction}/{_png(name)}"] = image
        sheet = [c for c in (o.inputs, o.translations, o.reconstructions, o.truth) if c is not None]
        rows = [[c[i] for c in sheet] for i in range(min(len(o.names), max_sheet_rows))]
        if rows:
            files[f"{direction}.png"] = sheets.grid(rows)
        columns = {"input": o.inputs, "translation": o.translations}
        columns["truth"] = o.truth
        columns["reconstruction"] = o.reconstructions
        columns = {k: v for k, v in columns.items() if v is not None}
        grid_rows = []
        for i, name in enumerate(o.names[:max_grid_rows]):
            paths = []
            for column, images in columns.items():
                if column == "translation":
                    path = f"{direction}/{_png(name)}"
                else:
                    path = f"{direction}/{column}/{_png(name)}"
                    files[path] = images[i]
                paths.append(path)
            grid_rows.append((name, paths))
        src, dst = direction.split("to")
        shown = f"first {len(grid_rows)} of {len(o.names)}"
        title = f"{src} -> {dst} ({shown} test images)"
        size = tuple(o.translations.shape[1:3]) if len(o.names) else None
        grids.append(Grid(title, list(columns), grid_rows, size))
    return files, grids


def write_evaluation(
    evaluation: Any,
    out_dir: str | pathlib.Path,
    title: str = "Evaluation",
    meta: dict[str, str] | None = None,
    up_link: str | None = None,
) -> pathlib.Path:
    """Writes an `evaluation.Evaluation`'s report folder: `PAGE_FILES` (the metrics table,
    then per direction a grid of input | translation | truth | reconstruction) and
    `evaluation_files`; returns index.html's path."""
    out_dir = pathlib.Path(out_dir)
    files, grids = evaluation_files(evaluation)
    for path, image in files.items():
        preprocess.save_image(out_dir / path, image)
    info = dict(meta or {})
    if evaluation.step is not None:
        info.setdefault("step", str(evaluation.step))
    return write_page(out_dir, title, evaluation.metrics, grids, evaluation.notes, info, up_link)
