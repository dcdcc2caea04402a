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


# Feature losses: F is the (M positions, C channels) matrix of one example.
F = np.array([[[[1.0, 2.0], [3.0, 4.0]]]], np.float32)  # (1, 1, 2, 2): M = 2, C = 2.


def test_gram_by_hand():
    # Rows (1, 2) and (3, 4): G = F^T F = [[1 + 9, 2 + 12], [2 + 12, 4 + 16]].
    np.testing.assert_allclose(losses.gram(F)[0], [[10.0, 14.0], [14.0, 20.0]])
    np.testing.assert_allclose(losses.normalized_gram(F)[0], [[5.0, 7.0], [7.0, 10.0]])
    batch = np.concatenate([F, 2 * F])
    np.testing.assert_allclose(losses.gram(batch)[1], 4 * losses.gram(F)[0])


def test_content_loss_by_hand():
    target = np.zeros_like(F)
    target[0, 0, 1, 1] = 1.0
    # 1/2 (1 + 4 + 9 + (4 - 1)^2) = 11.5, one value per example.
    np.testing.assert_allclose(losses.content_loss(F, target), [11.5])
    np.testing.assert_allclose(losses.content_loss(np.concatenate([F, F]), F[[0, 0]]), [0, 0])


def test_style_layer_loss_by_hand():
    # Against S = 0: sum G^2 = 100 + 196 + 196 + 400 = 892; E = 892 / (4 * 2^2 * 2^4).
    zero = np.zeros((1, 2, 2), np.float32)
    np.testing.assert_allclose(losses.style_layer_loss(F, zero), [892 / 256], rtol=1e-6)
    # A target from a 4-position image with the same per-position statistics costs nothing.
    bigger = np.concatenate([F, F], axis=1)  # (1, 2, 2, 2): M = 4, same G / M.
    target = losses.normalized_gram(bigger)
    np.testing.assert_allclose(losses.style_layer_loss(F, target), [0.0], atol=1e-7)


def test_style_loss_weights_layers():
    zero = np.zeros((1, 2, 2), np.float32)
    feats = {"a": F, "b": 2 * F}
    got = losses.style_loss(feats, {"a": zero, "b": zero}, {"a": 0.5, "b": 3.0})
    # Doubling F multiplies G^2 by 16.
    np.testing.assert_allclose(got, [(0.5 + 3.0 * 16) * 892 / 256], rtol=1e-6)
    only_a = losses.style_loss(feats, {"a": zero}, {"a": 1.0})
    np.testing.assert_allclose(only_a, [892 / 256], rtol=1e-6)


def test_total_variation_by_hand():
    x = np.zeros((2, 3, 3, 1), np.float32)
    x[0, 1, 1, 0] = 1.0  # One bright pixel: 4 unit steps around it.
    x[1, :, 2, 0] = 2.0  # A vertical edge of height 3 and step 2: 3 steps of 2.
    np.testing.assert_allclose(losses.total_variation(x), [4.0, 6.0])
