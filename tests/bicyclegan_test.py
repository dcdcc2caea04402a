"""BicycleGAN: z injection, the encoder and discriminators, the loss terms against hand
computations, the latent term's gradients, one step, the loop with a resume."""

import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from PIL import Image

from configs import bicyclegan as bicyclegan_config
from configs import bicyclegan_demo, pix2pix_demo
from jaxfaces import evaluation, inference, losses
from jaxfaces import rng as rngs
from jaxfaces.methods import bicyclegan, get_method, pix2pix
from jaxfaces.models import bicyclegan as nets
from jaxfaces.models import generators
from jaxfaces.training import loop

ROOT = pathlib.Path(__file__).resolve().parents[1]


def images(n: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (n, size, size, 3)).astype(np.float32)


def small_config(root="unused", **overrides) -> ml_collections.ConfigDict:
    config = bicyclegan_demo.get_config()
    config.data.root = str(root)
    config.data.synthetic.num_train = 8
    config.data.synthetic.num_test = 4
    config.data.batch_size = 4
    config.bicyclegan.directions = "AtoB"  # One model: half the work (the loop test: both).
    config.model.generator.ngf = 8
    config.model.encoder.nef = 8
    config.model.discriminator.ndf = 8
    config.train.num_steps = 4
    config.train.decay_steps = 2
    config.train.log_every = 2
    config.train.log_images_every = 100
    config.train.eval_every = 0
    config.train.ckpt_every = 2
    for key, value in overrides.items():
        section = config
        *parents, leaf = key.split(".")
        for p in parents:
            section = section[p]
        section[leaf] = value
    return config


def unet_params(where_add: str, nz: int, num_downs: int = 5, size: int = 32):
    net = generators.make_generator(
        {"name": "unet", "ngf": 4, "norm": "instance", "dropout": False, "num_downs": num_downs,
         "nz": nz, "where_add": where_add}
    )  # fmt: skip
    x = jnp.zeros((2, size, size, 3))
    z = jnp.zeros((2, nz)) if nz else None
    return net, net.init(jax.random.key(0), x, train=False, z=z)


# --------------------------------------------------------------------------- networks


def test_z_injection_shapes():
    _, plain = unet_params("input", 0)
    for where, nz in (("input", 8), ("all", 8), ("all", 3)):
        net, variables = unet_params(where, nz)
        widths = [4, 8, 16, 32, 32]  # ngf x min(2**i, 8): level i's filters.
        for i in range(5):
            kernel = variables["params"][f"down_{i}"]["conv"]["kernel"]
            c_in = 3 if i == 0 else widths[i - 1]
            added = nz if (where == "all" or i == 0) else 0
            assert kernel.shape == (4, 4, c_in + added, widths[i]), (where, i)
            # Everything else is the pix2pix U-Net's.
            assert kernel.shape[3] == plain["params"][f"down_{i}"]["conv"]["kernel"].shape[3]
        for i in range(5):
            up = variables["params"][f"up_{i}"]["conv"]["kernel"].shape
            assert up == plain["params"][f"up_{i}"]["conv"]["kernel"].shape
        x = jnp.asarray(images(2, 32))
        params = jax.tree.map(  # Non-trivial weights (N(0, 0.02) ones give near-zero outputs).
            lambda p: p * 40.0, variables["params"]
        )
        z = jax.random.normal(jax.random.key(1), (2, nz))
        y = net.apply({"params": params}, x, train=False, z=z)
        assert y.shape == (2, 32, 32, 3)
        y2 = net.apply({"params": params}, x, train=False, z=-z)
        assert float(jnp.abs(y - y2).mean()) > 1e-3  # z changes the output.
        # The code of each image is its own: image 0 does not see image 1's z.
        z_mixed = z.at[1].set(-z[1])
        y3 = net.apply({"params": params}, x, train=False, z=z_mixed)
        np.testing.assert_allclose(y3[0], y[0], atol=1e-6)
        assert float(jnp.abs(y3[1] - y[1]).mean()) > 1e-3
        with pytest.raises(ValueError, match=r"latent code z of shape \(2, " + str(nz)):
            net.apply({"params": params}, x, train=False)
        with pytest.raises(ValueError, match="latent code z of shape"):
            net.apply({"params": params}, x, train=False, z=z[:, :2])
    net0, _ = unet_params("input", 0)
    with pytest.raises(ValueError, match="takes no latent code"):
        net0.apply(plain, jnp.zeros((2, 32, 32, 3)), train=False, z=jnp.zeros((2, 8)))
    with pytest.raises(ValueError, match="config.model.generator.where_add"):
        unet_params("middle", 8)


