"""models.weights: weight files written with a checksum, found in order, read back checked."""

import hashlib
import pathlib

import numpy as np
import pytest

from jaxfaces.models import weights

ENV = "JAXFACES_TEST_WEIGHTS"


def tree() -> dict:
    return {
        "conv": {"kernel": np.arange(24, dtype=np.float32).reshape(2, 3, 4), "bias": np.ones(4)},
        "bn": {"mean": np.float32(0.5) * np.ones((3,), np.float32)},
    }


def how_to(out: pathlib.Path) -> str:
    return f"run: make-weights --out {out}"


def find(path=None, default=None) -> pathlib.Path:
    return weights.find(
        path,
        name="Test",
        env_var=ENV,
        default=default or "/nonexistent/default.msgpack",
        given_as="config test.weights",
        how_to=how_to,
    )


def test_round_trip_writes_checksum_and_no_temporary_files(tmp_path):
    out = tmp_path / "sub" / "w.msgpack"
    path, digest = weights.save(tree(), out)
    assert path == out
    assert digest == hashlib.sha256(out.read_bytes()).hexdigest() == weights.sha256(out)
    assert (tmp_path / "sub" / "w.msgpack.sha256").read_text() == f"{digest}  w.msgpack\n"
    assert sorted(p.name for p in out.parent.iterdir()) == ["w.msgpack", "w.msgpack.sha256"]
    assert {p.name for p in weights.files(out)} == {
        "w.msgpack",
        "w.msgpack.tmp",
        "w.msgpack.sha256",
        "w.msgpack.sha256.tmp",
    }
    back = weights.load(out, kind="a test file")
    assert set(back) == {"conv", "bn"}
    np.testing.assert_array_equal(back["conv"]["kernel"], tree()["conv"]["kernel"])
    assert back["conv"]["kernel"].dtype == np.float32
    np.testing.assert_array_equal(back["bn"]["mean"], [0.5, 0.5, 0.5])
    # Saving again replaces both files; the new checksum matches the new content.
    changed = {**tree(), "bn": {"mean": np.zeros((3,), np.float32)}}
    _, digest2 = weights.save(changed, out)
    assert digest2 != digest
    assert (out.parent / "w.msgpack.sha256").read_text().split()[0] == digest2
    np.testing.assert_array_equal(weights.load(out, kind="a test file")["bn"]["mean"], 0)


def test_corrupted_file_fails_the_checksum_naming_the_file(tmp_path):
    out, digest = weights.save(tree(), tmp_path / "w.msgpack")
    blob = bytearray(out.read_bytes())
    blob[-1] ^= 0xFF
    out.write_bytes(bytes(blob))
    with pytest.raises(ValueError) as err:
        weights.load(out, kind="a test file")
    message = str(err.value)
    assert str(out) in message and str(weights.sha256_path(out)) in message
    assert digest in message and "damaged or was replaced" in message
    # A checksum file that holds no SHA-256 is refused too, naming it.
    weights.sha256_path(out).write_text("")
    with pytest.raises(ValueError, match=r"w\.msgpack\.sha256 holds no SHA-256"):
        weights.load(out, kind="a test file")


def test_foreign_file_without_checksum_is_named(tmp_path):
    other = tmp_path / "other.msgpack"
    other.write_bytes(b"\xc1 not msgpack")
    with pytest.raises(ValueError, match=r"other\.msgpack is not a test file \("):
        weights.load(other, kind="a test file")


def test_interrupted_save_leaves_a_file_that_load_refuses(tmp_path, monkeypatch):
    """Weights replaced but the checksum not (a crash between): never read unchecked."""
    out, _ = weights.save(tree(), tmp_path / "w.msgpack")
    real_replace, calls = weights.os.replace, []

    def replace_then_fail(src, dst):
        calls.append(pathlib.Path(dst).name)
        if len(calls) == 2:
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(weights.os, "replace", replace_then_fail)
    changed = {**tree(), "bn": {"mean": np.zeros((3,), np.float32)}}
    with pytest.raises(OSError, match="disk full"):
        weights.save(changed, out)
    assert calls == ["w.msgpack", "w.msgpack.sha256"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.msgpack", "w.msgpack.sha256"]
    with pytest.raises(ValueError, match="damaged or was replaced"):
        weights.load(out, kind="a test file")


def test_missing_file_message_lists_every_place_and_the_commands(tmp_path, monkeypatch):
    default = tmp_path / "cache" / "w.msgpack"
    env_file = tmp_path / "env.msgpack"
    monkeypatch.setenv(ENV, str(env_file))
    with pytest.raises(FileNotFoundError) as err:
        find(default=default)
    message = str(err.value)
    assert message.startswith(f"no Test weights at {env_file} (${ENV}; ")
    assert "\n" not in message
    assert "1. the path given (config test.weights): none" in message
    assert f"2. ${ENV}: {env_file}" in message
    assert f"3. the default path: {default}" in message
    assert message.endswith(f"To make them: run: make-weights --out {env_file}")
    monkeypatch.delenv(ENV)
    with pytest.raises(FileNotFoundError) as err:
        find(tmp_path / "given.msgpack", default=default)
    message = str(err.value)
    assert f"no Test weights at {tmp_path / 'given.msgpack'} (the path given; " in message
    assert f"2. ${ENV}: not set" in message and f"--out {tmp_path / 'given.msgpack'}" in message


def test_lookup_order_explicit_then_environment_then_default(tmp_path, monkeypatch):
    default, env_file, explicit = (tmp_path / n for n in ("d.msgpack", "e.msgpack", "x.msgpack"))
    for path in (default, env_file, explicit):
        path.write_bytes(b"")
    monkeypatch.delenv(ENV, raising=False)
    assert find(default=default) == default
    assert find("", default=default) == default  # "" is not a path: look further.
    monkeypatch.setenv(ENV, "")
    assert find(default=default) == default  # Nor is an empty variable.
    monkeypatch.setenv(ENV, str(env_file))
    assert find(default=default) == env_file
    assert find(explicit, default=default) == explicit
    assert find(str(explicit), default=default) == explicit
    # The first place set is used as it is: a missing file is never swapped for a later one.
    with pytest.raises(FileNotFoundError, match="the path given"):
        find(tmp_path / "absent.msgpack", default=default)
    monkeypatch.setenv(ENV, str(tmp_path / "absent.msgpack"))
    with pytest.raises(FileNotFoundError, match=f"absent.msgpack \\(\\${ENV}; "):
        find(default=default)


def test_home_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "w.msgpack").write_bytes(b"")
    monkeypatch.setenv(ENV, "~/w.msgpack")
    assert find() == tmp_path / "w.msgpack"
    monkeypatch.delenv(ENV)
    assert find(default="~/w.msgpack") == tmp_path / "w.msgpack"
    out, _ = weights.save(tree(), "~/saved.msgpack")
    assert out == tmp_path / "saved.msgpack" and out.is_file()


def test_cache_path_honours_xdg_cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert weights.cache_path("w.msgpack") == tmp_path / "xdg" / "jaxfaces" / "w.msgpack"
    monkeypatch.delenv("XDG_CACHE_HOME")
    expected = tmp_path / "home" / ".cache" / "jaxfaces" / "w.msgpack"
    assert weights.cache_path("w.msgpack") == expected
