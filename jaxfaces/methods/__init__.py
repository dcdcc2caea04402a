"""Training methods: each module provides its state, pure train step and translate function.

A method module defines:
  init_state(config, rng) -> state pytree (dict)
  make_train_step(config) -> train_step(state, batch) -> (state, metrics)
  make_visuals(config) -> visuals(state, batch) -> {name: image batch}
  make_translate(config) -> translate(generator_variables, images) -> images
  generator_variables(state, direction) -> Flax variables of the generator for a direction
"""

import types

from jaxfaces.methods import cyclegan

METHODS: dict[str, types.ModuleType] = {"cyclegan": cyclegan}


def get_method(name: str) -> types.ModuleType:
    """The method module registered under `name` (config.method)."""
    if name not in METHODS:
        raise ValueError(f"unknown config.method {name!r}; valid: {', '.join(METHODS)}")
    return METHODS[name]