def test_encoder_and_discriminator_shapes():
    enc = nets.ResnetEncoder(nz=5, nef=4, n_blocks=3)
    x = jnp.asarray(images(3, 32, seed=1))
    variables = enc.init(jax.random.key(0), x)
    p = variables["params"]
    assert p["conv_in"]["kernel"].shape == (4, 4, 3, 4)
    # Block n: nef x min(4, n) -> nef x min(4, n + 1) filters, the 1x1 shortcut alike.
    assert p["block_1"]["conv_0"]["kernel"].shape == (3, 3, 4, 4)
    assert p["block_1"]["conv_1"]["kernel"].shape == (3, 3, 4, 8)
    assert p["block_2"]["conv_1"]["kernel"].shape == (3, 3, 8, 12)
    assert p["block_2"]["shortcut"]["kernel"].shape == (1, 1, 8, 12)
    assert p["fc_mean"]["kernel"].shape == p["fc_logvar"]["kernel"].shape == (12, 5)
    mu, logvar = enc.apply(variables, x)
    assert mu.shape == logvar.shape == (3, 5) and mu.dtype == jnp.float32
    assert float(jnp.abs(mu - logvar).max()) > 0  # Two heads.
    with pytest.raises(ValueError, match="divisible by 8"):
        enc.apply(variables, jnp.zeros((1, 36, 36, 3)))
    assert nets.ResnetEncoder(n_blocks=5).stride == 32  # resnet_256: 256 px -> 8 x 8.

    d = nets.MultiScalePatchGAN(ndf=8, n_layers=2, num_d=2)
    dv = d.init(jax.random.key(0), x)
    maps = d.apply(dv, x)
    assert [m.shape for m in maps] == [(3, 6, 6, 1), (3, 2, 2, 1)]
    assert dv["params"]["scale_1"]["conv_0"]["kernel"].shape == (4, 4, 3, 4)  # ndf / 2.


def test_mean_pooling():
    x = jnp.arange(16.0).reshape(1, 4, 4, 1)
    np.testing.assert_allclose(nets.mean_pool2(x)[0, :, :, 0], [[2.5, 4.5], [10.5, 12.5]])


# --------------------------------------------------------------------------- losses


def test_kl_term_is_the_authors_sum():
    rng = np.random.default_rng(0)
    mu = rng.normal(size=(3, 8)).astype(np.float32)
    logvar = rng.normal(size=(3, 8)).astype(np.float32) * 0.5
    want = sum(
        0.5 * (m * m + np.exp(lv) - 1.0 - lv)
        for m, lv in zip(mu.ravel().tolist(), logvar.ravel().tolist(), strict=True)
    )
    assert float(bicyclegan.kl_loss(mu, logvar)) == pytest.approx(want, rel=1e-5)
    assert float(bicyclegan.kl_loss(np.zeros((2, 4)), np.zeros((2, 4)))) == 0.0
    # One code, one dimension: mu 1, logvar 0 -> 1/2.
    assert float(bicyclegan.kl_loss(np.ones((1, 1)), np.zeros((1, 1)))) == pytest.approx(0.5)
    assert float(bicyclegan.latent_l1(np.ones((2, 2)), np.zeros((2, 2)))) == pytest.approx(1.0)


def _direction_inputs(config, seed=0):
    state = bicyclegan.init_state(config, rngs.key(seed))
    params = bicyclegan._direction_params(state["params"], "AtoB")
    # Wider weights than N(0, 0.02), so that every term is far from trivial.
    params = jax.tree.map(lambda p: p * 10.0, params)
    a, b = jnp.asarray(images(4, 32, 1)), jnp.asarray(images(4, 32, 2))
    eps, z = bicyclegan.draw_noise(jax.random.key(3), 2, 8)
    return state, params, a, b, eps, z


