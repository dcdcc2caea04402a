"""Optimisers and learning-rate schedules shared by the methods."""

import math
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax


def decay_steps(config: ml_collections.ConfigDict) -> int:
    """The number of final steps over which the learning rate decays linearly to 0.

    `train.decay_steps` when it is set (not None), else `train.decay_fraction` of
    `train.num_steps`, rounded to the nearest step (0 when the config has neither). So
    `--config.train.num_steps=1000` keeps the config's shape of schedule.

    Raises:
      ValueError: naming the key, when `train.decay_steps` is outside [0, num_steps] or
        `train.decay_fraction` outside [0, 1].
    """
    train = config.train
    total = train.num_steps
    explicit = train.get("decay_steps")
    if explicit is not None:
        if not 0 <= explicit <= total:
            raise ValueError(
                f"config.train.decay_steps ({explicit}) must be in "
                f"[0, config.train.num_steps={total}] (or unset, to use "
                "config.train.decay_fraction)"
            )
        return int(explicit)
    fraction = train.get("decay_fraction", 0.0)
    if not 0 <= fraction <= 1:  # Also refuses NaN.
        raise ValueError(f"config.train.decay_fraction ({fraction}) must be in [0, 1]")
    return math.floor(fraction * total + 0.5)


def lr_schedule(config: ml_collections.ConfigDict) -> optax.Schedule:
    """Constant `optim.lr`, then linear decay to 0 over the last `decay_steps(config)` steps."""
    lr, total, decay = config.optim.lr, config.train.num_steps, decay_steps(config)
    if decay == 0:
        return optax.constant_schedule(lr)
    decayed = optax.join_schedules(
        [optax.constant_schedule(lr), optax.linear_schedule(lr, 0.0, decay)], [total - decay]
    )
    return lambda step: jnp.maximum(decayed(step), 0.0)  # No rounding below 0 past the end.


def adam(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
    """Adam with `optim.b1`, `optim.b2` and `lr_schedule` (the reference's optimiser)."""
    return optax.adam(lr_schedule(config), b1=config.optim.b1, b2=config.optim.b2)


def ema_init(config: ml_collections.ConfigDict, params: Any) -> dict[str, Any]:
    """`{"ema": a copy of params}` when `train.ema_decay` > 0 (an exponential moving average
    of the generators, to translate with), else `{}`: to merge into a method's initial state.
    The copy has its own buffers, as the state is donated to the train step."""
    if config.train.get("ema_decay", 0.0) > 0:
        return {"ema": jax.tree.map(jnp.copy, params)}
    return {}


def ema_update(config: ml_collections.ConfigDict, state: dict[str, Any], params: Any) -> dict:
    """`{"ema": decay * ema + (1 - decay) * params}` when the state holds an EMA (`ema_init`),
    else `{}`: to merge into the new state after a step. `params` has the EMA's structure."""
    if "ema" not in state:
        return {}
    decay = config.train.ema_decay
    return {"ema": jax.tree.map(lambda e, p: decay * e + (1 - decay) * p, state["ema"], params)}
