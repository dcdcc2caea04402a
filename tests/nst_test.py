"""Neural style transfer with explicitly random VGG19 weights: it optimises, in one program."""

import csv
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest

from configs import nst as nst_config
from jaxfaces import data as data_lib
from jaxfaces.methods import nst
from jaxfaces.models import vgg

ROOT = pathlib.Path(__file__).resolve().parents[1]
# A shallow setting keeps compiles short; the CLI test runs the thesis's layers.
SMALL = nst.Settings(
    content_layer="conv2_1",
    style_layers=("conv1_1", "conv2_1"),
    style_layer_weights=(0.5, 1.0),
    style_weight=1e4,
    steps=60,
    lr=4.0,
)


@pytest.fixture(scope="module")
def params():
    return vgg.random_params(seed=1)


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    smooth = rng.uniform(-1, 1, (2, 4, 4, 3)).repeat(8, axis=1).repeat(8, axis=2)
    content = smooth.astype(np.float32)  # Two 32 px blocky images.
    style = np.sin(np.arange(32)[:, None] / 2.0 + np.arange(32)[None] / 3.0)
    style = np.stack([style, -style, style**2], -1)[None].astype(np.float32)  # Stripes.
    return content, style


def test_adam_from_noise_lowers_the_loss_tenfold_and_stays_in_range(params, images):
    content, style = images
    init = nst.initial_images("noise", content, jax.random.key(0))
    out, history = nst.stylize(params, content, style, init, SMALL)
    assert out.shape == content.shape
    assert float(out.min()) >= -1.0 and float(out.max()) <= 1.0
    total = np.asarray(history["total"])
    assert total.shape == (2, SMALL.steps + 1)
    assert np.all(total[:, -1] < total[:, 0] / 10), total[:, [0, -1]]
    np.testing.assert_allclose(  # float32, maybe fused (FMA) on one side: a few ulps.
        total,
        SMALL.content_weight * history["content"] + SMALL.style_weight * history["style"],
        rtol=1e-6,
    )
    # The last entry is the loss of the returned image.
    parts = nst.loss_parts(
        params, nst.to_pixels(out), nst.targets(params, content, style[[0, 0]], SMALL), SMALL
    )
    np.testing.assert_allclose(parts["total"], total[:, -1], rtol=1e-4)


def test_batch_equals_single_runs(params, images):
    content, style = images
    init = nst.initial_images("content", content, jax.random.key(1), noise=10.0)
    both, hist = nst.stylize(params, content, style, init, SMALL)
    one, hist1 = nst.stylize(params, content[1:], style, init[1:], SMALL)
    np.testing.assert_allclose(both[1], one[0], atol=1e-4)
    np.testing.assert_allclose(hist["total"][1], hist1["total"][0], rtol=1e-4)


def test_lbfgs_lowers_the_loss(params, images):
    content, style = images
    s = SMALL._replace(optimizer="lbfgs", steps=15)
    init = nst.initial_images("noise", content[:1], jax.random.key(2))
    out, history = nst.stylize(params, content[:1], style, init, s)
    total = np.asarray(history["total"][0])
    assert total[-1] < total[0] / 10, total
    assert np.all(np.isfinite(total))
    assert float(np.abs(out).max()) <= 1.0


def test_initial_images(images):
    content, _ = images
    key = jax.random.key(3)
    np.testing.assert_array_equal(nst.initial_images("content", content, key), content)
    noisy = np.asarray(nst.initial_images("content", content, key, noise=5.0))
    assert 0.01 < np.abs(noisy - content).mean() < 0.05  # ~ 5/127.5 * 0.8
    noise = np.asarray(nst.initial_images("noise", content, key))
    assert noise.min() >= -1 and noise.max() <= 1 and abs(noise.mean()) < 0.1
    mean = np.full(content.shape[1:], 0.25, np.float32)
    np.testing.assert_array_equal(
        nst.initial_images("mean", content, key, mean_image=mean),
        np.broadcast_to(mean, content.shape),
    )
    with pytest.raises(ValueError, match="mean_dir"):
        nst.initial_images("mean", content, key)
    with pytest.raises(ValueError, match="config.nst.init"):
        nst.initial_images("zeros", content, key)


