"""Tests of jaxfaces.data.folders: listing, the scan for unreadable files, pairing by name."""

import logging
import pathlib

import numpy as np
import pytest
from PIL import Image

from jaxfaces.data import folders, preprocess


def _write(path: pathlib.Path, value: int = 128, size=(12, 10), mode: str = "RGB") -> None:
    color = value if mode in ("L", "P") else (value,) * len(mode)
    Image.new(mode, size, color).save(path)


def _write_bad_files(folder: pathlib.Path) -> list[str]:
    """A corrupt JPEG, a truncated JPEG and a text file named .png; returns their names."""
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 garbage " * 20)
    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8))
    noise.save(folder / "truncated.jpg", quality=90)
    data = (folder / "truncated.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (folder / "notes.png").write_text("just some text, not a picture\n")
    return ["corrupt.jpg", "notes.png", "truncated.jpg"]


def test_list_images_filters_sorts_and_ignores_subfolders(tmp_path):
    for name in ["b.PNG", "a.jpg", "c.JpEg", "d.bmp", "e.gif", "f.webp", "g.txt", "h.tiff"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "z.png").write_bytes(b"x")
    (tmp_path / "dir.png").mkdir()  # A folder with an image-like name is not a file.
    names = [p.name for p in folders.list_images(tmp_path)]
    assert names == ["a.jpg", "b.PNG", "c.JpEg", "d.bmp", "e.gif", "f.webp"]


def test_list_images_missing_folder_names_path(tmp_path):
    missing = tmp_path / "no_such_folder"
    with pytest.raises(FileNotFoundError, match="no_such_folder"):
        folders.list_images(missing)


def test_list_images_empty_folder_names_path(tmp_path):
    empty = tmp_path / "empty_one"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    with pytest.raises(ValueError, match="empty_one"):
        folders.list_images(empty)


def test_list_images_file_instead_of_folder(tmp_path):
    (tmp_path / "f.png").write_bytes(b"x")
    with pytest.raises(ValueError, match="f.png"):
        folders.list_images(tmp_path / "f.png")


def test_scan_skips_unreadable_with_one_warning(tmp_path, caplog):
    _write(tmp_path / "good1.png", 10, mode="L")
    _write(tmp_path / "good2.jpg", 200, size=(30, 20))
    _write(tmp_path / "good3.webp", 60, mode="RGBA")
    bad = _write_bad_files(tmp_path)
    paths = folders.list_images(tmp_path)
    with caplog.at_level(logging.WARNING, logger="jaxfaces.data.folders"):
        scan = folders.scan_images(paths, size=8, num_threads=2)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "Skipping 3 unreadable" in message and "of 6" in message
    assert all(name in message for name in bad)
    assert str(tmp_path) in message
    names = [p.name for p in paths]
    np.testing.assert_array_equal(scan.ok, [n.startswith("good") for n in names])
    assert scan.images.shape == (6, 8, 8, 3) and scan.images.dtype == np.uint8
    for i in np.flatnonzero(scan.ok):
        np.testing.assert_array_equal(scan.images[i], preprocess.read_image(paths[i], 8))


def test_scan_without_size_only_validates(tmp_path, caplog):
    _write(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(b"junk")
    with caplog.at_level(logging.WARNING):
        scan = folders.scan_images(folders.list_images(tmp_path))
    assert scan.images is None
    np.testing.assert_array_equal(scan.ok, [True, False])
    assert len(caplog.records) == 1 and "b.png" in caplog.records[0].getMessage()


def test_scan_clean_folder_no_warning(tmp_path, caplog):
    for i in range(3):
        _write(tmp_path / f"{i}.png", 50 * i)
    with caplog.at_level(logging.WARNING):
        scan = folders.scan_images(folders.list_images(tmp_path), size=4)
    assert scan.ok.all() and not caplog.records


def test_scan_all_unreadable_is_an_error(tmp_path):
    _write_bad_files(tmp_path)
    with pytest.raises(ValueError, match=f"None of the 3 .*{tmp_path}"):
        folders.scan_images(folders.list_images(tmp_path))


def test_scan_warning_names_only_the_first_few(tmp_path, caplog):
    _write(tmp_path / "ok.png")
    for i in range(15):
        (tmp_path / f"bad{i:02d}.png").write_bytes(b"junk")
    with caplog.at_level(logging.WARNING):
        folders.scan_images(folders.list_images(tmp_path))
    message = caplog.records[0].getMessage()
    assert "Skipping 15" in message and "bad09.png" in message and "bad10.png" not in message
    assert "and 5 more" in message


def _paths(names):
    return [pathlib.Path("/x") / n for n in names]


def test_pair_by_stem_matches_across_extensions():
    a, b = folders.pair_by_stem(_paths(["1.jpg", "2.jpg"]), _paths(["1.png", "2.jpg"]))
    assert [p.name for p in a] == ["1.jpg", "2.jpg"]
    assert [p.name for p in b] == ["1.png", "2.jpg"]


def test_pair_by_stem_mismatch_lists_names_and_counts():
    with pytest.raises(ValueError) as info:
        folders.pair_by_stem(_paths(["1.jpg", "2.jpg", "3.jpg"]), _paths(["1.jpg", "4.jpg"]))
    message = str(info.value)
    assert "2 only in A: 2, 3" in message and "1 only in B: 4" in message


def test_pair_by_stem_long_mismatch_is_shortened():
    with pytest.raises(ValueError, match=r"25 only in A: .*and 15 more"):
        folders.pair_by_stem(_paths([f"{i}.jpg" for i in range(25)]), _paths(["x.jpg"]))


def test_pair_by_stem_duplicate_stem_is_ambiguous():
    with pytest.raises(ValueError, match="ambiguous: 1"):
        folders.pair_by_stem(_paths(["1.jpg", "1.png"]), _paths(["1.jpg"]))


def test_list_images_warns_about_entries_that_are_not_files(tmp_path, caplog):
    _write(tmp_path / "a.png")
    (tmp_path / "x.jpg").mkdir()
    (tmp_path / "y.png").symlink_to(tmp_path / "missing.png")  # A broken link.
    (tmp_path / "notes").mkdir()  # Not named like an image: no warning.
    with caplog.at_level(logging.WARNING, logger="jaxfaces.data.folders"):
        paths = folders.list_images(tmp_path)
    assert [p.name for p in paths] == ["a.png"]
    assert [r.getMessage() for r in caplog.records] == [
        f"Skipping 2 entries named like images in {tmp_path} that are not files: x.jpg, y.png"
    ]
