"""Tests of the procedural face data set (jaxfaces.data.synthetic)."""

import json
import os
import pathlib

import numpy as np
import pytest
from PIL import Image

from jaxfaces.data import synthetic


def _scenes(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    return synthetic.sample_scenes(np.random.default_rng(seed), n)


def _l1(x: np.ndarray, y: np.ndarray) -> float:
    """Mean |x - y| of uint8 images in [-1, 1] units."""
    return float(np.abs(x.astype(np.float64) - y.astype(np.float64)).mean() / 127.5)


def _edges(images: np.ndarray) -> np.ndarray:
    """Sobel magnitude of the luminance of uint8 images (n, h, w, 3), shape (n, h-2, w-2)."""
    y = images.astype(np.float64) @ [0.299, 0.587, 0.114]
    gx = y[:, 1:-1, 2:] - y[:, 1:-1, :-2]
    gy = y[:, 2:, 1:-1] - y[:, :-2, 1:-1]
    return np.hypot(gx, gy)


def _edge_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Correlation of the edge maps of every image of a with every image of b, (n_a, n_b)."""
    ea, eb = (e.reshape(len(e), -1) for e in (_edges(a), _edges(b)))
    ea = (ea - ea.mean(1, keepdims=True)) / ea.std(1, keepdims=True)
    eb = (eb - eb.mean(1, keepdims=True)) / eb.std(1, keepdims=True)
    return ea @ eb.T / ea.shape[1]


def _patches(images: np.ndarray, k: int) -> np.ndarray:
    """The k x k neighbourhood of every pixel (edge-padded), one row per pixel, plus a 1."""
    x = images.astype(np.float64) / 127.5 - 1.0
    r = k // 2
    pad = np.pad(x, ((0, 0), (r, r), (r, r), (0, 0)), mode="edge")
    n, h, w, _ = x.shape
    cols = [pad[:, i : i + h, j : j + w] for i in range(k) for j in range(k)]
    feats = np.concatenate(cols, axis=-1).reshape(n * h * w, -1)
    return np.concatenate([feats, np.ones((len(feats), 1))], axis=1)


def _read(folder: pathlib.Path) -> np.ndarray:
    return np.stack([np.asarray(Image.open(f)) for f in sorted(folder.glob("*.png"))])


@pytest.fixture(scope="module")
def pair64():
    scenes = _scenes(64, seed=1)
    return synthetic.render_photo(scenes, 64), synthetic.render_painting(scenes, 64)


@pytest.mark.parametrize("size", [16, 32, 37, 64, 128])
def test_shapes_and_dtypes(size):
    scenes = _scenes(3)
    photo, painting = synthetic.render_photo(scenes, size), synthetic.render_painting(scenes, size)
    for images in (photo, painting):
        assert images.shape == (3, size, size, 3)
        assert images.dtype == np.uint8
        assert images.std() > 10  # Not blank.


def test_sample_scenes_lengths_and_colour_ranges():
    scenes = _scenes(7)
    assert scenes
    for name, values in scenes.items():
        assert len(values) == 7, name
        if values.ndim == 2:
            assert values.shape == (7, 3), name
        if values.ndim == 2 and name != "light":  # Colours.
            assert values.min() >= 0.0 and values.max() <= 1.0, name
    np.testing.assert_allclose(np.linalg.norm(scenes["light"], axis=1), 1.0, rtol=1e-5)
    assert scenes["light"][:, 2].min() > 0.0  # Lit from the front.
    with pytest.raises(ValueError, match="n"):
        synthetic.sample_scenes(np.random.default_rng(0), -1)


def test_same_seed_same_images_other_seed_other_images():
    a = synthetic.render_photo(_scenes(4, seed=3), 32)
    b = synthetic.render_photo(_scenes(4, seed=3), 32)
    c = synthetic.render_photo(_scenes(4, seed=4), 32)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(
        synthetic.render_painting(_scenes(4, seed=3), 32),
        synthetic.render_painting(_scenes(4, seed=3), 32),
    )
    assert _l1(a, c) > 0.1


def test_chunked_rendering_matches_one_by_one():
    scenes = _scenes(synthetic._CHUNK + 3, seed=5)
    whole = synthetic.render_painting(scenes, 32)
    last = {k: v[-1:] for k, v in scenes.items()}
    np.testing.assert_array_equal(whole[-1:], synthetic.render_painting(last, 32))


def test_photo_and_painting_differ_a_lot(pair64):
    photo, painting = pair64
    assert _l1(photo, painting) >= 0.25


def test_painting_follows_its_own_photo(pair64):
    photo, painting = pair64
    corr = _edge_correlation(photo, painting)
    matched = np.diag(corr)
    others = corr[~np.eye(len(corr), dtype=bool)]
    assert matched.mean() > 0.6
    assert matched.min() > 0.3
    assert matched.mean() > others.mean() + 0.35


def test_translation_is_local_both_ways():
    # A linear map of 5x5 neighbourhoods, fitted on some scenes, must translate other
    # scenes far better than the identity: the style is a local function of the image.
    photo = synthetic.render_photo(_scenes(32, seed=2), 32)
    painting = synthetic.render_painting(_scenes(32, seed=2), 32)
    for src, dst in ((photo, painting), (painting, photo)):
        target = dst.reshape(-1, 3).astype(np.float64) / 127.5 - 1.0
        half = len(target) * 3 // 4
        feats = _patches(src, 5)
        x, y = feats[:half], target[:half]  # Least squares via the (ridge) normal equations.
        weights = np.linalg.solve(x.T @ x + 1e-3 * np.eye(x.shape[1]), x.T @ y)
        fitted = np.abs(np.clip(feats[half:] @ weights, -1, 1) - target[half:]).mean()
        identity = _l1(src[24:], dst[24:])
        assert fitted < 0.5 * identity, (fitted, identity)


def test_scenes_vary(pair64):
    photo, painting = pair64
    for images in (photo, painting):
        x = images.astype(np.float64) / 255.0
        assert x.std(axis=0).mean() > 0.12  # Per-pixel spread across the set.
        flat = x[:16].reshape(16, -1)
        dists = np.abs(flat[:, None] - flat[None]).mean(-1)
        assert dists[~np.eye(16, dtype=bool)].min() > 0.03  # No two images alike.


def test_write_dataset_layout_and_manifest(tmp_path):
    root = synthetic.write_dataset(tmp_path / "new" / "set", size=32, num_train=5, num_test=3)
    assert root == tmp_path / "new" / "set"
    counts = {"trainA": 5, "trainB": 5, "testA": 3, "truthAtoB": 3, "testB": 3, "truthBtoA": 3}
    for split, count in counts.items():
        names = sorted(p.name for p in (root / split).iterdir())
        assert names == [f"{i:06d}.png" for i in range(count)], split
        image = Image.open(root / split / names[0])
        assert image.size == (32, 32) and image.mode == "RGB"
    manifest = json.loads((root / "manifest.json").read_text())
    assert {k: manifest[k] for k in ("generator", "version", "size", "num_train", "num_test")} == {
        "generator": "jaxfaces.synthetic",
        "version": 1,
        "size": 32,
        "num_train": 5,
        "num_test": 3,
    }
    assert manifest["seed"] == 0
    images = {split: _read(root / split) for split in counts}
    ab = _l1(images["testA"], images["truthAtoB"])
    ba = _l1(images["testB"], images["truthBtoA"])
    assert manifest["identity_l1"]["AtoB"] == pytest.approx(ab, abs=1e-5)
    assert manifest["identity_l1"]["BtoA"] == pytest.approx(ba, abs=1e-5)
    assert min(ab, ba) > 0.2
    # Truths are translations of their inputs; training domains hold different scenes.
    assert np.diag(_edge_correlation(images["testA"], images["truthAtoB"])).min() > 0.3
    assert np.diag(_edge_correlation(images["testB"], images["truthBtoA"])).min() > 0.3
    assert not np.array_equal(images["trainA"][:3], images["testA"])
    assert not np.array_equal(images["trainA"][:3], images["truthBtoA"])
    trains = np.diag(_edge_correlation(images["trainA"], images["trainB"]))
    tests = np.diag(_edge_correlation(images["testA"], images["truthAtoB"]))
    assert trains.mean() < tests.mean() - 0.2


def test_write_dataset_is_byte_identical_for_a_seed(tmp_path):
    kwargs = dict(size=16, num_train=2, num_test=2)
    a = synthetic.write_dataset(tmp_path / "a", seed=3, **kwargs)
    b = synthetic.write_dataset(tmp_path / "b", seed=3, **kwargs)
    c = synthetic.write_dataset(tmp_path / "c", seed=4, **kwargs)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert len(files) == 13
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    assert (a / "trainA/000000.png").read_bytes() != (c / "trainA/000000.png").read_bytes()


def _mtimes(root: pathlib.Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*.*")}


def test_ensure_dataset_keeps_a_complete_set(tmp_path):
    root = synthetic.ensure_dataset(tmp_path, size=16, num_train=3, num_test=2, seed=1)
    before = _mtimes(root)
    past = 1_000_000_000  # Old mtimes make a rewrite visible even on coarse clocks.
    for name in before:
        os.utime(root / name, ns=(past, past))
    assert synthetic.ensure_dataset(tmp_path, size=16, num_train=3, num_test=2, seed=1) == root
    assert set(_mtimes(root).values()) == {past}
    assert len(before) == 3 + 3 + 2 * 4 + 1


@pytest.mark.parametrize(
    "change", [dict(size=20), dict(num_train=2), dict(num_test=1), dict(seed=2), None]
)
def test_ensure_dataset_rewrites_when_parameters_differ(tmp_path, change):
    params = dict(size=16, num_train=3, num_test=2, seed=1)
    root = synthetic.write_dataset(tmp_path, **params)
    past = 1_000_000_000
    for name in _mtimes(root):
        os.utime(root / name, ns=(past, past))
    if change is None:  # An interrupted write: no manifest.
        (root / "manifest.json").unlink()
    else:
        params.update(change)
    synthetic.ensure_dataset(tmp_path, **params)
    manifest = json.loads((root / "manifest.json").read_text())
    assert {k: manifest[k] for k in params} == params
    assert len(list((root / "trainA").glob("*.png"))) == params["num_train"]
    assert len(list((root / "truthBtoA").glob("*.png"))) == params["num_test"]
    assert past not in {t for n, t in _mtimes(root).items() if n.endswith(".png")}
    assert Image.open(root / "testB" / "000000.png").size == (params["size"],) * 2


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("size", dict(size=15)),
        ("size", dict(size=0)),
        ("num_train", dict(num_train=0)),
        ("num_test", dict(num_test=0)),
        ("num_test", dict(num_test=-2)),
    ],
)
def test_bad_arguments_raise(tmp_path, name, kwargs):
    for fn in (synthetic.write_dataset, synthetic.ensure_dataset):
        with pytest.raises(ValueError, match=name):
            fn(tmp_path / "set", **kwargs)
    assert not (tmp_path / "set").exists()
    if name == "size":
        with pytest.raises(ValueError, match="size"):
            synthetic.render_photo(_scenes(1), kwargs["size"])


def test_cli_writes_a_set(tmp_path, capsys):
    out = tmp_path / "cli"
    synthetic.main(["--out", str(out), "--size", "24", "--num_train", "2", "--num_test", "2"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert (manifest["size"], manifest["num_train"], manifest["num_test"]) == (24, 2, 2)
    assert len(list((out / "testB").glob("*.png"))) == 2
    printed = capsys.readouterr().out
    assert str(out) in printed
    assert f"{manifest['identity_l1']['AtoB']:.4f}" in printed
    assert f"{manifest['identity_l1']['BtoA']:.4f}" in printed


def test_cli_rejects_bad_arguments(tmp_path, capsys):
    with pytest.raises(SystemExit):
        synthetic.main(["--out", str(tmp_path / "cli"), "--size", "8"])
    assert "size" in capsys.readouterr().err
    assert not (tmp_path / "cli" / "manifest.json").exists()
