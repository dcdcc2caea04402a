"""Tests of jaxfaces.data.pipeline: the training stream (resume, sharding, pairing, caching)
and the test images, on tiny generated folders and on the thesis's face data when present."""

import logging
import pathlib
import shutil

import numpy as np
import pytest
from PIL import Image

from configs import cyclegan
from jaxfaces import data
from jaxfaces.data import pipeline

THESIS = pathlib.Path(__file__).resolve().parents[2] / "shared/data/thesis_faces"


def _cfg(**overrides):
    cfg = cyclegan.get_config().data
    cfg.load_size, cfg.size, cfg.batch_size = 20, 16, 4
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


def _noise_folder(folder: pathlib.Path, n: int, seed: int, prefix: str = "") -> pathlib.Path:
    """n random-noise images of varying sizes and formats."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        h, w = 18 + 3 * (i % 4), 30 - 2 * (i % 5)
        img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        img.save(folder / f"{prefix}{i:03d}.{('png', 'bmp', 'webp')[i % 3]}", lossless=True)
    return folder


def _solid_folder(folder: pathlib.Path, values) -> pathlib.Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, value in enumerate(values):
        Image.new("RGB", (20, 20), (value,) * 3).save(folder / f"{i}.png")
    return folder


def _take(it, n: int) -> list[dict[str, np.ndarray]]:
    return [next(it) for _ in range(n)]


def _assert_batches_equal(xs, ys) -> None:
    assert len(xs) == len(ys)
    for x, y in zip(xs, ys, strict=True):
        assert x.keys() == y.keys() == {"a", "b"}
        np.testing.assert_array_equal(x["a"], y["a"])
        np.testing.assert_array_equal(x["b"], y["b"])


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> pathlib.Path:
    """A PyTorch-CycleGAN-layout folder: trainA (5), trainB (7), testA (3), no testB."""
    root = tmp_path_factory.mktemp("root")
    _noise_folder(root / "trainA", 5, seed=1)
    _noise_folder(root / "trainB", 7, seed=2)
    _noise_folder(root / "testA", 3, seed=3)
    return root


# ----------------------------------------------------------------------------------------------
# Folders of all kinds, errors.


def test_mixed_folder_batches_and_one_warning(tmp_path, root, caplog):
    folder = tmp_path / "mixed"
    folder.mkdir()
    Image.new("L", (21, 17), 30).save(folder / "gray.png")
    Image.new("LA", (25, 25), (90, 10)).save(folder / "gray_alpha.png")
    Image.new("RGBA", (40, 22), (10, 200, 30, 128)).save(folder / "rgba.webp")
    Image.new("P", (18, 30), 3).save(folder / "palette.gif")
    Image.fromarray(np.full((24, 24), 50000, np.uint16)).save(folder / "sixteen.png")
    Image.new("CMYK", (26, 19), (0, 200, 30, 0)).save(folder / "cmyk.jpg")
    Image.new("RGB", (33, 20), (1, 2, 3)).save(folder / "plain.BMP")
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x13" * 300)
    noise = np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    Image.fromarray(noise).save(folder / "truncated.jpg")
    truncated = (folder / "truncated.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(truncated[: len(truncated) // 2])
    (folder / "text.png").write_text("this is not a png\n")

    with caplog.at_level(logging.WARNING):
        it = data.train_iterator(_cfg(a=str(folder), b=str(root / "trainB")), seed=0)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "Skipping 3 unreadable image file(s) of 10" in warnings[0]
    for name in ("corrupt.jpg", "truncated.jpg", "text.png"):
        assert name in warnings[0]
    for batch in _take(it, 4):  # 16 samples: more than one epoch of the 7 good files.
        assert set(batch) == {"a", "b"}
        for x in batch.values():
            assert isinstance(x, np.ndarray)
            assert x.shape == (4, 16, 16, 3) and x.dtype == np.float32
            assert x.min() >= -1.0 and x.max() <= 1.0
    seen = {float(v) for b in _take(it, 4) for v in np.round(b["a"][:, 8, 8, 0], 3)}
    assert len(seen) >= 4  # Several different files come through.


def test_missing_folder_error_names_path(tmp_path, root):
    cfg = _cfg(a=str(tmp_path / "nowhere"), b=str(root / "trainB"))
    with pytest.raises(FileNotFoundError, match="nowhere"):
        data.train_iterator(cfg, seed=0)


def test_empty_folder_error_names_path(tmp_path, root):
    (tmp_path / "hollow").mkdir()
    with pytest.raises(ValueError, match="hollow"):
        data.train_iterator(_cfg(a=str(root / "trainA"), b=str(tmp_path / "hollow")), seed=0)


def test_root_without_train_b_names_path(tmp_path):
    _noise_folder(tmp_path / "trainA", 2, seed=0)
    with pytest.raises(FileNotFoundError, match="trainB"):
        data.train_iterator(_cfg(root=str(tmp_path)), seed=0)


def test_all_corrupt_folder_is_an_error(tmp_path, root):
    (tmp_path / "bad").mkdir()
    for i in range(3):
        (tmp_path / "bad" / f"{i}.jpg").write_bytes(b"nope")
    with pytest.raises(ValueError, match="None of the 3"):
        data.train_iterator(_cfg(a=str(tmp_path / "bad"), b=str(root / "trainB")), seed=0)


@pytest.mark.parametrize(
    "overrides, pattern",
    [
        ({}, "none is set"),
        (
            {"root": "/r", "tfds": "cycle_gan/horse2zebra"},
            "config.data.root='/r', config.data.tfds",
        ),
        ({"root": "/r", "a": "/a", "b": "/b"}, "exactly one data source"),
        ({"a": "/a"}, "config.data.a and config.data.b must be set together"),
    ],
)
def test_source_must_be_exactly_one(overrides, pattern):
    with pytest.raises(ValueError, match=pattern) as info:
        data.train_iterator(_cfg(**overrides), seed=0)
    assert "config.data.root" in str(info.value) or "config.data.a" in str(info.value)


def test_size_larger_than_load_size(root):
    cfg = _cfg(root=str(root), load_size=286, size=300)
    with pytest.raises(ValueError, match=r"config.data.size \(300\) must be <= config.data.load_"):
        data.train_iterator(cfg, seed=0)


@pytest.mark.parametrize(
    "batch, kwargs, pattern",
    [
        (0, {}, r"config.data.batch_size \(0\) must be positive"),
        (3, {"process_count": 2}, r"batch_size \(3\) must be divisible by the process count"),
        (4, {"num_devices": 3}, r"batch_size \(4\) must be divisible by the device count \(3\)"),
        (4, {"process_count": 2, "process_index": 2}, "process_index 2"),
        (4, {"start_step": -1}, "start_step"),
    ],
)
def test_batch_checks(root, batch, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        data.train_iterator(_cfg(root=str(root), batch_size=batch), seed=0, **kwargs)


# ----------------------------------------------------------------------------------------------
# Determinism, resume, augmentation.


def test_same_seed_same_batches_and_exact_resume(root):
    cfg = _cfg(root=str(root))
    first = _take(data.train_iterator(cfg, seed=7), 6)
    _assert_batches_equal(first, _take(data.train_iterator(cfg, seed=7), 6))
    _assert_batches_equal(first[3:], _take(data.train_iterator(cfg, seed=7, start_step=3), 3))


def test_different_seeds_differ(root):
    cfg = _cfg(root=str(root))
    x = next(data.train_iterator(cfg, seed=0))
    y = next(data.train_iterator(cfg, seed=1))
    assert not np.array_equal(x["a"], y["a"])
    assert not np.array_equal(x["b"], y["b"])


def test_every_file_once_per_epoch_unpaired_lengths(tmp_path):
    """A (3 files) and B (5 files) are independent streams, each a permutation per epoch."""
    cfg = _cfg(
        a=str(_solid_folder(tmp_path / "A", [0, 100, 200])),
        b=str(_solid_folder(tmp_path / "B", [10, 60, 110, 160, 250])),
        batch_size=1,
        load_size=16,
        size=16,
    )
    batches = _take(data.train_iterator(cfg, seed=3), 30)
    a = [int(b["a"][0, 0, 0, 0] * 127.5 + 127.5 + 0.5) for b in batches]
    b = [int(b["b"][0, 0, 0, 0] * 127.5 + 127.5 + 0.5) for b in batches]
    for epoch in range(10):
        assert sorted(a[3 * epoch : 3 * epoch + 3]) == [0, 100, 200]
    for epoch in range(6):
        assert sorted(b[5 * epoch : 5 * epoch + 5]) == [10, 60, 110, 160, 250]
    assert len({tuple(a[i : i + 3]) for i in range(0, 30, 3)}) > 1  # Orders change per epoch.


def _write_half_white(folder: pathlib.Path) -> pathlib.Path:
    folder.mkdir()
    img = np.zeros((8, 8, 3), np.uint8)
    img[:, 4:] = 255
    Image.fromarray(img).save(folder / "half.png")
    return folder


@pytest.mark.parametrize("flip", [True, False])
def test_flips_about_half_the_time(tmp_path, flip):
    folder = _write_half_white(tmp_path / "half")
    cfg = _cfg(a=str(folder), b=str(folder), load_size=8, size=8, batch_size=8, flip=flip)
    left = np.concatenate([b["a"][:, 0, 0, 0] for b in _take(data.train_iterator(cfg, seed=0), 25)])
    flipped = np.mean(left > 0)  # The white half came to the left.
    if flip:
        assert 0.35 < flipped < 0.65, flipped
    else:
        assert flipped == 0.0


def test_crops_vary_and_stay_inside(tmp_path):
    folder = tmp_path / "grad"
    folder.mkdir()
    y, x = np.mgrid[0:24, 0:24]
    img = np.stack([10 * x, 10 * y, np.zeros_like(x)], axis=-1).astype(np.uint8)
    Image.fromarray(img).save(folder / "grad.png")  # Already 24x24: resizing is the identity.
    cfg = _cfg(a=str(folder), b=str(folder), load_size=24, size=16, batch_size=10, flip=False)
    corners = np.concatenate(
        [b["a"][:, 0, 0, :2] for b in _take(data.train_iterator(cfg, seed=0), 10)]
    )
    offsets = np.rint((corners + 1.0) * 127.5 / 10).astype(int)  # (left, top) per sample.
    assert offsets.min() >= 0 and offsets.max() <= 8
    assert len({tuple(o) for o in offsets}) > 20
    assert len(set(offsets[:, 0])) == 9 and len(set(offsets[:, 1])) == 9


def test_augment_params_independent_of_flip_setting():
    with_flip = [pipeline.augment_params(5, 1, k, 286, 256, True) for k in range(50)]
    without = [pipeline.augment_params(5, 1, k, 286, 256, False) for k in range(50)]
    assert [p[:2] for p in with_flip] == [p[:2] for p in without]
    assert not any(p[2] for p in without) and any(p[2] for p in with_flip)


# ----------------------------------------------------------------------------------------------
# Sharding, caching, pairing.


@pytest.mark.parametrize("process_count", [2, 4])
def test_process_slices_make_the_global_batch(root, process_count):
    cfg = _cfg(root=str(root), batch_size=4)
    whole = _take(data.train_iterator(cfg, seed=0, start_step=1, num_devices=4), 3)
    parts = [
        _take(
            data.train_iterator(
                cfg, seed=0, start_step=1, process_index=p, process_count=process_count
            ),
            3,
        )
        for p in range(process_count)
    ]
    for step, batch in enumerate(whole):
        for key in ("a", "b"):
            local = [part[step][key] for part in parts]
            assert local[0].shape == (4 // process_count, 16, 16, 3)
            np.testing.assert_array_equal(np.concatenate(local), batch[key])


def test_cache_and_no_cache_give_identical_batches(root):
    cached = _take(data.train_iterator(_cfg(root=str(root), cache_mb=64), seed=4), 5)
    uncached = _take(data.train_iterator(_cfg(root=str(root), cache_mb=0), seed=4), 5)
    _assert_batches_equal(cached, uncached)


def test_paired_pairs_share_crop_and_flip(tmp_path, root):
    shutil.copytree(root / "trainA", tmp_path / "A")
    shutil.copytree(root / "trainA", tmp_path / "B")
    cfg = _cfg(a=str(tmp_path / "A"), b=str(tmp_path / "B"), paired=True, batch_size=5)
    batches = _take(data.train_iterator(cfg, seed=0), 4)
    for batch in batches:
        np.testing.assert_array_equal(batch["a"], batch["b"])
    unpaired = next(data.train_iterator(_cfg(a=cfg.a, b=cfg.b, batch_size=5), seed=0))
    assert not np.array_equal(unpaired["a"], unpaired["b"])  # The check above can fail.


def test_paired_drops_pairs_with_an_unreadable_side(tmp_path, root, caplog):
    shutil.copytree(root / "trainA", tmp_path / "A")
    shutil.copytree(root / "trainA", tmp_path / "B")
    broken = sorted((tmp_path / "B").iterdir())[1]
    broken.write_bytes(b"broken")
    cfg = _cfg(a=str(tmp_path / "A"), b=str(tmp_path / "B"), paired=True, cache_mb=0)
    with caplog.at_level(logging.WARNING):
        it = data.train_iterator(cfg, seed=0)
    assert len(caplog.records) == 1 and broken.name in caplog.records[0].getMessage()
    for batch in _take(it, 3):
        np.testing.assert_array_equal(batch["a"], batch["b"])


def test_paired_name_mismatch_lists_names(tmp_path):
    _noise_folder(tmp_path / "A", 3, seed=0, prefix="x")
    _noise_folder(tmp_path / "B", 4, seed=0, prefix="y")
    cfg = _cfg(a=str(tmp_path / "A"), b=str(tmp_path / "B"), paired=True)
    with pytest.raises(ValueError, match=r"3 only in A: x000, x001, x002; 4 only in B: y000"):
        data.train_iterator(cfg, seed=0)


# ----------------------------------------------------------------------------------------------
# Test images.


def test_test_images_from_root(root):
    images, names = data.test_images(_cfg(root=str(root)), "a")
    assert images.shape == (3, 16, 16, 3) and images.dtype == np.float32
    assert images.min() >= -1.0 and images.max() <= 1.0
    assert names == ["000.png", "001.bmp", "002.webp"]
    expected = data.to_float(data.read_image(root / "testA" / "001.bmp"))
    assert abs(images[1].mean() - expected.mean()) < 0.05  # Resized, not cropped.
    assert data.test_images(_cfg(root=str(root)), "b") is None


def test_test_images_explicit_folder_and_values(tmp_path, root):
    _solid_folder(tmp_path / "tb", [40, 90])
    cfg = _cfg(root=str(root), test_b=str(tmp_path / "tb"))
    images, names = data.test_images(cfg, "b")
    assert names == ["0.png", "1.png"]
    np.testing.assert_array_equal(data.to_uint8(images[:, :, :, 0]).reshape(2, -1).max(1), [40, 90])
    assert data.test_images(_cfg(a=str(root / "trainA"), b=str(root / "trainB")), "a") is None
    with pytest.raises(ValueError, match="domain"):
        data.test_images(cfg, "c")


# ----------------------------------------------------------------------------------------------
# The thesis's face data.


@pytest.fixture
def thesis() -> pathlib.Path:
    if not (THESIS / "photo").is_dir():
        pytest.skip(f"thesis data not found at {THESIS}")
    return THESIS


def test_thesis_unpaired_photo_vs_painting(thesis):
    cfg = _cfg(a=str(thesis / "photo"), b=str(thesis / "painting"), load_size=36, size=32)
    batches = _take(data.train_iterator(cfg, seed=0), 2)
    for batch in batches:
        for x in batch.values():
            assert x.shape == (4, 32, 32, 3) and x.dtype == np.float32
            assert -1.0 <= x.min() < x.max() <= 1.0


def test_thesis_paired_photo_vs_portrait(thesis):
    cfg = _cfg(
        a=str(thesis / "photo"), b=str(thesis / "portrait"), paired=True, load_size=36, size=32
    )
    batch = next(data.train_iterator(cfg, seed=0))
    assert batch["a"].shape == batch["b"].shape == (4, 32, 32, 3)
    assert not np.array_equal(batch["a"], batch["b"])  # A photo and its painting differ ...
    # ... but show the same face in the same place: far more alike than unrelated images.
    paired_gap = np.abs(batch["a"] - batch["b"]).mean()
    shuffled_gap = np.abs(batch["a"] - batch["b"][::-1]).mean()
    assert paired_gap < shuffled_gap
