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
    "c7s1 3->8 (RGB input: channel-major windows)": (2, 13, 11, 3, 8, 7, 1),
    "c7s1 6->8 (im2col)": (1, 12, 11, 6, 8, 7, 1),
    "c7s1 16->3 (output layer: col2im forward, windows of g backward)": (1, 12, 14, 16, 3, 7, 1),
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
        "c7s1 3->8 (RGB input: channel-major windows)",
        "c7s1 16->3 (output layer: col2im forward, windows of g backward)",
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
    monkeypatch.setattr(fast_conv, "FEW_TILE_FLOATS", n * out_w * k * k * max(c, o) * 2)
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


@pytest.mark.parametrize("form", [fast_conv._F2, fast_conv._F4], ids=["F2", "F4"])
def test_winograd_transforms_compute_the_correlation(form):
    """A^T [(G k) * (B^T d)] is the valid correlation of an (m+2)-long d with a 3-tap k,
    exactly (in float64): the matrices, whatever the tiles' layout."""
    rng = np.random.default_rng(0)
    for _ in range(5):
        d, k = rng.normal(size=form.m + 2), rng.normal(size=3)
        expected = [d[i : i + 3] @ k for i in range(form.m)]
        np.testing.assert_allclose(form.at @ ((form.g @ k) * (form.bt @ d)), expected, atol=1e-12)


