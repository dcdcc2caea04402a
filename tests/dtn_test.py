"""DTN: the three-way discriminator loss and TV against hand computations, f frozen in the
DTN stage, both stages through the real loop, resume, the CLIs on its one-way checkpoint,
f = VGG19 (a random weight file made here) and f = a CycleGAN+VAE run's encoder."""

import json
import math
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

from configs import cyclegan_vae_demo, dtn_demo
from configs import dtn as reference_config
from jaxfaces import rng as rngs
from jaxfaces.methods import base, cyclegan_vae, dtn, get_method
from jaxfaces.models import vgg
from jaxfaces.training import checkpoint, loop

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _set(c: ml_collections.ConfigDict, overrides: dict) -> ml_collections.ConfigDict:
    for key, value in overrides.items():
        section = c
        *parents, leaf = key.split(".")
        for p in parents:
            section = section[p]
        section[leaf] = value
    return c


def tiny_config(root, **overrides) -> ml_collections.ConfigDict:
    """The demo config at test sizes: 32 px, 8 x 8 x 4 latents, 3 + 3 steps."""
    c = dtn_demo.get_config()
    c.data.root = str(root)
    c.data.synthetic.num_train = 8
    c.data.synthetic.num_test = 4
    c.data.batch_size = 2
    c.model.vae.latent_channels = 4
    c.model.vae.nf = 8
    c.model.vae.n_blocks = 1
    c.model.discriminator.ndf = 8
    c.model.discriminator.n_layers = 1
    c.vae_stage.num_steps = 3
    c.train.num_steps = 3
    c.train.log_every = 1
    c.train.log_images_every = 100
    c.train.eval_every = 0
    c.train.ckpt_every = 100  # Checkpoints only at the ends of the stages.
    return _set(c, overrides)


def vgg_config(root, weights, **overrides) -> ml_collections.ConfigDict:
    """f = VGG19 up to relu2_1 (stride 2), g from random, no first stage, 2 steps."""
    c = tiny_config(root, **{"model.f.kind": "vgg19", "model.g_init": "random"})
    c.model.f.vgg_layer = "relu2_1"
    c.vgg.weights = str(weights)
    c.train.num_steps = 2
    c.train.ema_decay = 0.0
    return _set(c, overrides)


def assert_trees_equal(got, want) -> None:
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_array_equal(np.asarray(g), np.asarray(w))


def max_change(a, b) -> float:
    return max(float(np.abs(np.asarray(x) - np.asarray(y)).max()) for x, y in zip(
        jax.tree.leaves(a), jax.tree.leaves(b), strict=True
    ))  # fmt: skip


