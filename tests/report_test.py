"""The HTML report writer: table, images, escaping, index of steps, and real rendering."""

import csv
import html.parser
import json
import pathlib
import shutil
import subprocess
import urllib.parse

import numpy as np
import pytest
from PIL import Image

from jaxfaces import report

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def screenshot(page: pathlib.Path, out: pathlib.Path, width: int, height: int) -> np.ndarray:
    """The page rendered by headless Chromium, as a uint8 RGB array (skips without one)."""
    browser = next((b for b in map(shutil.which, BROWSERS) if b), None)
    if browser is None:
        pytest.skip("no Chromium found (make test installs the Debian package)")
    args = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    args += [f"--screenshot={out}", f"--window-size={width},{height}", page.resolve().as_uri()]
    r = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert out.is_file(), r.stderr[-2000:]
    return np.asarray(Image.open(out).convert("RGB"))


class Page(html.parser.HTMLParser):
    """Collects the cells of each table, the image sources and the links of a page."""

    def __init__(self, text: str):
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.images: list[str] = []
        self.links: list[str] = []
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(urllib.parse.unquote(attrs["src"]))
        elif tag == "a":
            self.links.append(urllib.parse.unquote(attrs["href"]))
        elif tag == "br" and self._cell is not None:
            self._cell.append(" ")

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


RESULTS = {
    "AtoB": {"l1": 0.25, "identity_l1": 0.5, "ratio": 0.5, "cycle_l1": 0.125, "kid": 0.0042},
    "BtoA": {"l1": 0.375, "identity_l1": 0.5, "ratio": 0.75, "custom": 7.0},
}
COLOURS = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}


def _page_with_images(out: pathlib.Path, title: str = "Report") -> pathlib.Path:
    """A page whose one grid row shows a pure red, green and blue 32 px image."""
    paths = []
    for name, colour in COLOURS.items():
        path = f"AtoB/{name}/{name} #1.png"  # A space and a '#': must be percent-encoded.
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((32, 32, 3), colour, np.uint8)).save(out / path)
        paths.append(path)
    grid = report.Grid("A -> B", list(COLOURS), [("face <1>.png", paths)])
    notes = ["FID/KID skipped: no weights & no <b>bold</b> claims"]
    return report.write_page(out, title, RESULTS, [grid], notes, {"step": "12"})


def test_page_has_the_metrics_table_escaped_text_and_existing_images(tmp_path):
    page = _page_with_images(tmp_path, title="Run <script>alert(1)</script>")
    text = page.read_text()
    assert "<script>" not in text and "<b>bold</b>" not in text
    assert "&lt;script&gt;" in text and "face &lt;1&gt;.png" in text
    parsed = Page(text)
    metrics, grid = parsed.tables
    assert metrics[0] == ["metric", "AtoB", "BtoA", "better"]
    rows = {row[0]: row[1:] for row in metrics[1:]}
    assert rows["L1 to truth"] == ["0.2500", "0.3750", "lower"]
    assert rows["L1 ratio to the baseline"] == ["0.5000", "0.7500", "lower"]
    assert rows["KID to the real target set (x1e3)"] == ["4.2000", "-", "lower"]
    assert rows["custom"] == ["-", "7.0000", ""]  # Unknown metrics are shown by their key.
    assert [row[0] for row in metrics[1:4]] == [
        "L1 to truth",
        "L1 of the input to truth (baseline)",
        "L1 ratio to the baseline",
    ]
    assert grid[0] == ["", "red", "green", "blue"] and grid[1][0] == "face <1>.png"
    assert len(parsed.images) == 3
    for src in parsed.images:
        assert (tmp_path / src).is_file(), src
    assert ' #1.png"' not in text  # Percent-encoded in the src attributes.


def test_metrics_json_and_csv_hold_the_same_values(tmp_path):
    _page_with_images(tmp_path)
    assert json.loads((tmp_path / "metrics.json").read_text()) == RESULTS
    with (tmp_path / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["direction"] for r in rows] == ["AtoB", "BtoA"]
    for row in rows:
        want = RESULTS[row.pop("direction")]
        assert {k: float(v) for k, v in row.items() if v} == want


def test_console_table_is_one_row_per_metric():
    lines = report.format_table(RESULTS).splitlines()
    assert lines[0].split() == ["metric", "AtoB", "BtoA"]
    cells = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert list(cells) == ["l1", "identity_l1", "ratio", "cycle_l1", "kid", "custom"]
    assert cells["ratio"] == ["0.5000", "0.7500"] and cells["cycle_l1"] == ["0.1250", "-"]
    assert report.format_table({}) == "(no metrics)"


