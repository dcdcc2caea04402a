"""FID InceptionV3: parity with pytorch-fid's layout, the converter, the weight file look-up."""

import copy
import hashlib
import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from bench import torch_inception  # noqa: E402
from jaxfaces import metrics  # noqa: E402
from jaxfaces.convert import __main__ as cli  # noqa: E402
from jaxfaces.convert import inception as conv  # noqa: E402
from jaxfaces.models import inception  # noqa: E402

F = torch.nn.functional


def make_torch_net() -> torch.nn.Module:
    """The FID network with random weights, non-trivial batch norms, in eval mode."""
    torch.manual_seed(0)
    net = torch_inception.FIDInceptionV3()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(1 + 0.3 * torch.randn(m.weight.shape, generator=gen))
                m.bias.copy_(0.3 * torch.randn(m.bias.shape, generator=gen))
                m.momentum = None  # Running statistics become those of the batch below.
        net.train()  # Batch statistics of 299 px inputs: features of order 1 at that size.
        net(torch.rand((3, 3, 64, 64), generator=gen))
    return net.eval()


@pytest.fixture(scope="module")
def torch_net() -> torch.nn.Module:
    return make_torch_net()


@pytest.fixture(scope="module")
def converted(torch_net, tmp_path_factory):
    """(path of the converted file, its variables) via the command line."""
    folder = tmp_path_factory.mktemp("inception")
    pth = folder / "pt_inception.pth"
    torch.save(torch_net.state_dict(), pth)
    out = folder / "sub" / "inception_fid.msgpack"
    assert cli.main(["inception", "--pth", str(pth), "--out", str(out)]) == 0
    return out, inception.load_params(out)


def torch_features(net: torch.nn.Module, images: np.ndarray, resize: bool) -> np.ndarray:
    """pytorch-fid's features of NHWC images in [-1, 1] (it takes [0, 1] NCHW)."""
    net.resize_input = resize
    with torch.no_grad():
        x = torch.from_numpy((images.transpose(0, 3, 1, 2) + 1) / 2)
        return net(x).numpy()


def images(n: int, size: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (n, size, size, 3)).astype(np.float32)


def test_features_match_pytorch_fid_layout(torch_net, converted):
    """Parity within float32 rounding: JAX is as close to a float64 PyTorch run as PyTorch's
    own float32 run is (random batch norms make the network ill-conditioned: both differ
    from float64 by up to ~4e-4 of the largest feature at 299 px)."""
    _, variables = converted
    net64 = copy.deepcopy(torch_net).double()
    for resize, size, seed in ((False, 80, 1), (True, 64, 2)):
        x = images(2, size, seed)
        ref = torch_features(torch_net, x, resize)
        ref64 = torch_features(net64, x.astype(np.float64), resize)
        assert ref.shape == (2, 2048)
        assert ref.std() > 0.1 and (ref > 0).mean() > 0.3  # Live features, not zeros.
        out = metrics.inception_features(x, variables, batch_size=2, resize=resize)
        assert out.shape == (2, 2048) and out.dtype == np.float32
        scale = np.abs(ref64).max()
        torch_error = np.abs(ref - ref64).max()
        assert np.abs(out - ref64).max() <= 2 * torch_error + 1e-6 * scale
        assert np.abs(out - ref64).mean() <= 1e-4 * scale
        np.testing.assert_allclose(out, ref, rtol=0, atol=1e-3 * scale)


def test_conversion_is_complete_and_exact(torch_net, converted):
    path, variables = converted
    sd = torch_net.state_dict()
    n_torch = sum(v.numel() for k, v in sd.items() if not k.startswith("fc.") and v.dim() > 0)
    assert sum(np.size(v) for v in jax.tree.leaves(variables)) == n_torch
    assert sum(np.size(v) for v in jax.tree.leaves(variables["params"])) == 21_785_568
    kernel = variables["params"]["Mixed_6b"]["branch7x7_2"]["conv"]["kernel"]
    np.testing.assert_array_equal(
        kernel, sd["Mixed_6b.branch7x7_2.conv.weight"].numpy().transpose(2, 3, 1, 0)
    )
    assert kernel.shape == (1, 7, 128, 128)
    np.testing.assert_array_equal(
        variables["batch_stats"]["Mixed_7c"]["branch_pool"]["bn"]["var"],
        sd["Mixed_7c.branch_pool.bn.running_var"].numpy(),
    )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert inception.sha256_path(path).read_text() == f"{digest}  {path.name}\n"


@pytest.mark.parametrize("size", [64, 299, 411])
def test_resize_matches_torch_bilinear(size):
    x = images(2, size, seed=size)
    ref = (
        F.interpolate(
            torch.from_numpy(x.transpose(0, 3, 1, 2)),
            size=(299, 299),
            mode="bilinear",
            align_corners=False,
        )
        .numpy()
        .transpose(0, 2, 3, 1)
    )
    out = np.asarray(inception.resize_to_input(jnp.asarray(x)))
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-5)
    if size > 299:  # An antialiased resize (PIL, jax antialias=True) is a different input.
        smooth = jax.image.resize(jnp.asarray(x), (2, 299, 299, 3), "bilinear", antialias=True)
        assert np.abs(np.asarray(smooth) - ref).mean() > 0.05


