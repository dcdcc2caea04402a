"""pix2pix: U-Net parity with the reference, the conditional GAN step, the loop, the converter."""

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

torch = pytest.importorskip("torch")

from bench import torch_cyclegan, torch_pix2pix  # noqa: E402
from configs import pix2pix as pix2pix_config  # noqa: E402
from configs import pix2pix_demo  # noqa: E402
from jaxfaces import inference, losses  # noqa: E402
from jaxfaces import rng as rngs  # noqa: E402
from jaxfaces.convert import __main__ as cli  # noqa: E402
from jaxfaces.convert import pytorch_cyclegan as conv_cyclegan  # noqa: E402
from jaxfaces.convert import pytorch_pix2pix as conv  # noqa: E402
from jaxfaces.methods import get_method, pix2pix  # noqa: E402
from jaxfaces.models import discriminators, generators  # noqa: E402
from jaxfaces.training import loop  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
TOL = 1e-4


def count(tree) -> int:
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def images(n: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (n, size, size, 3)).astype(np.float32)


def to_nchw(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def torch_forward(net: torch.nn.Module, x: np.ndarray, train: bool = False) -> np.ndarray:
    """NHWC in and out; `train`: the reference's test mode (each image alone, batch 1)."""
    net.train(train)
    with torch.no_grad():
        if train:
            out = torch.cat([net(to_nchw(x[i : i + 1])) for i in range(len(x))])
        else:
            out = net(to_nchw(x))
    return out.numpy().transpose(0, 2, 3, 1)


def settle(net: torch.nn.Module, shape: tuple[int, ...], seed: int = 0) -> torch.nn.Module:
    """Non-trivial batch-norm affine parameters and running statistics, then eval()."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(1 + 0.3 * torch.randn(m.weight.shape, generator=gen))
                m.bias.copy_(0.3 * torch.randn(m.bias.shape, generator=gen))
                m.momentum = None
        net.train()
        for _ in range(3):
            net(torch.rand(shape, generator=gen) * 2 - 1)
    return net.eval()


def scale_preserving_init(net: torch.nn.Module) -> None:
    """He-normal kernels, small random biases (without norms N(0, 0.02) kills the signal)."""
    with torch.no_grad():
        for p in net.parameters():
            if p.dim() > 1:
                torch.nn.init.kaiming_normal_(p, nonlinearity="relu")
            else:
                p.normal_(0.0, 0.05)


def small_unet(norm="batch", num_downs=5, dropout=False, ngf=4, seed=0) -> torch.nn.Module:
    torch.manual_seed(seed)
    g = torch_pix2pix.UnetGenerator(3, 3, num_downs, ngf, norm, dropout)
    scale_preserving_init(g)  # N(0, 0.02) weights give near-constant outputs: weak tests.
    if norm == "batch":
        settle(g, (4, 3, 2**num_downs, 2**num_downs), seed)
    return g.eval()


def state_dict(net: torch.nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy() for k, v in net.state_dict().items()}


# --------------------------------------------------------------------------- networks


def test_reference_parameter_counts():
    for name, downs, want in (("unet_256", 8, 54_413_955), ("unet_128", 7, 41_828_995)):
        ref = torch_pix2pix.UnetGenerator(3, 3, downs, 64, "batch", True)
        assert sum(p.numel() for p in ref.parameters()) == want
        net = generators.make_generator({"name": name, "ngf": 64, "norm": "batch", "dropout": True})
        assert net.stride == 2**downs
        x = jnp.zeros((1, 2**downs, 2**downs, 3))
        shapes = jax.eval_shape(
            lambda net=net, x=x: net.init(
                {"params": jax.random.key(0), "dropout": jax.random.key(0)}, x, train=False
            )
        )
        assert count(shapes["params"]) == want
    d = torch_cyclegan.NLayerDiscriminator(6, 64, 3, "batch")
    assert sum(p.numel() for p in d.parameters()) == 2_768_705
    pair = jnp.zeros((1, 64, 64, 6))
    shapes = jax.eval_shape(
        lambda: discriminators.PatchGAN(norm="batch").init(jax.random.key(0), pair, train=False)
    )
    assert count(shapes["params"]) == 2_768_705


@pytest.mark.parametrize(
    "norm,num_downs,dropout",
    [("batch", 5, True), ("batch", 6, True), ("instance", 5, False), ("none", 6, False)],
)
def test_unet_matches_reference(tmp_path, norm, num_downs, dropout):
    g = small_unet(norm, num_downs, dropout)
    torch.save(g.state_dict(), tmp_path / "latest_net_G.pth")
    sd = conv_cyclegan.load_state_dict(tmp_path / "latest_net_G.pth")
    cfg = conv.infer_generator_config(sd, dropout)
    assert cfg == {
        "name": "unet",
        "ngf": 4,
        "num_downs": num_downs,
        "norm": norm,
        "dropout": dropout,
    }
    variables = conv.generator_variables(sd, dropout)
    assert count(variables["params"]) == sum(p.numel() for p in g.parameters())
    x = images(2, 2**num_downs)
    ref = torch_forward(g, x)
    assert ref.std() > 0.05
    net = generators.make_generator(cfg)
    out = net.apply(variables, jnp.asarray(x), train=False)
    np.testing.assert_allclose(np.asarray(out), ref, atol=TOL, rtol=0)
    # A larger input (any multiple of the stride) works the same way.
    x2 = images(1, 2 ** (num_downs + 1), seed=1)
    out2 = net.apply(variables, jnp.asarray(x2), train=False)
    np.testing.assert_allclose(np.asarray(out2), torch_forward(g, x2), atol=TOL, rtol=0)


@pytest.mark.slow
def test_full_size_unet_256_matches_reference(tmp_path):
    torch.manual_seed(11)
    g = torch_pix2pix.UnetGenerator(3, 3, 8, 64, "batch", True).eval()
    torch.save(g.state_dict(), tmp_path / "latest_net_G.pth")
    sd = conv_cyclegan.load_state_dict(tmp_path / "latest_net_G.pth")
    cfg = conv.infer_generator_config(sd)
    assert (cfg["name"], cfg["ngf"], cfg["num_downs"], cfg["norm"]) == ("unet_256", 64, 8, "batch")
    variables = conv.generator_variables(sd)
    assert count(variables["params"]) == 54_413_955
    x = images(1, 256, seed=11)
    out = generators.make_generator(cfg).apply(variables, jnp.asarray(x), train=False)
    np.testing.assert_allclose(np.asarray(out), torch_forward(g, x), atol=TOL, rtol=0)


def test_training_mode_translation_matches_reference_test_mode():
    """The reference tests in training mode at batch 1: per-image batch-norm statistics."""
    g = small_unet("batch", 5, dropout=False, ngf=8, seed=3)
    config = small_config("unused", dropout=False, norm="batch")
    variables = conv.generator_variables(state_dict(g), dropout=False)
    x = images(3, 32, seed=3)
    ref_eval = torch_forward(g, x)  # Before torch's training mode moves its running stats.
    ref = torch_forward(g, x, train=True)
    translate = jax.jit(pix2pix.make_translate(config))
    np.testing.assert_allclose(np.asarray(translate(variables, x)), ref, atol=TOL, rtol=0)
    # The inference-mode switch uses the running averages instead.
    config.model.generator.eval_mode = True
    evaluated = pix2pix.make_translate(config)(variables, jnp.asarray(x))
    np.testing.assert_allclose(np.asarray(evaluated), ref_eval, atol=TOL, rtol=0)
    assert np.abs(np.asarray(evaluated) - ref).max() > 0.01


def test_dropout_at_test_time_is_on_fixed_and_batch_independent():
    config = small_config("unused")  # Batch norm, dropout, 6 levels: one dropout level.
    config.model.generator.num_downs = 6
    config.data.size = 64
    g = generators.make_generator(config.model.generator)
    x = jnp.asarray(images(3, 64, seed=4))
    variables = g.init({"params": jax.random.key(1), "dropout": jax.random.key(1)}, x[:1])
    translate = jax.jit(pix2pix.make_translate(config))
    y = np.asarray(translate(variables, x))
    np.testing.assert_array_equal(y, np.asarray(translate(variables, x)))  # Fixed mask.
    np.testing.assert_allclose(y[1:2], translate(variables, x[1:2]), atol=1e-6, rtol=0)
    config.model.generator.dropout = False
    no_dropout = np.asarray(jax.jit(pix2pix.make_translate(config))(variables, x))
    assert np.abs(no_dropout - y).max() > 1e-4


def test_conditional_discriminator_matches_reference(tmp_path):
    torch.manual_seed(5)
    d = settle(torch_cyclegan.NLayerDiscriminator(6, 8, 2, "batch"), (2, 6, 32, 32), 5)
    torch.save(d.state_dict(), tmp_path / "d.pth")
    sd = conv_cyclegan.load_state_dict(tmp_path / "d.pth")
    assert conv_cyclegan.infer_discriminator_config(sd)["in_channels"] == 6
    variables = conv_cyclegan.discriminator_variables(sd)
    config = small_config("unused")
    x, y = images(2, 32, seed=6), images(2, 32, seed=7)
    critic = pix2pix.make_critic(config)
    assert critic.conditional and critic.threshold == 0.0  # Vanilla GAN: logit 0 is p = 1/2.
    got = critic.logits(variables, y, x)  # The pairs (x[i], y[i]): input first, as trained.
    want = d(to_nchw(np.concatenate([x, y], -1))).detach().numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(got, want, atol=TOL, rtol=0)


def test_unet_refuses_bad_sizes_and_depths():
    net = generators.make_generator({"name": "unet", "ngf": 4, "norm": "batch", "num_downs": 5})
    with pytest.raises(ValueError, match="divisible by 32"):
        net.init(jax.random.key(0), jnp.zeros((1, 48, 48, 3)), train=False)
    with pytest.raises(ValueError, match="num_downs must be an integer >= 5"):
        generators.make_generator({"name": "unet", "ngf": 4, "norm": "batch", "num_downs": 4})


# --------------------------------------------------------------------------- the method


def small_config(root, dropout=True, norm="batch", **overrides) -> ml_collections.ConfigDict:
    config = pix2pix_demo.get_config()
    config.data.root = str(root)
    config.data.synthetic.num_train = 8
    config.data.synthetic.num_test = 4
    config.data.batch_size = 2
    config.model.generator.ngf = 8
    config.model.generator.norm = norm
    config.model.generator.dropout = dropout
    config.model.discriminator.ndf = 8
    config.model.discriminator.norm = norm
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


def test_reference_config_defaults():
    c = pix2pix_config.get_config()
    assert get_method(c.method) is pix2pix.METHOD
    assert (c.model.generator.name, c.model.generator.norm, c.model.generator.dropout) == (
        "unet_256",
        "batch",
        True,
    )
    assert (c.loss.gan_mode, c.loss.lambda_l1, c.optim.lr, c.optim.b1) == (
        "vanilla",
        100.0,
        2e-4,
        0.5,
    )
    assert (c.data.load_size, c.data.size, c.data.paired, c.data.batch_size) == (286, 256, True, 1)
    assert c.model.generator.eval_mode is False
    assert pix2pix.spatial_multiple(c) == 256
    pix2pix.check_config(c)


@pytest.mark.parametrize("gan_mode", ["vanilla", "hinge", "wgan-gp"])  # lsgan: as vanilla.
def test_one_step_is_the_reference_update(gan_mode):
    """D is updated on (x, G(x)) and (x, y) first; G's GAN term is the updated D's verdict."""
    config = small_config("unused", dropout=False, norm="instance", **{"loss.gan_mode": gan_mode})
    state = pix2pix.init_state(config, rngs.key(0))
    batch = {"a": jnp.asarray(images(2, 32, 1)), "b": jnp.asarray(images(2, 32, 2))}
    new, m = jax.jit(pix2pix.make_train_step(config))(state, batch)
    assert int(new["step"]) == 1
    g, d = pix2pix.models(config)
    for t, (src, dst) in pix2pix.DOMAINS.items():
        x, y = batch[src], batch[dst]
        fake = g.apply({"params": state["params"][f"g_{t}"]}, x, train=True)
        np.testing.assert_allclose(
            m[f"loss/{t}_G_L1"], 100 * np.abs(np.asarray(fake) - np.asarray(y)).mean(), rtol=1e-4
        )
        judged = d.apply({"params": new["params"][f"d_{t}"]}, jnp.concatenate([x, fake], -1))
        np.testing.assert_allclose(
            m[f"loss/{t}_G_GAN"], losses.gan_loss(judged, True, gan_mode), rtol=1e-4, atol=1e-6
        )
        before = d.apply({"params": state["params"][f"d_{t}"]}, jnp.concatenate([x, y], -1))
        np.testing.assert_allclose(
            m[f"loss/{t}_D_real"],
            0.5 * losses.gan_loss(before, True, gan_mode, True),
            rtol=1e-4,
            atol=1e-6,
        )
        for k in ("g", "d"):  # Every kernel moved (hinge's opposite +-1 can cancel a bias).
            diff = jax.tree_util.tree_leaves_with_path(
                jax.tree.map(
                    lambda a, b: float(jnp.abs(a - b).max()),
                    state["params"][f"{k}_{t}"],
                    new["params"][f"{k}_{t}"],
                )
            )
            kernels = [v for path, v in diff if "kernel" in jax.tree_util.keystr(path)]
            assert len(kernels) > 3 and min(kernels) > 0
    assert ("loss/AtoB_D_gp" in m) == (gan_mode == "wgan-gp")


def test_one_direction_and_config_errors():
    config = small_config("unused", **{"pix2pix.directions": "BtoA"})
    state = pix2pix.init_state(config, rngs.key(0))
    assert set(state["params"]) == {"g_BtoA", "d_BtoA"}
    assert pix2pix.translator_variables(state, "AtoB") is None
    assert set(pix2pix.translator_variables(state, "BtoA")) == {"params", "batch_stats"}
    for key, value, message in (
        ("pix2pix.directions", "AtoA", "config.pix2pix.directions"),
        ("data.paired", False, "config.data.paired=True"),
        ("data.size", 48, "config.data.size"),
        ("loss.gan_mode", "bce", "config.loss.gan_mode"),
        ("model.generator.name", "unet_512", "config.model.generator.name"),
    ):
        with pytest.raises(ValueError, match=message):
            pix2pix.check_config(small_config("unused", **{key: value}))


# --------------------------------------------------------------------------- end to end


def _cli(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=dict(os.environ), capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip


@pytest.mark.slow
def test_loop_runs_resumes_bit_for_bit_and_serves_the_clis(tmp_path):
    root = tmp_path / "faces"
    config = small_config(root)
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
        assert {"l1", "identity_l1", "ratio", "psnr"} <= set(straight["eval"][direction])

    workdir = tmp_path / "straight"
    r = _cli("evaluate.py", f"--ckpt={workdir}", f"--report={tmp_path / 'report'}")
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert report["BtoA"]["ratio"] == pytest.approx(straight["eval"]["BtoA"]["ratio"], rel=1e-5)
    for direction in ("AtoB", "BtoA"):  # (input, truth) real against (input, translation).
        assert 0 <= report[direction]["adversarial_accuracy"] <= 1
        assert report[direction]["adversarial_accuracy"] == pytest.approx(
            straight["eval"][direction]["adversarial_accuracy"], abs=1e-6
        )
    r = _cli(
        "translate.py",
        f"--ckpt={workdir}",
        "--direction=BtoA",
        f"--input={root / 'testB'}",
        f"--output={tmp_path / 'out'}",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert len(list((tmp_path / "out").glob("*.png"))) == 4


def test_converter_round_trip_and_strict_checks(tmp_path, capsys):
    g_ab = small_unet("batch", 5, dropout=False, ngf=8, seed=8)
    g_ba = small_unet("batch", 5, dropout=False, ngf=8, seed=9)
    torch.save(g_ab.state_dict(), tmp_path / "latest_net_G.pth")
    torch.save(g_ba.state_dict(), tmp_path / "other.pth")
    out = tmp_path / "ckpt"
    argv = ["pix2pix", "--pth", str(tmp_path / "latest_net_G.pth"), "--direction", "BtoA"]
    argv += ["--pth_b", str(tmp_path / "other.pth"), "--no_dropout", "--out", str(out)]
    assert cli.main(argv) == 0
    assert "5 levels" in capsys.readouterr().out
    translators, step = inference.load_translators(out)
    assert step == 0
    x = images(2, 32, seed=10)
    # The recorded config keeps the reference's test behaviour (training mode, batch 1).
    np.testing.assert_allclose(
        translators("BtoA")(x), torch_forward(g_ab, x, train=True), atol=TOL, rtol=0
    )
    np.testing.assert_allclose(
        translators("AtoB")(x), torch_forward(g_ba, x, train=True), atol=TOL, rtol=0
    )
    # Strict: a missing key, an extra key, a wrong shape, a CycleGAN file, a non-empty --out.
    sd = state_dict(g_ab)
    missing = {k: v for k, v in sd.items() if k != "model.model.1.model.5.weight"}
    with pytest.raises(ValueError, match="missing PyTorch key"):
        conv.generator_variables(missing)
    with pytest.raises(ValueError, match="unexpected PyTorch key"):
        conv.generator_variables({**sd, "model.model.1.model.9.weight": np.zeros((8, 8, 4, 4))})
    bad = dict(sd)
    bad["model.model.1.model.5.weight"] = np.zeros((16, 4, 3, 3), np.float32)
    with pytest.raises(ValueError, match="model.model.1.model.5.weight"):
        conv.generator_variables(bad)
    resnet = state_dict(torch_cyclegan.ResnetGenerator(3, 3, 4, "instance", 1))
    with pytest.raises(ValueError, match="convert cyclegan"):
        conv.infer_generator_config(resnet)
    assert cli.main(["pix2pix", "--pth", str(tmp_path / "latest_net_G.pth"), "--out", str(out)])
    assert "not empty" in capsys.readouterr().err
