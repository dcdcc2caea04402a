"""UNIT: the networks and the multi-scale discriminator, the shared layers (one set of
parameters that either domain's gradient moves), the KL term, the train step's order and
terms, the optimiser, a tiny run through the real loop (TensorBoard rows, resume), the CLIs
on its checkpoint and the config errors."""

import json
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

from configs import unit as reference_config
from configs import unit_demo, unit_thesis64
from jaxfaces import rng as rngs
from jaxfaces.methods import base, get_method, unit
from jaxfaces.models import discriminators, vae
from jaxfaces.models import unit as unit_models
from jaxfaces.training import loop

ROOT = pathlib.Path(__file__).resolve().parents[1]


def tiny_config(root, **overrides) -> ml_collections.ConfigDict:
    """The demo config at test sizes: 32 px, dim 8, one stride-2 step, 2 residual blocks
    each side (1 shared), a 2-scale discriminator of 2 layers, 3 steps."""
    c = unit_demo.get_config()
    c.data.root = str(root)
    c.data.synthetic.num_train = 8
    c.data.synthetic.num_test = 4
    c.data.batch_size = 2
    c.model.generator.dim = 8
    c.model.generator.n_downsample = 1
    c.model.generator.n_res = 2
    c.model.generator.shared_blocks = 1
    c.model.discriminator.ndf = 8
    c.model.discriminator.n_layers = 2
    c.model.discriminator.num_scales = 2
    c.train.num_steps = 3
    c.train.log_every = 1
    c.train.log_images_every = 2
    c.train.eval_every = 0
    c.train.ckpt_every = 100  # A checkpoint only at the end.
    for key, value in overrides.items():
        section = c
        *parents, leaf = key.split(".")
        for p in parents:
            section = section[p]
        section[leaf] = value
    return c


def assert_trees_equal(got, want) -> None:
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_array_equal(np.asarray(g), np.asarray(w))


def max_abs(tree) -> float:
    return max(float(np.abs(np.asarray(x)).max()) for x in jax.tree.leaves(tree))


def images(n: int, seed: int = 0, size: int = 32) -> jax.Array:
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.uniform(-1, 1, (n, size, size, 3)), jnp.float32)


# --------------------------------------------------------------------------- networks


def test_network_shapes_and_any_multiple_of_the_stride():
    x = images(2)
    enc = unit_models.Encoder(dim=8, n_downsample=2, n_blocks=1)
    p_enc = jax.jit(enc.init)(jax.random.key(0), x)
    h = jax.jit(enc.apply)(p_enc, x)
    assert h.shape == (2, 8, 8, 32)  # 32 px / 4, 8 * 2**2 filters.
    shared = unit_models.ResBlocks(2)
    p_shared = jax.eval_shape(shared.init, jax.random.key(1), h)
    assert set(p_shared["params"]) == {f"res_{i}_conv_{j}" for i in (0, 1) for j in (0, 1)}
    assert jax.eval_shape(shared.apply, p_shared, h).shape == h.shape
    dec = unit_models.Decoder(n_downsample=2, n_blocks=1)
    p_dec = jax.jit(dec.init)(jax.random.key(2), h)
    y = jax.jit(dec.apply)(p_dec, h)
    assert y.shape == (2, 32, 32, 3) and float(jnp.abs(y).max()) <= 1.0
    assert {"blocks", "up_0", "up_1", "conv_out"} == set(p_dec["params"])
    assert set(p_dec["params"]["up_0"]["norm"]) == {"scale", "bias"}  # MUNIT's layer norm.
    assert jax.eval_shape(enc.apply, p_enc, jnp.zeros((1, 48, 64, 3))).shape == (1, 12, 16, 32)
    with pytest.raises(ValueError, match="divisible by 4, got 30x32"):
        jax.eval_shape(enc.apply, p_enc, jnp.zeros((1, 30, 32, 3)))


