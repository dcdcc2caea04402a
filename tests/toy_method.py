"""A tiny two-stage method defined outside jaxfaces: the worked example of
docs/ADDING_A_METHOD.md, used by tests/method_interface_test.py.

Each direction is a colour transform y = x W + b (3x3 W, 3 b), trained on unpaired images
to match the target domain's colour statistics: stage "mean" moves only b so the batch's
channel means match the target batch's; stage "moments" trains W and b on the means and
the standard deviations. `config.method = "toy_method:METHOD"` finds it by import (this
folder on the Python path), so a checkpoint translates and evaluates in a new process.
"""

import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxfaces.methods import base

SOURCE = {"AtoB": "a", "BtoA": "b"}


def add_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Points a config at this method and adds its section."""
    config.method = "toy_method:METHOD"
    config.toy = ml_collections.ConfigDict()
    config.toy.mean_steps = 3  # Stage 1: biases only.
    config.toy.moment_steps = 3  # Stage 2: matrices and biases.
    config.toy.lr = 0.05  # Adam's learning rate.
    return config


def stages(config):
    return base.make_stages(("mean", config.toy.mean_steps), ("moments", config.toy.moment_steps))


def init_state(config, rng):
    del rng  # Starts at the identity map.
    params = {d: {"w": jnp.eye(3), "b": jnp.zeros(3)} for d in base.DIRECTIONS}
    return {
        "step": jnp.zeros((), jnp.int32),
        "params": params,
        "opt": optax.adam(config.toy.lr).init(params),
    }


def _apply(variables, x):
    return x @ variables["w"] + variables["b"]


def make_train_step(config, stage):
    tx = optax.adam(config.toy.lr)

    def loss_fn(params, batch):
        terms = {}
        for d, src in SOURCE.items():
            y = _apply(params[d], batch[src])
            target = batch["b" if src == "a" else "a"]
            terms[f"mean_{d}"] = jnp.sum(jnp.square(y.mean((0, 1, 2)) - target.mean((0, 1, 2))))
            if stage.name == "moments":
                std = jnp.square(y.std((0, 1, 2)) - target.std((0, 1, 2)))
                terms[f"std_{d}"] = jnp.sum(std)
        return sum(terms.values()), terms

    def train_step(state, batch):
        (loss, terms), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["params"], batch)
        if stage.name == "mean":  # Stage 1 trains the biases only.
            grads = {d: {"w": jnp.zeros_like(g["w"]), "b": g["b"]} for d, g in grads.items()}
        updates, opt = tx.update(grads, state["opt"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        if stage.name == "mean":
            params = {d: {**p, "w": state["params"][d]["w"]} for d, p in params.items()}
        metrics = {"loss/total": loss, **{f"loss/{k}": v for k, v in terms.items()}}
        return {**state, "step": state["step"] + 1, "params": params, "opt": opt}, metrics

    return train_step


def make_translate(config):
    del config
    return lambda variables, x: jnp.clip(_apply(variables, x), -1.0, 1.0)


def translator_variables(state, direction):
    return state["params"].get(base.check_direction(direction))


def make_visuals(config, stage):
    translate = make_translate(config)

    def visuals(state, batch):
        return {
            d: jnp.concatenate([batch[s], translate(state["params"][d], batch[s])], axis=2)
            for d, s in SOURCE.items()
        }

    return visuals


def check_config(config):
    if config.toy.lr <= 0:
        raise ValueError(f"config.toy.lr ({config.toy.lr}) must be > 0")


METHOD = base.Method(
    init_state=init_state,
    make_train_step=make_train_step,
    make_visuals=make_visuals,
    make_translate=make_translate,
    translator_variables=translator_variables,
    check_config=check_config,
    stages=stages,
)
