"""Aligned data (`config.data.aligned`, the reference pix2pix layout): each file of root/train/
and root/test/ holds A|B side by side. The pipeline splits it into halves that are paired (one
file index, one crop, one flip); the test split of A is the left halves, of B the right ones,
and each is the other's true translation. Tiny images (16-32 px) written by the tests."""

import pathlib

import numpy as np
import pytest
from PIL import Image

from configs import cyclegan, pix2pix_demo
from jaxfaces import config_check, evaluation
from jaxfaces import data as data_lib
from jaxfaces.data import pipeline, preprocess, sources, synthetic


def _cfg(root, **overrides):
    cfg = cyclegan.get_config().data
    cfg.root, cfg.aligned = str(root), True
    cfg.load_size, cfg.size, cfg.batch_size, cfg.flip = 16, 16, 4, False
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


def _write_aligned(folder: pathlib.Path, pairs) -> list[str]:
    """Writes each (A, B) pair of uint8 (H, H, 3) arrays as one A|B PNG; returns the names."""
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"{i:03d}.png" for i in range(len(pairs))]
    for name, (a, b) in zip(names, pairs, strict=True):
        Image.fromarray(np.concatenate([a, b], axis=1)).save(folder / name)
    return names


def _noise_pairs(n: int, side: int, seed: int, complement: bool = False):
    """n pairs of random images; B = 255 - A when `complement`, else independent noise."""
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(n):
        a = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        b = 255 - a if complement else rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        pairs.append((a, b))
    return pairs


def _take(it, n: int) -> list[dict[str, np.ndarray]]:
    return [next(it) for _ in range(n)]


def _u8(x: np.ndarray) -> np.ndarray:
    return data_lib.to_uint8(x).astype(np.int16)


def _locate(crop: np.ndarray, sources_u8, size: int) -> tuple[int, int, int, bool]:
    """(file, top, left, flipped) of the one window of `sources_u8` that `crop` shows."""
    found = []
    for i, src in enumerate(sources_u8):
        span = src.shape[0] - size + 1
        for top in range(span):
            for left in range(span):
                window = src[top : top + size, left : left + size]
                for flipped in (False, True):
                    if np.array_equal(window[:, ::-1] if flipped else window, crop):
                        found.append((i, top, left, flipped))
    assert len(found) == 1, found
    return found[0]


# ----------------------------------------------------------------------------------------------
# The training stream.


@pytest.mark.parametrize("cache_mb", [64, 0])  # Halves in memory / read from the file each time.
def test_training_halves_are_the_files_halves(tmp_path, cache_mb):
    pairs = _noise_pairs(3, 16, seed=1)
    _write_aligned(tmp_path / "train", pairs)
    cfg = _cfg(tmp_path, batch_size=3, cache_mb=cache_mb)
    shown = set()
    for batch in _take(data_lib.train_iterator(cfg, seed=0), 3):
        assert batch["a"].shape == batch["b"].shape == (3, 16, 16, 3)
        for a, b in zip(batch["a"], batch["b"], strict=True):
            i = [j for j, (x, _) in enumerate(pairs) if np.array_equal(_u8(a), x)]
            assert len(i) == 1  # a is exactly the left half of one file ...
            np.testing.assert_array_equal(_u8(b), pairs[i[0]][1])  # ... b its right half.
            shown.add(i[0])
    assert shown == {0, 1, 2}

    resized = _cfg(tmp_path, batch_size=3, load_size=24, size=24, cache_mb=cache_mb)
    batch = next(data_lib.train_iterator(resized, seed=0))
    for a, b in zip(batch["a"], batch["b"], strict=True):  # Each half resized on its own.
        i = [j for j, (x, _) in enumerate(pairs) if (_u8(a) == preprocess.resize(x, 24)).all()]
        assert len(i) == 1
        np.testing.assert_array_equal(_u8(b), preprocess.resize(pairs[i[0]][1], 24))