def test_kaiming_init_and_layer_norm_against_hand_computations():
    k = unit_models.kernel_init("kaiming")(jax.random.key(0), (3, 3, 64, 64))
    np.testing.assert_allclose(float(jnp.std(k)), (2 / (9 * 64)) ** 0.5, rtol=0.02)
    ln = unit_models.LayerNorm()
    x = jnp.asarray(np.random.default_rng(0).normal(2.0, 3.0, (2, 4, 4, 3)), jnp.float32)
    p = ln.init(jax.random.key(1), x)
    p = {"params": {"scale": jnp.asarray([1.0, 2.0, 0.5]), "bias": jnp.asarray([0.0, 1.0, -1.0])}}
    xs = np.asarray(x).reshape(2, -1)
    mean, std = xs.mean(1), xs.std(1, ddof=1)  # Unbiased, as torch.std.
    want = (np.asarray(x) - mean[:, None, None, None]) / (std[:, None, None, None] + 1e-5)
    want = want * np.asarray([1.0, 2.0, 0.5]) + np.asarray([0.0, 1.0, -1.0])
    np.testing.assert_allclose(ln.apply(p, x), want, rtol=1e-5, atol=1e-5)


def test_average_pooling_and_the_multiscale_discriminator():
    x = jnp.arange(16.0).reshape(1, 4, 4, 1)
    # 3x3 windows, stride 2, padding 1 not counted: output (0, 0) averages rows 0-1 x cols
    # 0-1, output (1, 1) rows 1-3 x cols 1-3.
    pooled = np.asarray(discriminators.avg_pool_half(x))[0, :, :, 0]
    np.testing.assert_allclose(pooled[0, 0], np.mean([0, 1, 4, 5]))
    np.testing.assert_allclose(pooled[1, 1], np.mean([5, 6, 7, 9, 10, 11, 13, 14, 15]))
    np.testing.assert_allclose(pooled[0, 1], np.mean([1, 2, 3, 5, 6, 7]))
    d = discriminators.MultiScale(num_scales=3, ndf=8, n_layers=3)
    p = jax.jit(d.init)(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
    assert set(p["params"]) == {"scale_0", "scale_1", "scale_2"}
    assert set(p["params"]["scale_0"]) == {"conv_0", "conv_1", "conv_2", "conv_3"}
    assert p["params"]["scale_0"]["conv_2"]["kernel"].shape == (4, 4, 16, 32)  # No cap.
    outs = jax.jit(d.apply)(p, images(2))
    assert [o.shape for o in outs] == [(2, 4, 4, 1), (2, 2, 2, 1), (2, 1, 1, 1)]
    # Scale 1 judges the pooled image with its own network.
    net = discriminators.ScaleNet(8, 3)
    pooled = discriminators.avg_pool_half(images(2))
    want = jax.jit(net.apply)({"params": p["params"]["scale_1"]}, pooled)
    np.testing.assert_allclose(outs[1], want, rtol=1e-5, atol=1e-6)
    assert discriminators.multiscale_min_size(3, 3) == 32


# --------------------------------------------------------------------------- shared layers


def test_shared_layers_are_one_set_that_either_domain_moves():
    c = tiny_config("unused", **{"train.ema_decay": 0.0})  # Translators: the parameters.
    state = jax.jit(lambda: unit.init_state(c, rngs.key(0)))()
    gen = state["params"]["gen"]
    assert set(gen) == set(unit.GEN_PARTS)
    ab, ba = (unit.translator_variables(state, d) for d in base.DIRECTIONS)
    assert ab["enc_shared"] is ba["enc_shared"] is gen["enc_shared"]
    assert ab["dec_shared"] is ba["dec_shared"] is gen["dec_shared"]
    assert ab["encoder"] is gen["enc_a"] and ab["decoder"] is gen["dec_b"]
    assert ba["encoder"] is gen["enc_b"] and ba["decoder"] is gen["dec_a"]

    def own_reconstruction(g, domain, x):  # One domain's VAE only.
        return jnp.mean(jnp.abs(unit.decode(c, g, unit.encode(c, g, x, domain), domain) - x))

    for domain, other in (("a", "b"), ("b", "a")):
        grad_fn = jax.jit(jax.grad(own_reconstruction), static_argnums=1)
        grads = grad_fn(gen, domain, images(2, seed=ord(domain)))
        for part in ("enc_shared", "dec_shared", f"enc_{domain}", f"dec_{domain}"):
            assert max_abs(grads[part]) > 0, (domain, part)
        for part in (f"enc_{other}", f"dec_{other}"):
            assert max_abs(grads[part]) == 0, (domain, part)
    # No sharing (the later release): the shared parts are empty, the domains apart.
    c0 = tiny_config("unused", **{"model.generator.shared_blocks": 0})
    gen0 = jax.eval_shape(lambda: unit.init_state(c0, rngs.key(0)))["params"]["gen"]
    assert gen0["enc_shared"] == {} and gen0["dec_shared"] == {}
    assert len(gen0["enc_a"]["blocks"]) == 4  # n_res 2 private blocks x 2 convolutions.


def test_kl_term_against_a_hand_computation():
    h = jnp.asarray([[[[1.0, -2.0]], [[0.5, 0.0]]]])  # (1, 2, 1, 2)
    assert float(unit.kl_term(h)) == pytest.approx((1 + 4 + 0.25 + 0) / 4)
    # Twice the mean per-element KL(N(h, 1) || N(0, 1)) = h^2 / 2.
    np.testing.assert_allclose(
        unit.kl_term(h), 2 * vae.kl_to_standard_normal(h, jnp.zeros_like(h))[0], rtol=1e-6
    )


# --------------------------------------------------------------------------- train step


def test_train_step_updates_d_first_then_g_against_the_new_d():
    c = tiny_config("unused")
    state = jax.jit(lambda: unit.init_state(c, rngs.key(0)))()
    batch = {"a": images(2, 1), "b": images(2, 2)}
    new, m = jax.jit(unit.make_train_step(c, base.single_stage(c)[0]))(state, batch)
    key = jax.random.fold_in(rngs.from_data(state["rng"]), 0)
    d_old = {k: state["params"][k] for k in ("d_a", "d_b")}
    d_new = {k: new["params"][k] for k in ("d_a", "d_b")}

    @jax.jit
    def by_hand(gen, d_old, d_new, a, b):  # One compiled program (eager ops are slow here).
        out = unit.forward(c, gen, a, b, key)
        d_terms = unit.discriminator_terms(c, d_old, a, b, out["x_ba"], out["x_ab"])
        g_terms = unit.generator_terms(c, out, a, b, d_new)
        stale = unit.generator_terms(c, out, a, b, d_old)["adv_b"]
        logits = unit.discriminate(c, d_old["d_b"], jnp.concatenate([b, out["x_ab"]]))
        h_a = unit.encode(c, gen, a, "a")
        return d_terms, g_terms, stale, logits, h_a

    d_terms, g_terms, stale, logits, h_a = by_hand(
        state["params"]["gen"], d_old, d_new, batch["a"], batch["b"]
    )
    for name, value in {**d_terms, **g_terms}.items():
        np.testing.assert_allclose(m[f"loss/{name}"], value, rtol=1e-4, err_msg=name)
    np.testing.assert_allclose(m["loss/g_total"], sum(g_terms.values()), rtol=1e-5)
    # The adversarial terms used the updated discriminators (not the old ones).
    assert abs(float(stale) - float(m["loss/adv_b"])) > 1e-6
    # LSGAN by hand: D_2's loss sums (D(real) - 1)^2 and D(fake)^2 over its 2 scales.
    hand = sum(float(jnp.mean((o[:2] - 1) ** 2) + jnp.mean(o[2:] ** 2)) for o in logits)
    np.testing.assert_allclose(m["loss/d_b"], hand, rtol=1e-4)
    # The KL terms are 0.01 x mean(E(x)^2) of the encoders' means.
    np.testing.assert_allclose(m["loss/kl_a"], 0.01 * float(jnp.mean(h_a**2)), rtol=1e-4)
    for part in (*unit.GEN_PARTS, "d_a", "d_b"):
        tree = new["params"]["gen"][part] if part in unit.GEN_PARTS else new["params"][part]
        old = state["params"]["gen"][part] if part in unit.GEN_PARTS else state["params"][part]
        moved = [float(np.abs(np.asarray(x) - np.asarray(y)).max()) for x, y in zip(
            jax.tree.leaves(tree), jax.tree.leaves(old), strict=True)]  # fmt: skip
        assert max(moved) > 0, part
    assert int(new["step"]) == 1 and "ema" in new


def test_optimiser_weight_decay_and_step_schedule():
    c = reference_config.get_config()
    schedule = unit.lr_schedule(c)
    for step, want in ((0, 1e-4), (99_999, 1e-4), (100_000, 5e-5), (250_000, 2.5e-5)):
        assert float(schedule(step)) == pytest.approx(want)
    # PyTorch Adam(weight_decay=wd): the first step with a zero loss gradient moves each
    # parameter by -lr * sign(p) (the decay wd * p is the whole gradient).
    tx = unit.optimizer(c)
    p = {"w": jnp.asarray([0.5, -2.0, 0.0])}
    updates, _ = tx.update({"w": jnp.zeros(3)}, tx.init(p), p)
    np.testing.assert_allclose(updates["w"], [-1e-4, 1e-4, 0.0], rtol=1e-3)
    c.optim.lr_policy, c.train.num_steps = "linear", 10
    assert float(unit.lr_schedule(c)(5)) == pytest.approx(1e-4)
    assert float(unit.lr_schedule(c)(10)) == 0.0


# --------------------------------------------------------------------------- config


def test_reference_config_is_the_authors():
    c = reference_config.get_config()
    assert get_method(c.method) is unit.METHOD
    unit.check_config(c)
    g, d, loss, o = c.model.generator, c.model.discriminator, c.loss, c.optim
    assert (g.dim, g.n_downsample, g.n_res, g.shared_blocks) == (64, 2, 4, 1)
    assert (d.ndf, d.n_layers, d.num_scales, d.norm) == (64, 4, 3, "none")
    assert (loss.gan_w, loss.recon_x_w, loss.recon_kl_w) == (1, 10, 0.01)
    assert (loss.recon_x_cyc_w, loss.recon_kl_cyc_w, loss.gan_mode) == (10, 0.01, "lsgan")
    assert (o.lr, o.b1, o.b2, o.weight_decay, o.step_size, o.gamma) == (
        1e-4, 0.5, 0.999, 1e-4, 100_000, 0.5
    )  # fmt: skip
    assert (c.data.size, c.data.batch_size, c.train.num_steps) == (256, 1, 1_000_000)
    assert unit.spatial_multiple(c) == 4 and unit.code_shape(c) == (64, 64, 256)
    unit.check_config(unit_demo.get_config())
    thesis = unit_thesis64.get_config()
    unit.check_config(thesis)
    assert (thesis.data.size, thesis.model.discriminator.n_layers) == (64, 4)


def test_ablation_runs_the_unit_demo_networks_for_unit_steps():
    from bench import ablation

    args = ablation.parse_args(["--size", "32", "--batch", "8", "--variants", "unit"])
    args.unit_steps = 500
    c = ablation.variant_config("unit", args, "/data")
    assert c.method == "unit" and (c.train.num_steps, c.train.decay_steps) == (500, 250)
    assert (c.data.size, c.data.load_size, c.model.generator.dim) == (32, 36, 16)
    unit.check_config(c)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("model.generator.shared_blocks", 3, r"shared_blocks \(3\) must be <= .*n_res \(2\)"),
        ("model.generator.init", "xavier", "config.model.generator.init"),
        ("model.generator.padding", "wrap", "config.model.generator.padding"),
        ("model.discriminator.num_scales", 0, "config.model.discriminator.num_scales"),
        ("model.discriminator.norm", "batch", "config.model.discriminator.norm"),
        ("model.discriminator.num_scales", 5, r"too small .* needs >= 64 px"),
        ("data.size", 31, r"config.data.size \(31\) must be a multiple of 2"),
        ("loss.gan_mode", "wgan-gp", "config.loss.gan_mode"),
        ("loss.recon_kl_w", -1.0, "config.loss.recon_kl_w"),
        ("optim.lr_policy", "cosine", "config.optim.lr_policy"),
        ("optim.gamma", 0.0, "config.optim.gamma"),
        ("optim.weight_decay", -1e-4, "config.optim.weight_decay"),
    ],
)
def test_bad_config_values_are_one_line_errors(key, value, message):
    c = tiny_config("unused", **{key: value})
    with pytest.raises(ValueError, match=message) as e:
        unit.check_config(c)
    assert "\n" not in str(e.value)