def test_generator_terms_against_hand_computations():
    config = small_config()
    net = bicyclegan.models(config)
    _, params, a, b, eps, z = _direction_inputs(config)
    losses_of = jax.jit(  # Compiled: eager evaluation is slow on the CPU.
        lambda p: bicyclegan.generator_losses(config, net, p, a, b, eps, z, jax.random.key(4))
    )
    terms, fakes = losses_of(params)
    a1, b1 = np.asarray(a[:2]), np.asarray(b[:2])
    mu, logvar = (np.asarray(v) for v in net.e.apply({"params": params["e"]}, b1))
    kl = -0.5 * np.sum(1 + logvar - mu**2 - np.exp(logvar))
    assert float(terms["kl"]) == pytest.approx(0.01 * kl, rel=1e-4)
    assert 0.01 * kl > 1e-3
    z_e = mu + np.exp(0.5 * logvar) * np.asarray(eps)
    g = lambda zz: np.asarray(  # noqa: E731
        net.g.apply({"params": params["g"]}, a1, train=False, z=jnp.asarray(zz))
    )
    fake_e, fake_r = g(z_e), g(z)
    np.testing.assert_allclose(fakes["fake_encoded"], fake_e, atol=1e-5)
    np.testing.assert_allclose(fakes["fake_random"], fake_r, atol=1e-5)
    assert float(terms["G_L1"]) == pytest.approx(10 * np.abs(fake_e - b1).mean(), rel=1e-4)
    mu2 = np.asarray(net.e.apply({"params": params["e"]}, fake_r)[0])
    assert float(terms["z_L1"]) == pytest.approx(0.5 * np.abs(mu2 - np.asarray(z)).mean(), rel=1e-4)
    # LSGAN summed over D's two scales, D judging G(A1, E(B1)), D2 judging G(A1, z).
    for name, d, fake in (("G_GAN", "d", fake_e), ("G_GAN2", "d2", fake_r)):
        maps = net.d.apply({"params": params[d]}, fake)
        assert len(maps) == 2
        want = sum(float(np.mean((np.asarray(m) - 1.0) ** 2)) for m in maps)
        assert float(terms[name]) == pytest.approx(want, rel=1e-4)
    d_terms = bicyclegan.discriminator_losses(config, net, params, a, b, fakes)
    b2 = np.asarray(b[2:])
    maps = net.d.apply({"params": params["d2"]}, b2)  # D2's real images: the second half.
    want = sum(float(np.mean((np.asarray(m) - 1.0) ** 2)) for m in maps)
    assert float(d_terms["D2_real"]) == pytest.approx(want, rel=1e-4)


def test_encoder_gets_no_gradient_from_the_latent_term():
    config = small_config()
    net = bicyclegan.models(config)
    _, params, a, b, eps, z = _direction_inputs(config)

    def term_of(ge, term):
        t, _ = bicyclegan.generator_losses(
            config, net, {**params, **ge}, a, b, eps, z, jax.random.key(4)
        )
        return t[term]

    every = jax.jit(  # One compiled program (eager differentiation is slow on the CPU).
        lambda ge: {t: jax.grad(term_of)(ge, t) for t in ("z_L1", "G_L1", "kl")}
    )({"g": params["g"], "e": params["e"]})
    grads = every.__getitem__

    def size(tree):
        return max(float(jnp.abs(x).max()) for x in jax.tree.leaves(tree))

    latent = grads("z_L1")
    assert size(latent["e"]) == 0.0  # E frozen for |E(G(A, z)) - z| ...
    assert size(latent["g"]) > 1e-6  # ... which still trains G through E.
    for term in ("G_L1", "kl"):  # E learns from the cVAE-GAN terms.
        assert size(grads(term)["e"]) > 1e-6


def test_one_step_updates_g_and_e_before_d():
    config = small_config()
    state = bicyclegan.init_state(config, rngs.key(0))
    assert set(state["params"]) == {"g_AtoB", "e_AtoB", "d_AtoB", "d2_AtoB"}
    batch = {"a": jnp.asarray(images(4, 32, 1)), "b": jnp.asarray(images(4, 32, 2))}
    new, m = jax.jit(bicyclegan.make_train_step(config))(state, batch)
    assert int(new["step"]) == 1
    net = bicyclegan.models(config)
    # The D terms: the discriminators before their update, on B1 and B2 (real).
    for name, key, real in (("D", "d_AtoB", batch["b"][:2]), ("D2", "d2_AtoB", batch["b"][2:])):
        maps = net.d.apply({"params": state["params"][key]}, real)
        want = sum(losses.gan_loss(x, True, "lsgan") for x in maps)
        assert float(m[f"loss/AtoB_{name}_real"]) == pytest.approx(float(want), rel=1e-4)
    # G's GAN term: D before its update (the authors update G and E first).
    key = jax.random.fold_in(rngs.from_data(state["rng"]), 0)
    eps, z = bicyclegan.draw_noise(jax.random.fold_in(key, 0), 2, 8)
    params = bicyclegan._direction_params(state["params"], "AtoB")
    terms, _ = bicyclegan.generator_losses(
        config, net, params, batch["a"], batch["b"], eps, z, jax.random.fold_in(key, 100)
    )
    for k, v in terms.items():
        assert float(m[f"loss/AtoB_{k}"]) == pytest.approx(float(v), rel=1e-4), k
    for name in state["params"]:
        moved = [float(jnp.abs(x - y).max()) for x, y in zip(
            jax.tree.leaves(state["params"][name]), jax.tree.leaves(new["params"][name]),
            strict=True,
        )]  # fmt: skip
        assert min(moved) > 0, name


