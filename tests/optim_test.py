"""The shared optimiser and learning-rate schedule."""

import importlib
import math

import jax.numpy as jnp
import numpy as np
import pytest
from absl import flags
from ml_collections import config_flags

from configs import test as test_config
from jaxfaces import optim


def test_learning_rate_is_constant_then_decays_linearly_to_zero():
    c = test_config.get_config()
    c.optim.lr, c.train.num_steps, c.train.decay_steps = 1.0, 10, 4
    schedule = optim.lr_schedule(c)
    values = [float(schedule(s)) for s in range(12)]
    np.testing.assert_allclose(values, [1] * 7 + [0.75, 0.5, 0.25, 0, 0], atol=1e-6)
    c.train.decay_steps = 11
    with pytest.raises(ValueError, match=r"config\.train\.decay_steps \(11\) must be in \[0, "):
        optim.lr_schedule(c)


#: Each config's number of decaying steps when configs set `train.decay_steps` directly.
DECAY_BEFORE = {
    "cyclegan": (266_800, 133_400),
    "cyclegan_nst": (266_800, 133_400),
    "pacgan": (266_800, 133_400),
    "cyclegan_thesis": (88_600, 44_300),
    "demo": (1000, 500),
    "test": (6, 3),
    "lft": (39_000, 6_500),
    "lft_demo": (300, 100),
}


@pytest.mark.parametrize("name", sorted(DECAY_BEFORE))
def test_every_config_keeps_its_schedule_through_decay_fraction(name):
    c = importlib.import_module(f"configs.{name}").get_config()
    assert c.train.decay_steps is None  # Expressed by decay_fraction alone.
    assert (c.train.num_steps, optim.decay_steps(c)) == DECAY_BEFORE[name]


def test_demo_learning_rate_is_the_same_at_every_step():
    """configs/demo.py's measured figures assume 500 constant steps at 5e-4, then 500 down."""
    from configs import demo

    schedule = optim.lr_schedule(demo.get_config())
    got = np.array([float(schedule(s)) for s in range(1001)])
    steps = np.arange(1001)
    want = np.where(steps < 500, 5e-4, 5e-4 * (1 - (steps - 500) / 500))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-10)  # float32: ulps of 5e-4.


def test_overriding_num_steps_keeps_the_decaying_fraction():
    from configs import cyclegan

    c = cyclegan.get_config()
    c.train.num_steps = 1000  # The README's example, with reference decay_fraction 0.5.
    assert optim.decay_steps(c) == 500
    schedule = optim.lr_schedule(c)
    lr = c.optim.lr
    got = [float(schedule(s)) for s in (0, 500, 750, 1000)]
    np.testing.assert_allclose(got, [lr, lr, lr / 2, 0.0], rtol=1e-6, atol=1e-12)
    c = test_config.get_config()
    for steps, decay in [(1, 1), (2, 1), (3, 2), (7, 4), (8, 4)]:  # Rounded, halves up.
        c.train.num_steps = steps
        assert optim.decay_steps(c) == decay


def test_explicit_decay_steps_wins_and_is_still_checked():
    c = test_config.get_config()
    c.train.num_steps, c.train.decay_fraction = 100, 0.5
    c.train.decay_steps = 10
    assert optim.decay_steps(c) == 10
    c.train.decay_steps = 0
    assert optim.decay_steps(c) == 0
    assert float(optim.lr_schedule(c)(99)) == pytest.approx(c.optim.lr)
    c.train.decay_steps = 101
    with pytest.raises(ValueError, match=r"config\.train\.decay_steps \(101\)"):
        optim.decay_steps(c)
    c.train.decay_steps = -1
    with pytest.raises(ValueError, match=r"config\.train\.decay_steps \(-1\)"):
        optim.decay_steps(c)


@pytest.mark.parametrize("fraction", [-0.1, 1.5, math.nan])
def test_decay_fraction_outside_0_1_is_an_error_naming_it(fraction):
    c = test_config.get_config()
    c.train.decay_fraction = fraction
    with pytest.raises(ValueError, match=r"decay_fraction \(.*\) must be in \[0, 1\]"):
        optim.decay_steps(c)


def test_config_without_decay_fields_has_a_constant_rate():
    c = test_config.get_config()
    with c.unlocked():
        del c.train["decay_fraction"], c.train["decay_steps"]
    assert optim.decay_steps(c) == 0
    assert float(optim.lr_schedule(c)(c.train.num_steps)) == pytest.approx(c.optim.lr)


def parse_command_line(*args: str):
    """The config train.py gets from its command line (config_flags, locked)."""
    argv = ["train.py", *args]
    values = flags.FlagValues()
    config_flags.DEFINE_config_file("config", None, "", values, lock_config=True, sys_argv=argv)
    values(argv)
    return values.config


def test_command_line_overrides_of_num_steps_and_decay_steps():
    c = parse_command_line("--config=configs/cyclegan.py", "--config.train.num_steps=1000")
    assert (c.train.num_steps, optim.decay_steps(c)) == (1000, 500)
    c = parse_command_line(
        "--config=configs/cyclegan.py",
        "--config.train.num_steps=1000",
        "--config.train.decay_steps=100",  # A None placeholder typed int: settable here.
    )
    assert optim.decay_steps(c) == 100 and isinstance(c.train.decay_steps, int)
    c = parse_command_line(
        "--config=configs/lft.py", "--config.train.num_steps=60", "--config.train.decay_fraction=1"
    )
    assert optim.decay_steps(c) == 60
    c = parse_command_line("--config=configs/test.py", "--config.train.num_steps=2")
    assert optim.decay_steps(c) == 1


def test_ema_init_copies_and_update_moves_by_one_minus_decay():
    import ml_collections

    c = ml_collections.ConfigDict({"train": {"ema_decay": 0.9}})
    params = {"g": {"w": jnp.asarray([1.0, 2.0])}}
    state = optim.ema_init(c, params)
    np.testing.assert_array_equal(state["ema"]["g"]["w"], [1.0, 2.0])
    assert state["ema"]["g"]["w"] is not params["g"]["w"]  # Own buffers (donated state).
    new = {"g": {"w": jnp.asarray([11.0, -8.0])}}
    np.testing.assert_allclose(optim.ema_update(c, state, new)["ema"]["g"]["w"], [2.0, 1.0])
    off = ml_collections.ConfigDict({"train": {"ema_decay": 0.0}})
    assert optim.ema_init(off, params) == {} and optim.ema_update(off, {}, new) == {}