# --------------------------------------------------------------------------- the loop


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    return tmp_path_factory.mktemp("unit_faces")


@pytest.fixture(scope="module")
def straight(faces, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("unit_straight")
    return workdir, loop.train(tiny_config(faces), workdir)


def test_visuals_rows_are_input_reconstruction_translation_cycle():
    c = tiny_config("unused")
    state = jax.jit(lambda: unit.init_state(c, rngs.key(0)))()
    batch = {"a": images(2, 3), "b": images(2, 4)}
    rows = unit.make_visuals(c, base.single_stage(c)[0])(state, batch)
    assert {k: v.shape for k, v in rows.items()} == {
        "AtoB": (2, 32, 128, 3), "BtoA": (2, 32, 128, 3)
    }  # fmt: skip
    gen = state["ema"]["gen"]
    h = unit.encode(c, gen, batch["a"], "a")
    fake = unit.make_translate(c)(unit.translator_variables(state, "AtoB"), batch["a"])
    np.testing.assert_array_equal(rows["AtoB"][:, :, :32], batch["a"])
    np.testing.assert_allclose(rows["AtoB"][:, :, 32:64], unit.decode(c, gen, h, "a"), atol=1e-6)
    np.testing.assert_allclose(rows["AtoB"][:, :, 64:96], fake, atol=1e-6)
    back = unit.decode(c, gen, unit.encode(c, gen, fake, "b"), "a")
    np.testing.assert_allclose(rows["AtoB"][:, :, 96:], back, atol=1e-5)


@pytest.mark.slow
def test_tiny_run_through_the_loop_logs_rows_and_resumes_exactly(straight, faces, tmp_path):
    workdir, result = straight
    assert result["step"] == 3 and not result["stopped"]
    for direction in base.DIRECTIONS:
        assert {"l1", "identity_l1", "ratio", "cycle_l1", "adversarial_accuracy"} <= set(
            result["eval"][direction]
        )
    tf = pytest.importorskip("tensorflow")
    tags = {}
    for events in (workdir / "tensorboard").glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(events)):
            for value in event.summary.value:
                tags.setdefault(value.tag, set()).add(event.step)
    assert tags["AtoB"] == tags["BtoA"] == {2, 3}
    assert tags["loss/kl_cyc_a"] == tags["loss/d_b"] == {1, 2, 3}
    # Stopped after step 2 and resumed: the same state, bit for bit.
    first = loop.train(tiny_config(faces), tmp_path, stop_after=2)
    assert first["stopped"] and first["step"] == 2
    resumed = loop.train(tiny_config(faces), tmp_path)
    assert resumed["step"] == 3
    assert_trees_equal(resumed["state"], result["state"])


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=dict(os.environ), capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip


@pytest.mark.slow
def test_evaluate_and_translate_clis_on_the_checkpoint(straight, faces, tmp_path):
    workdir, result = straight
    r = _cli("evaluate.py", f"--ckpt={workdir}", f"--report={tmp_path / 'report'}")
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads((tmp_path / "report" / "metrics.json").read_text())
    for direction in base.DIRECTIONS:
        assert report[direction]["ratio"] == pytest.approx(
            result["eval"][direction]["ratio"], rel=1e-5
        )
        assert 0 <= report[direction]["adversarial_accuracy"] <= 1

    r = _cli(
        "translate.py",
        f"--ckpt={workdir}",
        "--direction=BtoA",
        f"--input={faces / 'testB'}",
        f"--output={tmp_path / 'out'}",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    names = sorted(p.name for p in (faces / "testB").iterdir())
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == names
    x = np.asarray(Image.open(faces / "testB" / names[0]), np.float32)[None] / 127.5 - 1
    variables = unit.translator_variables(result["state"], "BtoA")
    want = np.asarray(unit.make_translate(tiny_config(faces))(variables, jnp.asarray(x)))[0]
    got = np.asarray(Image.open(tmp_path / "out" / names[0]), np.float32) / 127.5 - 1
    assert np.abs(got - want).max() <= 1 / 127.5 + 1e-6  # 8-bit rounding.