def test_config_defaults_and_errors():
    c = bicyclegan_config.get_config()
    assert get_method(c.method) is bicyclegan.METHOD
    g, e, d = c.model.generator, c.model.encoder, c.model.discriminator
    assert (g.name, g.nz, g.where_add, g.norm) == ("unet_256", 8, "all", "instance")
    assert (e.name, e.n_blocks, e.nef, d.num_d, d.conditional) == ("resnet", 5, 64, 2, False)
    loss = c.loss
    assert (loss.gan_mode, loss.lambda_l1, loss.lambda_z, loss.lambda_kl) == (
        "lsgan", 10.0, 0.5, 0.01,
    )  # fmt: skip
    assert (c.optim.lr, c.optim.b1, c.data.batch_size) == (2e-4, 0.5, 2)
    bicyclegan.check_config(c)
    assert bicyclegan.spatial_multiple(c) == 256
    assert bicyclegan.METHOD.make_latent(c).dim == 8
    for key, value, message in (
        ("data.batch_size", 3, "must be even"),
        ("model.generator.norm", "batch", "config.model.generator.norm"),
        ("model.generator.name", "resnet_9blocks", "must be a U-Net"),
        ("model.generator.nz", 0, "config.model.generator.nz"),
        ("model.generator.where_add", "middle", "config.model.generator.where_add"),
        ("model.encoder.n_blocks", 6, "multiple of 64"),
        ("loss.gan_mode", "wgan-gp", "config.loss.gan_mode"),
        ("loss.lambda_z", -1.0, "config.loss.lambda_z"),
        ("data.paired", False, "trains on pairs"),
        ("bicyclegan.directions", "AtoA", "config.bicyclegan.directions"),
    ):
        with pytest.raises(ValueError, match=message):
            bicyclegan.check_config(small_config(**{key: value}))


# --------------------------------------------------------------------------- end to end


def test_conditional_discriminator_sees_the_input():
    config = small_config(**{"model.discriminator.conditional": True})
    state = bicyclegan.init_state(config, rngs.key(0))
    kernel = state["params"]["d_AtoB"]["scale_0"]["conv_0"]["kernel"]
    assert kernel.shape[2] == 6
    critic = bicyclegan.make_critic(config)
    assert critic.conditional
    x, y = images(2, 32, 5), images(2, 32, 6)
    out = critic.logits(critic.variables(state, "AtoB"), y, x)
    assert out.shape == (2, 6 * 6 + 2 * 2)  # Both scales' patches, side by side.


def test_mean_pairwise_l1_by_hand():
    s = np.zeros((3, 2, 4, 4, 3), np.float32)
    s[1] += 0.5  # [-1, 1] units: 0.25 on a 0-1 scale from sample 0 ...
    s[2] -= 1.0  # ... 0.5 from sample 0, 0.75 from sample 1.
    assert evaluation.mean_pairwise_l1(s) == pytest.approx((0.25 + 0.5 + 0.75) / 3)
    with pytest.raises(ValueError, match="at least 2 samples"):
        evaluation.mean_pairwise_l1(s[:1])


