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
        "generator": "jaxfaces.data.synthetic",
        "version": 1,
        "size": 32,
        "num_train": 5,
        "num_test": 3,
    }
    assert manifest["seed"] == 0
    assert manifest["complete"] is True
    assert manifest["files"] == [f"{s}/{i:06d}.png" for s in counts for i in range(counts[s])]
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


def _files(root: pathlib.Path) -> list[str]:
    """The images under root, relative, as a manifest lists them."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.png"))


def _snapshot(root: pathlib.Path) -> dict[str, bytes | None]:
    """Every entry under root: the bytes of files, None for folders."""
    entries = sorted(root.rglob("*"))
    return {str(p.relative_to(root)): None if p.is_dir() else p.read_bytes() for p in entries}


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
    "change", [dict(size=20), dict(num_train=2), dict(num_test=1), dict(seed=2), "missing"]
)
def test_ensure_dataset_rewrites_when_parameters_differ(tmp_path, change):
    params = dict(size=16, num_train=3, num_test=2, seed=1)
    root = synthetic.write_dataset(tmp_path, **params)
    past = 1_000_000_000
    for name in _mtimes(root):
        os.utime(root / name, ns=(past, past))
    if change == "missing":  # A listed file is gone: the set is not complete any more.
        (root / "testA" / "000001.png").unlink()
    else:
        params.update(change)
    synthetic.ensure_dataset(tmp_path, **params)
    manifest = json.loads((root / "manifest.json").read_text())
    assert {k: manifest[k] for k in params} == params
    assert manifest["complete"] is True
    assert sorted(manifest["files"]) == _files(root)
    assert (root / "trainA" / "000002.png").exists() == (params["num_train"] == 3)
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


# ------------------------------------------------- never touching files the writer did not write

TINY = dict(size=16, num_train=2, num_test=1)
WRITERS = [synthetic.ensure_dataset, synthetic.write_dataset]


def _assert_refused(root: pathlib.Path, fn, kwargs: dict, *names: str) -> str:
    """Calls fn(root, **kwargs), expects the refusal, checks nothing under root changed."""
    before = _snapshot(root)
    with pytest.raises(ValueError) as info:
        fn(root, **kwargs)
    message = str(info.value)
    assert _snapshot(root) == before
    assert "\n" not in message
    for text in (str(root), "--config.data.synthetic.enabled=False", "--config.data.root", *names):
        assert text in message, (text, message)
    return message


@pytest.mark.parametrize("fn", WRITERS)
def test_user_image_in_a_split_folder_is_kept(tmp_path, fn):
    # The report: my_photo.png in DIR/trainA was deleted by the writer.
    (tmp_path / "trainA").mkdir()
    (tmp_path / "trainA" / "my_photo.png").write_bytes(b"my photo")
    message = _assert_refused(tmp_path, fn, TINY, "trainA/my_photo.png", "1 entry")
    assert "no manifest.json" in message
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["my_photo.png", "trainA"]


@pytest.mark.parametrize("fn", WRITERS)
def test_user_files_at_the_top_level_or_named_like_ours_are_kept(tmp_path, fn):
    (tmp_path / "notes.txt").write_text("mine")
    _assert_refused(tmp_path, fn, TINY, "notes.txt", "1 entry")
    (tmp_path / "notes.txt").unlink()
    # A folder laid out like ours (same names) but without our manifest is not ours either.
    (tmp_path / "testA").mkdir()
    (tmp_path / "testA" / "000000.png").write_bytes(b"mine too")
    (tmp_path / "runs").mkdir()
    _assert_refused(tmp_path, fn, TINY, "2 entries (e.g.", "runs")


@pytest.mark.parametrize(
    "manifest",
    [
        '{"name": "my data set", "files": ["trainA/000000.png"]}',
        "not json",
        '{"generator": "jaxfaces.data.synthetic"}',  # Our name alone: no file list.
        '{"generator": "jaxfaces.data.synthetic", "complete": true, "files": ["../x.png"]}',
        '{"generator": "jaxfaces.data.synthetic", "complete": true, "files": ["trainA/me.png"]}',
        '{"generator": "jaxfaces.synthetic", "version": 1}',  # The old format, no counts.
    ],
)
def test_a_foreign_manifest_is_not_taken_for_ours(tmp_path, manifest):
    (tmp_path / "manifest.json").write_text(manifest)
    (tmp_path / "trainA").mkdir()
    (tmp_path / "trainA" / "me.png").write_bytes(b"me")
    for fn in WRITERS:
        message = _assert_refused(tmp_path, fn, TINY, "manifest.json")
        assert "not written by jaxfaces.data.synthetic" in message


@pytest.mark.parametrize("fn", WRITERS)
def test_an_empty_or_missing_folder_is_written(tmp_path, fn):
    (tmp_path / "empty").mkdir()
    for root in (tmp_path / "empty", tmp_path / "missing" / "deeper"):
        assert fn(root, **TINY) == root
        assert sorted(json.loads((root / "manifest.json").read_text())["files"]) == _files(root)
        assert len(_files(root)) == 2 * 2 + 4 * 1


def test_regenerating_our_folder_replaces_only_our_files(tmp_path):
    synthetic.write_dataset(tmp_path, size=16, num_train=3, num_test=2, seed=0)
    synthetic.ensure_dataset(tmp_path, size=20, num_train=1, num_test=1, seed=0)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert sorted(manifest["files"]) == _files(tmp_path)
    assert manifest["files"] == [f"{s}/000000.png" for s in synthetic.SPLITS]
    assert Image.open(tmp_path / "trainB" / "000000.png").size == (20, 20)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([*synthetic.SPLITS, "manifest.json"])


@pytest.mark.parametrize("added", [["trainB/mine.png"], ["mine.txt", "testA/x/deep.png"]])
def test_our_folder_with_user_files_is_not_regenerated(tmp_path, added):
    synthetic.write_dataset(tmp_path, **TINY)
    for name in added:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"added by the user")
    count = "1 entry" if len(added) == 1 else "2 entries"  # testA/x/ is one, not descended.
    for fn in WRITERS:
        message = _assert_refused(tmp_path, fn, dict(TINY, size=20), added[0], count)
        assert "move them out" in message
    # With the same parameters nothing is written, so nothing is refused or removed.
    before = _snapshot(tmp_path)
    synthetic.ensure_dataset(tmp_path, **TINY)
    assert _snapshot(tmp_path) == before


def test_a_symlink_in_our_folder_is_foreign(tmp_path):
    root = synthetic.write_dataset(tmp_path / "set", **TINY)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.png").write_bytes(b"keep")
    (root / "trainA" / "000000.png").unlink()
    (root / "trainA" / "000000.png").symlink_to(tmp_path / "mine" / "keep.png")
    _assert_refused(root, synthetic.write_dataset, TINY, "trainA/000000.png")
    assert (tmp_path / "mine" / "keep.png").read_bytes() == b"keep"


def test_a_file_as_root_is_refused(tmp_path):
    (tmp_path / "faces").write_text("mine")
    for fn in WRITERS:
        with pytest.raises(ValueError, match="not a folder"):
            fn(tmp_path / "faces", **TINY)
    assert (tmp_path / "faces").read_text() == "mine"


def _interrupt_after(monkeypatch, splits: int) -> None:
    """Makes the writer fail (like a crash: no clean-up runs) after writing `splits` folders."""
    real, done = synthetic._write_pngs, []

    def write(root, split, images):
        if len(done) == splits:
            raise KeyboardInterrupt
        done.append(split)
        real(root, split, images)

    monkeypatch.setattr(synthetic, "_write_pngs", write)


@pytest.mark.parametrize("splits", [0, 3])
def test_an_interrupted_first_write_is_recovered(tmp_path, monkeypatch, splits):
    with monkeypatch.context() as m:
        _interrupt_after(m, splits)
        with pytest.raises(KeyboardInterrupt):
            synthetic.ensure_dataset(tmp_path, **TINY)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["complete"] is False and len(manifest["files"]) == 8
    assert len(_files(tmp_path)) == 2 * 2 + 1 if splits else not _files(tmp_path)
    synthetic.ensure_dataset(tmp_path, **TINY)  # Same parameters: incomplete, so rewritten.
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["complete"] is True and sorted(manifest["files"]) == _files(tmp_path)
    assert len(manifest["files"]) == 8 and "identity_l1" in manifest
    fresh = synthetic.write_dataset(tmp_path / "fresh", **TINY)
    for name in manifest["files"]:
        assert (tmp_path / name).read_bytes() == (fresh / name).read_bytes(), name


def test_an_interrupted_regeneration_is_recovered(tmp_path, monkeypatch):
    synthetic.write_dataset(tmp_path, size=16, num_train=3, num_test=2)
    with monkeypatch.context() as m:
        _interrupt_after(m, 2)
        with pytest.raises(KeyboardInterrupt):
            synthetic.ensure_dataset(tmp_path, size=20, num_train=1, num_test=1)
    # The manifest covers the old files that are left and the new ones.
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["complete"] is False and set(_files(tmp_path)) <= set(manifest["files"])
    assert {"testA/000001.png", "trainA/000002.png"} <= set(manifest["files"])  # Old ones.
    assert not (tmp_path / "testA" / "000001.png").exists()  # Removed before the writing.
    assert Image.open(tmp_path / "trainB" / "000000.png").size == (20, 20)  # Written anew.
    assert Image.open(tmp_path / "testA" / "000000.png").size == (16, 16)  # Not yet.
    synthetic.ensure_dataset(tmp_path, size=24, num_train=2, num_test=1)  # Yet other params.
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["complete"] is True and sorted(manifest["files"]) == _files(tmp_path)
    assert len(manifest["files"]) == 8
    assert Image.open(tmp_path / "testA" / "000000.png").size == (24, 24)


def test_a_manifest_left_half_renamed_is_ours(tmp_path):
    # A crash between writing the new manifest and renaming it onto manifest.json.
    (tmp_path / "manifest.json.jaxfaces-tmp").write_text("{")
    synthetic.ensure_dataset(tmp_path, **TINY)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([*synthetic.SPLITS, "manifest.json"])


def test_an_older_manifest_of_ours_is_recognised(tmp_path):
    # Manifests written before the file list: "jaxfaces.synthetic", files implied by counts.
    synthetic.write_dataset(tmp_path, size=16, num_train=3, num_test=2)
    old = {"generator": "jaxfaces.synthetic", "version": 1, "size": 16, "num_train": 3}
    (tmp_path / "manifest.json").write_text(json.dumps({**old, "num_test": 2, "seed": 0}))
    (tmp_path / "trainA" / "mine.png").write_bytes(b"mine")
    _assert_refused(tmp_path, synthetic.ensure_dataset, TINY, "trainA/mine.png", "1 entry")
    (tmp_path / "trainA" / "mine.png").unlink()
    synthetic.ensure_dataset(tmp_path, **TINY)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["generator"] == "jaxfaces.data.synthetic"
    assert sorted(manifest["files"]) == _files(tmp_path) and len(_files(tmp_path)) == 8


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


def test_cli_refuses_a_folder_it_did_not_write(tmp_path, capsys):
    (tmp_path / "trainA").mkdir()
    (tmp_path / "trainA" / "my_photo.png").write_bytes(b"my photo")
    with pytest.raises(SystemExit) as exit_info:
        synthetic.main(["--out", str(tmp_path), "--size", "16", "--num_train", "1"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "my_photo.png" in err and "--out DIR" in err
    assert (tmp_path / "trainA" / "my_photo.png").read_bytes() == b"my photo"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["my_photo.png", "trainA"]
