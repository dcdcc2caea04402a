"""End to end: train, stop, resume bit for bit, evaluate, translate, and CLI errors."""

import os
import pathlib
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest
from PIL import Image

from configs import test as test_config
from jaxfaces.training import checkpoint, loop

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run_cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    c = test_config.get_config()
    c.data.root = str(tmp_path_factory.mktemp("data") / "faces")
    c.data.synthetic.enabled = True
    return c


@pytest.fixture(scope="module")
def straight_run(config, tmp_path_factory):
    """The uninterrupted run; it also traces steps 2-3 (`train.profile`), which the resume
    test shows changes nothing."""
    workdir = tmp_path_factory.mktemp("straight")
    profiled = config.copy_and_resolve_references()
    profiled.train.profile = 2
    return workdir, loop.train(profiled, workdir)


def test_writes_checkpoints_logs_and_samples(straight_run, config):
    workdir, result = straight_run
    assert result["step"] == 6 and not result["stopped"]
    assert sorted(int(p.name) for p in (workdir / "checkpoints").iterdir()) == [3, 6]
    assert list((workdir / "tensorboard").glob("events.out.tfevents.*"))
    assert len(list((workdir / "profile").glob("plugins/profile/*/*.xplane.pb"))) == 1
    for direction in ("AtoB", "BtoA"):
        sheet = np.asarray(Image.open(workdir / "samples" / f"{direction}.png"))
        # 4 test images, 4 columns (input | translation | reconstruction | truth) of 32 px,
        # each shown 4x (128 px, nearest neighbour); the translation files stay at 32 px.
        assert sheet.shape == (4 * 128, 4 * 128, 3)
        translations = sorted((workdir / "samples" / direction).glob("*.png"))
        assert len(translations) == 4
        first = np.asarray(Image.open(translations[0]))
        assert first.shape == (32, 32, 3)
        np.testing.assert_array_equal(sheet[:128:4, 128:256:4], first)
        np.testing.assert_array_equal(sheet[3:128:4, 131:256:4], first)
        metrics = result["eval"][direction]
        assert 0 < metrics["identity_l1"] < 2 and 0 < metrics["l1"] < 2
        assert metrics["ratio"] == pytest.approx(metrics["l1"] / metrics["identity_l1"])


def test_resume_equals_uninterrupted_run(straight_run, config, tmp_path):
    _, straight = straight_run
    first = loop.train(config, tmp_path, stop_after=2)
    assert first["stopped"] and first["step"] == 2
    assert checkpoint.manager(tmp_path / "checkpoints").latest_step() == 2
    resumed = loop.train(config, tmp_path)
    assert resumed["step"] == 6
    leaves_a = jax.tree_util.tree_leaves_with_path(straight["state"])
    leaves_b = jax.tree_util.tree_leaves_with_path(resumed["state"])
    assert [p for p, _ in leaves_a] == [p for p, _ in leaves_b]
    for (path, a), (_, b) in zip(leaves_a, leaves_b, strict=True):
        np.testing.assert_array_equal(a, b, err_msg=jax.tree_util.keystr(path))
    # The pools were filled and the parameters moved: the comparison is not vacuous.
    assert int(resumed["state"]["pool_a"]["count"]) == 3
    first_params = jax.tree.leaves(first["state"]["params"])
    assert any(
        not np.array_equal(a, b)
        for a, b in zip(first_params, jax.tree.leaves(resumed["state"]["params"]), strict=True)
    )


def test_stop_request_flag_is_set_by_sigterm():
    with loop.StopRequested() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.signal == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is not stop._handle


