"""`config.train.profile`: a jax.profiler trace of a few steps after the first (the loop's
own trace is checked by train_test.py's straight run)."""

import jax
import jax.numpy as jnp

from jaxfaces.training import loop


def traces(logdir):
    return sorted(logdir.glob("plugins/profile/*/*.xplane.pb"))


def test_step_profiler_traces_the_steps_after_the_first(tmp_path, capsys):
    step = jax.jit(lambda x: x * 2)
    profiler = loop.StepProfiler(2, tmp_path / "profile", start=0)
    x, started = jnp.ones(3), []
    for done in range(5):
        profiler.before_step(done)
        started.append(profiler.active)
        x = step(x)
        profiler.after_step(done + 1, x)
    profiler.stop(x)  # Nothing left to stop.
    assert started == [False, True, True, False, False]  # Steps 2 and 3 of 5.
    assert len(traces(tmp_path / "profile")) == 1
    assert "Profile of steps 2-3 written to" in capsys.readouterr().out


def test_step_profiler_off_by_default_and_stops_with_the_loop(tmp_path):
    off = loop.StepProfiler(0, tmp_path / "off", start=0)
    off.before_step(1)
    assert not off.active
    cut = loop.StepProfiler(10, tmp_path / "cut", start=4)  # A resumed run stopped early.
    cut.before_step(5)
    assert cut.active
    cut.after_step(6, jnp.ones(()))
    cut.stop(jnp.ones(()))
    assert not cut.active and len(traces(tmp_path / "cut")) == 1
