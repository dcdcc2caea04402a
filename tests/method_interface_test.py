"""The method interface: registration, stages, and a method defined outside jaxfaces
(tests/toy_method.py) trained by the real loop, evaluated by evaluate.py and translated by
translate.py without any edit of shared code."""

import json
import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest
import toy_method
from PIL import Image

from configs import test as test_config
from jaxfaces import methods
from jaxfaces.methods import base, cyclegan
from jaxfaces.training import checkpoint, loop

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_make_stages_and_stage_at():
    stages = base.make_stages(("vae", 3), ("skip", 0), ("gan", 4))
    assert [(s.name, s.index, s.start, s.stop) for s in stages] == [
        ("vae", 0, 0, 3),
        ("skip", 1, 3, 3),
        ("gan", 2, 3, 7),
    ]
    assert [base.stage_at(stages, k).name for k in range(8)] == ["vae"] * 3 + ["gan"] * 5
    with pytest.raises(ValueError, match="negative"):
        base.make_stages(("a", -1))
    with pytest.raises(ValueError, match="repeat"):
        base.make_stages(("a", 1), ("a", 2))
    assert base.single_stage(test_config.get_config()) == (base.Stage("train", 0, 0, 6),)


def test_registry_by_call_by_import_path_and_errors():
    assert methods.get_method("cyclegan") is cyclegan.METHOD
    with pytest.raises(ValueError, match=r"unknown config.method 'nope'; valid: .*cyclegan"):
        methods.get_method("nope")
    with pytest.raises(ValueError, match="cannot import"):
        methods.get_method("no_such_module_here:METHOD")
    with pytest.raises(TypeError, match="Method"):
        methods.register("bad", object())
    assert methods.register("toy_by_call", toy_method.METHOD) is toy_method.METHOD
    assert methods.get_method("toy_by_call") is toy_method.METHOD
    assert methods.get_method("toy_method:METHOD") is toy_method.METHOD


def test_translate_is_keyed_on_the_whole_config():
    """Two configs of one method that differ outside `model` get their own programs."""
    from jaxfaces import evaluation

    a = test_config.get_config()
    b = test_config.get_config()
    b.seed = 7
    assert evaluation._compiled(a) is evaluation._compiled(a)
    assert evaluation._compiled(a)[0] is not evaluation._compiled(b)[0]


@pytest.fixture(scope="module")
def toy_config(tmp_path_factory):
    config = toy_method.add_config(test_config.get_config())
    config.data.root = str(tmp_path_factory.mktemp("faces"))
    config.data.synthetic.enabled = True
    config.train.eval_every = 0
    config.train.ckpt_every = 100
    return config


@pytest.fixture(scope="module")
def straight(toy_config, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("toy_straight")
    return workdir, loop.train(toy_config, workdir)


def test_two_stages_run_in_order_and_checkpoint_at_each_end(straight):
    workdir, result = straight
    assert result["step"] == 6 and not result["stopped"]
    # Each stage's end is checkpointed (ckpt_every is past the run).
    assert sorted(int(p.name) for p in (workdir / "checkpoints").iterdir()) == [3, 6]
    _, after_mean, _ = checkpoint.load(workdir, 3)
    for d in base.DIRECTIONS:
        np.testing.assert_array_equal(after_mean["params"][d]["w"], np.eye(3))  # Stage 1.
        assert np.abs(after_mean["params"][d]["b"]).max() > 0
        assert np.abs(result["state"]["params"][d]["w"] - np.eye(3)).max() > 0  # Stage 2.


def test_stopped_inside_stage_two_and_resumed_equals_uninterrupted(straight, toy_config, tmp_path):
    _, expected = straight
    first = loop.train(toy_config, tmp_path, stop_after=4)  # Inside stage 2.
    assert first["stopped"] and first["step"] == 4
    resumed = loop.train(toy_config, tmp_path)
    assert resumed["step"] == 6 and not resumed["stopped"]
    for got, want in zip(
        jax.tree.leaves(resumed["state"]), jax.tree.leaves(expected["state"]), strict=True
    ):
        np.testing.assert_array_equal(got, want)


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}"}
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def test_evaluate_and_translate_clis_serve_a_method_from_outside(straight, tmp_path):
    workdir, result = straight
    r = _cli("evaluate.py", f"--ckpt={workdir}", f"--report={tmp_path / 'report'}")
    assert r.returncode == 0, r.stderr[-3000:]
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert metrics["AtoB"]["ratio"] == pytest.approx(result["eval"]["AtoB"]["ratio"], rel=1e-5)
    assert "AtoB: no discriminator in the checkpoint" in r.stdout  # The toy has no critic.

    faces = toy_faces(workdir)
    r = _cli(
        "translate.py",
        f"--ckpt={workdir}",
        "--direction=BtoA",
        f"--input={faces}",
        f"--output={tmp_path / 'out'}",
        "--scale=native",  # Pixel by pixel (the trained scale resizes 32 px to 36 and back).
    )
    assert r.returncode == 0, r.stderr[-3000:]
    name = sorted(faces.iterdir())[0].name
    got = np.asarray(Image.open(tmp_path / "out" / name), np.float32) / 127.5 - 1
    x = np.asarray(Image.open(faces / name), np.float32) / 127.5 - 1
    params = result["state"]["params"]["BtoA"]
    want = np.clip(x @ params["w"] + params["b"], -1, 1)
    assert np.abs(got - want).max() <= 1 / 127.5 + 1e-6  # 8-bit rounding.


def toy_faces(workdir: pathlib.Path) -> pathlib.Path:
    """The built-in test images of domain B the toy run was trained beside."""
    config, _, _ = checkpoint.load(workdir)
    return pathlib.Path(config.data.root) / "testB"
