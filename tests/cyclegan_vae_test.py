"""CycleGAN+VAE: the VAE and latent networks, the two stages through the real loop (stage 2
leaves the VAE alone, resume equals an uninterrupted run), the pretrained-VAE field, the
CLIs on its checkpoint and the config errors."""

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

from configs import cyclegan_vae as reference_config
from configs import cyclegan_vae_demo
from jaxfaces import cli
from jaxfaces import rng as rngs
from jaxfaces.methods import base, cyclegan_vae, get_method
from jaxfaces.models import vae
from jaxfaces.training import checkpoint, loop

ROOT = pathlib.Path(__file__).resolve().parents[1]


def tiny_config(root, **overrides) -> ml_collections.ConfigDict:
    """The demo config at test sizes: 32 px, 8 x 8 x 4 latents, 3 + 3 steps."""
    c = cyclegan_vae_demo.get_config()
    c.data.root = str(root)
    c.data.synthetic.num_train = 8
    c.data.synthetic.num_test = 4
    c.data.batch_size = 2
    c.model.vae.latent_channels = 4
    c.model.vae.nf = 8
    c.model.vae.n_blocks = 1
    c.model.latent_generator.ngf = 8
    c.model.latent_generator.n_blocks = 1
    c.model.latent_discriminator.ndf = 8
    c.model.latent_discriminator.n_layers = 1
    c.loss.pool_size = 3
    c.vae_stage.num_steps = 3
    c.train.num_steps = 3
    c.train.log_every = 1
    c.train.log_images_every = 2  # Images in both stages (steps 2 and 4) and at the end.
    c.train.eval_every = 0
    c.train.ckpt_every = 100  # Checkpoints only at the ends of the stages.
    for key, value in overrides.items():
        section = c
        *parents, leaf = key.split(".")
        for p in parents:
            section = section[p]
        section[leaf] = value
    return c


def assert_trees_equal(got, want) -> None:
    """Leaf by leaf, bit for bit (a checkpoint holds optimizer states as plain containers)."""
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_array_equal(np.asarray(g), np.asarray(w))


def max_change(a, b) -> float:
    return max(float(np.abs(np.asarray(x) - np.asarray(y)).max()) for x, y in zip(
        jax.tree.leaves(a), jax.tree.leaves(b), strict=True
    ))  # fmt: skip


# --------------------------------------------------------------------------- networks


def test_vae_and_latent_network_shapes():
    x = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)), jnp.float32)
    enc = vae.Encoder(nf=8, num_downs=2, n_blocks=1, latent_channels=4)
    dec = vae.Decoder(nf=8, num_downs=2, n_blocks=1)
    p_enc = enc.init(jax.random.key(0), x)
    mean, logvar = enc.apply(p_enc, x)
    assert mean.shape == logvar.shape == (2, 8, 8, 4)
    p_dec = dec.init(jax.random.key(1), mean)
    y = dec.apply(p_dec, mean)
    assert y.shape == (2, 32, 32, 3) and float(jnp.abs(y).max()) <= 1.0
    # Any multiple of the stride: 48 x 64 images give 12 x 16 latents and back.
    big = jnp.zeros((1, 48, 64, 3))
    assert enc.apply(p_enc, big)[0].shape == (1, 12, 16, 4)
    assert dec.apply(p_dec, jnp.zeros((1, 12, 16, 4))).shape == (1, 48, 64, 3)
    with pytest.raises(ValueError, match="divisible by 4, got 30x32"):
        enc.apply(p_enc, jnp.zeros((1, 30, 32, 3)))
    # G keeps the latent's shape; the residual G adds the plain network's output to its input.
    gen = vae.LatentGenerator(ngf=8, n_blocks=1)
    p_gen = gen.init(jax.random.key(2), mean)
    out = gen.apply(p_gen, mean)
    assert out.shape == mean.shape
    plain = vae.LatentGenerator(ngf=8, n_blocks=1, residual=False)
    np.testing.assert_allclose(out - mean, plain.apply(p_gen, mean), atol=1e-6)
    assert float(jnp.abs(out - mean).max()) > 0
    critic = vae.LatentCritic(ndf=8, n_layers=2)
    assert critic.apply(critic.init(jax.random.key(3), mean), mean).shape == (2, 8, 8, 1)