def random_batch(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {k: jnp.asarray(rng.uniform(-1, 1, (2, 32, 32, 3)), jnp.float32) for k in "ab"}


# --------------------------------------------------------------------------- losses


def test_three_way_discriminator_loss_against_a_hand_computation():
    # One image per set, one patch, three logits (classes: source fake, target fake, real).
    src_fake = jnp.asarray([[[[2.0, 0.0, -1.0]]]])
    tgt_fake = jnp.asarray([[[[0.0, 1.0, 0.0]]]])
    tgt_real = jnp.asarray([[[[0.5, 0.5, 3.0]]]])

    def nll(logits, k):  # -log softmax(logits)[k]
        return -(logits[k] - math.log(sum(math.exp(v) for v in logits)))

    loss_d, terms = dtn.discriminator_loss(src_fake, tgt_fake, tgt_real)
    want = {
        "d_src_fake": nll([2.0, 0.0, -1.0], 0),
        "d_tgt_fake": nll([0.0, 1.0, 0.0], 1),
        "d_tgt_real": nll([0.5, 0.5, 3.0], 2),
    }
    for key, value in want.items():
        assert float(terms[key]) == pytest.approx(value, rel=1e-6)
    assert float(loss_d) == pytest.approx(sum(want.values()), rel=1e-6)
    gang = dtn.generator_gan_loss(src_fake, tgt_fake)
    want_g = nll([2.0, 0.0, -1.0], 2) + nll([0.0, 1.0, 0.0], 2)
    assert float(gang) == pytest.approx(want_g, rel=1e-6)
    # Means over images and patches: two patches with different logits.
    two = jnp.asarray([[[[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]]]])
    assert float(dtn.cross_entropy(two, 0)) == pytest.approx(
        (nll([2.0, 0.0, -1.0], 0) + math.log(3)) / 2, rel=1e-6
    )
    # Evaluation's "real" log-odds: l_2 - log(e^l_0 + e^l_1).
    assert float(dtn.real_logit(tgt_real)[0, 0, 0]) == pytest.approx(
        3.0 - math.log(2 * math.exp(0.5)), rel=1e-6
    )


def test_total_variation_b1_against_a_hand_computation():
    x = np.zeros((1, 2, 2, 1), np.float32)
    x[0, 0, 1, 0], x[0, 1, 0, 0] = 3.0, 4.0  # The one top-left pixel: dx 3, dy 4 -> 5.
    assert float(dtn.total_variation_b1(jnp.asarray(x))) == pytest.approx(5.0, rel=1e-6)
    flat = jnp.ones((2, 8, 8, 3))
    assert float(dtn.total_variation_b1(flat)) == pytest.approx(0.0, abs=1e-3)


# --------------------------------------------------------------------------- config


def test_reference_and_demo_configs():
    c = reference_config.get_config()
    assert get_method(c.method) is dtn.METHOD
    dtn.check_config(c)
    assert (c.loss.alpha, c.loss.beta, c.loss.gamma) == (100.0, 1.0, 0.05)
    assert (c.model.f.kind, c.model.f.vgg_layer, dtn.spatial_multiple(c)) == ("vgg19", "relu4_1", 8)
    assert dtn.stages(c) == base.make_stages(("vae", 0), ("dtn", 44_400))
    c.model.f.kind, c.model.g_init = "autoencoder", "decoder"
    dtn.check_config(c)
    assert dtn.stages(c) == base.make_stages(("vae", 11_100), ("dtn", 44_400))
    c.vae_stage.pretrained = "/some/cyclegan_vae/run"
    assert dtn.stages(c) == base.make_stages(("vae", 0), ("dtn", 44_400))
    demo = dtn_demo.get_config()
    dtn.check_config(demo)
    assert (demo.data.size, demo.model.f.kind, dtn.spatial_multiple(demo)) == (32, "autoencoder", 4)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"model.f.kind": "deepface"}, r"config.model.f.kind \('deepface'\) must be one of"),
        ({"model.g_init": "zeros"}, "config.model.g_init"),
        ({"model.f.kind": "vgg19"}, "config.model.g_init must be 'random' with"),
        (
            {"model.f.kind": "vgg19", "model.g_init": "random", "model.f.vgg_layer": "fc7"},
            "unknown config.model.f.vgg_layer 'fc7'",
        ),
        (
            {
                "model.f.kind": "vgg19",
                "model.g_init": "random",
                "model.f.vgg_layer": "relu5_1",
                "data.size": 40,
            },
            r"config.data.size \(40\) must be a multiple of 16 for config.model.f.vgg_layer",
        ),
        (
            {"model.f.kind": "vgg19", "model.g_init": "random", "vae_stage.pretrained": "x"},
            "config.vae_stage.pretrained names a CycleGAN",
        ),
        ({"model.vae.latent_size": 12}, "config.model.vae.latent_size"),
        ({"model.discriminator.norm": "batch"}, "config.model.discriminator.norm"),
        ({"loss.alpha": -1.0}, r"config.loss.alpha \(-1.0\) must be >= 0"),
        ({"vae_stage.lr": 0.0}, "config.vae_stage.lr"),
        ({"vae_stage.num_steps": 0}, "f .config.model.f.kind 'autoencoder'. would be an untrained"),
        ({"train.ema_decay": 1.0}, "config.train.ema_decay"),
    ],
)
def test_bad_config_values_are_one_line_errors(overrides, message):
    with pytest.raises(ValueError, match=message) as e:
        dtn.check_config(tiny_config("unused", **overrides))
    assert "\n" not in str(e.value)


# --------------------------------------------------------------------------- train steps


