"""Crashes: `kill -9` of training at chosen moments, then the same command again.

The resumed run starts from the newest complete checkpoint, removes (with one printed line)
only what the crash left unfinished, and ends bit for bit where an uninterrupted run ends.
A checkpoint written with other network settings is one clear error, not a traceback.
"""

import os
import pathlib
import signal
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import test as test_config
from jaxfaces import cli
from jaxfaces.training import checkpoint, loop

ROOT = pathlib.Path(__file__).resolve().parents[1]
KILLED = -signal.SIGKILL


@pytest.fixture(scope="module")
def xla_cache(request, tmp_path_factory) -> pathlib.Path:
    """One compilation cache for every subprocess (kept between sessions when pytest's cache
    is on), so a restart loads the compiled step instead of compiling it again."""
    cache = getattr(request.config, "cache", None)
    if cache is not None:
        return pathlib.Path(cache.mkdir("jaxfaces_xla_cache"))
    return tmp_path_factory.mktemp("xla_cache")


def start(workdir, data, xla_cache, **env) -> subprocess.Popen:
    """`train.py` on the tiny config with a checkpoint after every step."""
    args = [
        sys.executable,
        "train.py",
        "--config=configs/test.py",
        f"--workdir={workdir}",
        "--config.data.synthetic.enabled=True",
        f"--config.data.root={data}",
        "--config.train.ckpt_every=1",
        "--config.train.eval_every=0",
    ]
    env = {**os.environ, "JAX_COMPILATION_CACHE_DIR": str(xla_cache), **env}
    return subprocess.Popen(
        args,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=300)
    return proc.returncode, out


def names(ckpts: pathlib.Path) -> list[str]:
    """The checkpoints folder's entries, and those of its deleting/ folder."""
    trash = ckpts / checkpoint.TRASH
    inside = [f"{trash.name}/{p.name}" for p in trash.iterdir()] if trash.is_dir() else []
    return sorted([p.name for p in ckpts.iterdir()] + inside)


def assert_same_state(a, b):
    leaves_a = jax.tree_util.tree_leaves_with_path(a)
    leaves_b = jax.tree_util.tree_leaves_with_path(b)
    assert [p for p, _ in leaves_a] == [p for p, _ in leaves_b]
    for (path, x), (_, y) in zip(leaves_a, leaves_b, strict=True):
        np.testing.assert_array_equal(x, y, err_msg=jax.tree_util.keystr(path))


@pytest.mark.slow
def test_killed_runs_resume_bit_for_bit(tmp_path, xla_cache):
    data = tmp_path / "faces"
    code, out = finish(start(tmp_path / "straight", data, xla_cache))
    assert code == 0, out[-3000:]
    workdir = tmp_path / "crashed"
    ckpts = workdir / "checkpoints"

    # 1. Killed in the middle of writing step 4's checkpoint. Step 1 (beyond keep=2) had been
    # moved to deleting/ when step 3's save finished, and was not deleted yet.
    code, out = finish(start(workdir, data, xla_cache, JAXFACES_TEST_SIGKILL_IN_SAVE="4"))
    assert code == KILLED, out[-3000:]
    assert names(ckpts) == ["2", "3", "4.orbax-checkpoint-tmp", "deleting", "deleting/1"]
    assert checkpoint.manager(ckpts, create=False).all_steps() == [2, 3]

    # 2. The same command: it cleans up, resumes from step 3, and is killed by the test as
    # soon as it reports its first step (while saving step 4 or computing step 5).
    proc = start(workdir, data, xla_cache)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("First step"):
            proc.kill()
            break
    code, out = finish(proc)
    out = "".join(lines) + out
    assert code == KILLED, out[-3000:]
    assert (
        f"Removed unfinished checkpoint folders an interrupted run left in {ckpts}: "
        "4.orbax-checkpoint-tmp, deleting/1\n" in out
    )
    assert f"Resumed from {ckpts} at step 3\n" in out

    # 3. The same command again runs to the end.
    code, out = finish(start(workdir, data, xla_cache))
    assert code == 0, out[-3000:]
    assert f"Resumed from {ckpts} at step " in out
    assert names(ckpts) == ["5", "6"]

    _, straight, step_a = checkpoint.load(tmp_path / "straight")
    _, crashed, step_b = checkpoint.load(workdir)
    assert step_a == step_b == 6
    assert_same_state(straight, crashed)
    # The parameters moved since step 5: the comparison is not vacuous.
    _, before, _ = checkpoint.load(workdir, 5)
    params = zip(jax.tree.leaves(before["params"]), jax.tree.leaves(crashed["params"]), strict=True)
    assert any(not np.array_equal(x, y) for x, y in params)

    # 4. Other network settings in the same workdir: one error naming both values.
    config = test_config.get_config()
    config.data.root, config.data.synthetic.enabled = str(data), True
    config.model.generator.ngf = 16
    with pytest.raises(ValueError) as error:
        loop.train(config, workdir)
    message = str(error.value)
    assert message.startswith(
        f"{ckpts / '6'} was written with config.model.generator.ngf=8 but the config says 16 "
    )
    assert "(params/g_a/conv_in/conv/bias is (8,) there but (16,) here; " in message
    assert message.endswith("use another --workdir or the same settings")
    assert cli.input_error(error.value) == message  # train.py: `error: ...`, exit status 2.