def test_translate_cli_writes_every_file(straight_run, config, tmp_path):
    workdir, _ = straight_run
    inputs = tmp_path / "in"
    inputs.mkdir()
    rng = np.random.default_rng(0)
    sizes = {"a.png": (32, 32), "odd.jpg": (30, 42), "big.bmp": (64, 48)}
    for name, (h, w) in sizes.items():
        Image.fromarray(rng.integers(0, 256, (h, w, 3), np.uint8)).save(inputs / name)
    (inputs / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    r = run_cli(
        "translate.py",
        f"--ckpt={workdir}",
        "--direction=BtoA",
        f"--input={inputs}",
        f"--output={out}",
        "--sheet",
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "at the trained scale: shorter side 36 px" in r.stdout
    for name, (h, w) in sizes.items():
        assert Image.open(out / name).size == (w, h)
    assert not (out / "broken.png").exists()
    assert "broken.png" in r.stdout
    assert (out / "sheet_000.png").is_file()
    # --size and --step: a fixed size from an earlier checkpoint.
    r = run_cli(
        "translate.py",
        f"--ckpt={workdir}",
        "--step=3",
        f"--input={inputs}/a.png",
        f"--output={tmp_path / 'out2'}",
        "--size=16",
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert Image.open(tmp_path / "out2" / "a.png").size == (16, 16)


def test_translation_is_at_the_trained_scale_by_default(straight_run, config, tmp_path):
    """A 4x larger input is translated as the input resized to the training size (the
    config's load_size, 36), translated, resized back; --scale=native translates it at 144 px."""
    from jaxfaces import data as data_lib
    from jaxfaces import inference

    workdir, _ = straight_run
    big = np.random.default_rng(1).integers(0, 256, (144, 144, 3), np.uint8)
    Image.fromarray(big).save(tmp_path / "big.png")
    translator = inference.load_translators(workdir)[0]("AtoB")
    assert translator.trained_size == config.data.load_size == 36
    small = inference.resize(big, 36, 36)
    y = data_lib.to_uint8(translator(data_lib.to_float(small)[None])[0])
    expected = inference.resize(y, 144, 144)
    by_mode = {}
    for scale in ("trained", "native"):
        out = tmp_path / scale
        inference.translate_files(translator, [tmp_path / "big.png"], out, scale=scale)
        by_mode[scale] = np.asarray(Image.open(out / "big.png"))
        assert by_mode[scale].shape == big.shape
    np.testing.assert_array_equal(by_mode["trained"], expected)
    assert np.abs(by_mode["native"].astype(int) - expected).mean() > 1.0
    assert inference.working_size(90, 120, None, 4, 36) == (36, 48)  # Aspect kept.
    assert inference.working_size(90, 120, 16, 4, 36) == (16, 16)  # --size wins.
    with pytest.raises(ValueError, match="--scale must be one of trained, native"):
        inference.translate_files(translator, [tmp_path / "big.png"], tmp_path, scale="x")


def test_translate_cli_errors_name_the_problem(straight_run, tmp_path):
    workdir, _ = straight_run
    r = run_cli(
        "translate.py",
        f"--ckpt={workdir}",
        f"--input={tmp_path}/nothing*.png",
        f"--output={tmp_path}",
    )
    assert r.returncode == 2 and "nothing*.png" in r.stderr
    r = run_cli(
        "translate.py",
        f"--ckpt={tmp_path}",
        f"--input={workdir}/samples/AtoB.png",
        f"--output={tmp_path}",
    )
    assert r.returncode == 2 and "no checkpoint" in r.stderr
    r = run_cli(
        "translate.py",
        f"--ckpt={workdir}",
        "--step=5",
        f"--input={workdir}/samples/AtoB.png",
        f"--output={tmp_path}",
    )
    assert r.returncode == 2 and "available: [3, 6]" in r.stderr


def test_misspelt_config_field_is_an_error_naming_it(tmp_path):
    r = run_cli(
        "train.py", "--config=configs/test.py", f"--workdir={tmp_path}", "--config.data.sizee=16"
    )
    assert r.returncode != 0 and "sizee" in r.stderr


def test_non_finite_loss_stops_training_and_saves_nothing_non_finite(config, tmp_path):
    """NaN images at step 5 (the loop's test hook): the log at step 6 stops the run with the
    step and the terms named; the checkpoint of step 3 stays the newest, and is finite."""
    c = config.copy_and_resolve_references()
    c.train.debug_nan_at_step = 5
    c.train.eval_every = 0
    with pytest.raises(loop.NonFiniteError, match=r"non-finite loss/.* at step 6") as e:
        loop.train(c, tmp_path)
    assert "newest checkpoint, step 3, is kept" in str(e.value)
    assert sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir()) == [3]
    _, state, step = checkpoint.load(tmp_path)
    assert step == 3
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(state) if x.dtype.kind == "f")

    # Caught before a checkpoint that is not a log step: nothing is saved at all.
    c.train.debug_nan_at_step, c.train.log_every = 3, 5
    with pytest.raises(loop.NonFiniteError, match=r"at step 3 .*no checkpoint yet"):
        loop.train(c, tmp_path / "second")
    assert not list((tmp_path / "second" / "checkpoints").iterdir())