def test_kl_against_a_hand_computation():
    mean = jnp.asarray([[[[1.0, 0.0]]], [[[0.0, -2.0]]]])  # (2, 1, 1, 2)
    logvar = jnp.asarray([[[[0.0, math.log(2.0)]]], [[[0.0, -1.0]]]])
    # Per element (mean^2 + var - 1 - logvar) / 2, averaged over each example's elements:
    first = (0.5 * (1 + 1 - 1 - 0) + 0.5 * (0 + 2 - 1 - math.log(2))) / 2
    second = (0.0 + 0.5 * (4 + math.exp(-1) - 1 + 1)) / 2
    np.testing.assert_allclose(vae.kl_to_standard_normal(mean, logvar), [first, second], rtol=1e-6)
    zeros = jnp.zeros((3, 2, 2, 4))
    np.testing.assert_array_equal(vae.kl_to_standard_normal(zeros, zeros), np.zeros(3))


def test_reparameterize_draws_from_the_posterior():
    mean = jnp.full((20_000, 1, 1, 2), jnp.asarray([0.5, -1.0]))
    logvar = jnp.full((20_000, 1, 1, 2), jnp.asarray([0.0, 2 * math.log(3.0)]))
    z = np.asarray(vae.reparameterize(mean, logvar, jax.random.key(0))).reshape(-1, 2)
    np.testing.assert_allclose(z.mean(0), [0.5, -1.0], atol=0.05)
    np.testing.assert_allclose(z.std(0), [1.0, 3.0], rtol=0.03)
    grad = jax.grad(lambda m: vae.reparameterize(m, logvar[:1], jax.random.key(1)).sum())
    np.testing.assert_array_equal(grad(mean[:1]), 1.0)  # Differentiable in the mean.


# --------------------------------------------------------------------------- config


def test_reference_config_stages_and_sizes():
    c = reference_config.get_config()
    assert get_method(c.method) is cyclegan_vae.METHOD
    cyclegan_vae.check_config(c)
    assert cyclegan_vae.num_downs(c) == 3 and cyclegan_vae.spatial_multiple(c) == 8
    assert cyclegan_vae.stages(c) == base.make_stages(("vae", 11_100), ("cyclegan", 44_400))
    assert (c.loss.gan_mode, c.loss.lambda_a, c.loss.lambda_identity) == ("lsgan", 10.0, 0.5)
    assert (c.optim.lr, c.optim.b1, c.loss.pool_size) == (2e-4, 0.5, 50)
    c.vae_stage.pretrained = "/some/run"
    assert cyclegan_vae.stages(c) == base.make_stages(("vae", 0), ("cyclegan", 44_400))
    demo = cyclegan_vae_demo.get_config()
    cyclegan_vae.check_config(demo)
    assert (demo.data.size, cyclegan_vae.num_downs(demo)) == (32, 2)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("model.vae.latent_size", 12, r"config.model.vae.latent_size \(12\) must divide"),
        ("model.vae.latent_size", 64, "config.model.vae.latent_size"),
        ("model.vae.norm", "batch", r"config.model.vae.norm \('batch'\) must be one of"),
        ("model.vae.upsample", "cubic", "config.model.vae.upsample"),
        ("model.vae.latent_channels", 0, "config.model.vae.latent_channels"),
        ("model.latent_discriminator.padding", "wrap", "latent_discriminator.padding"),
        ("loss.gan_mode", "bce", "config.loss.gan_mode"),
        ("loss.lambda_a", -1.0, "config.loss.lambda_a"),
        ("vae_stage.num_steps", -1, "config.vae_stage.num_steps"),
        ("vae_stage.kl_weight", -0.1, "config.vae_stage.kl_weight"),
        ("vae_stage.lr", 0.0, "config.vae_stage.lr"),
        ("vae_stage.decay_fraction", 1.5, "config.vae_stage.decay_fraction"),
        ("vae_stage.pretrained", None, "config.vae_stage.pretrained"),
    ],
)
def test_bad_config_values_are_one_line_errors(key, value, message):
    c = tiny_config("unused", **{key: value})
    with pytest.raises(ValueError, match=message) as e:
        cyclegan_vae.check_config(c)
    assert "\n" not in str(e.value)