def test_index_links_every_step_in_order_with_headline_metrics(tmp_path):
    for step, l1 in ((400, 0.3), (1200, 0.2), (800, 0.25)):
        results = {"AtoB": {"l1": l1, "swd": 10.0 * l1}, "BtoA": {"l1": l1 + 0.01}}
        report.write_page(report.step_dir(tmp_path, step), f"step {step}", results)
    (tmp_path / "step_000900").mkdir()  # An evaluation that never finished: no page.
    parsed = Page(report.write_index(tmp_path, "Evaluations of <run>").read_text())
    assert parsed.links == [f"step_{s:06d}/index.html" for s in (400, 800, 1200)]
    for link in parsed.links:
        assert (tmp_path / link).is_file()
    (table,) = parsed.tables
    assert table[0] == [
        "step",
        "AtoB L1 to truth",
        "AtoB SWD to the real target set (x1e3)",
        "BtoA L1 to truth",
    ]
    assert table[1:] == [
        ["400", "0.3000", "3.0000", "0.3100"],
        ["800", "0.2500", "2.5000", "0.2600"],
        ["1200", "0.2000", "2.0000", "0.2100"],
    ]


def test_page_renders_in_headless_chromium(tmp_path):
    page = _page_with_images(tmp_path)
    shot = screenshot(page, tmp_path / "shot.png", 900, 700)
    assert shot.shape == (700, 900, 3)
    # Each 32 px image is shown at 128 x 128: its exact colour fills about that many pixels
    # (a missing image would show a small broken-image icon instead).
    for name, colour in COLOURS.items():
        count = int(np.all(shot == colour, axis=-1).sum())
        assert count >= 0.9 * 128 * 128, (name, count)
    # The table's text is drawn: dark pixels exist outside the images.
    assert int((shot.max(axis=-1) < 80).sum()) > 500


def _evaluation(n: int = 3, h: int = 24, w: int = 32):
    """An `evaluation.Evaluation`-like value: one direction of n solid-colour images per
    column (the report reads only these fields)."""
    from types import SimpleNamespace

    levels = np.linspace(-1, 1, 4 * n, dtype=np.float32).reshape(4, n, 1, 1, 1)
    columns = [np.broadcast_to(v, (n, h, w, 3)) for v in levels]
    inputs, translations, reconstructions, truth = columns
    outputs = SimpleNamespace(
        names=[f"face_{i}.jpg" for i in range(n)],
        inputs=inputs,
        translations=translations,
        reconstructions=reconstructions,
        truth=truth,
    )
    return SimpleNamespace(outputs={"AtoB": outputs}, metrics=RESULTS, notes=[], step=7)


def test_evaluation_sheet_and_grid_show_tiles_enlarged_files_keep_their_size(tmp_path):
    evaluation = _evaluation()
    files, (grid,) = report.evaluation_files(evaluation, max_sheet_rows=2)
    # 24 x 32 px tiles: the smallest whole factor reaching 128 px is 6 (144 x 192 px).
    sheet = files["AtoB.png"]
    assert sheet.shape == (2 * 144, 4 * 192, 3)
    o = evaluation.outputs["AtoB"]
    for row in range(2):
        for col, images in enumerate((o.inputs, o.translations, o.reconstructions, o.truth)):
            tile = sheet[row * 144 : (row + 1) * 144, col * 192 : (col + 1) * 192]
            np.testing.assert_array_equal(tile, np.broadcast_to(images[row, 0, 0], tile.shape))
    assert files["AtoB/face_0.png"].shape == (24, 32, 3)  # Translations at the model's size.
    assert grid.image_size == (24, 32)
    page = report.write_evaluation(evaluation, tmp_path)
    text = page.read_text()
    assert text.count('width="192" height="144"') == 3 * 4  # Every image of the grid.
    assert Image.open(tmp_path / "AtoB" / "face_0.png").size == (32, 24)
    assert Image.open(tmp_path / "AtoB.png").size == (4 * 192, 3 * 144)  # Default: 8 rows.
    shot = screenshot(page, tmp_path / "shot.png", 1100, 1400)
    # The input of image 1 (one grey level) fills its 144 x 192 px tile on the page.
    colour = np.asarray(Image.open(tmp_path / "AtoB" / "input" / "face_1.png"))[0, 0]
    assert int(np.all(shot == colour, axis=-1).sum()) >= 0.9 * 144 * 192