def test_remove_unfinished_touches_only_orbax_leftovers(tmp_path, capsys):
    ckpts = tmp_path / "checkpoints"
    for name in ("3", "7.orbax-checkpoint-tmp", "8.orbax-checkpoint-tmp-1700000000", "notes"):
        (ckpts / name).mkdir(parents=True)
        (ckpts / name / "file").write_text("x")
    (ckpts / "notes.orbax-checkpoint-tmp").mkdir()  # Not a step: not Orbax's.
    (ckpts / "9.orbax-checkpoint-tmp").write_text("a file, not Orbax's folder")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (ckpts / "10.orbax-checkpoint-tmp").symlink_to(elsewhere)
    (ckpts / checkpoint.TRASH / "2").mkdir(parents=True)
    (ckpts / checkpoint.TRASH / "mine.txt").write_text("x")

    assert checkpoint.manager(ckpts, create=False)  # A reader changes nothing.
    assert (ckpts / "7.orbax-checkpoint-tmp").is_dir()
    removed = checkpoint.remove_unfinished(ckpts)

    assert removed == [
        "7.orbax-checkpoint-tmp",
        "8.orbax-checkpoint-tmp-1700000000",
        "deleting/2",
    ]
    out = capsys.readouterr().out
    assert out == (
        f"Removed unfinished checkpoint folders an interrupted run left in {ckpts}: "
        "7.orbax-checkpoint-tmp, 8.orbax-checkpoint-tmp-1700000000, deleting/2\n"
    )
    assert sorted(p.name for p in ckpts.iterdir()) == [
        "10.orbax-checkpoint-tmp",
        "3",
        "9.orbax-checkpoint-tmp",
        "deleting",
        "notes",
        "notes.orbax-checkpoint-tmp",
    ]
    assert [p.name for p in (ckpts / "deleting").iterdir()] == ["mine.txt"]
    assert elsewhere.is_dir()
    assert checkpoint.remove_unfinished(ckpts) == [] and capsys.readouterr().out == ""


def test_old_checkpoints_are_deleted_through_the_trash(tmp_path):
    config = test_config.get_config()
    state = {"params": {"w": jnp.arange(4.0)}, "step": jnp.int32(0)}
    mngr = checkpoint.manager(tmp_path, keep=2)
    for step in range(1, 5):
        checkpoint.save(mngr, step, state, config)
    checkpoint.close(mngr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["3", "4"]


def test_restore_into_other_shapes_names_the_changed_settings(tmp_path):
    saved_config = test_config.get_config()
    mngr = checkpoint.manager(tmp_path, keep=2)
    kernel = {"params": {"g": {"conv": {"kernel": jnp.zeros((3, 3, 3, 8))}}}}
    checkpoint.save(mngr, 6, kernel, saved_config)
    checkpoint.close(mngr)

    config = test_config.get_config()
    config.model.generator.ngf = 16
    config.train.num_steps = 12
    mngr = checkpoint.manager(tmp_path)
    wider = {"params": {"g": {"conv": {"kernel": jnp.zeros((3, 3, 3, 16))}}}}
    with pytest.raises(ValueError) as error:
        checkpoint.restore_state(mngr, 6, wider, config)
    assert str(error.value) == (
        f"{tmp_path / '6'} was written with config.model.generator.ngf=8 but the config says "
        "16 (also changed: config.train.num_steps 6 -> 12); its arrays do not fit "
        "(params/g/conv/kernel is (3, 3, 3, 8) there but (3, 3, 3, 16) here; differing arrays: 1); "
        "use another --workdir or the same settings"
    )
    assert cli.input_error(error.value) == str(error.value)

    extra = {"params": {"g": {"conv": {"kernel": jnp.zeros((3, 3, 3, 8)), "bias": jnp.zeros(8)}}}}
    with pytest.raises(ValueError, match=r"it has no params/g/conv/bias; missing arrays: 1"):
        checkpoint.restore_state(mngr, 6, extra, saved_config)
    # Same shapes: restored, whatever else changed.
    restored = checkpoint.restore_state(mngr, 6, kernel, config)
    np.testing.assert_array_equal(restored["params"]["g"]["conv"]["kernel"], np.zeros((3, 3, 3, 8)))
    mngr.close()
