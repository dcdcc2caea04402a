"""Training methods: each module provides its state, pure train step and translate function.

A method module defines:
  init_state(config, rng) -> state pytree (dict)
  make_train_step(config) -> train_step(state, batch) -> (state, metrics)
  make_visuals(config) -> visuals(state, batch) -> {name: image batch}
  make_translate(config) -> translate(generator_variables, images) -> images
  generator_variables(state, direction) -> Flax variables of the generator for a direction

and optionally:
  load_frozen(config, state) -> state with pretrained, untrained parts (VGG19) filled in
    (the loop calls it on a fresh state, not on a resumed one)
  train_batches(config, state, workdir, *, start_step, process_index, process_count,
    num_devices) -> iterator of batches, replacing the image stream (`data.train_iterator`)
    for methods that train on something computed from the images (LFT: cached features)
"""

import types

from jaxfaces.methods import cyclegan, lft

METHODS: dict[str, types.ModuleType] = {"cyclegan": cyclegan, "lft": lft}


def get_method(name: str) -> types.ModuleType:
    """The method module registered under `name` (config.method)."""
    if name not in METHODS:
        raise ValueError(f"unknown config.method {name!r}; valid: {', '.join(METHODS)}")
    return METHODS[name]
