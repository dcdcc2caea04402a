"""Bad images: a corpus of unreadable and odd files through every reader of image folders.

The corpus (written by the `corpus` fixture) holds readable files in odd modes (CMYK JPEG,
16-bit grey and RGB PNG, palette PNG, animated GIF, a 1x1 image) and unreadable ones (empty,
truncated JPEG, text named .png, two decompression bombs, a file without read permission, a
folder and a pipe named like images). Training (`train_iterator`: `list_images` then
`scan_images`), evaluation (`test_images`) and translate.py (`read_image` per file) must keep
the readable ones as 8-bit RGB and skip the others, counting and naming them, without a crash
or a hang.

No read permission: tests run as root, for whom chmod 000 does not block reads. In this
process the permission error is then simulated (PIL.Image.open raises PermissionError for
that file); the translate.py run is real: its process runs without root's capability to
ignore file permissions (`setpriv`), or as the non-root user the tests run as.
"""

import logging
import os
import pathlib
import shutil
import signal
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from configs import test as test_config
from jaxfaces import data
from jaxfaces.data import folders, preprocess

ROOT = pathlib.Path(__file__).resolve().parents[1]

#: Readable files -> (height, width) as stored.
READABLE = {
    "animated.gif": (8, 8),
    "cmyk.jpg": (16, 16),
    "gray16.png": (1, 4),
    "one_pixel.png": (1, 1),
    "palette.png": (6, 10),
    "plain.png": (16, 20),
    "rgb16.png": (2, 2),
}
#: Unreadable files -> what the error says.
UNREADABLE = {
    "bomb.png": "DecompressionBombError",  # 40000 x 40000: PIL refuses it itself.
    "bomb_warning.png": "MAX_IMAGE_PIXELS",  # 10000 x 10000: PIL only warns; refused here.
    "empty.png": "empty (0 bytes)",
    "locked.png": "PermissionError",
    "text.png": "UnidentifiedImageError",
    "truncated.jpg": "truncated",
}
#: Entries named like images that are not files -> what reading one says.
NOT_FILES = {"dir.png": "it is a folder", "pipe.png": "not a regular file"}
RGB16 = np.array([[[0, 128, 255], [255, 0, 7]], [[100, 200, 50], [1, 2, 3]]], np.uint8)