def test_dtn_step_keeps_f_frozen_and_its_terms_are_the_papers():
    """The first DTN step starts g from the VAE decoder; L_CONST, L_TID and L_GANG are the
    hand-computed ones; f (the encoder), the decoder and their optimiser never change."""
    c = tiny_config("unused")
    state = jax.jit(lambda: dtn.init_state(c, rngs.key(0)))()
    stage = dtn.stages(c)[1]
    state = {**state, "step": jnp.asarray(stage.start, jnp.int32)}
    batch = random_batch(1)
    step = jax.jit(dtn.make_train_step(c, stage))
    new, m = step(state, batch)

    f = dtn.make_f(c)
    g, d = dtn.generator(c), dtn.discriminator(c)
    decoder, encoder = state["vae"]["decoder"], state["vae"]["encoder"]
    fs, ft = f(encoder, batch["a"]), f(encoder, batch["b"])
    gs, gt = g.apply({"params": decoder}, fs), g.apply({"params": decoder}, ft)
    mean_sq = lambda x, y: float(jnp.mean(jnp.square(x - y)))  # noqa: E731
    np.testing.assert_allclose(m["loss/const"], mean_sq(f(encoder, gs), fs), rtol=1e-4)
    np.testing.assert_allclose(m["loss/tid"], mean_sq(gt, batch["b"]), rtol=1e-4)
    logits = d.apply({"params": state["params"]["d"]}, jnp.concatenate([gs, gt]))
    gang = dtn.generator_gan_loss(logits[:2], logits[2:])
    np.testing.assert_allclose(m["loss/gang"], gang, rtol=1e-4)
    total = m["loss/gang"] + c.loss.alpha * m["loss/const"] + m["loss/tid"]
    np.testing.assert_allclose(m["loss/g_total"], total + c.loss.gamma * m["loss/tv"], rtol=1e-5)

    for _ in range(2):
        new, _ = step(new, random_batch(2))
    assert_trees_equal(new["vae"], state["vae"])  # f (and the decoder) frozen.
    assert_trees_equal(new["opt_vae"], state["opt_vae"])
    assert max_change(new["params"]["g"], decoder) > 0  # g moved away from its start.
    assert max_change(new["params"]["d"], state["params"]["d"]) > 0


def test_one_direction_only(tmp_path):
    c = tiny_config(tmp_path)
    state = jax.jit(lambda: dtn.init_state(c, rngs.key(0)))()
    assert set(dtn.translator_variables(state, "AtoB")) == {"f", "g"}
    assert dtn.translator_variables(state, "BtoA") is None
    critic = dtn.make_critic(c)
    assert critic.variables(state, "BtoA") is None
    logits = critic.logits(critic.variables(state, "AtoB"), np.zeros((3, 32, 32, 3), np.float32))
    assert logits.shape[0] == 3 and critic.threshold == 0.0


# --------------------------------------------------------------------------- the loop


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    return tmp_path_factory.mktemp("dtn_faces")


