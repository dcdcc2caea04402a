"""Evaluation end to end: during training, evaluate.py on its checkpoint, and its errors."""

import contextlib
import csv
import functools
import html.parser
import importlib.util
import io
import json
import math
import pathlib
import shutil
import subprocess
import sys
import urllib.parse

import jax
import numpy as np
import pytest
import tensorflow as tf
from absl import flags
from PIL import Image

from configs import test as test_config
from jaxfaces import evaluation as evaluate
from jaxfaces import metrics
from jaxfaces.methods import base, cyclegan
from jaxfaces.training import checkpoint, loop

ROOT = pathlib.Path(__file__).resolve().parents[1]
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
# What evaluate.py computes on the built-in data with a training checkpoint (no FID / KID
# without Inception weights).
EXPECTED = {
    "l1",
    "identity_l1",
    "ratio",
    "psnr",
    "ssim",
    "cycle_l1",
    "swd",
    "identity_swd",
    "checkerboard",
    "target_checkerboard",
    "adversarial_accuracy",
}


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """evaluate.py as a program."""
    command = [sys.executable, "evaluate.py", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


@functools.cache
def _entry_point():
    spec = importlib.util.spec_from_file_location("evaluate_entry_point", ROOT / "evaluate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_main(*args: str) -> tuple[int, str, str]:
    """evaluate.py's main() in this process, whose compiled programs are warm already:
    (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    entry_point = _entry_point()  # Defines the flags.
    argv = flags.FLAGS(["evaluate.py", *args])
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = entry_point.main(argv)
    finally:
        flags.FLAGS.unparse_flags()
    return rc, out.getvalue(), err.getvalue()


def pixels(path: pathlib.Path) -> np.ndarray:
    """An image file as float64 in [-1, 1], read independently of jaxfaces."""
    return np.asarray(Image.open(path).convert("RGB"), np.float64) / 127.5 - 1.0


class Page(html.parser.HTMLParser):
    """Table cells (per table, per row), image sources and link targets of a page."""

    def __init__(self, text: str):
        super().__init__()
        self.tables, self.images, self.links, self._cell = [], [], [], None
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

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture(scope="module", autouse=True)
def no_inception_weights(tmp_path_factory):
    """FID / KID skipped (Inception on the CPU is slow): the weights path names no file."""
    missing = tmp_path_factory.mktemp("weights") / "no_inception.msgpack"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JAXFACES_INCEPTION", str(missing))
        yield missing


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A configs/test.py run on the built-in data: evaluated at steps 3 and 6 (eval_every 3)."""
    config = test_config.get_config()
    root = tmp_path_factory.mktemp("data") / "faces"
    config.data.root = str(root)
    config.data.synthetic.enabled = True
    workdir = tmp_path_factory.mktemp("run")
    return workdir, root, loop.train(config, workdir)


@pytest.fixture(scope="module")
def cli_report(trained, tmp_path_factory):
    workdir, _, _ = trained
    out = tmp_path_factory.mktemp("report")
    return run_main(f"--ckpt={workdir}", f"--report={out}"), out


def test_training_evaluates_every_eval_every_steps(trained):
    workdir, _, result = trained
    eval_dir = workdir / "eval"
    pages = Page((eval_dir / "index.html").read_text())
    assert pages.links == ["step_000003/index.html", "step_000006/index.html"]
    by_step = {}
    for step in (3, 6):
        folder = eval_dir / f"step_{step:06d}"
        by_step[step] = json.loads((folder / "metrics.json").read_text())
        assert set(by_step[step]) == {"AtoB", "BtoA"}
        for m in by_step[step].values():
            assert set(m) == EXPECTED and all(math.isfinite(v) for v in m.values())
        assert Page((folder / "index.html").read_text()).links[0] == "../index.html"
    # Training moved the generators between the two evaluations.
    assert by_step[3]["AtoB"]["l1"] != by_step[6]["AtoB"]["l1"]
    # The end of training reports the last evaluation, in samples/ too.
    assert result["eval"] == by_step[6]
    assert json.loads((workdir / "samples" / "metrics.json").read_text()) == by_step[6]
    # And the metrics reached TensorBoard at both steps.
    logged = {}
    for events in (workdir / "tensorboard").glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(events)):
            for value in event.summary.value:
                if value.tag.startswith("eval/"):
                    logged.setdefault(value.tag, {})[event.step] = float(
                        tf.make_ndarray(value.tensor)
                    )
    assert set(logged) == {f"eval/{d}/{k}" for d in ("AtoB", "BtoA") for k in EXPECTED}
    for direction, key in (("AtoB", "l1"), ("BtoA", "swd")):
        for step in (3, 6):
            want = by_step[step][direction][key]
            assert logged[f"eval/{direction}/{key}"][step] == pytest.approx(want, rel=1e-6)


def test_evaluate_cli_metrics_match_the_written_files(trained, cli_report):
    workdir, root, _ = trained
    (rc, stdout, stderr), out = cli_report
    assert rc == 0, stderr[-3000:]
    assert "adversarial_accuracy" in stdout and "ratio" in stdout
    assert "FID/KID skipped: no FID Inception weights at" in stdout
    results = json.loads((out / "metrics.json").read_text())
    with (out / "metrics.csv").open() as f:
        rows = {row.pop("direction"): row for row in csv.DictReader(f)}
    for direction, src in {"AtoB": "A", "BtoA": "B"}.items():
        m = results[direction]
        assert set(m) == EXPECTED and all(math.isfinite(v) for v in m.values())
        assert {k: float(v) for k, v in rows[direction].items()} == m
        assert 0 <= m["adversarial_accuracy"] <= 1 and m["swd"] > 0
        names = sorted(p.name for p in (root / f"test{src}").glob("*.png"))
        assert len(names) == 4
        fake = np.stack([pixels(out / direction / n) for n in names])
        truth = np.stack([pixels(root / f"truth{direction}" / n) for n in names])
        inputs = np.stack([pixels(root / f"test{src}" / n) for n in names])
        rec = np.stack([pixels(out / direction / "reconstruction" / n) for n in names])
        assert m["l1"] == pytest.approx(np.abs(fake - truth).mean(), rel=1e-5)
        assert m["identity_l1"] == pytest.approx(np.abs(inputs - truth).mean(), rel=1e-5)
        assert m["cycle_l1"] == pytest.approx(np.abs(rec - inputs).mean(), rel=1e-5)
        mse = ((fake - truth) ** 2).mean(axis=(1, 2, 3))
        assert m["psnr"] == pytest.approx(np.mean(10 * np.log10(4 / mse)), rel=1e-4)
        real = np.stack([pixels(p) for p in sorted((root / f"test{'BA'[src == 'B']}").glob("*"))])
        grid = metrics.checkerboard(fake).mean()
        assert m["checkerboard"] == pytest.approx(float(grid), rel=1e-5)
        assert m["target_checkerboard"] == pytest.approx(float(metrics.checkerboard(real).mean()))
    # The same function as the end of training: the same numbers for the same checkpoint.
    final = json.loads((workdir / "samples" / "metrics.json").read_text())
    assert final.keys() == results.keys()
    for direction in results:
        assert results[direction] == pytest.approx(final[direction], rel=1e-6)


def test_evaluate_cli_report_page_lists_metrics_and_existing_images(
    cli_report, no_inception_weights
):
    (rc, _, stderr), out = cli_report
    assert rc == 0, stderr[-3000:]
    results = json.loads((out / "metrics.json").read_text())
    text = (out / "index.html").read_text()
    assert f"FID/KID skipped: no FID Inception weights at {no_inception_weights}" in text
    page = Page(text)
    metrics, grid_ab, grid_ba = page.tables
    assert metrics[0] == ["metric", "AtoB", "BtoA", "better"]
    rows = {row[0]: row[1:3] for row in metrics[1:]}
    assert len(rows) == len(EXPECTED)
    assert rows["L1 to truth"] == [f"{results[d]['l1']:.4f}" for d in ("AtoB", "BtoA")]
    accuracy = rows["discriminator accuracy, real vs translated"]
    assert accuracy == [f"{results[d]['adversarial_accuracy']:.4f}" for d in ("AtoB", "BtoA")]
    for grid in (grid_ab, grid_ba):
        assert grid[0] == ["", "input", "translation", "truth", "reconstruction"]
        assert [row[0] for row in grid[1:]] == [f"00000{i}.png" for i in range(4)]
    assert len(page.images) == 2 * 4 * 4
    for src in page.images:
        assert not pathlib.Path(src).is_absolute() and (out / src).is_file(), src


def test_evaluate_cli_report_renders_in_headless_chromium(cli_report):
    _, out = cli_report
    browser = next((b for b in map(shutil.which, BROWSERS) if b), None)
    if browser is None:
        pytest.skip("no Chromium found (make test installs the Debian package)")
    shot_path = out.parent / f"{out.name}_shot.png"
    args = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    args += [f"--screenshot={shot_path}", "--window-size=1000,1400"]
    r = subprocess.run(
        [*args, (out / "index.html").as_uri()], capture_output=True, text=True, timeout=120
    )
    assert shot_path.is_file(), r.stderr[-2000:]
    shot = np.asarray(Image.open(shot_path).convert("RGB"))
    assert shot.shape == (1400, 1000, 3)
    # The metrics table (dark text on light cells) and the face images (many colours).
    assert int((shot.max(axis=-1) < 80).sum()) > 2000
    colours = np.unique(shot.reshape(-1, 3), axis=0)
    assert len(colours) > 2000, len(colours)
    # The input images' own colours are on screen: the first test image's distinct colours
    # mostly appear (it is shown upscaled 4x without smoothing).
    first = np.asarray(Image.open(out / "AtoB" / "input" / "000000.png").convert("RGB"))
    own = {tuple(c) for c in first.reshape(-1, 3)}
    seen = {tuple(c) for c in colours}
    assert len(own & seen) > 0.8 * len(own)


def test_evaluate_with_own_folders_and_a_generator_only_checkpoint(trained, tmp_path):
    workdir, root, _ = trained
    config, state, _ = checkpoint.load(workdir)
    # A converted checkpoint holds generators only, and its config names no data.
    config.data.root = ""
    config.data.synthetic.enabled = False
    generators = {k: state["params"][k] for k in ("g_a", "g_b")}
    mngr = checkpoint.manager(tmp_path / "zoo")
    checkpoint.save(mngr, 0, {"step": np.zeros((), np.int32), "params": generators}, config)
    mngr.wait_until_finished()
    mngr.close()
    with pytest.raises(ValueError, match="no test images"):
        evaluate.evaluate_checkpoint(tmp_path / "zoo")

    own = tmp_path / "ownA"  # The same images (compiled shapes) under other names.
    own.mkdir()
    for i, path in enumerate(sorted((root / "testA").iterdir())):
        shutil.copy(path, own / f"face_{i}.png")
    evaluation, page = evaluate.evaluate_checkpoint(
        tmp_path / "zoo",
        tmp_path / "report",
        test={"a": str(own), "b": str(root / "testB")},
        truth={"BtoA": str(root / "truthBtoA")},
    )
    assert page == tmp_path / "report" / "index.html" and page.is_file()
    ab, ba = evaluation.metrics["AtoB"], evaluation.metrics["BtoA"]
    # No truth for the own A folder, no discriminators in the checkpoint.
    assert set(ab) == {"cycle_l1", "swd", "identity_swd", "checkerboard", "target_checkerboard"}
    assert set(ba) == EXPECTED - {"adversarial_accuracy"}
    assert evaluation.outputs["AtoB"].names == [f"face_{i}.png" for i in range(4)]
    assert (tmp_path / "report" / "AtoB" / "face_3.png").is_file()
    assert "AtoB: no discriminator in the checkpoint" in evaluation.notes
    assert "AtoB: no true translations known: no L1/PSNR/SSIM" in evaluation.notes
    # Same generators, same B images and truth: BtoA's L1 equals the training checkpoint's.
    full = json.loads((workdir / "samples" / "metrics.json").read_text())
    assert ba["l1"] == pytest.approx(full["BtoA"]["l1"], rel=1e-6)
    assert "no discriminator in the checkpoint" in page.read_text()


def test_adversarial_accuracy_packs_like_training_and_needs_a_threshold(trained):
    workdir, root, _ = trained
    config, state, _ = checkpoint.load(workdir)
    config.model.discriminator.pack = 2  # PacGAN: D sees each image with the next one.
    d_a = cyclegan.models(config)["d_a"]
    apply = jax.jit(lambda params, x: d_a.apply({"params": params}, x, train=False))
    packed = np.zeros((1, 32, 32, 6), np.float32)
    params = jax.jit(lambda k: d_a.init(k, packed, train=False)["params"])(jax.random.key(1))
    state["params"] = {**state["params"], "d_a": params, "d_b": params}
    evaluator = evaluate.Evaluator(config)
    evaluation = evaluator.compute(state)
    accuracy = evaluation.metrics["AtoB"]["adversarial_accuracy"]
    # Independently: D_A (it learns domain B) on packed real B images and translations.
    real_b = np.stack([pixels(p) for p in sorted((root / "testB").glob("*.png"))])
    fake_b = evaluation.outputs["AtoB"].translations
    outputs = [
        np.asarray(apply(params, np.concatenate([x, np.roll(x, -1, axis=0)], -1).astype("f4")))
        for x in (real_b, fake_b)
    ]
    correct = (outputs[0] > 0.5).sum() + (outputs[1] < 0.5).sum()  # LSGAN targets 1 and 0.
    assert accuracy == pytest.approx(correct / (outputs[0].size + outputs[1].size), abs=1e-6)
    # A critic (wgan-gp) has no real / fake threshold: skipped, and said so.
    config.loss.gan_mode = "wgan-gp"
    evaluation = evaluator.compute(state)
    assert "adversarial_accuracy" not in evaluation.metrics["AtoB"]
    assert any("'wgan-gp' has no real / fake decision threshold" in n for n in evaluation.notes)


def test_evaluate_cli_errors_name_the_problem(trained, tmp_path):
    workdir, _, _ = trained
    r = run_cli(f"--ckpt={tmp_path / 'missing_run'}")
    assert r.returncode == 2 and "missing_run" in r.stderr, r.stderr[-2000:]
    r = run_cli(f"--ckpt={workdir}", f"--a={tmp_path / 'no_such_A'}")
    assert r.returncode == 2 and "--a" in r.stderr and "no_such_A" in r.stderr
    rc, _, stderr = run_main(f"--ckpt={tmp_path}")  # A folder without checkpoints.
    assert rc == 2 and "no checkpoint" in stderr, stderr[-2000:]


def test_report_never_replaces_a_file_jaxfaces_did_not_write(trained, tmp_path):
    workdir, _, _ = trained
    report = tmp_path / "report"
    report.mkdir()
    (report / "index.html").write_text("my own page")
    with pytest.raises(ValueError, match=r"index\.html.*--overwrite"):
        evaluate.evaluate_checkpoint(workdir, report)
    assert (report / "index.html").read_text() == "my own page"
    assert sorted(p.name for p in report.iterdir()) == ["index.html"]  # Nothing written.
    rc, _, stderr = run_main(f"--ckpt={workdir}", f"--report={report}")
    assert rc == 2 and stderr.count("\n") == 1 and "index.html" in stderr, stderr[-2000:]

    _, page = evaluate.evaluate_checkpoint(workdir, report, overwrite=True)
    assert "Metrics" in page.read_text()
    _, page = evaluate.evaluate_checkpoint(workdir, report)  # Its own files: replaced.
    assert (report / "metrics.json").is_file()


def test_a_conditional_critic_judges_input_truth_pairs_against_input_translation(monkeypatch):
    """pix2pix-style: real = (input, true translation), fake = (input, translation); the
    target domain's other test images are not used, and without truth there is no accuracy."""
    calls = []

    def logits(variables, images, inputs):
        calls.append((images, inputs))
        return np.mean(images - inputs, axis=(1, 2, 3))  # Real above 0.

    critic = base.Critic(lambda state, d: {"d": d}, logits, threshold=0.0, conditional=True)
    monkeypatch.setattr(evaluate, "_compiled", lambda config: (None, critic))
    evaluator = object.__new__(evaluate.Evaluator)  # Only `config` is read.
    evaluator.config = None
    inputs = np.zeros((4, 2, 2, 3), np.float32)
    truth = np.full_like(inputs, 0.5)
    fake = np.stack([np.full((2, 2, 3), v, np.float32) for v in (0.5, -0.5, -0.5, -0.5)])
    other = np.full_like(inputs, -9.0)  # Real images of the target domain: not the pairs.
    notes = []
    accuracy = evaluator._adversarial_accuracy({}, "AtoB", other, fake, notes, inputs, truth)
    assert accuracy == pytest.approx((4 + 3) / 8)  # Every real pair right, 3 fakes of 4.
    assert [(a is truth, b is inputs) for a, b in calls[:1]] == [(True, True)]
    assert calls[1][0] is fake and calls[1][1] is inputs and not notes
    assert evaluator._adversarial_accuracy({}, "AtoB", other, fake, notes, inputs, None) is None
    assert notes == [
        "AtoB: no adversarial accuracy: the discriminator judges (input, image) pairs and the "
        "true translations are not known"
    ]