def test_vgg_layer_is_checked_only_when_the_term_is_on():
    cyclegan_vae.check_config(tiny_config("unused", **{"vae_stage.vgg_layer": "conv9_9"}))
    with pytest.raises(ValueError, match="unknown config.vae_stage.vgg_layer 'conv9_9'"):
        cyclegan_vae.check_config(
            tiny_config("unused", **{"vae_stage.vgg_layer": "conv9_9", "vae_stage.vgg_weight": 1.0})
        )


# --------------------------------------------------------------------------- train steps


def test_vae_step_terms_and_vgg_feature_term():
    """Stage 1's terms are the VAE's (L1 per domain, KL, VGG19 feature L1 with the term on);
    it moves only the VAE."""
    c = tiny_config(
        "unused",
        **{"vae_stage.vgg_weight": 0.5, "vae_stage.vgg_layer": "relu1_1", "vgg.weights": "random"},
    )
    state = cyclegan_vae.load_frozen(c, cyclegan_vae.init_state(c, rngs.key(0)))
    assert set(state["frozen"]["vgg"]) == {"conv1_1"}
    stage = cyclegan_vae.stages(c)[0]
    rng = np.random.default_rng(1)
    batch = {k: jnp.asarray(rng.uniform(-1, 1, (2, 32, 32, 3)), jnp.float32) for k in "ab"}
    new, m = jax.jit(cyclegan_vae.make_train_step(c, stage))(state, batch)
    assert set(m) == {
        "loss/vae_l1_a", "loss/vae_l1_b", "loss/kl", "loss/vgg", "loss/vae_total", "lr"
    }  # fmt: skip
    total = (m["loss/vae_l1_a"] + m["loss/vae_l1_b"]) / 2 + c.vae_stage.kl_weight * m["loss/kl"]
    np.testing.assert_allclose(m["loss/vae_total"], total + 0.5 * m["loss/vgg"], rtol=1e-5)
    assert float(m["loss/vgg"]) > 0 and float(m["lr"]) == pytest.approx(c.vae_stage.lr)
    assert max_change(new["vae"], state["vae"]) > 0
    for key in ("params", "opt_g", "opt_d", "pool_x", "pool_y", "frozen"):
        assert_trees_equal(new[key], state[key])


def test_latent_cyclegan_step_terms_are_the_latent_losses():
    """Stage 2's cycle and identity terms are L1 on the frozen encoder's mean latents."""
    c = tiny_config("unused")
    state = cyclegan_vae.init_state(c, rngs.key(0))
    stage = cyclegan_vae.stages(c)[1]
    rng = np.random.default_rng(2)
    batch = {k: jnp.asarray(rng.uniform(-1, 1, (2, 32, 32, 3)), jnp.float32) for k in "ab"}
    new, m = jax.jit(cyclegan_vae.make_train_step(c, stage))(state, batch)
    encode = cyclegan_vae.encode_mean(c)
    z, w = (encode(state["vae"]["encoder"], batch[k]) for k in "ab")
    nets = cyclegan_vae.latent_nets(c)

    def run(name, x):
        return nets[name].apply({"params": state["params"][name]}, x)

    l1 = lambda x, y: float(jnp.abs(x - y).mean())  # noqa: E731
    np.testing.assert_allclose(m["loss/cycle_a"], 10 * l1(run("f", run("g", z)), z), rtol=1e-4)
    np.testing.assert_allclose(m["loss/cycle_b"], 10 * l1(run("g", run("f", w)), w), rtol=1e-4)
    np.testing.assert_allclose(m["loss/idt_a"], 5 * l1(run("g", w), w), rtol=1e-4)
    g_gan = float(jnp.mean(jnp.square(run("d_y", run("g", z)) - 1)))  # LSGAN.
    np.testing.assert_allclose(m["loss/g"], g_gan, rtol=1e-4)
    assert_trees_equal(new["vae"], state["vae"])
    assert_trees_equal(new["opt_vae"], state["opt_vae"])
    assert max_change(new["params"], state["params"]) > 0
    assert int(new["pool_x"]["count"]) == 2 and "ema" in new  # The demo's EMA generators.