@pytest.fixture(scope="module")
def straight(faces, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("dtn_straight")
    return workdir, loop.train(tiny_config(faces), workdir)


@pytest.mark.slow
def test_both_stages_through_the_loop(straight, faces):
    workdir, result = straight
    assert result["step"] == 6 and not result["stopped"]
    assert sorted(int(p.name) for p in (workdir / "checkpoints").iterdir()) == [3, 6]
    fresh = jax.device_get(jax.jit(lambda: dtn.init_state(tiny_config(faces), rngs.key(0)))())
    _, after_vae, _ = checkpoint.load(workdir, 3)
    end = result["state"]
    assert max_change(after_vae["vae"], fresh["vae"]) > 0  # Stage 1 trained the VAE ...
    for key in ("params", "opt_g", "opt_d", "ema"):  # ... and nothing else.
        assert_trees_equal(after_vae[key], fresh[key])
    assert_trees_equal(end["vae"], after_vae["vae"])  # Stage 2: f frozen.
    assert max_change(end["params"], after_vae["params"]) > 0
    assert {"l1", "identity_l1", "ratio", "adversarial_accuracy"} <= set(result["eval"]["AtoB"])
    assert "BtoA" not in result["eval"]


@pytest.mark.slow
def test_resumed_inside_the_dtn_stage_equals_uninterrupted(straight, faces, tmp_path):
    _, expected = straight
    c = tiny_config(faces)
    first = loop.train(c, tmp_path, stop_after=4)  # The DTN stage's first step.
    assert first["stopped"] and first["step"] == 4
    resumed = loop.train(c, tmp_path)
    assert resumed["step"] == 6 and not resumed["stopped"]
    assert_trees_equal(resumed["state"], expected["state"])


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=dict(os.environ), capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip


@pytest.mark.slow
def test_evaluate_and_translate_clis_on_the_one_way_checkpoint(straight, faces, tmp_path):
    workdir, result = straight
    r = _cli("evaluate.py", f"--ckpt={workdir}", f"--report={tmp_path / 'report'}")
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert report["AtoB"]["ratio"] == pytest.approx(result["eval"]["AtoB"]["ratio"], rel=1e-5)
    assert "BtoA" not in report
    assert "BtoA: the checkpoint has no BtoA generator" in r.stdout + r.stderr

    out = tmp_path / "out"
    r = _cli("translate.py", f"--ckpt={workdir}", f"--input={faces / 'testA'}", f"--output={out}")
    assert r.returncode == 0, r.stderr[-3000:]
    names = sorted(p.name for p in (faces / "testA").iterdir())
    assert sorted(p.name for p in out.glob("*.png")) == names
    x = np.asarray(Image.open(faces / "testA" / names[0]), np.float32)[None] / 127.5 - 1
    variables = dtn.translator_variables(result["state"], "AtoB")
    want = np.asarray(dtn.make_translate(tiny_config(faces))(variables, jnp.asarray(x)))[0]
    got = np.asarray(Image.open(out / names[0]), np.float32) / 127.5 - 1
    assert np.abs(got - want).max() <= 1 / 127.5 + 1e-6  # 8-bit rounding.

    r = _cli(
        "translate.py", f"--ckpt={workdir}", "--direction=BtoA",
        f"--input={faces / 'testB'}", f"--output={tmp_path / 'back'}",
    )  # fmt: skip
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == (
        "error: this checkpoint has no BtoA generator; it has: ['AtoB']"
    )


@pytest.mark.slow
def test_vgg19_f_runs_and_stays_frozen(faces, tmp_path):
    weights = vgg.save_params(vgg.random_params(seed=3), tmp_path / "vgg19.msgpack")
    c = vgg_config(faces, weights)
    result = loop.train(c, tmp_path / "run")
    assert result["step"] == 2  # No first stage.
    file_params = vgg.load_params(weights)
    assert set(result["state"]["frozen"]["vgg"]) == {"conv1_1", "conv1_2", "conv2_1"}
    for name, p in result["state"]["frozen"]["vgg"].items():  # f: the file's, unchanged.
        assert_trees_equal(p, file_params[name])
    assert "vae" not in result["state"]
    assert result["eval"]["AtoB"]["identity_l1"] > 0
    x = jnp.zeros((1, 48, 48, 3))  # Any multiple of f's stride.
    variables = dtn.translator_variables(result["state"], "AtoB")
    assert dtn.make_translate(c)(variables, x).shape == (1, 48, 48, 3)


def test_missing_vgg19_weights_are_the_usual_error(tmp_path):
    missing = tmp_path / "none.msgpack"
    c = vgg_config("unused", missing)
    state = jax.jit(lambda: dtn.init_state(c, rngs.key(0)))()
    with pytest.raises(FileNotFoundError, match="jaxfaces.convert vgg19") as e:
        dtn.load_frozen(c, state)
    assert str(missing) in str(e.value)


def test_cyclegan_vae_encoder_as_f(tmp_path):
    """vae_stage.pretrained names a CycleGAN+VAE run: its VAE is f (and g's start); no
    first stage; a DTN step leaves it as it was."""
    saved = cyclegan_vae_demo.get_config()
    for key in ("latent_channels", "nf", "n_blocks"):
        saved.model.vae[key] = tiny_config("unused").model.vae[key]
    saved.vae_stage.num_steps = 1
    state = jax.device_get(jax.jit(lambda: cyclegan_vae.init_state(saved, rngs.key(7)))())
    mngr = checkpoint.manager(tmp_path / "cvae" / "checkpoints")
    checkpoint.save(mngr, 1, {**state, "step": np.int32(1)}, saved)
    checkpoint.close(mngr)

    c = tiny_config("unused", **{"vae_stage.pretrained": str(tmp_path / "cvae")})
    assert dtn.stages(c) == base.make_stages(("vae", 0), ("dtn", 3))
    fresh = jax.jit(lambda: dtn.init_state(c, rngs.key(0)))()
    loaded = dtn.load_frozen(c, fresh)
    assert_trees_equal(loaded["vae"], state["vae"])
    new, _ = jax.jit(dtn.make_train_step(c, dtn.stages(c)[1]))(loaded, random_batch(4))
    assert_trees_equal(new["vae"], state["vae"])
    # g started as the run's decoder: one Adam step (lr 5e-4) away from it.
    assert 0 < max_change(new["params"]["g"], state["vae"]["decoder"]) < 2e-3
    c.model.vae.latent_channels = 8
    want = jax.eval_shape(lambda: dtn.init_state(c, rngs.key(0)))["vae"]
    with pytest.raises(ValueError, match="does not fit config.model.vae"):
        cyclegan_vae.pretrained_vae(c, want)
