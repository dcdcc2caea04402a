"""Every `configs/*_demo.py` works unchanged on another data set given as folders.

The demos promise (in their docstrings and the issues that asked for them) to run on any
data set in the built-in layout, or as separate folders with
`--config.data.root= --config.data.a=... --config.data.b=... --config.data.test_a=...
--config.data.test_b=...` plus the truth folders, including images of another size (resized
to the config's). Here: the built-in faces written at 48 px, given as folders, one step of
each demo's own networks, then the final evaluation, which must see every test image at the
demo's size and score both directions against their truths.
"""

import importlib
import pathlib

import pytest
from PIL import Image

from jaxfaces.data import synthetic
from jaxfaces.methods import get_method
from jaxfaces.methods.base import DIRECTIONS
from jaxfaces.training import loop

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEMOS = sorted(p.stem for p in (ROOT / "configs").glob("*_demo.py")) + ["demo"]
NUM_TEST = 3


@pytest.fixture(scope="module")
def faces_48(tmp_path_factory) -> pathlib.Path:
    """The built-in faces at 48 px with training pairs (usable paired and unpaired)."""
    return synthetic.ensure_dataset(
        tmp_path_factory.mktemp("faces48"), size=48, num_train=8, num_test=NUM_TEST, paired=True
    )


@pytest.mark.parametrize("name", DEMOS)
def test_demo_config_trains_and_evaluates_on_folders_of_another_size(name, faces_48, tmp_path):
    config = importlib.import_module(f"configs.{name}").get_config()
    size = config.data.size
    assert size != 48  # The images must be resized for this test to mean anything.
    overrides = {
        "root": "",
        "a": faces_48 / "trainA",
        "b": faces_48 / "trainB",
        "test_a": faces_48 / "testA",
        "test_b": faces_48 / "testB",
        "truth_a2b": faces_48 / "truthAtoB",
        "truth_b2a": faces_48 / "truthBtoA",
    }
    for key, value in overrides.items():
        config.data[key] = str(value)
    config.data.synthetic.enabled = False
    config.data.batch_size = 2
    stages = [s for s in ("train", "vae_stage") if s in config]
    for section in stages:
        config[section].num_steps = 1
    config.train.eval_every = 0
    if config.method == "lft":
        config.vgg.weights = "random"  # No ImageNet weights here: the mechanics only.
        config.lft.synthesis.steps = 2  # The per-image optimisation, shortened.

    result = loop.train(config, tmp_path / "run")

    assert result["step"] == len(stages) and not result["stopped"]
    method = get_method(config.method)  # A one-way method (DTN) is scored its one way.
    directions = [d for d in DIRECTIONS if method.translator_variables(result["state"], d)]
    assert directions and sorted(result["eval"]) == sorted(directions)
    for direction in directions:
        m = result["eval"][direction]
        assert m["identity_l1"] > 0.05 and 0 < m["ratio"] < 10, m
        translated = sorted((tmp_path / "run" / "samples" / direction).glob("*.png"))
        assert len(translated) == NUM_TEST
        assert all(Image.open(p).size == (size, size) for p in translated)