# --------------------------------------------------------------------------- the loop


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    return tmp_path_factory.mktemp("cvae_faces")


@pytest.fixture(scope="module")
def straight(faces, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("cvae_straight")
    return workdir, loop.train(tiny_config(faces), workdir)


@pytest.mark.slow
def test_two_stages_and_stage_two_leaves_the_vae_unchanged(straight, faces):
    workdir, result = straight
    assert result["step"] == 6 and not result["stopped"]
    assert sorted(int(p.name) for p in (workdir / "checkpoints").iterdir()) == [3, 6]
    fresh = jax.device_get(
        jax.jit(lambda: cyclegan_vae.init_state(tiny_config(faces), rngs.key(0)))()
    )
    _, after_vae, _ = checkpoint.load(workdir, 3)
    end = result["state"]
    # Stage 1 trained the VAE only.
    assert max_change(after_vae["vae"], fresh["vae"]) > 0
    for key in ("params", "opt_g", "opt_d", "pool_x", "pool_y", "ema"):
        assert_trees_equal(after_vae[key], fresh[key])
    # Stage 2 left the encoder, the decoder and their optimiser bit for bit as they were.
    assert_trees_equal(end["vae"], after_vae["vae"])
    assert_trees_equal(end["opt_vae"], after_vae["opt_vae"])
    assert max_change(end["params"], after_vae["params"]) > 0
    for direction in base.DIRECTIONS:
        assert {"l1", "identity_l1", "ratio", "cycle_l1", "adversarial_accuracy"} <= set(
            result["eval"][direction]
        )
    # TensorBoard: stage 1's reconstructions (step 2) and KL, stage 2's translations.
    tf = pytest.importorskip("tensorflow")
    tags = {}
    for events in (workdir / "tensorboard").glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(events)):
            for value in event.summary.value:
                tags.setdefault(value.tag, set()).add(event.step)
    assert tags["vae_A"] == tags["vae_B"] == {2}
    assert tags["AtoB"] == tags["BtoA"] == {4, 6}
    assert tags["loss/kl"] == {1, 2, 3} and tags["loss/cycle_a"] == {4, 5, 6}


def test_visuals_of_each_stage(faces):
    c = tiny_config(faces)
    state = cyclegan_vae.init_state(c, rngs.key(0))
    batch = {k: jnp.zeros((2, 32, 32, 3)) for k in "ab"}
    vae_stage, gan_stage = cyclegan_vae.stages(c)
    rows = cyclegan_vae.make_visuals(c, vae_stage)(state, batch)
    assert {k: v.shape for k, v in rows.items()} == {
        "vae_A": (2, 32, 64, 3), "vae_B": (2, 32, 64, 3)
    }  # fmt: skip
    rows = cyclegan_vae.make_visuals(c, gan_stage)(state, batch)
    assert {k: v.shape for k, v in rows.items()} == {
        "AtoB": (2, 32, 96, 3), "BtoA": (2, 32, 96, 3)
    }  # fmt: skip
    translate = cyclegan_vae.make_translate(c)
    want = translate(cyclegan_vae.translator_variables(state, "AtoB"), batch["a"])
    np.testing.assert_array_equal(rows["AtoB"][:, :, 32:64], want)


@pytest.mark.slow
def test_resumed_inside_stage_two_equals_uninterrupted(straight, faces, tmp_path):
    _, expected = straight
    c = tiny_config(faces)
    first = loop.train(c, tmp_path, stop_after=4)  # Stage 2's first step.
    assert first["stopped"] and first["step"] == 4
    resumed = loop.train(c, tmp_path)
    assert resumed["step"] == 6 and not resumed["stopped"]
    assert_trees_equal(resumed["state"], expected["state"])


@pytest.mark.slow
def test_pretrained_vae_skips_stage_one(straight, faces, tmp_path):
    workdir, expected = straight
    c = tiny_config(faces, **{"vae_stage.pretrained": str(workdir)})
    result = loop.train(c, tmp_path)
    assert result["step"] == 3  # 0 VAE steps + 3 latent CycleGAN steps.
    assert sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir()) == [3]
    assert_trees_equal(result["state"]["vae"], expected["state"]["vae"])
    assert max_change(result["state"]["params"], expected["state"]["params"]) > 0


