"""Output files: inputs and files jaxfaces did not write are never replaced (issue 23)."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from jaxfaces import data as data_lib
from jaxfaces import inference, outputs
from jaxfaces.convert import __main__ as convert_cli
from jaxfaces.convert import inception as inception_conv
from jaxfaces.convert import pytorch_cyclegan, vgg19

ROOT = pathlib.Path(__file__).resolve().parents[1]


def snapshot(folder: pathlib.Path) -> dict[str, bytes]:
    """Every file under `folder` (hidden ones included) with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def write_images(folder: pathlib.Path, names: list[str], size: int = 8) -> list[pathlib.Path]:
    rng = np.random.default_rng(len(names))
    for name in names:
        data_lib.save_image(folder / name, rng.integers(0, 256, (size, size, 3), np.uint8))
    return [folder / name for name in names]


class Negate:
    """Stands in for an `inference.Translator` (sides multiples of 4, [-1, 1] batches)."""

    multiple = 4
    trained_size = 32

    def __call__(self, images: np.ndarray, batch_size: int = 16) -> np.ndarray:
        return -images


negate = Negate()


# --------------------------------------------------------------------------- outputs


def test_written_files_are_recorded_and_may_be_replaced_by_a_rerun(tmp_path):
    out = tmp_path / "out"
    targets = [out / "a.txt", out / "sub" / "b.txt", out / "never.txt"]
    with outputs.guard(out, targets):
        (out / "sub").mkdir(parents=True)
        (out / "a.txt").write_text("one")
        (out / "sub" / "b.txt").write_text("two")
    files = json.loads((out / outputs.MANIFEST).read_text())["files"]
    # Only what was written is recorded, by content.
    assert files == {"a.txt": outputs.sha256(targets[0]), "sub/b.txt": outputs.sha256(targets[1])}
    with outputs.guard(out, targets):
        (out / "a.txt").write_text("one again")
    assert outputs.read_manifest(out)["a.txt"] == outputs.sha256(out / "a.txt")
    # An output edited since it was written is no longer jaxfaces's.
    (out / "a.txt").write_text("edited by hand")
    with pytest.raises(outputs.OutputError, match=r"a\.txt exists .*--overwrite"):
        outputs.check(out, targets)


def test_a_refusal_checks_every_target_first_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "z.png").write_bytes(b"mine")
    (out / "y.png").write_bytes(b"mine too")
    before = snapshot(out)
    with pytest.raises(outputs.OutputError) as e:
        with outputs.guard(out, [out / "a.png", out / "y.png", out / "z.png"]):
            (out / "a.png").write_bytes(b"written")
    message = str(e.value)
    assert "\n" not in message
    assert f"{out / 'y.png'} (and 1 more of the files to write) exist" in message
    assert "choose another --output, or pass --overwrite" in message
    assert snapshot(out) == before  # No a.png, no manifest.


