"""Shapes, parameter counts and options of the generators and discriminators."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxfaces import rng as rngs
from jaxfaces.models import discriminators, fast_conv, generators, layers


def count(tree) -> int:
    return sum(x.size for x in jax.tree.leaves(tree))


def test_reference_parameter_counts():
    x = jnp.zeros((1, 64, 64, 3))
    g = generators.ResnetGenerator(ngf=64, n_blocks=9)
    assert count(jax.eval_shape(g.init, rngs.key(0), x)["params"]) == 11_378_179
    d = discriminators.PatchGAN(ndf=64, n_layers=3)
    assert count(jax.eval_shape(d.init, rngs.key(0), x)["params"]) == 2_764_737


def test_parameter_paths_read_like_the_architecture():
    g = generators.ResnetGenerator(ngf=8, n_blocks=2)
    params = jax.eval_shape(g.init, rngs.key(0), jnp.zeros((1, 32, 32, 3)))["params"]
    assert set(params) == {
        "conv_in",
        "down_0",
        "down_1",
        "res_0",
        "res_1",
        "up_0",
        "up_1",
        "conv_out",
    }
    assert params["res_1"]["conv_1"]["kernel"].shape == (3, 3, 32, 32)
    assert params["up_0"]["conv"]["kernel"].shape == (3, 3, 32, 16)
    assert params["conv_out"]["kernel"].shape == (7, 7, 8, 3)


@pytest.mark.parametrize("upsample", ["transpose", "nearest", "bilinear"])
@pytest.mark.parametrize("norm", ["instance", "batch", "none"])
def test_generator_options_shapes_and_range(upsample, norm):
    g = generators.ResnetGenerator(ngf=8, n_blocks=1, norm=norm, upsample=upsample)
    x = jax.random.uniform(rngs.key(1), (2, 32, 24, 3), minval=-1, maxval=1)
    variables = g.init(rngs.key(0), x)
    assert ("batch_stats" in variables) == (norm == "batch")
    y = g.apply(variables, x, train=False)
    assert y.shape == x.shape
    assert float(jnp.abs(y).max()) <= 1.0
    # Inner convolutions have a bias only with instance norm (the reference's use_bias rule);
    # the output convolution always has one.
    assert ("bias" in variables["params"]["down_0"]["conv"]) == (norm == "instance")
    assert "bias" in variables["params"]["conv_out"]


def test_generator_is_fully_convolutional_and_rejects_bad_sizes():
    g = generators.ResnetGenerator(ngf=8, n_blocks=1)
    variables = g.init(rngs.key(0), jnp.zeros((1, 32, 32, 3)))
    assert g.apply(variables, jnp.zeros((1, 48, 40, 3))).shape == (1, 48, 40, 3)
    with pytest.raises(ValueError, match="divisible by 4"):
        g.apply(variables, jnp.zeros((1, 30, 32, 3)))


def test_zero_padding_differs_from_reflect():
    x = jax.random.normal(rngs.key(2), (1, 16, 16, 3))
    kw = dict(ngf=8, n_blocks=1)
    g_r = generators.ResnetGenerator(padding="reflect", **kw)
    g_z = generators.ResnetGenerator(padding="zero", **kw)
    variables = g_r.init(rngs.key(0), x)
    y_r, y_z = g_r.apply(variables, x), g_z.apply(variables, x)
    assert float(jnp.abs(y_r - y_z).max()) > 1e-4


@pytest.mark.parametrize("impl", ["xla", "matmul"])
def test_transposed_conv_matches_dilated_scatter_definition(impl):
    # out[2i + a, 2j + b] accumulates x[i, j] * w_torch[:, :, a', b'] (PyTorch definition).
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 3, 4, 2)).astype(np.float32)
    w_torch = rng.normal(size=(2, 5, 3, 3)).astype(np.float32)  # (in, out, kh, kw)
    full = np.zeros((1, 2 * 3 + 1, 2 * 4 + 1, 5), np.float32)
    for i in range(3):
        for j in range(4):
            full[0, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3] += np.einsum(
                "c,cohw->hwo", x[0, i, j], w_torch
            )
    expected = full[:, 1 : 1 + 6, 1 : 1 + 8]  # padding=1 crops 1; output_padding=1 keeps 2H.
    kernel = np.transpose(w_torch[:, :, ::-1, ::-1], (2, 3, 0, 1))
    conv = layers.ConvTranspose2x(5, use_bias=False)
    with fast_conv.impl(impl):  # XLA's dilated form; on the CPU, the sub-pixel backward.
        y, vjp = jax.vjp(lambda k: conv.apply({"params": {"kernel": k}}, jnp.asarray(x)), kernel)
        (grad,) = vjp(jnp.ones_like(y))
    np.testing.assert_allclose(np.asarray(y), expected, atol=1e-5)
    # d sum(out) / d w_torch[c, o, a, b] = the sum of x[..., c] over the pixels whose tap
    # (a, b) lands inside the crop: tap 0 of the first row (column) falls off (2i + 0 < 1).
    first = [1, 0, 0]
    expected_grad = np.zeros((3, 3, 2), np.float32)
    for a in range(3):
        for b in range(3):
            expected_grad[a, b] = x[0, first[a] :, first[b] :].sum(axis=(0, 1))
    flipped = np.asarray(grad)[::-1, ::-1, :, 0]  # kernel[h, w] = w_torch[2 - h, 2 - w]
    np.testing.assert_allclose(flipped, expected_grad, atol=1e-5)


def test_instance_norm_normalises_each_image_and_channel():
    x = jax.random.normal(rngs.key(0), (2, 8, 8, 3)) * 5 + 3
    y = layers.InstanceNorm().apply({}, x)
    np.testing.assert_allclose(np.asarray(y.mean(axis=(1, 2))), 0, atol=1e-5)
    np.testing.assert_allclose(np.asarray(y.var(axis=(1, 2))), 1, atol=1e-3)


def test_patchgan_receptive_field_is_70():
    d = discriminators.PatchGAN(ndf=4, n_layers=3, norm="none")
    x = jnp.zeros((1, 140, 140, 3))
    variables = d.init(rngs.key(0), x)
    grad = jax.grad(lambda x: d.apply(variables, x)[0, 5, 5, 0])(x)
    rows = np.nonzero(np.abs(np.asarray(grad[0])).sum(axis=(1, 2)))[0]
    cols = np.nonzero(np.abs(np.asarray(grad[0])).sum(axis=(0, 2)))[0]
    assert rows.max() - rows.min() + 1 == 70 and cols.max() - cols.min() + 1 == 70


def test_unknown_names_list_the_valid_ones():
    cfg = dict(name="unet_9000", ngf=8, norm="instance", upsample="transpose", padding="reflect")
    with pytest.raises(ValueError, match="resnet_9blocks"):
        generators.make_generator(cfg)
    with pytest.raises(ValueError, match="nearest"):
        generators.make_generator({**cfg, "name": "resnet_6blocks", "upsample": "pixelshuffle"})
    with pytest.raises(ValueError, match="patchgan"):
        discriminators.make_discriminator(dict(name="dcgan", ndf=8, n_layers=3, norm="none"))


def test_unet_resize_convolution_option():
    """upsample="nearest": every way-up conv is a 3x3 conv after a x2 resize (the default
    transposed 4x4 ones are the reference's, unchanged); the output keeps the input's shape."""
    x = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)), jnp.float32)
    kernels = {}
    for upsample in ("transpose", "nearest"):
        cfg = dict(name="unet", ngf=4, norm="instance", dropout=False, num_downs=5)
        g = generators.make_generator({**cfg, "upsample": upsample})
        variables = g.init(rngs.key(0), x)
        y = g.apply(variables, x)
        assert y.shape == x.shape and bool(jnp.all(jnp.abs(y) <= 1))
        kernels[upsample] = {k: v["conv"]["kernel"].shape for k, v in variables["params"].items()}
    assert kernels["transpose"]["up_0"] == (4, 4, 8, 3)  # [skip, up] of 4 + 4 filters -> RGB.
    assert kernels["nearest"]["up_0"] == (3, 3, 8, 3)
    assert kernels["transpose"]["down_2"] == kernels["nearest"]["down_2"] == (4, 4, 8, 16)
    with pytest.raises(ValueError, match="config.model.generator.upsample"):
        generators.make_generator({**cfg, "upsample": "pixelshuffle"})


def test_scan_blocks_reaches_every_resnet_name():
    # configs/cyclegan.py names its generator resnet_9blocks: the switch must reach it too.
    from configs import cyclegan as cyclegan_config

    gen = cyclegan_config.get_config().model.generator
    for name in ("resnet", "resnet_6blocks", "resnet_9blocks"):
        for scan in (False, True):
            gen.name, gen.scan_blocks = name, scan
            assert generators.make_generator(gen).scan_blocks is scan, (name, scan)


@pytest.mark.parametrize("norm", ["instance", "none"])
def test_scanned_residual_blocks_are_the_unrolled_ones(norm):
    # The blocks as one lax.scan over stacked parameters: same parameter tree, same outputs
    # and the same gradients as the blocks applied one by one (float rounding apart).
    kw = dict(ngf=8, n_blocks=3, norm=norm)
    scanned, unrolled = (generators.ResnetGenerator(**kw, scan_blocks=s) for s in (True, False))
    x = jax.random.uniform(rngs.key(1), (2, 16, 16, 3), minval=-1, maxval=1)
    params = scanned.init(rngs.key(0), x)["params"]
    ref = unrolled.init(rngs.key(0), x)["params"]
    assert jax.tree.structure(params) == jax.tree.structure(ref)
    assert all(jax.tree.leaves(jax.tree.map(np.array_equal, params, ref)))

    def loss(net, p):
        return jnp.sum(net.apply({"params": p}, x) ** 2)

    y, y_ref = (net.apply({"params": params}, x) for net in (scanned, unrolled))
    np.testing.assert_allclose(y, y_ref, atol=1e-6)
    g, g_ref = (jax.grad(functools.partial(loss, net))(params) for net in (scanned, unrolled))
    # Biases before an instance norm have zero gradient in exact arithmetic: their values are
    # rounding noise, so the tolerance is relative to the largest gradient of the network.
    scale = max(float(np.abs(leaf).max()) for leaf in jax.tree.leaves(g_ref))
    for path, a in jax.tree_util.tree_leaves_with_path(g):
        b = functools.reduce(lambda t, k: t[k.key], path, g_ref)
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * scale, err_msg=str(path))
    # The scanned program holds one block: its jaxpr has a scan and no res_1 convolution
    # repeated (far fewer equations than the unrolled one).
    n_eqns = lambda net: len(jax.make_jaxpr(functools.partial(loss, net))(params).eqns)  # noqa: E731
    assert n_eqns(scanned) < n_eqns(unrolled)
    jaxpr = str(jax.make_jaxpr(functools.partial(loss, scanned))(params))
    assert "scan[" in jaxpr


def test_scanned_blocks_draw_independent_dropout_per_block():
    g = generators.ResnetGenerator(ngf=8, n_blocks=2, dropout=True)
    x = jax.random.uniform(rngs.key(1), (1, 16, 16, 3), minval=-1, maxval=1)
    variables = g.init(rngs.key(0), x)
    run = lambda k: g.apply(variables, x, train=True, rngs={"dropout": rngs.key(k)})  # noqa: E731
    np.testing.assert_array_equal(run(3), run(3))
    assert not np.allclose(run(3), run(4))
    # Evaluation mode uses no dropout key and is deterministic.
    np.testing.assert_array_equal(
        g.apply(variables, x, train=False), g.apply(variables, x, train=False)
    )
