"""The CPU convolutions as matrix products compute the same functions as XLA's convolutions."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxfaces import rng as rngs
from jaxfaces.models import discriminators, fast_conv, generators


def random(shape, seed):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)


@functools.partial(jax.jit, static_argnums=0)
def value_and_grads(fn, x, w, g):
    """fn(x, w), and the gradients of <fn(x, w), g> with respect to x and w."""
    y, vjp = jax.vjp(fn, x, w)
    return (y, *vjp(g))


def assert_close(actual, expected, rtol=2e-6):
    """Equal up to float rounding: within rtol of the largest magnitude of `expected`."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape
    scale = max(np.abs(expected).max(), 1e-12)
    np.testing.assert_allclose(actual / scale, expected / scale, rtol=0, atol=rtol)


# (N, H, W, C, O, K, stride): each form of the matmul path, odd and even sizes.
CASES = {
    "c7s1 3->8 (RGB input: XLA forward)": (2, 13, 11, 3, 8, 7, 1),
    "c7s1 6->8 (im2col)": (1, 12, 11, 6, 8, 7, 1),
    "c7s1 16->3 (output layer: col2im forward, XLA backward)": (1, 12, 14, 16, 3, 7, 1),
    "c5s1 24->5 (col2im)": (1, 9, 10, 24, 5, 5, 1),
    "c3s1 8->8 (residual)": (2, 6, 7, 8, 8, 3, 1),
    "c3s2 5->8 odd (down)": (1, 11, 9, 5, 8, 3, 2),
    "c3s2 6->8 even (down)": (2, 10, 10, 6, 8, 3, 2),
    "c4s2 3->6 (PatchGAN input)": (1, 10, 11, 3, 6, 4, 2),
    "c4s2 5->6 odd (PatchGAN)": (1, 9, 9, 5, 6, 4, 2),
    "c4s1 12->1 (PatchGAN logits)": (2, 6, 5, 12, 1, 4, 1),
    "c2s1 6->20 (sub-pixel)": (1, 5, 6, 6, 20, 2, 1),
    "c1s1 5->6": (1, 4, 4, 5, 6, 1, 1),
}


@pytest.mark.parametrize("case", CASES)
def test_conv2d_matches_xla_forward_and_both_gradients(case):
    n, h, w, c, o, k, stride = CASES[case]
    x, kernel = random((n, h, w, c), 0), random((k, k, c, o), 1)
    out_h, out_w = (h - k) // stride + 1, (w - k) // stride + 1
    g = random((n, out_h, out_w, o), 2)
    conv = functools.partial(fast_conv.conv2d, stride=stride)
    with fast_conv.impl("xla"):
        expected = value_and_grads(conv, x, kernel, g)
    with fast_conv.impl("matmul"):
        actual = value_and_grads(functools.partial(conv), x, kernel, g)  # A new trace.
    for a, e in zip(actual, expected, strict=True):
        assert_close(a, e)


@pytest.mark.parametrize(
    "case",
    [
        "c7s1 6->8 (im2col)",
        "c3s1 8->8 (residual)",
        "c3s2 5->8 odd (down)",
        "c4s2 5->6 odd (PatchGAN)",
    ],
)
def test_banded_im2col_matches_xla(case, monkeypatch):
    """Large maps are gathered and multiplied by bands of output rows (forward, kernel
    gradient, and the stride-1 input gradient as a banded correlation): with a tiny band
    budget every one of these runs in 2-7 uneven bands, the last one overhanging."""
    n, h, w, c, o, k, stride = CASES[case]
    out_h, out_w = (h - k) // stride + 1, (w - k) // stride + 1
    monkeypatch.setattr(fast_conv, "TILE_FLOATS", n * out_w * k * k * c * 2)
    rows, bands = fast_conv._bands(n, out_h, out_w, k * k * c)
    assert bands > 1 and rows * bands >= out_h
    x, kernel = random((n, h, w, c), 3), random((k, k, c, o), 4)
    g = random((n, out_h, out_w, o), 5)
    conv = functools.partial(fast_conv.conv2d, stride=stride)
    with fast_conv.impl("xla"):
        expected = value_and_grads(conv, x, kernel, g)
    with fast_conv.impl("matmul"):
        actual = value_and_grads(functools.partial(conv), x, kernel, g)
    for a, e in zip(actual, expected, strict=True):
        assert_close(a, e)


def test_band_sizes():
    fast_conv_bands = fast_conv._bands
    assert fast_conv_bands(1, 64, 64, 9 * 256) == (8, 8)  # 9 x TILE_FLOATS -> 8 rows each.
    assert fast_conv_bands(1, 16, 16, 9 * 64) == (16, 1)  # Small: one band.
    assert fast_conv_bands(1, 3, 3, 1 << 24) == (1, 3)  # At most one row per band.


def test_conv2d_matmul_path_under_jit_and_bfloat16():
    x, kernel = random((1, 10, 10, 8), 0), random((3, 3, 8, 16), 1)
    with fast_conv.impl("xla"):
        expected = fast_conv.conv2d(x, kernel, 2)
    with fast_conv.impl("matmul"):
        jitted = jax.jit(lambda x, w: fast_conv.conv2d(x, w, 2))(x, kernel)
        bf16 = fast_conv.conv2d(x.astype(jnp.bfloat16), kernel.astype(jnp.bfloat16), 2)
    assert_close(jitted, expected)
    assert bf16.dtype == jnp.bfloat16
    assert_close(bf16.astype(jnp.float32), expected, rtol=2e-2)