@pytest.mark.parametrize(
    "shape, form, bands",
    [
        ((1, 9, 11, 32, 40), 2, "several"),
        ((2, 8, 7, 33, 32), 2, "one band"),
        ((1, 9, 11, 32, 40), 4, "one band"),
        ((2, 8, 7, 33, 32), 4, "several"),
    ],
)
def test_winograd_matches_xla_forward_and_both_gradients(shape, form, bands, monkeypatch):
    """F(2x2, 3x3) and F(4x4, 3x3), each on two sizes (tiling evenly or not, one image or
    two) and in one band or several: the same function. The input gradient is a Winograd
    correlation too; the kernel gradient is always F(4x4, 3x3)."""
    n, h, w, c, o = shape
    monkeypatch.setattr(fast_conv, "MIN_WINOGRAD_PIXELS", 1)
    monkeypatch.setattr(fast_conv, "MIN_WINOGRAD4_PIXELS", 1 if form == 4 else 10**9)
    monkeypatch.setattr(fast_conv, "WINOGRAD_TILE_FLOATS", 1 if bands == "several" else 1 << 30)
    monkeypatch.setattr(fast_conv, "TILE_FLOATS", 1)  # The input gradient's banded form.
    x, kernel = random((n, h, w, c), 6), random((3, 3, c, o), 7)
    g = random((n, h - 2, w - 2, o), 8)
    assert fast_conv._use_winograd(x, kernel, 1)
    f = fast_conv._winograd_form(x)
    assert f.m == form and fast_conv._winograd_form(x, kernel_grad=True).m == 4
    tile_rows = -(-(h - 2) // form)
    assert fast_conv._winograd_layout(x, o, f)[2] == (tile_rows if bands == "several" else 1)
    with fast_conv.impl("xla"):
        expected = value_and_grads(fast_conv.conv2d, x, kernel, g)
    with fast_conv.impl("matmul"):
        actual = value_and_grads(functools.partial(fast_conv.conv2d), x, kernel, g)
    # A new function object: make_jaxpr must not reuse a trace made under other settings.
    text = str(jax.make_jaxpr(lambda x, w: fast_conv._forward(x, w, 1))(x, kernel))
    assert f"stride=(1, {form}" in text or f"strides=(1, {form}" in text  # The tiles' slices.
    for a, e in zip(actual, expected, strict=True):
        # F(4x4, 3x3)'s transforms (coefficients up to 8 and 1/24) round a few times more.
        assert_close(a, e, rtol=4e-6 if form == 2 else 1.5e-5)


def test_winograd_forms_by_map_size():
    kernel = jnp.zeros((3, 3, 64, 64))
    small, large = jnp.zeros((1, 34, 34, 64)), jnp.zeros((1, 66, 66, 64))  # 32^2, 64^2 px
    assert fast_conv._winograd_form(small).m == 2  # Too few tiles for F(4x4)'s products.
    assert fast_conv._winograd_form(large).m == 4
    assert fast_conv._winograd_form(jnp.zeros((4, 34, 34, 64))).m == 4  # Batch counts.
    assert fast_conv._winograd_form(small, kernel_grad=True).m == 4
    # Bands of F(4x4) hold 4x the floats: 4 x 16 x 16 tiles of 36 x 256 in 3 bands of
    # (up to) 6 tile rows; of F(2x2), 4 x 32 x 32 tiles of 16 x 256 in 16 of 2.
    batch = jnp.zeros((4, 66, 66, 256))
    assert fast_conv._winograd_layout(batch, 256, fast_conv._F4)[1:3] == (6, 3)
    assert fast_conv._winograd_layout(batch, 256, fast_conv._F2)[1:3] == (2, 16)
    assert fast_conv._use_winograd(small, kernel, 1)


@pytest.mark.parametrize("case", ["c3s2 5->8 odd (down)", "c3s2 6->8 even (down)"])
def test_strided_input_gradient_as_transposed_convolution(case, monkeypatch):
    """On large maps the 3x3 stride-2 input gradient is the sub-pixel transposed convolution
    of g, shifted by a pixel: the same gradient for odd and even input sizes."""
    monkeypatch.setattr(fast_conv, "MIN_SUBPIXEL_FORWARD_PIXELS", 1)
    n, h, w, c, o, k, stride = CASES[case]
    x, kernel = random((n, h, w, c), 9), random((k, k, c, o), 10)
    g = random((n, (h - k) // stride + 1, (w - k) // stride + 1, o), 11)
    conv = functools.partial(fast_conv.conv2d, stride=stride)
    with fast_conv.impl("xla"):
        expected = value_and_grads(conv, x, kernel, g)
    with fast_conv.impl("matmul"):
        actual = value_and_grads(functools.partial(conv), x, kernel, g)
    text = str(jax.make_jaxpr(lambda g, w: fast_conv._input_grad(g, w, 2, x.shape))(g, kernel))
    assert "custom_vjp_call" in text  # The sub-pixel form's 2x2 convolution.
    for a, e in zip(actual, expected, strict=True):
        assert_close(a, e)


def test_winograd_only_on_large_fp32_3x3_stride1_maps():
    big, kernel = jnp.zeros((1, 66, 66, 64)), jnp.zeros((3, 3, 64, 64))
    assert fast_conv._use_winograd(big, kernel, 1)
    assert not fast_conv._use_winograd(big, kernel, 2)  # Strided.
    assert not fast_conv._use_winograd(big[:, :18, :18], kernel, 1)  # 16x16 < 32x32 pixels.
    assert fast_conv._use_winograd(jnp.zeros((4, 18, 18, 64)), kernel, 1)  # 4 x 16x16.
    assert not fast_conv._use_winograd(big[..., :3], kernel[:, :, :3], 1)  # RGB input.
    assert not fast_conv._use_winograd(big, jnp.zeros((7, 7, 64, 64)), 1)
    as_bf16 = big.astype(jnp.bfloat16), kernel.astype(jnp.bfloat16)
    assert not fast_conv._use_winograd(*as_bf16, 1)


def test_few_channel_bands_cover_the_output_rows():
    x = jnp.zeros((2, 13, 11, 3))
    xt, rows, bands, out_w = fast_conv._few_bands(x, 7, 7)  # 7 output rows, 5 columns.
    assert out_w == 5 and bands == -(-2 * 7 * 5 * 147 // fast_conv.FEW_TILE_FLOATS)
    assert rows * bands >= 7 and xt.shape == (3, 2, rows * bands + 6, 11)  # Channel-major.
    cols = fast_conv._few_columns(
        jnp.arange(2 * 13 * 11 * 3.0).reshape(1, 2, 13, 33), 0, 2, 3, 3, 31
    )
    # Row (dy, dx, c) of band 0 is the input shifted by (dy, dx): here row 4 is (1, 1, 0).
    np.testing.assert_array_equal(
        cols[4], np.arange(2 * 13 * 33.0).reshape(2, 13, 33)[:, 1:3, 1:32]
    )


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
@pytest.mark.parametrize("subpixel_from", [1, 1 << 30])
def test_transposed_conv_subpixel_form_matches_dilated_form(shape, subpixel_from, monkeypatch):
    """Forward as the sub-pixel form or XLA's; backward as the adjoint strided convolution."""
    monkeypatch.setattr(fast_conv, "MIN_SUBPIXEL_FORWARD_PIXELS", subpixel_from)
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
    # Jitted: eagerly, each op of the init compiles on its own (10 s).
    params = {
        "g": jax.jit(g.init)(rngs.key(0), x)["params"],
        "d": jax.jit(d.init)(rngs.key(2), x)["params"],
    }

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
    # The input gradient, through two networks and their instance norms: rounding grows.
    assert_close(grads[1], expected_grads[1], rtol=1e-5)
    # Parameter gradients to the scale of the largest one: a bias before an instance norm
    # has a zero gradient, so its computed value is rounding noise on either path.
    leaves = jax.tree.leaves(expected_grads[0])
    scale = max(float(jnp.abs(leaf).max()) for leaf in leaves)
    for a, e in zip(jax.tree.leaves(grads[0]), leaves, strict=True):
        np.testing.assert_allclose(np.asarray(a) / scale, np.asarray(e) / scale, atol=1e-5)
