"""Config validation before anything compiles: one rule per case, and the entry points'
`error: MESSAGE` / exit status 2 without a traceback."""

import importlib
import math
import pathlib
import subprocess
import sys

import ml_collections
import pytest

from configs import nst as nst_config
from configs import test as test_config
from jaxfaces import cli, config_check

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = sorted(p.stem for p in (ROOT / "configs").glob("*.py") if p.stem != "__init__")


@pytest.fixture
def config(tmp_path):
    """The test config, reading from an existing (empty) folder."""
    c = test_config.get_config()
    c.data.root = str(tmp_path)
    return c


def set_key(config: ml_collections.ConfigDict, key: str, value) -> None:
    *parents, leaf = key.split(".")
    for part in parents:
        config = config[part]
    with config.unlocked():
        config[leaf] = value


@pytest.mark.parametrize("name", CONFIGS)
def test_every_config_file_passes(name, tmp_path):
    c = importlib.import_module(f"configs.{name}").get_config()
    if "data" in c and not c.data.synthetic.enabled:
        c.data.root = str(tmp_path)  # The configs leave the data source to the command line.
    config_check.check(c)


#: (key, bad value, what the message must say after "config.KEY (VALUE) must be ").
RULES = [
    ("train.num_steps", 0, ">= 1"),
    ("train.num_steps", None, "an integer"),
    ("train.decay_steps", 7, "in [0, config.train.num_steps=6]"),
    ("train.decay_fraction", 1.5, "in [0, 1]"),
    ("train.log_every", 0, ">= 1"),
    ("train.log_images_every", 0, ">= 1"),
    ("train.ckpt_every", -5, ">= 1"),
    ("train.eval_every", -1, ">= 0"),
    ("train.profile", -1, ">= 0"),
    ("train.keep_checkpoints", 0, ">= 1"),
    ("train.dtype", "float16", "one of: float32, bfloat16"),
    ("train.ema_decay", 1.0, "in [0, 1)"),
    ("train.ema_decay", -0.1, "in [0, 1)"),
    ("optim.lr", 0.0, "> 0"),
    ("optim.lr", math.nan, "a number"),
    ("optim.b1", 1.0, "in [0, 1)"),
    ("optim.b2", -0.5, "in [0, 1)"),
    ("data.size", 0, ">= 1"),
    ("data.load_size", 0, ">= 1"),
    ("data.batch_size", 0, ">= 1"),
    ("data.cache_mb", -1, ">= 0"),
]


@pytest.mark.parametrize("key, value, rule", RULES, ids=[f"{k}={v}" for k, v, _ in RULES])
def test_each_bad_value_is_one_line_naming_key_value_and_range(config, key, value, rule):
    set_key(config, key, value)
    with pytest.raises(ValueError) as raised:
        config_check.check(config)
    message = str(raised.value)
    assert message.startswith(f"config.{key} ({value!r}) must be {rule}"), message
    assert "\n" not in message


def test_data_size_above_load_size(config):
    config.data.size = 40
    with pytest.raises(
        ValueError, match=r"data\.size \(40\) must be <= config\.data\.load_size \(36\)"
    ) as raised:
        config_check.check(config)
    assert cli.input_error(raised.value) == str(raised.value)  # A `raise` over several lines.


def test_built_in_data_settings(config, tmp_path):
    config.data.synthetic.enabled = True
    config.data.synthetic.size = 8
    with pytest.raises(ValueError, match=r"config\.data\.synthetic\.size \(8\) must be >= 16"):
        config_check.check(config)
    config.data.synthetic.size, config.data.synthetic.num_train = 32, 0
    with pytest.raises(ValueError, match=r"config\.data\.synthetic\.num_train \(0\) must be >= 1"):
        config_check.check(config)
    config.data.synthetic.num_train, config.data.root = 4, ""
    with pytest.raises(ValueError, match=r"synthetic\.enabled needs config\.data\.root"):
        config_check.check(config)
    config.data.root = str(tmp_path / "not_yet")
    config_check.check(config)  # Written there by the run: it need not exist yet.


def test_data_source_and_folders(config, tmp_path):
    config.data.tfds = "cycle_gan/horse2zebra"
    with pytest.raises(ValueError, match="exactly one data source"):
        config_check.check(config)
    config.data.tfds, config.data.root, config.data.a = "", "", str(tmp_path)
    with pytest.raises(ValueError, match=r"data\.a and config\.data\.b must be set together"):
        config_check.check(config)
    config.data.a = ""
    with pytest.raises(ValueError, match="none is set"):
        config_check.check(config)
    config.data.root = str(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match=r"config\.data\.root: no folder at .*missing"):
        config_check.check(config)
    config.data.root, config.data.test_a = str(tmp_path), str(tmp_path / "no_tests")
    with pytest.raises(FileNotFoundError, match=r"config\.data\.test_a: no folder at"):
        config_check.check(config)


def test_unknown_method(config):
    config.method = "cyclegann"
    with pytest.raises(ValueError, match=r"unknown config\.method 'cyclegann'; valid: .*cyclegan"):
        config_check.check(config)


