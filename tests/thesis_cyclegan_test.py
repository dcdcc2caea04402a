"""The thesis's CycleGAN switches: each changes exactly what it should; the full model trains."""

import pathlib
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from configs import cyclegan as cyclegan_config
from configs import cyclegan_thesis, pacgan
from configs import test as test_config
from jaxfaces import inference, losses, noise
from jaxfaces import rng as rngs
from jaxfaces.methods import cyclegan
from jaxfaces.models import discriminators, vgg
from jaxfaces.training import loop

ROOT = pathlib.Path(__file__).resolve().parents[1]


def shrink(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The test config's sizes (32 px, ngf 8, one block) with the config's switches kept,
    random VGG weights and shallow VGG layers (a short compile)."""
    tiny = test_config.get_config()
    for section, keys in {
        "data": ("load_size", "size", "synthetic"),
        "model.generator": ("name", "ngf", "n_blocks"),
        "model.discriminator": ("ndf", "n_layers"),
        "loss": ("pool_size",),
        "train": ("num_steps", "decay_steps", "ckpt_every", "log_every", "log_images_every"),
    }.items():
        src, dst = tiny, config
        for part in section.split("."):
            src, dst = src[part], dst[part]
        for key in keys:
            dst[key] = src[key]
    config.loss.d_noise.anneal_steps = 4
    config.train.num_steps, config.train.decay_steps, config.train.eval_every = 4, 2, 0
    config.vgg.weights = "random"
    config.loss.vgg.content_layer = "conv1_2"
    config.loss.vgg.style_layers = ("conv1_1",)
    config.loss.vgg.style_layer_weights = (1.0,)
    return config


# --------------------------------------------------------------------------- noise


def test_noise_schedule_values():
    cfg = ml_collections.ConfigDict(
        {"kind": "uniform", "start": 0.5, "sigma": 0.2, "anneal_steps": 100}
    )
    for step, w in [(0, 0.5), (50, 0.75), (100, 1.0), (400, 1.0)]:
        assert float(noise.signal_weight(step, cfg)) == pytest.approx(w)
    for step, sigma in [(0, 0.2), (25, 0.15), (100, 0.0), (101, 0.0)]:
        assert float(noise.noise_sigma(step, cfg)) == pytest.approx(sigma)


def test_noise_apply_is_the_formula():
    x = jnp.linspace(-1, 1, 2 * 4 * 4 * 3).reshape(2, 4, 4, 3)
    key = jax.random.key(0)
    cfg = ml_collections.ConfigDict(
        {"kind": "uniform", "start": 0.5, "sigma": 0.2, "anneal_steps": 10}
    )
    u = jax.random.uniform(key, x.shape, x.dtype, -1.0, 1.0)
    np.testing.assert_allclose(noise.apply(x, key, 5, cfg), 0.75 * x + 0.25 * u, rtol=1e-6)
    np.testing.assert_array_equal(noise.apply(x, key, 10, cfg), x)  # Annealed away.
    cfg.kind = "gaussian"
    n = jax.random.normal(key, x.shape, x.dtype)
    np.testing.assert_allclose(noise.apply(x, key, 5, cfg), x + 0.1 * n, rtol=1e-5, atol=1e-7)
    cfg.kind = "none"
    assert noise.apply(x, key, 0, cfg) is x
    cfg.kind = "salt"
    with pytest.raises(ValueError, match="config.loss.d_noise.kind"):
        noise.check(cfg)


# --------------------------------------------------------------------------- PacGAN


def test_pack_pairs_images_on_channels():
    x = jnp.arange(3 * 2 * 2 * 3, dtype=jnp.float32).reshape(3, 2, 2, 3)
    assert discriminators.pack(x, 1) is x
    p = discriminators.pack(x, 2)
    assert p.shape == (3, 2, 2, 6)
    for i, j in [(0, 1), (1, 2), (2, 0)]:  # Each image with the next one, cyclically.
        np.testing.assert_array_equal(p[i], jnp.concatenate([x[i], x[j]], axis=-1))
    with pytest.raises(ValueError, match="at least 4"):
        discriminators.pack(x, 4)


def test_pack_one_is_the_plain_discriminator_and_two_widens_the_first_conv():
    base = test_config.get_config()
    plain = jax.jit(lambda: cyclegan.init_state(base, rngs.key(0)))()
    packed_1 = test_config.get_config()
    packed_1.model.discriminator.pack = 1
    same = jax.jit(lambda: cyclegan.init_state(packed_1, rngs.key(0)))()
    for a, b in zip(jax.tree.leaves(plain), jax.tree.leaves(same), strict=True):
        np.testing.assert_array_equal(a, b)
    two = test_config.get_config()
    two.model.discriminator.pack = 2
    state = jax.jit(lambda: cyclegan.init_state(two, rngs.key(0)))()
    d = state["params"]["d_a"]
    assert d["conv_0"]["kernel"].shape == (4, 4, 6, 8)  # Only the first conv widens.
    assert d["conv_1"]["kernel"].shape == plain["params"]["d_a"]["conv_1"]["kernel"].shape
    assert pacgan.get_config().model.discriminator.pack == 2


# --------------------------------------------------------------------------- losses


def test_gan_modes_by_hand():
    x = jnp.array([[-2.0, 0.5], [1.5, 3.0]])  # Mean 0.75.
    assert float(losses.gan_loss(x, True, "wgan-gp")) == pytest.approx(-0.75)
    assert float(losses.gan_loss(x, False, "wgan-gp")) == pytest.approx(0.75)
    # Hinge, discriminator: relu(1 - x) = 3, 0.5, 0, 0; relu(1 + x) = 0, 1.5, 2.5, 4.
    assert float(losses.gan_loss(x, True, "hinge", True)) == pytest.approx(3.5 / 4)
    assert float(losses.gan_loss(x, False, "hinge", True)) == pytest.approx(8.0 / 4)
    assert float(losses.gan_loss(x, True, "hinge")) == pytest.approx(-0.75)  # Generator.


def test_gradient_penalty_by_hand():
    w = jnp.full((2, 2, 1), 1.5)  # ||w|| = 1.5 * 2 = 3 for every example.
    critic = lambda x: jnp.sum(x * w, axis=(1, 2, 3))[:, None]  # noqa: E731
    real, fake = jnp.ones((3, 2, 2, 1)), jnp.zeros((3, 2, 2, 1))
    gp = losses.gradient_penalty(critic, real, fake, jax.random.key(0))
    assert float(gp) == pytest.approx((3.0 - 1.0) ** 2)
    # A critic whose gradient has norm 1 everywhere costs nothing.
    unit = lambda x: jnp.sum(x * 0.5, axis=(1, 2, 3))  # noqa: E731
    assert float(losses.gradient_penalty(unit, real, fake, jax.random.key(1))) < 1e-6
    # A quadratic critic: grad = 2 x_hat, depends on where x_hat falls between real and fake.
    e = jax.random.uniform(jax.random.key(2), (3, 1, 1, 1))
    quad = lambda x: jnp.sum(x * x, axis=(1, 2, 3))  # noqa: E731
    want = jnp.mean(jnp.square(2 * e.reshape(3) * 2 - 1))  # ||2 e 1|| = 2 e * 2 (4 ones).
    got = losses.gradient_penalty(quad, real, fake, jax.random.key(2))
    assert float(got) == pytest.approx(float(want), rel=1e-5)


@pytest.mark.parametrize("form", ["gram", "features_l1"])
def test_vgg_identity_loss_is_zero_for_identical_images_only(form):
    config = shrink(cyclegan_config.get_config())
    config.loss.identity = "vgg"
    config.loss.vgg.style_form = form
    params = {
        k: v for k, v in vgg.random_params().items() if k in ("conv1_1", "conv1_2", "conv2_1")
    }
    x = jax.random.uniform(jax.random.key(0), (2, 16, 16, 3), minval=-1, maxval=1)
    y = jax.random.uniform(jax.random.key(1), (2, 16, 16, 3), minval=-1, maxval=1)
    content, style = cyclegan.vgg_identity_terms(config, params, x, x, x)
    assert float(content) == 0.0 and float(style) == 0.0
    content, style = cyclegan.vgg_identity_terms(config, params, x, y, x)
    assert float(content) > 0 and float(style) > 0
    # Content compares with the source, style with the style image.
    content, style = cyclegan.vgg_identity_terms(config, params, x, x, y)
    assert float(content) == 0.0 and float(style) > 0


def test_switch_errors_name_the_key():
    config = test_config.get_config()
    config.loss.identity = "perceptual"
    with pytest.raises(ValueError, match="config.loss.identity"):
        cyclegan.make_train_step(config)
    config = test_config.get_config()
    config.loss.identity = "vgg"
    config.loss.vgg.style_form = "histogram"
    with pytest.raises(ValueError, match="config.loss.vgg.style_form"):
        cyclegan.make_train_step(config)
    config = test_config.get_config()
    config.model.discriminator.pack = 0
    with pytest.raises(ValueError, match="config.model.discriminator.pack"):
        cyclegan.make_train_step(config)


# --------------------------------------------------------------------------- the full model


def thesis_config(root: pathlib.Path) -> ml_collections.ConfigDict:
    config = shrink(cyclegan_thesis.get_config())
    config.data.root = str(root)
    config.data.synthetic.enabled = True
    return config


def test_thesis_config_reproduces_the_thesis_settings():
    c = cyclegan_thesis.get_config()
    assert (c.data.size, c.model.generator.name) == (64, "resnet_6blocks")
    assert (c.model.generator.upsample, c.model.generator.padding) == ("nearest", "reflect")
    assert c.model.discriminator.pack == 2 and c.data.batch_size >= 2
    assert (c.loss.d_noise.kind, c.loss.d_noise.start) == ("uniform", 0.5)
    assert c.loss.tv_weight == 1e-4 and c.loss.gan_mode == "lsgan" and c.loss.pool_size == 50
    assert c.loss.identity == "vgg" and c.model.discriminator.n_layers == 3
    assert (c.optim.lr, c.optim.b1) == (2e-4, 0.5)
    assert c.train.decay_fraction == 0.5 and c.train.decay_steps is None  # 100 + 100 epochs.


@pytest.mark.slow
def test_thesis_model_trains_resumes_exactly_and_translates(tmp_path):
    config = thesis_config(tmp_path / "faces")
    straight = loop.train(config, tmp_path / "straight")
    assert straight["step"] == config.train.num_steps
    assert set(straight["state"]["frozen"]["vgg"]) == {"conv1_1", "conv1_2"}
    np.testing.assert_array_equal(
        straight["state"]["frozen"]["vgg"]["conv1_1"]["kernel"],
        vgg.random_params()["conv1_1"]["kernel"],
    )
    stopped = loop.train(config, tmp_path / "resumed", stop_after=2)
    assert stopped["stopped"]
    resumed = loop.train(config, tmp_path / "resumed")
    for (path, a), b in zip(
        jax.tree_util.tree_leaves_with_path(straight["state"]),
        jax.tree.leaves(resumed["state"]),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b, err_msg=jax.tree_util.keystr(path))
    translators, step = inference.load_translators(str(tmp_path / "straight"))
    assert step == config.train.num_steps
    files = sorted((tmp_path / "faces" / "testA").glob("*.png"))
    written, skipped = inference.translate_files(translators("AtoB"), files, tmp_path / "out")
    assert len(written) == len(files) == config.data.synthetic.num_test and not skipped
    for direction in ("AtoB", "BtoA"):
        assert np.isfinite(straight["eval"][direction]["l1"])


SCRIPT = textwrap.dedent(
    """
    import os
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
    import jax, numpy as np
    from jax.sharding import Mesh
    from configs import cyclegan_thesis
    from jaxfaces import rng
    from jaxfaces.methods import cyclegan
    from jaxfaces.training import sharding
    from tests.thesis_cyclegan_test import shrink

    config = shrink(cyclegan_thesis.get_config())
    config.data.batch_size = 8
    batches = [
        {k: np.random.default_rng([i, j]).uniform(-1, 1, (8, 32, 32, 3)).astype(np.float32)
         for j, k in enumerate("ab")}
        for i in range(2)
    ]
    for n in (1, 8):
        mesh = Mesh(np.array(jax.devices()[:n]), ("data",))
        state = jax.jit(lambda: cyclegan.init_state(config, rng.key(0)),
                        out_shardings=sharding.replicated(mesh))()
        state = jax.device_put(cyclegan.load_frozen(config, state), sharding.replicated(mesh))
        step = jax.jit(cyclegan.make_train_step(config),
                       in_shardings=(sharding.replicated(mesh), sharding.batch_sharded(mesh)),
                       out_shardings=(sharding.replicated(mesh), sharding.replicated(mesh)),
                       donate_argnums=0)
        for b in batches:
            state, metrics = step(state, sharding.global_batch(b, mesh))
            print("LOSS", n, " ".join(f"{k}={float(v)!r}" for k, v in sorted(metrics.items())))
    """
)


@pytest.mark.slow
def test_thesis_model_on_one_and_eight_devices():
    r = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert r.returncode == 0, r.stderr[-3000:]
    runs = {"1": [], "8": []}
    for line in r.stdout.splitlines():
        if line.startswith("LOSS"):
            _, n, *pairs = line.split()
            runs[n].append({k: float(v) for k, v in (p.split("=") for p in pairs)})
    assert len(runs["1"]) == len(runs["8"]) == 2
    for one, eight in zip(runs["1"], runs["8"], strict=True):
        assert set(one) >= {"loss/content_a", "loss/style_b", "loss/tv", "d_noise"}
        for k in one:
            assert one[k] == pytest.approx(eight[k], rel=1e-4, abs=1e-6), k
