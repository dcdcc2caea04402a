"""The CycleGAN method: initialisation, and what one train step does."""

import jax
import numpy as np
import pytest

from configs import test as test_config
from jaxfaces import rng
from jaxfaces.methods import cyclegan


def test_initialisation_depends_on_the_seed_and_follows_the_reference():
    c = test_config.get_config()
    c.model.generator.ngf = 16
    init = jax.jit(lambda seed: cyclegan.init_state(c, rng.key(seed)), static_argnums=0)
    a, b = init(0), init(1)
    k_a = np.asarray(a["params"]["g_a"]["res_0"]["conv_0"]["kernel"])
    k_b = np.asarray(b["params"]["g_a"]["res_0"]["conv_0"]["kernel"])
    assert not np.allclose(k_a, k_b)
    assert k_a.std() == pytest.approx(0.02, rel=0.05)  # N(0, 0.02), as init_type="normal".
    assert not np.allclose(
        a["params"]["g_a"]["conv_in"]["conv"]["kernel"],
        a["params"]["g_b"]["conv_in"]["conv"]["kernel"],
    )
    assert int(a["step"]) == 0 and int(a["pool_a"]["count"]) == 0
    assert a["pool_a"]["images"].shape == (c.loss.pool_size, 32, 32, 3)


@pytest.fixture(scope="module")
def one_step():
    c = test_config.get_config()
    state = jax.jit(lambda: cyclegan.init_state(c, rng.key(0)))()
    before = jax.tree.map(np.asarray, state)
    batch = {
        k: np.random.default_rng(i).uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
        for i, k in enumerate("ab")
    }
    after, metrics = jax.jit(cyclegan.make_train_step(c))(state, batch)
    return c, before, jax.tree.map(np.asarray, after), jax.device_get(metrics)


def test_one_step_updates_everything_and_reports_every_loss(one_step):
    c, before, after, metrics = one_step
    assert int(after["step"]) == 1
    assert set(metrics) == {
        "loss/g_a",
        "loss/g_b",
        "loss/cycle_a",
        "loss/cycle_b",
        "loss/idt_a",
        "loss/idt_b",
        "loss/d_a",
        "loss/d_b",
        "loss/g_total",
        "lr",
    }
    terms = [
        metrics[k]
        for k in metrics
        if k.startswith("loss/") and k[5:7] in ("g_", "cy", "id") and k != "loss/g_total"
    ]
    assert metrics["loss/g_total"] == pytest.approx(sum(terms), rel=1e-5)
    # Untrained: cycle L1 ~ mean |x| of U(-1, 1) inputs (0.5) times lambda 10, give or take.
    assert 2 < metrics["loss/cycle_a"] < 8
    for net in ("g_a", "g_b", "d_a", "d_b"):
        moved = jax.tree.map(
            lambda x, y: np.abs(x - y).max(), before["params"][net], after["params"][net]
        )
        assert min(jax.tree.leaves(moved)) > 0, net
    assert int(after["pool_a"]["count"]) == 2 and int(after["pool_b"]["count"]) == 2
    assert metrics["lr"] == pytest.approx(c.optim.lr)


def test_step_losses_equal_the_references_separate_calls(one_step):
    # Each discriminator update runs D once on the real and the fake batch together; the
    # reference (optimize_parameters) makes one call per batch. Instance norm treats each
    # image on its own, so every loss term must equal the one from separate calls.
    c, before, _, metrics = one_step
    nets = cyclegan.models(c)
    params = before["params"]
    real_a, real_b = (
        np.random.default_rng(i).uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32) for i in (0, 1)
    )

    def g(name, x):
        return nets[name].apply({"params": params[name]}, x, train=True)

    def lsgan(name, x, target):
        logits = np.asarray(nets[name].apply({"params": params[name]}, x))
        return float(np.mean((logits - target) ** 2))

    def l1(x, y):
        return float(np.mean(np.abs(np.asarray(x) - y)))

    fake_b, fake_a = g("g_a", real_a), g("g_b", real_b)
    lam, idt = c.loss.lambda_a, c.loss.lambda_identity
    expected = {
        "loss/cycle_a": l1(g("g_b", fake_b), real_a) * lam,
        "loss/cycle_b": l1(g("g_a", fake_a), real_b) * c.loss.lambda_b,
        "loss/idt_a": l1(g("g_a", real_b), real_b) * c.loss.lambda_b * idt,
        "loss/idt_b": l1(g("g_b", real_a), real_a) * lam * idt,
        "loss/g_a": lsgan("d_a", fake_b, 1),
        "loss/g_b": lsgan("d_b", fake_a, 1),
        # D on real images and (the pool being empty at step 0) this step's fakes: one call
        # each in the step, two in the reference.
        "loss/d_a": 0.5 * (lsgan("d_a", real_b, 1) + lsgan("d_a", fake_b, 0)),
        "loss/d_b": 0.5 * (lsgan("d_b", real_a, 1) + lsgan("d_b", fake_a, 0)),
    }
    assert c.loss.gan_mode == "lsgan" and c.loss.d_noise.kind == "none"
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value, rel=1e-5, abs=1e-7), key
