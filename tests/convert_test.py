"""PyTorch CycleGAN -> jaxfaces conversion: parity with the reference networks, CLI, errors."""

import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from bench import torch_cyclegan  # noqa: E402
from configs import cyclegan as cyclegan_config  # noqa: E402
from jaxfaces import data as data_lib  # noqa: E402
from jaxfaces import inference  # noqa: E402
from jaxfaces.convert import __main__ as cli  # noqa: E402
from jaxfaces.convert import pytorch_cyclegan as conv  # noqa: E402
from jaxfaces.models import discriminators, generators  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
TOL = 1e-4


def count(tree) -> int:
    return sum(np.size(x) for x in jax.tree.leaves(tree))


def settle_batch_norms(net: torch.nn.Module, shape: tuple[int, ...], seed: int = 0) -> None:
    """Gives batch norms non-trivial affine parameters and running statistics, then eval()."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(1 + 0.3 * torch.randn(m.weight.shape, generator=gen))
                m.bias.copy_(0.3 * torch.randn(m.bias.shape, generator=gen))
                m.momentum = None  # Running statistics become plain averages of the batches.
        net.train()
        for _ in range(3):
            net(torch.rand(shape, generator=gen) * 2 - 1)
    net.eval()


def save(net: torch.nn.Module, path: pathlib.Path) -> pathlib.Path:
    torch.save(net.state_dict(), path)
    return path


def torch_forward(net: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    """Runs NCHW torch on NHWC numpy input, in eval mode, returning NHWC."""
    net.eval()
    with torch.no_grad():
        return net(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy().transpose(0, 2, 3, 1)


def images(n: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (n, size, size, 3)).astype(np.float32)


def scale_preserving_init(net):
    """He-normal kernels and small random biases: activations keep their scale layer to layer."""
    with torch.no_grad():
        for p in net.parameters():
            if p.dim() > 1:
                torch.nn.init.kaiming_normal_(p, nonlinearity="relu")
            else:
                p.normal_(0.0, 0.05)


def small_generator(norm="instance", dropout=False, n_blocks=2, seed=0):
    torch.manual_seed(seed)
    g = torch_cyclegan.ResnetGenerator(3, 3, 8, norm, n_blocks, dropout)
    if norm == "none":  # Without norms, N(0, 0.02) weights shrink the signal to ~1e-6.
        scale_preserving_init(g)
    if norm == "batch":
        settle_batch_norms(g, (2, 3, 32, 32), seed)
    return g.eval()


@pytest.mark.parametrize("norm", ["instance", "batch", "none"])
@pytest.mark.parametrize("dropout", [False, True])
def test_generator_matches_reference(tmp_path, norm, dropout):
    g = small_generator(norm, dropout)
    sd = conv.load_state_dict(save(g, tmp_path / "g.pth"))
    cfg = conv.infer_generator_config(sd)
    assert cfg == {
        "name": "resnet",
        "ngf": 8,
        "n_blocks": 2,
        "norm": norm,
        "upsample": "transpose",
        "padding": "reflect",
        "dropout": dropout,
    }
    variables = conv.generator_variables(sd)
    assert ("batch_stats" in variables) == (norm == "batch")
    x = images(2, 32)
    ref = torch_forward(g, x)
    assert ref.std() > 0.05  # A comparison of near-constant outputs would prove little.
    out = generators.make_generator(cfg).apply(variables, jnp.asarray(x), train=False)
    np.testing.assert_allclose(np.asarray(out), ref, atol=TOL, rtol=0)
    assert count(variables["params"]) == sum(p.numel() for p in g.parameters())


@pytest.mark.parametrize("norm", ["instance", "batch", "none"])
def test_discriminator_matches_reference(tmp_path, norm):
    torch.manual_seed(1)
    d = torch_cyclegan.NLayerDiscriminator(3, 8, 3, norm)
    if norm == "none":  # Without norms, N(0, 0.02) weights shrink the signal to ~1e-6.
        scale_preserving_init(d)
    if norm == "batch":
        settle_batch_norms(d, (2, 3, 64, 64))
    sd = conv.load_state_dict(save(d, tmp_path / "d.pth"))
    cfg = conv.infer_discriminator_config(sd)
    assert (cfg["ndf"], cfg["n_layers"], cfg["norm"]) == (8, 3, norm)
    variables = conv.discriminator_variables(sd)
    x = images(2, 64, seed=1)
    ref = torch_forward(d, x)
    net = discriminators.PatchGAN(ndf=8, n_layers=3, norm=norm)
    out = net.apply(variables, jnp.asarray(x), train=False)
    assert out.shape == ref.shape == (2, 6, 6, 1)
    np.testing.assert_allclose(np.asarray(out), ref, atol=TOL, rtol=0)


def test_full_size_networks_match_reference(tmp_path):
    torch.manual_seed(2)
    g = torch_cyclegan.ResnetGenerator(3, 3, 64, "instance", 9, False)
    d = torch_cyclegan.NLayerDiscriminator(3, 64, 3, "instance")
    assert sum(p.numel() for p in g.parameters()) == 11_378_179
    assert sum(p.numel() for p in d.parameters()) == 2_764_737
    g_vars = conv.generator_variables(conv.load_state_dict(save(g, tmp_path / "g.pth")))
    d_vars = conv.discriminator_variables(conv.load_state_dict(save(d, tmp_path / "d.pth")))
    assert count(g_vars) == 11_378_179
    assert count(d_vars) == 2_764_737
    x = images(1, 64, seed=2)
    out = generators.ResnetGenerator().apply(g_vars, jnp.asarray(x), train=False)
    np.testing.assert_allclose(np.asarray(out), torch_forward(g, x), atol=TOL, rtol=0)
    out = discriminators.PatchGAN().apply(d_vars, jnp.asarray(x), train=False)
    np.testing.assert_allclose(np.asarray(out), torch_forward(d, x), atol=TOL, rtol=0)


def test_six_block_generator_layout():
    sd = {k: v.numpy() for k, v in small_generator(n_blocks=6).state_dict().items()}
    assert conv.infer_generator_config(sd)["n_blocks"] == 6
    assert "model.16.weight" in sd and "model.23.weight" in sd  # Upsampling, last conv.
    params = conv.generator_variables(sd)["params"]
    assert set(params) == {"conv_in", "down_0", "down_1", "up_0", "up_1", "conv_out"} | {
        f"res_{i}" for i in range(6)
    }


def test_wrapped_and_data_parallel_state_dicts_load(tmp_path):
    g = small_generator(n_blocks=1)
    wrapped = {"state_dict": {f"module.{k}": v for k, v in g.state_dict().items()}, "epoch": 3}
    torch.save(wrapped, tmp_path / "wrapped.pth")
    plain = conv.load_state_dict(save(g, tmp_path / "plain.pth"))
    loaded = conv.load_state_dict(tmp_path / "wrapped.pth")
    assert list(loaded) == list(plain)
    for k in plain:
        np.testing.assert_array_equal(loaded[k], plain[k])


def test_legacy_instance_norm_statistics_are_ignored():
    sd = {k: v.numpy() for k, v in small_generator(n_blocks=1).state_dict().items()}
    legacy = dict(sd)
    for module in ("model.2", "model.10.conv_block.2", "model.10.conv_block.6"):
        legacy[f"{module}.running_mean"] = np.zeros(8 if module == "model.2" else 32, np.float32)
        legacy[f"{module}.running_var"] = np.ones(8 if module == "model.2" else 32, np.float32)
    assert conv.infer_generator_config(legacy)["norm"] == "instance"
    a, b = conv.generator_variables(sd), conv.generator_variables(legacy)
    jax.tree.map(np.testing.assert_array_equal, a, b)


def write_png_inputs(folder: pathlib.Path, n: int, size: int) -> list[np.ndarray]:
    folder.mkdir()
    rng = np.random.default_rng(3)
    pictures = []
    for i in range(n):
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        data_lib.save_image(folder / f"face_{i}.png", pixels)
        pictures.append(pixels)
    return pictures


def test_cli_checkpoint_translates_like_the_reference(tmp_path, capsys):
    g_a, g_b = small_generator(n_blocks=1, seed=4), small_generator(n_blocks=1, seed=5)
    out = tmp_path / "ckpt"
    status = cli.main(
        [
            "cyclegan",
            "--pth",
            str(save(g_a, tmp_path / "latest_net_G_A.pth")),
            "--pth_b",
            str(save(g_b, tmp_path / "latest_net_G_B.pth")),
            "--out",
            str(out),
        ]
    )
    assert status == 0
    assert "wrote" in capsys.readouterr().out
    pictures = write_png_inputs(tmp_path / "in", 2, 64)
    x = np.stack([data_lib.to_float(p) for p in pictures])

    result = subprocess.run(
        [
            sys.executable,
            "translate.py",
            f"--ckpt={out}",
            "--direction=AtoB",
            f"--input={tmp_path / 'in'}",
            f"--output={tmp_path / 'out'}",
            "--scale=native",  # At 64 px, as torch_forward (the zoo's load size is 286).
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    written = sorted((tmp_path / "out").glob("*.png"))
    assert [p.name for p in written] == ["face_0.png", "face_1.png"]
    expected = data_lib.to_uint8(torch_forward(g_a, x))
    for path, want in zip(written, expected, strict=True):
        got = data_lib.read_image(path)
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 2

    translators, step = inference.load_translators(out)
    assert step == 0
    np.testing.assert_allclose(translators("BtoA")(x), torch_forward(g_b, x), atol=TOL, rtol=0)


def test_checkpoint_with_one_batch_norm_generator(tmp_path):
    g = small_generator("batch", n_blocks=1)
    out = conv.write_checkpoint(
        tmp_path / "ckpt", cyclegan_config.get_config(), g_b=save(g, tmp_path / "g.pth")
    )
    translators, _ = inference.load_translators(out)
    x = images(1, 32, seed=6)
    np.testing.assert_allclose(translators("BtoA")(x), torch_forward(g, x), atol=TOL, rtol=0)
    with pytest.raises(ValueError, match="no AtoB generator"):
        translators("AtoB")


def test_missing_file_is_named(tmp_path, capsys):
    missing = tmp_path / "nope.pth"
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        conv.load_state_dict(missing)
    assert cli.main(["cyclegan", "--pth", str(missing), "--out", str(tmp_path / "o")]) == 2
    assert "nope.pth" in capsys.readouterr().err


def test_discriminator_given_as_generator_is_refused(tmp_path, capsys):
    d = torch_cyclegan.NLayerDiscriminator(3, 8, 2, "instance")
    path = save(d, tmp_path / "latest_net_D_A.pth")
    with pytest.raises(ValueError, match="not a CycleGAN ResnetGenerator.*PatchGAN"):
        conv.generator_variables(conv.load_state_dict(path))
    assert cli.main(["cyclegan", "--pth", str(path), "--out", str(tmp_path / "o")]) == 2
    assert "not a CycleGAN ResnetGenerator" in capsys.readouterr().err


def test_extra_missing_and_misshaped_keys_are_named():
    sd = {k: v.numpy() for k, v in small_generator(n_blocks=1).state_dict().items()}
    with pytest.raises(ValueError, match="unexpected.*model.4.extra"):
        conv.generator_variables({**sd, "model.4.extra": np.zeros(3, np.float32)})
    with pytest.raises(ValueError, match="unexpected.*model.1.running_var"):
        conv.generator_variables({**sd, "model.1.running_var": np.zeros(8, np.float32)})
    with pytest.raises(ValueError, match="missing.*model.7.bias"):
        conv.generator_variables({k: v for k, v in sd.items() if k != "model.7.bias"})
    bad = {**sd, "model.11.weight": np.zeros((16, 32, 3, 3), np.float32)}  # up_0, transposed.
    with pytest.raises(ValueError, match="model.11.weight"):
        conv.generator_variables(bad)


def test_cli_needs_a_generator_and_an_empty_output(tmp_path, capsys):
    assert cli.main(["cyclegan", "--out", str(tmp_path / "o")]) == 2
    assert "--pth" in capsys.readouterr().err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    path = save(small_generator(n_blocks=1), tmp_path / "g.pth")
    assert cli.main(["cyclegan", "--pth", str(path), "--out", str(tmp_path / "full")]) == 2
    assert "not empty" in capsys.readouterr().err