def test_the_methods_own_check_runs_after_the_shared_sections(config, monkeypatch):
    import jaxfaces.methods

    seen = []

    class Method:
        def check_config(self, c):
            seen.append(c)
            raise ValueError("config.model.generator.name: from the method")

    monkeypatch.setattr(jaxfaces.methods, "get_method", lambda name: Method())
    with pytest.raises(ValueError, match="from the method"):
        config_check.check(config)
    assert seen == [config]
    config.train.num_steps = 0  # The shared sections are checked first.
    with pytest.raises(ValueError, match="num_steps"):
        config_check.check(config)
    assert len(seen) == 1
    monkeypatch.setattr(jaxfaces.methods, "get_method", lambda name: object())
    config.train.num_steps = 6
    config_check.check(config)  # A method without check_config.


def test_real_methods_checks_are_called(tmp_path):
    from configs import lft_demo

    c = lft_demo.get_config()
    c.data.paired = False
    with pytest.raises(ValueError, match="paired"):
        config_check.check(c)
    c = test_config.get_config()
    c.data.root = str(tmp_path)
    c.loss.gan_mode = "lsgann"
    with pytest.raises(ValueError, match="lsgann"):
        config_check.check(c)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("nst.init", "white", "config.nst.init ('white') must be one of: content, noise, mean"),
        ("nst.init", "mean", "config.nst.init='mean' needs config.nst.mean_dir"),
        ("nst.size", 8, "config.nst.size (8) must be >= 16"),
        ("nst.batch_size", 0, "config.nst.batch_size (0) must be >= 1"),
        ("nst.lr", 0.0, "config.nst.lr (0.0) must be > 0"),
        ("nst.steps", 0, "config.nst.steps must be >= 1"),
        ("nst.optimizer", "sgd", "unknown config.nst.optimizer 'sgd'"),
    ],
)
def test_style_transfer_config(key, value, message):
    c = nst_config.get_config()
    set_key(c, key, value)
    with pytest.raises(ValueError) as raised:
        config_check.check(c)
    assert str(raised.value).startswith(message)


# --------------------------------------------------------------------------- which errors print


def raise_from_a_library():
    import numpy as np

    np.reshape(np.zeros(3), (2, 2))  # ValueError raised inside NumPy.


def test_only_our_own_raises_are_input_errors(config):
    config.train.num_steps = 0
    with pytest.raises(ValueError) as ours:
        config_check.check(config)
    assert cli.input_error(ours.value) == str(ours.value)
    with pytest.raises(ValueError) as library:
        raise_from_a_library()
    assert cli.input_error(library.value) is None
    with pytest.raises(FileNotFoundError) as unchecked:
        open(config.data.root + "/missing.txt")  # noqa: SIM115 - not a `raise` of ours.
    assert cli.input_error(unchecked.value) is None
    with pytest.raises(KeyError) as other_type:
        {}["x"]
    assert cli.input_error(other_type.value) is None


def test_report_input_errors_prints_ours_and_reraises_the_rest(config, capsys):
    config.train.log_every = 0
    assert cli.report_input_errors(lambda: config_check.check(config)) == 2
    assert capsys.readouterr().err == "error: config.train.log_every (0) must be >= 1\n"
    assert cli.report_input_errors(lambda: 3) == 3
    assert cli.report_input_errors(lambda: None) == 0
    with pytest.raises(ValueError, match="reshape"):
        cli.report_input_errors(raise_from_a_library)


# --------------------------------------------------------------------------- entry points


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    "override, message",
    [
        ("--config.train.num_steps=0", "error: config.train.num_steps (0) must be >= 1"),
        (
            "--config.train.decay_steps=133400",
            "error: config.train.decay_steps (133400) must be in [0, config.train.num_steps=6]",
        ),
        ("--config.optim.b2=1.0", "error: config.optim.b2 (1.0) must be in [0, 1)"),
        ("--config.data.root=/nonexistent/faces", "error: config.data.root: no folder at"),
    ],
)
def test_train_cli_bad_value_exits_2_with_one_line(override, message, tmp_path):
    r = run(
        "train.py",
        "--config=configs/test.py",
        f"--workdir={tmp_path / 'run'}",
        f"--config.data.root={tmp_path}",
        override,
    )
    assert r.returncode == 2, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), r.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()  # Nothing ran.


def test_translate_cli_style_transfer_bad_value_exits_2(tmp_path):
    r = run(
        "translate.py",
        "--method=nst",
        f"--content={tmp_path}",
        f"--style={tmp_path}/style.png",
        f"--output={tmp_path / 'out'}",
        "--config=configs/nst.py",
        "--config.nst.size=8",
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert r.stderr.strip() == "error: config.nst.size (8) must be >= 16"


def test_evaluate_cli_empty_checkpoint_folder_exits_2(tmp_path):
    r = run("evaluate.py", f"--ckpt={tmp_path}")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert r.stderr.strip().startswith("error: no checkpoint")
