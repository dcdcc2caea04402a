"""Noise on the discriminator's inputs, annealed away over training (thesis section 3.2.4).

Instance noise (Sønderby et al. 2017; Arjovsky & Bottou 2017) blurs the real and fake
distributions early on so that the discriminator cannot separate them too easily:
  uniform:  x -> w x + (1 - w) U(-1, 1), w rising linearly from `start` to 1;
  gaussian: x -> x + sigma N(0, 1), sigma falling linearly from `sigma` to 0;
both over the first `anneal_steps` steps, then off.
"""

import jax
import jax.numpy as jnp
import ml_collections

KINDS = ("none", "uniform", "gaussian")


def progress(step: jax.Array, anneal_steps: int) -> jax.Array:
    """Fraction of the annealing done at `step`: 0 at step 0, 1 from `anneal_steps` on."""
    if anneal_steps <= 0:
        return jnp.ones((), jnp.float32)
    return jnp.clip(jnp.asarray(step, jnp.float32) / anneal_steps, 0.0, 1.0)


def signal_weight(step: jax.Array, cfg: ml_collections.ConfigDict) -> jax.Array:
    """w of the uniform kind at `step`: start + (1 - start) * progress."""
    return cfg.start + (1.0 - cfg.start) * progress(step, cfg.anneal_steps)


def noise_sigma(step: jax.Array, cfg: ml_collections.ConfigDict) -> jax.Array:
    """sigma of the gaussian kind at `step`: sigma * (1 - progress)."""
    return cfg.sigma * (1.0 - progress(step, cfg.anneal_steps))


def check(cfg: ml_collections.ConfigDict) -> None:
    """Raises ValueError naming the config key of a bad setting."""
    if cfg.kind not in KINDS:
        raise ValueError(
            f"unknown config.loss.d_noise.kind {cfg.kind!r}; valid: {', '.join(KINDS)}"
        )
    if not 0.0 <= cfg.start <= 1.0:
        raise ValueError(f"config.loss.d_noise.start must be in [0, 1], got {cfg.start}")


def apply(x: jax.Array, key: jax.Array, step: jax.Array, cfg: ml_collections.ConfigDict):
    """`x` with this step's noise (unchanged for kind "none")."""
    if cfg.kind == "none":
        return x
    if cfg.kind == "uniform":
        w = signal_weight(step, cfg).astype(x.dtype)
        return w * x + (1 - w) * jax.random.uniform(key, x.shape, x.dtype, -1.0, 1.0)
    return x + noise_sigma(step, cfg).astype(x.dtype) * jax.random.normal(key, x.shape, x.dtype)