def numpy_state_dict(net: torch.nn.Module) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in net.state_dict().items()}


def test_converter_rejects_other_state_dicts(torch_net):
    sd = numpy_state_dict(torch_net)
    no_counters = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    assert len(no_counters) < len(sd)
    conv.convert(no_counters)  # Batch counters are optional.
    missing = dict(sd)
    del missing["Mixed_5b.branch5x5_2.bn.running_var"]
    with pytest.raises(
        ValueError, match=r"missing key\(s\) \[Mixed_5b.branch5x5_2.bn.running_var\]"
    ):
        conv.convert(missing)
    with pytest.raises(ValueError, match="unexpected key.*AuxLogits.fc.weight"):
        conv.convert({**sd, "AuxLogits.fc.weight": np.zeros((1000, 768), np.float32)})
    wrong = {**sd, "Mixed_7a.branch3x3_2.conv.weight": np.zeros((320, 192, 1, 1), np.float32)}
    with pytest.raises(ValueError, match=r"Mixed_7a.branch3x3_2.conv.weight.*\(3, 3, 192, 320\)"):
        conv.convert(wrong)
    with pytest.raises(ValueError, match=r"fc.weight.*\(1008, 2048\)"):
        conv.convert({**sd, "fc.weight": np.zeros((1000, 2048), np.float32)})


def test_cli_reports_a_missing_file(tmp_path, capsys):
    assert cli.main(["inception", "--pth", str(tmp_path / "nope.pth"), "--out", "x"]) == 2
    assert "nope.pth" in capsys.readouterr().err


def test_load_params_checks_the_file(converted, tmp_path):
    path, _ = converted
    copy = tmp_path / "w.msgpack"
    copy.write_bytes(path.read_bytes())
    inception.load_params(copy)  # No checksum file beside it: read as is.
    inception.sha256_path(copy).write_text("0" * 64 + "  w.msgpack\n")
    with pytest.raises(ValueError, match="damaged or was replaced"):
        inception.load_params(copy)
    other = tmp_path / "other.msgpack"
    other.write_bytes(b"not msgpack at all")
    with pytest.raises(ValueError, match="not a converted Inception weights file"):
        inception.load_params(other)


def test_weights_are_found_by_path_then_environment_then_cache(converted, tmp_path, monkeypatch):
    path, _ = converted
    cache = tmp_path / "cache" / "inception_fid.msgpack"
    monkeypatch.setattr(inception, "DEFAULT_PATH", cache)
    monkeypatch.delenv(inception.ENV_VAR, raising=False)
    with pytest.raises(FileNotFoundError) as err:
        inception.weights_path()
    message = str(err.value)
    assert str(cache) in message and inception.FID_WEIGHTS_URL in message
    assert "python -m jaxfaces.convert inception --pth" in message
    cache.parent.mkdir()
    cache.write_bytes(b"")
    assert inception.weights_path() == cache
    monkeypatch.setenv(inception.ENV_VAR, str(path))
    assert inception.weights_path() == path
    explicit = tmp_path / "explicit.msgpack"
    explicit.write_bytes(b"")
    assert inception.weights_path(explicit) == explicit
    with pytest.raises(FileNotFoundError, match="the path given"):
        inception.weights_path(tmp_path / "absent.msgpack")


def test_fid_kid_or_none(torch_net, converted, tmp_path, monkeypatch, caplog):
    path, variables = converted
    real, fake = images(3, 64, seed=5), images(3, 64, seed=6)
    fake[:, :32] = -1.0  # Half-black images: clearly another distribution.
    monkeypatch.setattr(inception, "DEFAULT_PATH", tmp_path / "none.msgpack")
    monkeypatch.delenv(inception.ENV_VAR, raising=False)
    with caplog.at_level(logging.WARNING):
        assert metrics.fid_kid_or_none(real, fake) is None
    assert "FID/KID skipped" in caplog.text and "none.msgpack" in caplog.text
    monkeypatch.setenv(inception.ENV_VAR, str(path))
    out = metrics.fid_kid_or_none(real, fake, batch_size=2)
    assert set(out) == {"fid", "kid", "kid_std"}
    ref_real = torch_features(torch_net, real, resize=True)
    ref_fake = torch_features(torch_net, fake, resize=True)
    assert out["fid"] > 1.0
    np.testing.assert_allclose(out["fid"], metrics.fid(ref_real, ref_fake), rtol=1e-3)
    kid_ref, _ = metrics.kid(ref_real, ref_fake)
    np.testing.assert_allclose(out["kid"], kid_ref, rtol=1e-3)
    assert out["kid"] > 0
    assert out["kid_std"] < 1e-9 * out["kid"]  # Subsets clipped to the 3 images: all alike.
    assert metrics.fid_kid_or_none(real[:1], fake, weights=variables) is None