@pytest.mark.slow
def test_unsuitable_pretrained_vae_is_a_one_line_error_naming_it(straight, faces, tmp_path):
    workdir, result = straight

    def error(config, kind=ValueError) -> str:
        want = jax.eval_shape(lambda: cyclegan_vae.init_state(config, rngs.key(0)))["vae"]
        with pytest.raises(kind) as e:
            cyclegan_vae.pretrained_vae(config, want)
        assert cli.input_error(e.value) == str(e.value)  # train.py: `error: ...`, exit 2.
        assert "\n" not in str(e.value)
        return str(e.value)

    missing = tmp_path / "nothing"
    c = tiny_config(faces, **{"vae_stage.pretrained": str(missing)})
    assert error(c, FileNotFoundError).startswith(f"config.vae_stage.pretrained ({missing}): ")
    c = tiny_config(faces, **{"vae_stage.pretrained": str(workdir)})
    c.model.vae.latent_channels = 8
    assert "does not fit config.model.vae" in error(c)
    assert "latent_channels 4 -> 8" in error(c)
    # A run stopped inside its VAE stage; a run of another method.
    for name, saved_config, state in (
        ("half", tiny_config(faces, **{"vae_stage.num_steps": 5}), result["state"]),
        ("other", ml_collections.ConfigDict({"method": "cyclegan"}), {"step": np.int32(3)}),
    ):
        mngr = checkpoint.manager(tmp_path / name / "checkpoints")
        checkpoint.save(mngr, 3, state, saved_config)
        checkpoint.close(mngr)
    c = tiny_config(faces, **{"vae_stage.pretrained": str(tmp_path / "half")})
    assert "step 3) is inside its VAE stage (5 steps)" in error(c)
    c = tiny_config(faces, **{"vae_stage.pretrained": str(tmp_path / "other")})
    assert "a 'cyclegan' run, not a cyclegan_vae one" in error(c)


@pytest.mark.slow
def test_demo_config_trains_on_folders_of_another_size(straight, faces, tmp_path):
    """--config.data.root= --config.data.a=... (and the test and truth folders): 40 px
    images are resized to the config's 32 px."""
    folders = {}
    for key, split in (("a", "trainA"), ("b", "trainB"), ("test_a", "testA"),
                       ("test_b", "testB"), ("truth_a2b", "truthAtoB")):  # fmt: skip
        folders[key] = tmp_path / split
        folders[key].mkdir()
        for path in sorted((faces / split).iterdir())[:4]:
            Image.open(path).resize((40, 40)).save(folders[key] / path.name)
    c = tiny_config("", **{"data.synthetic.enabled": False, "vae_stage.num_steps": 1})
    c.train.num_steps = 1
    for key, folder in folders.items():
        c.data[key] = str(folder)
    result = loop.train(c, tmp_path / "run")
    assert result["step"] == 2
    assert result["eval"]["AtoB"]["identity_l1"] > 0  # Against the truths given.
    assert "ratio" not in result["eval"]["BtoA"]  # No truth_b2a given.


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
    config = tiny_config(faces)
    variables = cyclegan_vae.translator_variables(result["state"], "BtoA")
    want = np.asarray(cyclegan_vae.make_translate(config)(variables, jnp.asarray(x)))[0]
    got = np.asarray(Image.open(tmp_path / "out" / names[0]), np.float32) / 127.5 - 1
    assert np.abs(got - want).max() <= 1 / 127.5 + 1e-6  # 8-bit rounding.


@pytest.mark.slow
def test_train_cli_prints_a_bad_value_as_one_line(tmp_path):
    r = _cli(
        "train.py",
        "--config=configs/cyclegan_vae_demo.py",
        f"--workdir={tmp_path / 'w'}",
        f"--config.data.root={tmp_path / 'faces'}",
        "--config.model.vae.latent_size=12",
    )
    assert r.returncode == 2
    assert (
        r.stderr.strip()
        .splitlines()[-1]
        .startswith("error: config.model.vae.latent_size (12) must divide config.data.size (32)")
    )
