"""The method interface: everything the shared code knows of a training method.

A method is one `Method` value: a small dataclass of pure functions. The training loop,
evaluation, inference and the converters call only these; they never name a method's
networks, losses or state keys. A method registers itself with one call,
`jaxfaces.methods.register(name, method)` (see docs/ADDING_A_METHOD.md).

Terms:
  config: the run's `ml_collections.ConfigDict` (`config.method` names the method).
  state: the method's whole training state, a pytree of arrays (dicts of arrays): it is
    checkpointed, restored, replicated over the device mesh and donated to the train step.
    It holds the step counter under "step".
  batch: {name: array} with the batch on axis 0 (the image stream gives {"a", "b"}:
    float32 (B, H, W, 3) in [-1, 1]; a method's own `train_batches` may give anything).
  direction: "AtoB" (domain A -> B) or "BtoA".
  translator variables: what a method's translate function needs for one direction
    (a generator's Flax variables; for LFT also the VGG19 weights and a mean image).

Required functions:
  init_state(config, rng) -> state: fresh parameters, optimizer states, ... (jit-able,
    shape-only work; pretrained parts go in `load_frozen`).
  make_train_step(config, stage) -> train_step(state, batch) -> (state, metrics): pure,
    jitted once per stage by the loop with the state donated; `metrics` is a flat dict of
    scalars ("loss/...", "lr", ...).
  make_visuals(config, stage) -> visuals(state, batch) -> {name: (N, H, W', 3) images}:
    rows of side-by-side images for TensorBoard.
  make_translate(config) -> translate(variables, images) -> images: inference, jit-able,
    (N, H, W, 3) [-1, 1] in and out.
  translator_variables(state, direction) -> variables, or None when the state has no
    translator for that direction (a converted checkpoint may hold one).

Optional (defaults in the dataclass):
  check_config(config): raises ValueError naming the key of a bad setting, before
    anything compiles.
  stages(config) -> tuple[Stage, ...]: the named parts of the run, in order (default: one
    stage "train" of `config.train.num_steps`). The loop runs, checkpoints and resumes
    them; each gets its own `make_train_step(config, stage)`.
  spatial_multiple(config) -> int: input sides must be multiples of this to translate
    (a ResNet generator with two stride-2 layers: 4; a U-Net 256: 256).
  make_critic(config) -> Critic | None: how evaluation asks the method's discriminators
    whether images look real (None: the method has none).
  load_frozen(config, state) -> state: a fresh state with its pretrained, untrained
    parts filled in (VGG19 weights, mean images); not called on a resumed state.
  train_batches(config, state, workdir, stage, *, start_step, process_index,
    process_count, num_devices) -> iterator of this process's batches: replaces the image
    stream for a stage (LFT trains on VGG19 features computed once); None: the images.
  from_translators(config, {direction: variables}) -> state: a translation-only state
    holding given translators (weights converted from another framework).
  make_latent(config) -> Latent | None: for a method whose translators also take a latent
    code z from N(0, I) (BicycleGAN): how to translate with a given z and how to encode a
    target image to z (None: no latent; translate.py's --samples / --z_from refuse it).
"""

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import jax
import ml_collections
import numpy as np

Config = ml_collections.ConfigDict
State = dict[str, Any]
Variables = Any
Batch = dict[str, Any]
StepFn = Callable[[State, Batch], tuple[State, dict[str, jax.Array]]]
DIRECTIONS = ("AtoB", "BtoA")
OTHER = {"AtoB": "BtoA", "BtoA": "AtoB"}


@dataclasses.dataclass(frozen=True)
class Stage:
    """A named part of a run: global steps [start, start + num_steps)."""

    name: str
    index: int
    start: int
    num_steps: int

    @property
    def stop(self) -> int:
        """The global step at which the stage is done."""
        return self.start + self.num_steps


def make_stages(*parts: tuple[str, int]) -> tuple[Stage, ...]:
    """Stages from (name, num_steps) pairs, in order, each starting where the last stopped."""
    stages, start = [], 0
    for index, (name, num_steps) in enumerate(parts):
        if int(num_steps) < 0:
            raise ValueError(f"stage {name!r} has a negative step count ({num_steps})")
        stages.append(Stage(name, index, start, int(num_steps)))
        start += int(num_steps)
    if len({s.name for s in stages}) != len(stages):
        raise ValueError(f"stage names repeat: {[s.name for s in stages]}")
    return tuple(stages)


def single_stage(config: Config) -> tuple[Stage, ...]:
    """The default: one stage, "train", of `config.train.num_steps` steps."""
    return make_stages(("train", config.train.num_steps))