def test_halves_share_file_crop_and_flip(tmp_path):
    """B = 255 - A in every file: any difference in file, crop or flip breaks b = 255 - a."""
    pairs = _noise_pairs(4, 24, seed=2, complement=True)
    _write_aligned(tmp_path / "train", pairs)
    cfg = _cfg(tmp_path, load_size=24, size=16, flip=True, batch_size=8)
    plans = set()
    for batch in _take(data_lib.train_iterator(cfg, seed=3), 3):
        np.testing.assert_array_equal(_u8(batch["b"]), 255 - _u8(batch["a"]))
        for a in batch["a"]:
            plans.add(_locate(_u8(a), [x for x, _ in pairs], 16))
    assert len({(top, left) for _, top, left, _ in plans}) > 5  # Crops vary ...
    assert {flipped for *_, flipped in plans} == {False, True}  # ... and some are flipped.

    resized = _cfg(tmp_path, load_size=30, size=20, flip=True, batch_size=8)
    for batch in _take(data_lib.train_iterator(resized, seed=3), 2):  # Bicubic rounding only.
        assert np.abs(_u8(batch["b"]) - (255 - _u8(batch["a"]))).max() <= 1


def test_paired_folders_share_crop_and_flip(tmp_path):
    """Paired (not aligned) mode: trainB/x = 255 - trainA/x, so b = 255 - a needs one plan."""
    pairs = _noise_pairs(4, 24, seed=4, complement=True)
    for side, folder in enumerate(("trainA", "trainB")):
        (tmp_path / folder).mkdir()
        for i, pair in enumerate(pairs):
            Image.fromarray(pair[side]).save(tmp_path / folder / f"{i}.png")
    cfg = _cfg(tmp_path, aligned=False, paired=True, load_size=24, size=16, flip=True)
    cfg.batch_size = 8
    for batch in _take(data_lib.train_iterator(cfg, seed=5), 3):
        np.testing.assert_array_equal(_u8(batch["b"]), 255 - _u8(batch["a"]))
    unpaired = next(data_lib.train_iterator(_cfg(tmp_path, aligned=False, load_size=24), seed=5))
    assert not np.array_equal(_u8(unpaired["b"]), 255 - _u8(unpaired["a"]))  # Can fail.


# ----------------------------------------------------------------------------------------------
# Test images and true translations.


def test_test_images_and_truth_are_the_halves(tmp_path):
    pairs = _noise_pairs(3, 16, seed=6)
    _write_aligned(tmp_path / "train", pairs[:1])
    names = _write_aligned(tmp_path / "test", pairs)
    (tmp_path / "truthAtoB").mkdir()  # Not aligned data's: ignored.
    cfg = _cfg(tmp_path)
    a, names_a = data_lib.test_images(cfg, "a")
    b, names_b = data_lib.test_images(cfg, "b")
    assert names_a == names_b == names
    np.testing.assert_array_equal(_u8(a), np.stack([x for x, _ in pairs]))
    np.testing.assert_array_equal(_u8(b), np.stack([y for _, y in pairs]))
    assert sources.describe_test_split(cfg, "b") == f"{tmp_path / 'test'} (right halves)"

    for direction, target in (("AtoB", b), ("BtoA", a)):
        folder = sources.truth_folder(cfg, direction)
        assert folder == tmp_path / "test"
        dst = sources.SIDES[direction][1]
        truth = pipeline.truth_images(cfg, dst, folder, names[::-1])
        np.testing.assert_array_equal(truth, target[::-1])  # By name, in the order asked.

    config = pix2pix_demo.get_config()
    config.data = _cfg(tmp_path)
    evaluator = evaluation.Evaluator(config)
    np.testing.assert_array_equal(evaluator.truth["AtoB"], b)
    np.testing.assert_array_equal(evaluator.truth["BtoA"], a)

    plain = tmp_path / "plain"  # An explicit test folder holds whole images, as always.
    plain.mkdir()
    Image.fromarray(pairs[0][1]).save(plain / "000.png")
    whole, _ = data_lib.test_images(_cfg(tmp_path, test_b=str(plain)), "b")
    np.testing.assert_array_equal(_u8(whole[0]), pairs[0][1])

    resized, _ = data_lib.test_images(_cfg(tmp_path, load_size=24, size=24), "b")
    np.testing.assert_array_equal(_u8(resized), [preprocess.resize(y, 24) for _, y in pairs])
    assert data_lib.test_images(_cfg(tmp_path / "none", aligned=True), "a") is None


# ----------------------------------------------------------------------------------------------
# Errors.