def _png(width: int, height: int, bit_depth: int, color_type: int, rows: bytes = b"") -> bytes:
    """A PNG file written by hand: PIL cannot write 16-bit RGB or declare a size it lacks."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> pathlib.Path:
    folder = tmp_path_factory.mktemp("corpus")
    Image.new("RGB", (20, 16), (10, 200, 30)).save(folder / "plain.png")
    Image.new("CMYK", (16, 16), (0, 255, 0, 0)).save(folder / "cmyk.jpg")  # Magenta.
    values = np.array([[0, 257 * 100, 40000, 65535]], np.uint16)
    Image.fromarray(values).save(folder / "gray16.png")
    rows = b"".join(b"\x00" + (row.astype(">u2") * 257).tobytes() for row in RGB16)
    (folder / "rgb16.png").write_bytes(_png(2, 2, 16, 2, rows))  # 16 bits per channel.
    palette = Image.new("P", (10, 6), 0)
    palette.putpalette([0, 0, 0, 200, 100, 50] + [0, 0, 0] * 254)
    palette.paste(1, (5, 0, 10, 6))
    palette.save(folder / "palette.png")
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:])
    Image.new("RGB", (1, 1), (12, 34, 56)).save(folder / "one_pixel.png")

    (folder / "empty.png").write_bytes(b"")
    noise = np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    Image.fromarray(noise).save(folder / "truncated.jpg", quality=90)
    jpeg = (folder / "truncated.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (folder / "text.png").write_text("a text file, not a picture\n")
    (folder / "bomb.png").write_bytes(_png(40000, 40000, 1, 0))  # A header, no pixels.
    # 10000 x 10000 1-bit pixels, all there: 12.5 MB of rows, 12 kB on disk.
    (folder / "bomb_warning.png").write_bytes(_png(10000, 10000, 1, 0, b"\x00" * 1251 * 10000))
    Image.new("RGB", (8, 8), (90, 90, 90)).save(folder / "locked.png")
    (folder / "locked.png").chmod(0)
    (folder / "dir.png").mkdir()
    os.mkfifo(folder / "pipe.png")  # Opening a pipe for reading would block forever.
    return folder


@pytest.fixture
def locked(corpus, monkeypatch):
    """Makes locked.png unreadable in this process (real when not root, simulated as root)."""
    path = corpus / "locked.png"
    if os.geteuid() == 0:
        real_open = Image.open

        def open_checked(fp, *args, **kwargs):
            if isinstance(fp, (str, os.PathLike)) and pathlib.Path(fp) == path:
                raise PermissionError(13, "Permission denied", str(fp))
            return real_open(fp, *args, **kwargs)

        monkeypatch.setattr(Image, "open", open_checked)
    return path


class _Hung(BaseException):
    """Raised by the alarm: not an Exception, so no error handling can swallow it."""


@pytest.fixture(autouse=True)
def no_hang():
    """Fails a test that runs over 120 s (a blocking read of the pipe would never return)."""

    def hung(signum, frame):
        raise _Hung("still running after 120 s: a read is blocked")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(120)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def test_corpus_is_what_it_claims(corpus):
    with Image.open(corpus / "cmyk.jpg") as im:
        assert (im.format, im.mode) == ("JPEG", "CMYK")
    with Image.open(corpus / "gray16.png") as im:
        assert im.mode == "I;16"
    with Image.open(corpus / "palette.png") as im:
        assert im.mode == "P"
    with Image.open(corpus / "animated.gif") as im:
        assert im.n_frames == 2
    with (
        pytest.warns(Image.DecompressionBombWarning),
        Image.open(corpus / "bomb_warning.png") as im,
    ):
        assert im.size == (10000, 10000)  # PIL alone would decode it.
    with pytest.raises(Image.DecompressionBombError):
        Image.open(corpus / "bomb.png")
    assert (corpus / "bomb.png").stat().st_size < 100
    assert (corpus / "bomb_warning.png").stat().st_size < 20_000
    assert not ImageFile.LOAD_TRUNCATED_IMAGES  # PIL's default: truncated data is an error.


def test_read_image_keeps_odd_modes_as_8bit_rgb(corpus):
    images = {name: preprocess.read_image(corpus / name) for name in READABLE}
    for name, (height, width) in READABLE.items():
        assert images[name].shape == (height, width, 3) and images[name].dtype == np.uint8, name
    np.testing.assert_allclose(images["cmyk.jpg"].reshape(-1, 3).mean(0), [255, 0, 255], atol=6)
    np.testing.assert_array_equal(images["gray16.png"][0, :, 1], [0, 100, 156, 255])
    np.testing.assert_array_equal(images["rgb16.png"], RGB16)
    np.testing.assert_array_equal(images["palette.png"][0, 9], [200, 100, 50])
    np.testing.assert_array_equal(images["animated.gif"][0, 0], [255, 0, 0])  # First frame.
    np.testing.assert_array_equal(images["one_pixel.png"], [[[12, 34, 56]]])
    assert (images["plain.png"] == [10, 200, 30]).all()


@pytest.mark.parametrize("name", sorted({**UNREADABLE, **NOT_FILES}))
def test_read_image_error_names_file_and_cause(corpus, locked, name):
    with pytest.raises(ValueError) as info:
        preprocess.read_image(corpus / name, 8)
    message = str(info.value)
    assert message.startswith(f"Cannot read image {corpus / name}: ")
    assert {**UNREADABLE, **NOT_FILES}[name] in message
    assert "\n" not in message


def test_import_of_jaxfaces_keeps_truncated_images_an_error(corpus):
    from jaxfaces import inference  # noqa: F401  Everything translate.py and train.py load.
    from jaxfaces.data import pipeline, tfds  # noqa: F401
    from jaxfaces.training import loop  # noqa: F401

    assert not ImageFile.LOAD_TRUNCATED_IMAGES
    with pytest.raises(ValueError, match="truncated"):
        preprocess.read_image(corpus / "truncated.jpg")


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def _expect_skip_warnings(messages: list[str], corpus: pathlib.Path) -> None:
    """The listing's warning (folder and pipe) and the scan's (the six unreadable files)."""
    listing = [m for m in messages if "named like images" in m]
    scan = [m for m in messages if "unreadable image file" in m]
    assert listing and scan and len(listing) + len(scan) == len(messages), messages
    for m in listing:
        assert m.startswith(f"Skipping 2 entries named like images in {corpus} that are not")
        assert m.endswith(": dir.png, pipe.png")
    for m in scan:
        assert m.startswith(f"Skipping 6 unreadable image file(s) of 13 in {corpus}: ")
        assert all(name in m for name in UNREADABLE)


def test_list_and_scan_skip_unreadable_with_count_and_names(corpus, locked, caplog):
    with caplog.at_level(logging.WARNING, logger="jaxfaces.data.folders"):
        paths = folders.list_images(corpus)
        scan = folders.scan_images(paths, size=8, num_threads=2)
    assert [p.name for p in paths] == sorted({**READABLE, **UNREADABLE})
    _expect_skip_warnings(_warnings(caplog), corpus)
    kept = [p for p, ok in zip(paths, scan.ok, strict=True) if ok]
    assert [p.name for p in kept] == sorted(READABLE)
    assert scan.images.shape == (13, 8, 8, 3) and scan.images.dtype == np.uint8
    for i in np.flatnonzero(scan.ok):
        np.testing.assert_array_equal(scan.images[i], preprocess.read_image(paths[i], 8))
    assert not scan.images[~scan.ok].any()


def _data_cfg(corpus: pathlib.Path, cache_mb: int):
    cfg = test_config.get_config().data  # 36 px loads, 32 px crops, batches of 2.
    cfg.a, cfg.b, cfg.test_a, cfg.cache_mb = str(corpus), str(corpus), str(corpus), cache_mb
    return cfg


@pytest.mark.parametrize("cache_mb", [0, 64])  # Decoded per sample from files / in memory.
def test_training_stream_uses_only_readable(corpus, locked, caplog, cache_mb):
    with caplog.at_level(logging.WARNING, logger="jaxfaces.data.folders"):
        stream = data.train_iterator(_data_cfg(corpus, cache_mb), seed=0)
        # 8 steps of 2 draw 16 samples per domain: every one of the 7 readable files.
        batches = [next(stream) for _ in range(8)]
    _expect_skip_warnings(_warnings(caplog), corpus)
    for batch in batches:
        for x in batch.values():
            assert x.shape == (2, 32, 32, 3) and x.dtype == np.float32
            assert -1.0 <= x.min() and x.max() <= 1.0
    # Every sample is a crop of one of the readable images at 36 px (1x1 upsampled).
    loads = [preprocess.read_image(corpus / name, 36) for name in READABLE]
    for batch in batches:
        for img in preprocess.to_uint8(batch["a"]):
            assert any(_is_crop(img, load) for load in loads)


def _is_crop(img: np.ndarray, load: np.ndarray) -> bool:
    for flipped in (img, img[:, ::-1]):
        for top in range(load.shape[0] - 31):
            for left in range(load.shape[1] - 31):
                if np.array_equal(flipped, load[top : top + 32, left : left + 32]):
                    return True
    return False


def test_evaluation_split_skips_unreadable(corpus, locked, caplog):
    with caplog.at_level(logging.WARNING, logger="jaxfaces.data.folders"):
        images, names = data.test_images(_data_cfg(corpus, 0), "a")  # evaluate.py's test split.
    _expect_skip_warnings(_warnings(caplog), corpus)
    assert names == sorted(READABLE)
    assert images.shape == (7, 32, 32, 3) and images.dtype == np.float32
    one_pixel = preprocess.to_uint8(images[names.index("one_pixel.png")])
    assert (one_pixel == [12, 34, 56]).all()


def _without_root_file_access() -> list[str] | None:
    """A command prefix under which root cannot read a chmod 000 file, or None if none works."""
    if os.geteuid() != 0:
        return []
    prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
    if shutil.which("setpriv") is None:
        return None
    probe = subprocess.run([*prefix, "true"], capture_output=True, timeout=30)
    return prefix if probe.returncode == 0 else None


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> pathlib.Path:
    """A tiny CycleGAN trained for one step on the built-in faces."""
    from jaxfaces.training import loop

    config = test_config.get_config()
    config.data.root = str(tmp_path_factory.mktemp("faces"))
    config.data.synthetic.enabled = True
    config.train.num_steps = 1
    workdir = tmp_path_factory.mktemp("run")
    assert loop.train(config, workdir)["step"] == 1
    return workdir


def test_translate_cli_skips_unreadable_and_translates_the_rest(corpus, checkpoint, tmp_path):
    prefix = _without_root_file_access()
    readable = dict(READABLE)
    unreadable = sorted(UNREADABLE)
    if prefix is None:  # Root that cannot drop its file access: locked.png reads fine.
        readable["locked.png"] = (8, 8)
        unreadable.remove("locked.png")
    out = tmp_path / "out"
    command = [
        *prefix,
        sys.executable,
        "translate.py",
        f"--ckpt={checkpoint}",
        f"--input={corpus}",
        f"--output={out}",
    ]
    r = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=110)
    assert r.returncode == 0, r.stderr[-3000:]
    written = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))  # No records.
    assert written == sorted(readable)
    for name, (height, width) in readable.items():
        with Image.open(out / name) as im:
            assert im.size == (width, height), name
            assert np.asarray(im.convert("RGB")).dtype == np.uint8
    assert f"{len(readable)} file(s) to {out}; skipped {len(unreadable)}" in r.stdout
    skips = sorted(line for line in r.stdout.splitlines() if line.startswith("skipping "))
    assert len(skips) == len(unreadable)
    for name, line in zip(unreadable, skips, strict=True):
        assert line.startswith(f"skipping {corpus / name}: Cannot read image"), line
        assert UNREADABLE[name] in line, line
    assert "dir.png, pipe.png" in r.stderr  # The listing's warning.