@pytest.mark.parametrize("shape", [(2, 5, 7, 6), (1, 4, 4, 3)])
def test_transposed_conv_subpixel_form_matches_dilated_form(shape):
    x, kernel = random(shape, 0), random((3, 3, shape[-1], 5), 1)
    g = random((shape[0], 2 * shape[1], 2 * shape[2], 5), 2)
    with fast_conv.impl("xla"):
        expected = value_and_grads(fast_conv.conv_transpose2x, x, kernel, g)
    with fast_conv.impl("matmul"):
        actual = value_and_grads(functools.partial(fast_conv.conv_transpose2x), x, kernel, g)
    for a, e in zip(actual, expected, strict=True):
        assert_close(a, e)


def test_subpixel_kernel_puts_each_tap_in_its_phase():
    # 1D: even outputs 2r use k[1] at x[r]; odd outputs 2r + 1 use k[0] at x[r], k[2] at x[r+1].
    w = jnp.arange(9.0).reshape(3, 3, 1, 1) + 1
    sub = np.asarray(fast_conv.subpixel_kernel(w)).reshape(2, 2, 2, 2)  # (th, tw, a, b)
    expected = np.zeros((2, 2, 2, 2))
    taps = {0: {0: 1}, 1: {0: 0, 1: 2}}  # phase -> {tap: kernel index}
    for a in range(2):
        for b in range(2):
            for th, i in taps[a].items():
                for tw, j in taps[b].items():
                    expected[th, tw, a, b] = np.asarray(w)[i, j, 0, 0]
    np.testing.assert_array_equal(sub, expected)
    assert np.count_nonzero(sub) == 9  # Every kernel entry once.


def test_depth_to_space_interleaves_phases():
    z = jnp.arange(2 * 3 * 4 * 8).reshape(2, 3, 4, 8)
    y = np.asarray(fast_conv.depth_to_space(z))
    assert y.shape == (2, 6, 8, 2)
    zz = np.asarray(z).reshape(2, 3, 4, 2, 2, 2)
    for a in range(2):
        for b in range(2):
            np.testing.assert_array_equal(y[:, a::2, b::2], zz[:, :, :, a, b])


def test_impl_switch_and_backend_default():
    on_cpu = jax.default_backend() == "cpu"
    assert fast_conv.use_matmul() == on_cpu
    assert fast_conv.use_matmul(fast_conv.MIN_MATMUL_MACS) == on_cpu
    assert not fast_conv.use_matmul(fast_conv.MIN_MATMUL_MACS - 1)  # Small: XLA's.
    with fast_conv.impl("xla"):
        assert not fast_conv.use_matmul()
        with fast_conv.impl("matmul"):
            assert fast_conv.use_matmul()
        assert not fast_conv.use_matmul()
    with pytest.raises(ValueError, match="auto, xla, matmul"):
        fast_conv.set_impl("winograd")
    x, w = jnp.zeros((1, 8, 8, 8)), jnp.zeros((3, 3, 8, 8))
    for name, primitive in (("xla", "conv_general_dilated"), ("matmul", "dot_general")):
        with fast_conv.impl(name):
            grad = jax.grad(lambda x, w: fast_conv.conv2d(x, w).sum(), argnums=(0, 1))
            text = str(jax.make_jaxpr(grad)(x, w))
        assert primitive in text
        if name == "matmul":
            assert "conv_general_dilated" not in text


def test_networks_compute_the_same_function_on_both_paths():
    x = jax.random.uniform(rngs.key(1), (2, 16, 16, 3), minval=-1, maxval=1)
    g = generators.ResnetGenerator(ngf=8, n_blocks=1)
    d = discriminators.PatchGAN(ndf=8, n_layers=2)
    params = {"g": g.init(rngs.key(0), x)["params"], "d": d.init(rngs.key(2), x)["params"]}

    def loss(params, x):
        y = g.apply({"params": params["g"]}, x)
        logits = d.apply({"params": params["d"]}, jnp.concatenate([x, y]))
        return jnp.mean(jnp.cos(y)) + jnp.mean(logits**2)

    results = {}
    for name in ("xla", "matmul"):
        with fast_conv.impl(name):  # Each a fresh closure: traced again under its impl.
            results[name] = jax.jit(jax.value_and_grad(loss, (0, 1)))(params, x)
    (value, grads), (expected_value, expected_grads) = results["matmul"], results["xla"]
    assert_close(value, expected_value)
    assert_close(grads[1], expected_grads[1])  # The input gradient.
    # Parameter gradients to the scale of the largest one: a bias before an instance norm
    # has a zero gradient, so its computed value is rounding noise on either path.
    leaves = jax.tree.leaves(expected_grads[0])
    scale = max(float(jnp.abs(leaf).max()) for leaf in leaves)
    for a, e in zip(jax.tree.leaves(grads[0]), leaves, strict=True):
        np.testing.assert_allclose(np.asarray(a) / scale, np.asarray(e) / scale, atol=1e-5)