def test_mean_image_of_a_folder(tmp_path):
    data_lib.save_image(tmp_path / "a.png", np.zeros((8, 8, 3), np.uint8))
    data_lib.save_image(tmp_path / "b.png", np.full((8, 8, 3), 255, np.uint8))
    np.testing.assert_allclose(nst.mean_image(tmp_path, 8), np.zeros((8, 8, 3)), atol=1e-6)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty"):
        nst.mean_image(tmp_path / "empty", 8)


def test_settings_errors_name_the_key():
    config = nst_config.get_config()
    config.nst.style_layer_weights = (1.0, 2.0)
    with pytest.raises(ValueError, match="style_layer_weights"):
        nst.Settings.from_config(config)
    config = nst_config.get_config()
    config.nst.content_layer = "conv7_1"
    with pytest.raises(ValueError, match="conv7_1"):
        nst.Settings.from_config(config)
    config = nst_config.get_config()
    config.nst.optimizer = "sgd"
    with pytest.raises(ValueError, match="config.nst.optimizer"):
        nst.Settings.from_config(config)


def _write_faces(folder: pathlib.Path, n: int, size: int) -> list[pathlib.Path]:
    rng = np.random.default_rng(n)
    paths = []
    for i in range(n):
        img = (rng.uniform(0, 255, (4, 4, 3)).repeat(size // 4, 0).repeat(size // 4, 1)).astype(
            np.uint8
        )
        paths.append(folder / f"face_{i}.png")
        data_lib.save_image(paths[-1], img)
    return paths


def test_cli_writes_images_and_loss_csv(tmp_path):
    content = tmp_path / "content"
    _write_faces(content, 3, 40)  # Not the working size: resized to 32 and back.
    data_lib.save_image(tmp_path / "style.png", np.full((32, 32, 3), 128, np.uint8))
    out = tmp_path / "out"
    args = [
        sys.executable,
        "translate.py",
        "--method=nst",
        f"--content={content}",
        f"--style={tmp_path / 'style.png'}",
        f"--output={out}",
        "--size=32",
        "--steps=3",
        "--init=mean",
        "--vgg_weights=random",
        "--config=configs/nst.py",
        f"--config.nst.mean_dir={content}",
        "--config.nst.batch_size=2",
        "--config.nst.content_layer=conv2_1",  # Shallow layers: a short compile.
        "--config.nst.style_layers=('conv1_1', 'conv2_1')",
        "--config.nst.style_layer_weights=(1.0, 2.0)",
    ]
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "random (explicitly requested" in result.stdout
    for i in range(3):
        assert data_lib.read_image(out / f"face_{i}.png").shape == (40, 40, 3)
    with open(out / "losses.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 * 4  # Steps 0..3 for each image.
    assert {r["image"] for r in rows} == {"face_0.png", "face_1.png", "face_2.png"}
    assert all(float(r["total"]) > 0 for r in rows)


def test_cli_missing_weights_names_file_and_command(tmp_path):
    data_lib.save_image(tmp_path / "c.png", np.zeros((16, 16, 3), np.uint8))
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    args = [
        sys.executable,
        "translate.py",
        "--method=nst",
        f"--content={tmp_path / 'c.png'}",
        f"--style={tmp_path / 'c.png'}",
        f"--output={tmp_path / 'out'}",
    ]
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, env=env)
    assert result.returncode == 2
    assert str(tmp_path / "cache" / "jaxfaces" / "vgg19.msgpack") in result.stderr
    assert "python -m jaxfaces.convert vgg19" in result.stderr
    assert not (tmp_path / "out").exists()
