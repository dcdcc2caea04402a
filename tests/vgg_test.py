"""VGG19: torchvision parity through the converter, layer naming, weight files and errors."""

import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from bench.torch_vgg import TorchVGG19  # noqa: E402
from jaxfaces.convert import __main__ as cli  # noqa: E402
from jaxfaces.models import vgg  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def torch_file(tmp_path_factory) -> pathlib.Path:
    """A randomly initialised torchvision-layout VGG19, saved as torchvision saves it."""
    torch.manual_seed(0)
    net = TorchVGG19()
    path = tmp_path_factory.mktemp("vgg") / "vgg19-random.pth"
    torch.save(net.state_dict_torchvision(), path)
    return path


@pytest.fixture(scope="module")
def converted(torch_file) -> pathlib.Path:
    out = torch_file.with_name("vgg19.msgpack")
    assert cli.main(["vgg19", "--pth", str(torch_file), "--out", str(out)]) == 0
    return out


def test_torchvision_indices():
    assert [vgg.torchvision_index(n) for n in ("conv1_1", "conv1_2", "conv2_1", "conv3_1")] == [
        0,
        2,
        5,
        10,
    ]
    assert vgg.torchvision_index("conv4_1") == 19
    assert vgg.torchvision_index("conv5_1") == 28
    assert vgg.torchvision_index("conv5_4") == 34
    with pytest.raises(ValueError, match="conv6_1"):
        vgg.torchvision_index("conv6_1")


@pytest.mark.parametrize("pool", ["max", "avg"])
@pytest.mark.parametrize("size", [64, 96])
def test_parity_with_torchvision_layout(torch_file, converted, pool, size):
    net = TorchVGG19(pool)
    net.load_state_dict(torch.load(torch_file, weights_only=True), strict=False)
    x = np.random.default_rng(size).uniform(-1, 1, (2, size, size, 3)).astype(np.float32)
    with torch.no_grad():
        ref = net(torch.from_numpy(x.transpose(0, 3, 1, 2)), list(vgg.CONV_LAYERS))
    params = vgg.load_params(converted)
    fn = jax.jit(lambda p, im: vgg.VGG19(pool=pool).apply({"params": p}, im, vgg.CONV_LAYERS))
    out = fn(params, x)
    assert sorted(out) == sorted(vgg.CONV_LAYERS)
    for name in vgg.CONV_LAYERS:
        want = ref[name].numpy().transpose(0, 2, 3, 1)
        got = np.asarray(out[name])
        assert got.shape == want.shape, name
        rel = np.abs(got - want).max() / np.abs(want).max()
        assert rel < 1e-5, (name, rel)


def test_returns_only_requested_layers_and_stops_early():
    params = vgg.random_params()
    x = np.zeros((1, 32, 32, 3), np.float32)
    out = vgg.VGG19().apply({"params": params}, x, ["relu1_1", "conv2_1"])
    assert set(out) == {"relu1_1", "conv2_1"}
    assert out["relu1_1"].shape == (1, 32, 32, 64)
    assert out["conv2_1"].shape == (1, 16, 16, 128)
    assert float(out["relu1_1"].min()) >= 0
    # Parameters past the deepest layer asked for are not even needed.
    shallow = {k: v for k, v in params.items() if k in ("conv1_1", "conv1_2", "conv2_1")}
    again = vgg.VGG19().apply({"params": shallow}, x, ["relu1_1", "conv2_1"])
    np.testing.assert_array_equal(again["conv2_1"], out["conv2_1"])
    with pytest.raises(ValueError, match="conv9_9"):
        vgg.VGG19().apply({"params": params}, x, ["conv9_9"])


def test_input_normalisation():
    """[-1, 1] input is mapped to ImageNet-normalised [0, 1] before the first convolution."""
    params = jax.tree.map(np.zeros_like, vgg.random_params())
    params["conv1_1"]["kernel"] = np.zeros((3, 3, 3, 64), np.float32)
    params["conv1_1"]["kernel"][1, 1, 0, 0] = 1.0  # Output channel 0 = centre red pixel.
    x = np.full((1, 8, 8, 3), 0.5, np.float32)  # 0.75 in [0, 1].
    out = vgg.VGG19().apply({"params": params}, x, ["conv1_1"])["conv1_1"]
    np.testing.assert_allclose(out[0, 4, 4, 0], (0.75 - 0.485) / 0.229, rtol=1e-6)


def test_weight_file_round_trip_and_checksum(converted, tmp_path):
    digest = converted.with_name(converted.name + ".sha256").read_text().split()[0]
    assert digest == vgg.sha256(converted)
    params = vgg.load_params(converted)
    assert params["conv1_1"]["kernel"].shape == (3, 3, 3, 64)
    assert params["conv5_4"]["kernel"].shape == (3, 3, 512, 512)
    corrupt = tmp_path / "vgg19.msgpack"
    corrupt.write_bytes(converted.read_bytes()[:-10] + b"0123456789")
    (tmp_path / "vgg19.msgpack.sha256").write_text(f"{digest}  vgg19.msgpack\n")
    with pytest.raises(ValueError, match="SHA-256"):
        vgg.load_params(corrupt)


def test_search_order_and_missing_weights(converted, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(vgg.ENV_VAR, raising=False)
    with pytest.raises(FileNotFoundError) as e:
        vgg.find_weights()
    message = str(e.value)
    assert str(tmp_path / "cache" / "jaxfaces" / "vgg19.msgpack") in message
    assert "python -m jaxfaces.convert vgg19 --pth vgg19-dcbb9e9d.pth" in message
    assert vgg.TORCHVISION_URL in message
    monkeypatch.setenv(vgg.ENV_VAR, str(converted))
    assert vgg.find_weights() == converted
    # An explicit path comes first and a missing one is never silently replaced.
    with pytest.raises(FileNotFoundError, match="nope.msgpack"):
        vgg.load_params(tmp_path / "nope.msgpack")


def test_find_weights_explicit_path_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="given path"):
        vgg.find_weights(tmp_path / "nope.msgpack")


def test_converter_rejects_wrong_files(tmp_path):
    bad = tmp_path / "not_vgg.pth"
    torch.save({"features.0.weight": torch.zeros(8, 3, 3, 3)}, bad)
    result = subprocess.run(
        [sys.executable, "-m", "jaxfaces.convert", "vgg19", "--pth", str(bad), "--out", "x"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "features.0" in result.stderr and "(64, 3, 3, 3)" in result.stderr
    assert not (tmp_path / "x").exists()
