"""Losses against hand-computed values."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxfaces import losses


def test_lsgan_against_hand_values():
    logits = jnp.array([[0.5, 2.0], [-1.0, 1.0]])
    # real: ((0.5-1)^2 + (2-1)^2 + (-1-1)^2 + 0) / 4 = (0.25 + 1 + 4) / 4
    assert float(losses.gan_loss(logits, True, "lsgan")) == pytest.approx(5.25 / 4)
    # fake: (0.25 + 4 + 1 + 1) / 4
    assert float(losses.gan_loss(logits, False, "lsgan")) == pytest.approx(6.25 / 4)


def test_vanilla_is_binary_cross_entropy_with_logits():
    logits = jnp.array([0.0, 2.0, -3.0])
    sig = 1 / (1 + np.exp(-np.array([0.0, 2.0, -3.0])))
    assert float(losses.gan_loss(logits, True, "vanilla")) == pytest.approx(
        -np.log(sig).mean(), rel=1e-6
    )
    assert float(losses.gan_loss(logits, False, "vanilla")) == pytest.approx(
        -np.log(1 - sig).mean(), rel=1e-6
    )


def test_l1_is_mean_absolute_difference():
    x = jnp.array([[1.0, -1.0], [0.5, 0.0]])
    y = jnp.array([[0.0, 1.0], [0.5, -0.25]])
    assert float(losses.l1(x, y)) == pytest.approx((1 + 2 + 0 + 0.25) / 4)


def test_unknown_gan_mode_lists_valid_ones():
    with pytest.raises(ValueError, match="lsgan, vanilla"):
        losses.gan_loss(jnp.zeros(3), True, "wgan")
