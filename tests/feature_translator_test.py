"""The LFT feature translator: shapes per VGG19 layer, both variants, its normalisations."""

import jax
import numpy as np
import pytest

from jaxfaces.models import feature_translator as ft

#: The thesis's layers and their (H, W, C) at a 32 px input (VGG19: /1, /2, /4, /4, /8, /16).
SHAPES = {
    "conv3_2": (8, 8, 256),
    "conv1_1": (32, 32, 64),
    "conv2_1": (16, 16, 128),
    "conv3_1": (8, 8, 256),
    "conv4_1": (4, 4, 512),
    "conv5_1": (2, 2, 512),
}


def _features(shapes, n=2, seed=0):
    rng = np.random.default_rng(seed)
    return {k: rng.normal(1.0, 3.0, (n, *s)).astype(np.float32) for k, s in shapes.items()}


@pytest.mark.parametrize("variant", ["conv", "dense"])
def test_each_layer_maps_to_its_own_shape(variant):
    # Shapes only (`eval_shape`: nothing is compiled); the tests below run real inputs.
    net = ft.FeatureTranslator(layers=tuple(SHAPES), variant=variant)
    z = {k: jax.ShapeDtypeStruct((2, *s), np.float32) for k, s in SHAPES.items()}
    params = jax.eval_shape(net.init, jax.random.key(0), z)["params"]
    out = jax.eval_shape(net.apply, {"params": params}, z)
    assert set(out) == set(SHAPES)
    k = ft.KERNEL[variant]
    for name, shape in SHAPES.items():
        assert out[name].shape == (2, *shape) and out[name].dtype == np.float32, name
        c = shape[-1]
        for i in range(3):  # Three convolutions C -> C, k x k, with bias; nothing else.
            assert params[name][f"conv_{i}"]["kernel"].shape == (k, k, c, c)
            assert params[name][f"conv_{i}"]["bias"].shape == (c,)
        assert set(params[name]) == {"conv_0", "conv_1", "conv_2"}


def test_real_features_keep_their_shapes_both_variants():
    shapes = {"conv2_1": (8, 8, 16), "conv1_1": (16, 16, 8), "conv5_1": (2, 2, 4)}
    z = _features(shapes)
    for variant in ft.VARIANTS:
        net = ft.FeatureTranslator(layers=tuple(shapes), variant=variant)
        out = net.apply(net.init(jax.random.key(0), z), z)
        for name, shape in shapes.items():
            assert out[name].shape == (2, *shape)
            assert np.all(np.isfinite(out[name])) and float(np.std(out[name])) > 0.1


def test_output_norms():
    shapes = {"conv2_1": (6, 5, 16)}
    z = _features(shapes, n=3)
    outs = {}
    for norm in ft.OUTPUT_NORMS:
        net = ft.FeatureTranslator(layers=("conv2_1",), output_norm=norm)
        params = net.init(jax.random.key(1), z)["params"]  # Same key: same convolutions.
        apply = net.apply
        outs[norm] = np.asarray(apply({"params": params}, z)["conv2_1"])
        if norm == "affine":
            assert params["conv2_1"]["output_norm"]["scale"].shape == (16,)
            params["conv2_1"]["output_norm"]["scale"] = np.full(16, 2.0, np.float32)
            params["conv2_1"]["output_norm"]["bias"] = np.full(16, -1.0, np.float32)
            shifted = np.asarray(apply({"params": params}, z)["conv2_1"])
    # Instance norm: every channel of every example has mean 0 and variance 1.
    np.testing.assert_allclose(outs["instance"].mean(axis=(1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(outs["instance"].var(axis=(1, 2)), 1.0, rtol=1e-3)
    np.testing.assert_allclose(outs["affine"], outs["instance"], atol=1e-6)  # At init.
    np.testing.assert_allclose(shifted, 2.0 * outs["instance"] - 1.0, atol=1e-5)
    # Without the last norm the third convolution's output comes out as it is.
    assert (
        np.abs(outs["none"].mean(axis=(1, 2))).max() > 1e-4
        or np.abs(outs["none"].var(axis=(1, 2)) - 1).max() > 0.1
    )


def test_dense_is_per_position_and_conv_is_not():
    shapes = {"conv1_1": (6, 6, 8)}
    z = _features(shapes, n=1, seed=3)
    perm = np.random.default_rng(0).permutation(36)
    shuffled = {
        "conv1_1": z["conv1_1"].reshape(1, 36, 8)[:, perm].reshape(1, 6, 6, 8),
    }
    for variant, equivariant in (("dense", True), ("conv", False)):
        net = ft.FeatureTranslator(layers=("conv1_1",), variant=variant)
        params = net.init(jax.random.key(2), z)
        apply = net.apply
        y = np.asarray(apply(params, z)["conv1_1"]).reshape(1, 36, 8)[:, perm]
        y_shuffled = np.asarray(apply(params, shuffled)["conv1_1"]).reshape(1, 36, 8)
        assert np.allclose(y, y_shuffled, atol=1e-5) == equivariant, variant


def test_bad_settings_and_missing_layers_raise():
    z = _features({"conv1_1": (4, 4, 8)}, n=1)
    with pytest.raises(ValueError, match="variant 'wide'"):
        ft.FeatureTranslator(layers=("conv1_1",), variant="wide").init(jax.random.key(0), z)
    with pytest.raises(ValueError, match="output_norm 'batch'"):
        ft.FeatureTranslator(layers=("conv1_1",), output_norm="batch").init(jax.random.key(0), z)
    with pytest.raises(ValueError, match=r"conv5_1"):
        ft.FeatureTranslator(layers=("conv1_1", "conv5_1")).init(jax.random.key(0), z)