def test_misshapen_aligned_images_are_named(tmp_path):
    _write_aligned(tmp_path / "train", _noise_pairs(2, 16, seed=7))
    Image.new("RGB", (40, 32)).save(tmp_path / "train" / "wide.png")
    with pytest.raises(ValueError, match=r"Aligned image .*train/wide\.png is 40x32 \(width x "):
        data_lib.train_iterator(_cfg(tmp_path), seed=0)
    Image.new("RGB", (16, 16)).save(tmp_path / "train" / "square.png")
    with pytest.raises(ValueError, match=r"square\.png is 16x16.*\(2 such files in .*: square"):
        data_lib.train_iterator(_cfg(tmp_path, cache_mb=0), seed=0)
    _write_aligned(tmp_path / "test", _noise_pairs(1, 16, seed=8))
    Image.new("RGB", (30, 16)).save(tmp_path / "test" / "odd.png")
    with pytest.raises(ValueError, match=r"test/odd\.png is 30x16"):
        data_lib.test_images(_cfg(tmp_path), "a")
    with pytest.raises(ValueError, match=r"odd\.png is 30x16"):
        preprocess.read_half(tmp_path / "test" / "odd.png", 0)


def test_aligned_needs_root_with_train(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no folder .*/train \(training images A\|B"):
        data_lib.train_iterator(_cfg(tmp_path), seed=0)
    (tmp_path / "A").mkdir()
    (tmp_path / "B").mkdir()
    folders = _cfg("", a=str(tmp_path / "A"), b=str(tmp_path / "B"))
    with pytest.raises(ValueError, match=r"config.data.aligned=True .* not from config.data.a /"):
        data_lib.train_iterator(folders, seed=0)
    tfds = _cfg("", tfds="cycle_gan/facades")
    with pytest.raises(ValueError, match=r"not from config.data.tfds"):
        data_lib.train_iterator(tfds, seed=0)
    _write_aligned(tmp_path / "train", _noise_pairs(1, 16, seed=9))
    with pytest.raises(ValueError, match=r"training pairs are the halves .* not two folders"):
        sources.train_folders(_cfg(tmp_path))  # E.g. LFT's feature store: not supported.


def test_config_check_of_aligned(tmp_path):
    config = pix2pix_demo.get_config()
    assert config.data.aligned is False
    config.data.aligned, config.data.synthetic.enabled = True, False
    config.data.root = str(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"config.data.aligned=True: no folder .*/train "):
        config_check.check(config)
    (tmp_path / "train").mkdir()
    config_check.check(config)
    config.data.synthetic.enabled = True
    with pytest.raises(ValueError, match=r"needs config.data.synthetic.enabled=False"):
        config_check.check(config)
    config.data.synthetic.enabled, config.data.root = False, ""
    config.data.a = config.data.b = str(tmp_path / "train")
    with pytest.raises(ValueError, match=r"config.data.aligned=True reads A\|B images from"):
        config_check.check(config)


# ----------------------------------------------------------------------------------------------
# A tiny pix2pix run through the real loop, evaluated both ways.


def test_pix2pix_trains_and_evaluates_on_aligned_data(tmp_path):
    from jaxfaces.training import loop

    faces = tmp_path / "faces"
    synthetic.write_dataset(faces, size=32, num_train=8, num_test=4, paired=True)
    root = tmp_path / "aligned"  # The built-in pairs, side by side: photo | painting.
    halves = {}
    for split, sides in {"train": ("trainA", "trainB"), "test": ("testA", "truthAtoB")}.items():
        halves[split] = [
            np.stack([data_lib.read_image(p) for p in data_lib.list_images(faces / side)])
            for side in sides
        ]
        _write_aligned(root / split, list(zip(*halves[split], strict=True)))
    photos, paintings = (data_lib.to_float(x) for x in halves["test"])
    identity = np.mean(np.abs(photos - paintings))

    config = pix2pix_demo.get_config()
    config.data.root, config.data.aligned, config.data.synthetic.enabled = str(root), True, False
    config.data.batch_size = 2
    config.model.generator.ngf = config.model.discriminator.ndf = 8
    config.train.num_steps, config.train.decay_steps = 2, 1
    config.train.log_every = config.train.ckpt_every = 2
    config.train.log_images_every, config.train.eval_every = 100, 0
    config_check.check(config)
    result = loop.train(config, tmp_path / "run")
    assert result["step"] == 2

    report = evaluation.evaluate_checkpoint(tmp_path / "run", tmp_path / "report")[0].metrics
    for direction in ("AtoB", "BtoA"):
        m = report[direction]
        assert m["identity_l1"] == pytest.approx(identity, rel=1e-5)  # Photos vs paintings.
        assert m["ratio"] == pytest.approx(m["l1"] / identity, rel=1e-5) and m["ratio"] > 0
        assert m["ratio"] == pytest.approx(result["eval"][direction]["ratio"], rel=1e-5)