def stage_at(stages: tuple[Stage, ...], step: int) -> Stage:
    """The stage that runs the step after `step` steps are done (the last one when done)."""
    for stage in stages:
        if step < stage.stop:
            return stage
    return stages[-1]


@dataclasses.dataclass(frozen=True)
class Critic:
    """A method's discriminators, as evaluation sees them.

    Attributes:
      variables: (state, direction) -> the variables of the discriminator that judges
        `direction`'s translations (it learnt the target domain), or None if the state has
        none (a converted, generator-only checkpoint).
      logits: (variables, images) -> per-image (or per-patch) logits for a whole set of
        (N, H, W, 3) images as a numpy array (the method batches and packs as it trains);
        for a conditional critic (variables, images, inputs), judging the pairs
        (inputs[i], images[i]).
      threshold: logits above it mean "real"; None when the GAN loss has no decision
        threshold (`no_threshold` says why).
      min_images: the fewest images `logits` accepts (PacGAN: the pack size).
      conditional: the discriminator judges (input, image) pairs (pix2pix): evaluation
        gives it (input, true translation) as real and (input, translation) as fake, so it
        needs the true translations of the test split.
    """

    variables: Callable[[State, str], Variables | None]
    logits: Callable[..., np.ndarray]
    threshold: float | None
    min_images: int = 1
    no_threshold: str = ""
    conditional: bool = False


@dataclasses.dataclass(frozen=True)
class Latent:
    """A method whose translators also take a latent code z (one input, many outputs).

    The prior of z is N(0, I) of `dim` dimensions: translate.py's `--samples` and
    evaluation's diversity draw from it.

    Attributes:
      dim: the size of z.
      translate: (translator variables, images (N, H, W, 3), z (N, dim)) -> images;
        jit-able; the same variables as `Method.make_translate`'s.
      encode: (translator variables, target-domain images) -> z (N, dim), the code that
        reproduces them (an encoder's mean); jit-able; None when the method has no encoder.
    """

    dim: int
    translate: Callable[[Variables, jax.Array, jax.Array], jax.Array]
    encode: Callable[[Variables, jax.Array], jax.Array] | None = None


def _no_check(config: Config) -> None:
    del config


def _no_critic(config: Config) -> None:
    del config


def _no_latent(config: Config) -> None:
    del config


def _any_size(config: Config) -> int:
    del config
    return 1


@dataclasses.dataclass(frozen=True)
class Method:
    """A training method: the functions described in this module's docstring."""

    init_state: Callable[[Config, jax.Array], State]
    make_train_step: Callable[[Config, Stage], StepFn]
    make_visuals: Callable[[Config, Stage], Callable[[State, Batch], dict[str, jax.Array]]]
    make_translate: Callable[[Config], Callable[[Variables, jax.Array], jax.Array]]
    translator_variables: Callable[[State, str], Variables | None]
    check_config: Callable[[Config], None] = _no_check
    stages: Callable[[Config], tuple[Stage, ...]] = single_stage
    spatial_multiple: Callable[[Config], int] = _any_size
    make_critic: Callable[[Config], Critic | None] = _no_critic
    load_frozen: Callable[[Config, State], State] | None = None
    train_batches: Callable[..., Iterator[Batch] | None] | None = None
    from_translators: Callable[[Config, dict[str, Variables]], State] | None = None
    make_latent: Callable[[Config], Latent | None] = _no_latent


def network_variables(state: State, name: str, params: dict | None = None) -> Variables | None:
    """The Flax variables of network `name` in a state that keeps them the usual way,
    `state["params"][name]` (or `params[name]`) and `state["batch_stats"][name]` when it has
    batch statistics; None when the state has no such network."""
    params = (state.get("params") or {}) if params is None else params
    if name not in params:
        return None
    variables = {"params": params[name]}
    stats = state.get("batch_stats") or {}
    if name in stats:
        variables["batch_stats"] = stats[name]
    return variables


def translation_state(networks: dict[str, Variables]) -> State:
    """A translation-only state in that layout (step 0; no optimizer states: it cannot resume
    training) holding the given {name: Flax variables}."""
    return {
        "step": np.zeros((), np.int32),
        "params": {name: v["params"] for name, v in networks.items()},
        "batch_stats": {
            name: v["batch_stats"] for name, v in networks.items() if "batch_stats" in v
        },
    }


def check_direction(direction: str) -> str:
    """`direction` if it is "AtoB" or "BtoA"; ValueError otherwise."""
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}; valid: {', '.join(DIRECTIONS)}")
    return direction
