"""Loss functions: pure functions of arrays, each returning a float32 scalar."""

import jax
import jax.numpy as jnp
import optax

GAN_MODES = ("lsgan", "vanilla")


def gan_loss(logits: jax.Array, target_is_real: bool, mode: str = "lsgan") -> jax.Array:
    """Adversarial loss of discriminator outputs against an all-real or all-fake target.

    `lsgan`: mean squared error to 1 (real) or 0 (fake) (Mao et al. 2017).
    `vanilla`: binary cross-entropy with logits (Goodfellow et al. 2014).
    """
    logits = logits.astype(jnp.float32)
    target = jnp.full_like(logits, 1.0 if target_is_real else 0.0)
    if mode == "lsgan":
        return jnp.mean(jnp.square(logits - target))
    if mode == "vanilla":
        return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, target))
    raise ValueError(f"unknown config.loss.gan_mode {mode!r}; valid: {', '.join(GAN_MODES)}")


def l1(x: jax.Array, y: jax.Array) -> jax.Array:
    """Mean absolute difference (cycle and identity losses)."""
    return jnp.mean(jnp.abs(x.astype(jnp.float32) - y.astype(jnp.float32)))