def test_overwrite_replaces_foreign_files_and_records_only_what_it_wrote(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.png").write_bytes(b"theirs")
    (out / "kept.png").write_bytes(b"theirs, not written this time")
    with outputs.guard(out, [out / "old.png", out / "kept.png"], overwrite=True):
        (out / "old.png").write_bytes(b"ours")
    assert set(outputs.read_manifest(out)) == {"old.png"}
    outputs.check(out, [out / "old.png"])
    with pytest.raises(outputs.OutputError, match="kept.png exists"):
        outputs.check(out, [out / "old.png", out / "kept.png"])


def test_files_written_before_an_error_are_recorded(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with outputs.guard(out, [out / "a", out / "b"]):
            out.mkdir()
            (out / "a").write_text("done")
            raise RuntimeError("interrupted")
    assert set(outputs.read_manifest(out)) == {"a"}
    outputs.check(out, [out / "a", out / "b"])  # The rerun may go ahead.


def test_inputs_are_refused_even_with_overwrite(tmp_path, monkeypatch):
    photos = tmp_path / "photos"
    (photo,) = write_images(photos, ["x.png"])
    monkeypatch.chdir(photos)
    # --output=. with --input=./x.png: the same file under two spellings.
    with pytest.raises(outputs.OutputError, match=r"photos/x\.png is an input; choose another"):
        outputs.check(".", ["./x.png"], inputs=[pathlib.Path("./x.png")], overwrite=True)
    # A hard link and a symbolic link to an input are the input too.
    out = tmp_path / "out"
    out.mkdir()
    os.link(photo, out / "x.png")
    with pytest.raises(outputs.OutputError, match="is an input"):
        outputs.check(out, [out / "x.png"], inputs=[photo], overwrite=True)
    (out / "link.png").symlink_to(photo)
    with pytest.raises(outputs.OutputError, match="is an input"):
        outputs.check(out, [out / "link.png"], inputs=[photo], overwrite=True)


def test_a_manifest_jaxfaces_did_not_write_is_not_trusted(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / outputs.MANIFEST).write_text('{"files": {"a.png": "0"}}')
    with pytest.raises(outputs.OutputError, match=r"\.jaxfaces-outputs\.json exists"):
        outputs.check(out, [out / "new.png"])
    with outputs.guard(out, [out / "new.png"], overwrite=True):
        (out / "new.png").write_bytes(b"ours")
    assert set(outputs.read_manifest(out)) == {"new.png"}


def test_bad_output_places_are_named(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(outputs.OutputError, match="file is a file, not a folder"):
        outputs.check(tmp_path / "file", [tmp_path / "file" / "a.png"])
    (tmp_path / "out" / "a.png").mkdir(parents=True)
    with pytest.raises(outputs.OutputError, match=r"a\.png is a folder, not a file"):
        outputs.check(tmp_path / "out", [tmp_path / "out" / "a.png"], overwrite=True)
    with pytest.raises(outputs.OutputError, match="x/a.png and y/a.png would both be written"):
        outputs.named_after([pathlib.Path("x/a.png"), pathlib.Path("y/a.png")], tmp_path)


# --------------------------------------------------------------------------- translate_files


def test_translating_into_the_input_folder_is_refused_and_changes_nothing(tmp_path, monkeypatch):
    photos = tmp_path / "photos"
    files = write_images(photos, ["a.png", "b.png", "c.png"])
    before = snapshot(photos)
    with pytest.raises(outputs.OutputError, match=r"photos/a\.png is an input"):
        inference.translate_files(negate, files, photos, overwrite=True)
    monkeypatch.chdir(photos)
    with pytest.raises(outputs.OutputError, match="is an input"):
        inference.translate_files(negate, [pathlib.Path("./b.png")], ".", sheet=True)
    assert snapshot(photos) == before


def test_truth_files_are_inputs(tmp_path):
    files = write_images(tmp_path / "photos", ["a.png", "b.png"])
    truth = tmp_path / "truth"
    write_images(truth, ["a.png", "b.png"])
    before = snapshot(truth)
    with pytest.raises(outputs.OutputError, match=r"truth/a\.png is an input"):
        inference.translate_files(negate, files, truth, truth=truth, overwrite=True)
    assert snapshot(truth) == before


def test_rerun_replaces_its_own_outputs_and_refuses_foreign_ones(tmp_path):
    files = write_images(tmp_path / "photos", ["a.png", "b.png"])
    truth = tmp_path / "truth"
    write_images(truth, ["a.png", "b.png"])
    out = tmp_path / "out"
    expected = {"a.png", "b.png", "metrics.csv", "sheet_000.png"}
    for _ in range(2):
        written, skipped = inference.translate_files(negate, files, out, sheet=True, truth=truth)
        assert {p.name for p in written} == expected and not skipped
        assert set(outputs.read_manifest(out)) == expected
    # A metrics.csv (or sheet) that jaxfaces did not write is refused before any image.
    (out / "metrics.csv").write_text("someone's table\n")
    before = snapshot(out)
    with pytest.raises(outputs.OutputError, match=r"metrics\.csv exists"):
        inference.translate_files(negate, files, out, sheet=True, truth=truth)
    assert snapshot(out) == before
    written, _ = inference.translate_files(negate, files, out, truth=truth, overwrite=True)
    assert (out / "metrics.csv").read_text().startswith("image,l1,psnr,ssim")
    (out / "sheet_000.png").write_bytes(b"theirs")
    with pytest.raises(outputs.OutputError, match=r"sheet_000\.png exists"):
        inference.translate_files(negate, files, out, sheet=True)


# --------------------------------------------------------------------------- command lines


def run_translate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "translate.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory) -> pathlib.Path:
    """A step-0 checkpoint of a tiny reference generator (ngf 8, one block), converted."""
    torch = pytest.importorskip("torch")
    from bench import torch_cyclegan

    folder = tmp_path_factory.mktemp("ckpt")
    torch.save(
        torch_cyclegan.ResnetGenerator(3, 3, 8, "instance", 1).state_dict(), folder / "g.pth"
    )
    status = convert_cli.main(
        ["cyclegan", "--pth", str(folder / "g.pth"), "--out", str(folder / "ckpt")]
    )
    assert status == 0
    return folder / "ckpt"


def test_translate_cli_refuses_inputs_and_foreign_files(tiny_ckpt, tmp_path):
    photos = tmp_path / "photos"
    write_images(photos, ["a.png", "b.png", "c.png"])
    before = snapshot(photos)
    r = run_translate(f"--ckpt={tiny_ckpt}", f"--input={photos}", f"--output={photos}")
    assert r.returncode == 2, r.stderr[-2000:]
    (line,) = r.stderr.strip().splitlines()
    assert line == (
        f"error: {photos / 'a.png'} is an input; choose another --output "
        "(inputs are never replaced, not even with --overwrite)"
    )
    assert snapshot(photos) == before
    out = tmp_path / "out"
    out.mkdir()
    (out / "b.png").write_bytes(b"someone's file")
    r = run_translate(f"--ckpt={tiny_ckpt}", f"--input={photos}", f"--output={out}")
    assert r.returncode == 2
    assert r.stderr.strip() == (
        f"error: {out / 'b.png'} exists but jaxfaces has no record of writing it; "
        "choose another --output, or pass --overwrite to replace it"
    )
    assert snapshot(out) == {"b.png": b"someone's file"}
    r = run_translate(
        f"--ckpt={tiny_ckpt}", f"--input={photos}", f"--output={out}", "--overwrite", "--sheet"
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert set(outputs.read_manifest(out)) == {"a.png", "b.png", "c.png", "sheet_000.png"}
    assert data_lib.read_image(out / "b.png").shape == (8, 8, 3)


def test_style_transfer_cli_refuses_its_content_folder_before_any_work(tmp_path):
    content = tmp_path / "content"
    write_images(content, ["a.png", "b.png"])
    before = snapshot(content)
    r = run_translate(
        "--method=nst",
        f"--content={content}",
        f"--style={content / 'b.png'}",
        f"--output={content}",
        f"--vgg_weights={tmp_path / 'none.msgpack'}",  # Never read: the refusal comes first.
    )
    assert r.returncode == 2
    assert r.stderr.startswith(f"error: {content / 'a.png'} is an input; choose another --output")
    assert len(r.stderr.strip().splitlines()) == 1 and "VGG19" not in r.stdout
    assert snapshot(content) == before


def test_convert_cyclegan_refuses_a_file_as_its_folder(tmp_path, capsys):
    pth = tmp_path / "g.pth"
    pth.write_bytes(b"not read: the output is checked first")
    assert convert_cli.main(["cyclegan", "--pth", str(pth), "--out", str(pth)]) == 2
    message = f"error: output folder {pth} is a file; choose a new or empty folder\n"
    assert capsys.readouterr().err == message
    assert pth.read_bytes() == b"not read: the output is checked first"


@pytest.mark.parametrize("command", ["vgg19", "inception"])
def test_convert_weights_refuses_files_it_did_not_write(command, tmp_path, capsys, monkeypatch):
    tiny = {"params": {"w": np.arange(3, dtype=np.float32)}}
    monkeypatch.setattr(vgg19, "load_state_dict", lambda path: {})
    monkeypatch.setattr(vgg19, "params_from_state_dict", lambda sd: tiny)
    monkeypatch.setattr(pytorch_cyclegan, "load_state_dict", lambda path: {})
    monkeypatch.setattr(inception_conv, "convert", lambda sd: tiny)
    pth = tmp_path / "weights.pth"
    pth.write_bytes(b"torch file")
    out = tmp_path / "w.msgpack"
    out.write_bytes(b"someone's weights")

    def convert(*extra: str) -> int:
        return convert_cli.main([command, "--pth", str(pth), "--out", str(out), *extra])

    assert convert() == 2
    err = capsys.readouterr().err
    assert err == (
        f"error: {out} exists but jaxfaces has no record of writing it; choose another --out, "
        "or pass --overwrite to replace it\n"
    )
    assert out.read_bytes() == b"someone's weights"
    assert convert("--overwrite") == 0
    assert out.read_bytes() != b"someone's weights"
    assert set(outputs.read_manifest(tmp_path)) == {"w.msgpack", "w.msgpack.sha256"}
    capsys.readouterr()
    assert convert() == 0  # Its own file: replaced without --overwrite.
    # The input is never the output.
    assert convert_cli.main([command, "--pth", str(pth), "--out", str(pth), "--overwrite"]) == 2
    assert "weights.pth is an input; choose another --out" in capsys.readouterr().err
    assert pth.read_bytes() == b"torch file"