def _write_pngs(folder: pathlib.Path, n: int, seed: int) -> list[pathlib.Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(images(n, 32, seed)):
        paths.append(folder / f"img{i}.png")
        Image.fromarray(((image + 1) * 127.5).round().astype(np.uint8)).save(paths[-1])
    return paths


def test_samples_codes_and_the_error_without_a_latent(tmp_path):
    config = small_config()
    state = bicyclegan.init_state(config, rngs.key(0))
    state["params"] = jax.tree.map(lambda p: p * 30.0, state["params"])  # Outputs that vary.
    translator = inference.Translator(config, state, "AtoB")
    files = _write_pngs(tmp_path / "in", 2, seed=7)
    written, skipped = inference.translate_samples(translator, files, tmp_path / "out", 3)
    assert not skipped and len(written) == 2 * 4
    names = sorted(p.name for p in written)
    assert names == sorted(f"img{i}_{k}.png" for i in range(2) for k in (1, 2, 3, "samples"))
    outs = [
        np.asarray(Image.open(tmp_path / "out" / f"img0_{k}.png"), np.float32) for k in (1, 2, 3)
    ]
    assert outs[0].shape == (32, 32, 3)
    assert min(np.abs(outs[i] - outs[j]).mean() for i, j in ((0, 1), (0, 2), (1, 2))) > 1.0
    sheet = np.asarray(Image.open(tmp_path / "out" / "img0_samples.png"))
    assert sheet.shape == (128, 4 * 128, 3)  # input | 3 samples, 32 px tiles enlarged x4.
    np.testing.assert_array_equal(sheet[::4, 128:256:4], outs[0].astype(np.uint8))
    # The same seed gives the same files (a rerun replaces jaxfaces's own outputs).
    inference.translate_samples(translator, files, tmp_path / "out", 3)
    again = np.asarray(Image.open(tmp_path / "out" / "img0_2.png"), np.float32)
    np.testing.assert_array_equal(again, outs[1])

    # --z_from: the encoder's mean code of the image, then every input translated with it.
    target = _write_pngs(tmp_path / "target", 1, seed=8)[0]
    z = inference.code_of(translator, target)
    x = np.asarray(Image.open(target), np.float32)[None] / 127.5 - 1
    variables = bicyclegan.translator_variables(state, "AtoB")
    mu = bicyclegan.models(config).e.apply(variables["e"], jnp.asarray(x), train=False)[0]
    np.testing.assert_allclose(z, mu[0], atol=1e-4)
    inputs = images(3, 32, seed=9)
    coded = translator.with_code(z)(inputs)
    by_hand = translator.translate_codes(inputs, np.repeat(z[None], 3, axis=0))
    np.testing.assert_allclose(coded, by_hand, atol=1e-6)
    assert np.abs(coded - translator(inputs)).mean() > 1e-3  # z = 0 by default.
    with pytest.raises(FileNotFoundError, match="--z_from: no image file"):
        inference.code_of(translator, tmp_path / "missing.png")

    p2p_config = pix2pix_demo.get_config()
    p2p_config.model.generator.ngf = 4
    p2p_config.pix2pix.directions = "AtoB"
    p2p = inference.Translator(p2p_config, pix2pix.init_state(p2p_config, rngs.key(0)), "AtoB")
    for call in (
        lambda: inference.translate_samples(p2p, files, tmp_path / "p2p", 2),
        lambda: inference.code_of(p2p, target),
    ):
        with pytest.raises(ValueError, match="needs a method whose translations take a latent"):
            call()
    assert not (tmp_path / "p2p").exists()
    assert evaluation.latent_metrics(p2p_config, None, inputs, None, None) == {}


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=dict(os.environ), capture_output=True,
        text=True, timeout=600,
    )  # fmt: skip


@pytest.mark.slow
def test_loop_runs_and_resumes_bit_for_bit(tmp_path):
    config = small_config(tmp_path / "faces", **{"bicyclegan.directions": "both"})
    straight = loop.train(config, tmp_path / "straight")
    assert straight["step"] == 4 and not straight["stopped"]
    first = loop.train(config, tmp_path / "resumed", stop_after=2)
    assert first["stopped"] and first["step"] == 2
    resumed = loop.train(config, tmp_path / "resumed")
    assert resumed["step"] == 4
    for got, want in zip(
        jax.tree.leaves(resumed["state"]), jax.tree.leaves(straight["state"]), strict=True
    ):
        np.testing.assert_array_equal(got, want)
    for direction in ("AtoB", "BtoA"):
        m = straight["eval"][direction]
        assert {"l1", "identity_l1", "ratio", "adversarial_accuracy"} <= set(m)
        assert len(list((tmp_path / "straight" / "samples" / direction).glob("*.png"))) == 4
        # The latent figures: 5 samples of each test input, and z = E(truth).
        assert m["diversity"] >= 0 and m["samples_swd"] > 0
        assert m["encoded_ratio"] == pytest.approx(m["encoded_l1"] / m["identity_l1"])

    test_b = tmp_path / "faces" / "testB"
    r = _cli(
        "translate.py", f"--ckpt={tmp_path / 'straight'}", "--direction=BtoA",
        f"--input={test_b}", f"--output={tmp_path / 'samples'}", "--samples=3",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    written = sorted(p.name for p in (tmp_path / "samples").glob("*.png"))
    assert len(written) == 4 * 4 and sum(n.endswith("_samples.png") for n in written) == 4
    one = sorted(test_b.glob("*.png"))[0]
    r = _cli(
        "translate.py", f"--ckpt={tmp_path / 'straight'}", f"--input={one}",
        f"--output={tmp_path / 'both'}", "--samples=2", f"--z_from={one}",
    )  # fmt: skip
    assert r.returncode == 2 and "error: give --samples" in r.stderr
