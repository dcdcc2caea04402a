"""Orbax checkpoints: the whole train state plus the config that made it.

Layout: WORKDIR/checkpoints/<step>/{state,config}. `state` is the method's state pytree
(parameters, optimizer states, image pools, step, RNG); `config` the run's config as JSON,
so a checkpoint alone says which method and which networks to rebuild.

Crashes (`kill -9`, power loss of the process) leave nothing a rerun trips on:

- Orbax writes a checkpoint into `<step>.orbax-checkpoint-tmp` and renames it to `<step>`
  when it is complete, so a step folder is always whole; `latest_step()` and `all_steps()`
  ignore the temporary ones.
- Old checkpoints (beyond `keep`) are first renamed into `checkpoints/deleting/` (atomic),
  then deleted, so a crash during a deletion cannot leave a half-deleted `<step>` that
  `all_steps()` would list.
- A writer's `manager` removes both kinds of leftovers (and only those) with one printed
  line before it starts.

Test hook: with the environment variable JAXFACES_TEST_SIGKILL_IN_SAVE=N, `save` sends
SIGKILL to its own process right after starting the asynchronous write of step N, i.e. in
the middle of that checkpoint's write (tests/crash_test.py).
"""

import json
import os
import pathlib
import re
import shutil
import signal
from typing import Any

import jax
import ml_collections
import orbax.checkpoint as ocp

ITEMS = ("state", "config")
#: Where Orbax moves old checkpoints (beyond `keep`) before they are deleted.
TRASH = "deleting"
#: Orbax's name for a step folder being written (`7.orbax-checkpoint-tmp`, some versions
#: add `-<timestamp>`).
_UNFINISHED = re.compile(r"^\d+" + re.escape(ocp.utils.TMP_DIR_SUFFIX) + r"(-\d+)?$")
_KILL_IN_SAVE = "JAXFACES_TEST_SIGKILL_IN_SAVE"


def checkpoint_dir(path: str | pathlib.Path) -> pathlib.Path:
    """WORKDIR/checkpoints for a workdir, or `path` itself if it is a checkpoints folder."""
    path = pathlib.Path(path).expanduser().resolve()
    if (path / "checkpoints").is_dir():
        return path / "checkpoints"
    return path


def _is_own_dir(path: pathlib.Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def _empty_trash(directory: pathlib.Path) -> list[str]:
    """Deletes the old checkpoints Orbax moved to `directory`/deleting; returns their names."""
    trash = directory / TRASH
    if jax.process_index() != 0 or not _is_own_dir(trash):
        return []
    removed = []
    for child in sorted(trash.iterdir()):
        if child.name.isdigit() and _is_own_dir(child):  # Named as Orbax's deleter names them.
            shutil.rmtree(child)
            removed.append(f"{TRASH}/{child.name}")
    if not any(trash.iterdir()):
        trash.rmdir()
    return removed


def remove_unfinished(directory: str | pathlib.Path) -> list[str]:
    """Removes what a crashed run left unfinished in a checkpoints folder; returns the names.

    That is Orbax's temporary step folders (`<step>.orbax-checkpoint-tmp`: a write that never
    completed) and old checkpoints whose deletion had begun (`deleting/<step>`); nothing
    else is touched. Only process 0 removes anything. Prints one line when it removed some.
    """
    directory = pathlib.Path(directory)
    if jax.process_index() != 0 or not directory.is_dir():
        return []
    removed = []
    for child in sorted(directory.iterdir()):
        if _UNFINISHED.match(child.name) and _is_own_dir(child):
            shutil.rmtree(child)
            removed.append(child.name)
    removed += _empty_trash(directory)
    if removed:
        print(
            f"Removed unfinished checkpoint folders an interrupted run left in {directory}: "
            f"{', '.join(removed)}",
            flush=True,
        )
    return removed


def manager(
    directory: str | pathlib.Path, keep: int | None = None, create: bool = True
) -> ocp.CheckpointManager:
    """A CheckpointManager over `directory` keeping the newest `keep` checkpoints.

    With `create` (a writer: training, conversion) the folder is made if needed and first
    cleared of a crashed run's unfinished folders (`remove_unfinished`); readers
    (`create=False`) change nothing on disk.
    """
    if create:
        remove_unfinished(directory)
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=create, todelete_subdir=TRASH)
    handlers = {"state": ocp.StandardCheckpointHandler(), "config": ocp.JsonCheckpointHandler()}
    return ocp.CheckpointManager(pathlib.Path(directory), options=options, item_handlers=handlers)


def save(
    mngr: ocp.CheckpointManager, step: int, state: Any, config: ml_collections.ConfigDict
) -> bool:
    """Saves `state` and `config` at `step` (asynchronously; see `close`)."""
    saved = mngr.save(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            config=ocp.args.JsonSave(json.loads(config.to_json())),
        ),
        force=True,
    )
    if os.environ.get(_KILL_IN_SAVE) == str(step):  # Test hook (module docstring).
        os.kill(os.getpid(), signal.SIGKILL)
    # `mngr.save` first waited for the previous save, and with it for Orbax's deletions.
    _empty_trash(pathlib.Path(mngr.directory))
    return saved


def close(mngr: ocp.CheckpointManager) -> None:
    """Waits for the saves in flight, finishes deleting old checkpoints, closes `mngr`."""
    mngr.wait_until_finished()
    _empty_trash(pathlib.Path(mngr.directory))
    mngr.close()


def _leaf_name(key: Any) -> str:
    for attr in ("key", "name", "idx"):  # DictKey, GetAttrKey, SequenceKey.
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def _shapes(tree: Any) -> dict[str, tuple[int, ...]]:
    """{"params/G_A/down_0/conv/kernel": shape} for the arrays of a pytree or its metadata."""
    return {
        "/".join(_leaf_name(k) for k in path): tuple(leaf.shape)
        for path, leaf in jax.tree_util.tree_leaves_with_path(tree)
    }


def _flat(tree: dict, prefix: str = "config.") -> dict[str, Any]:
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _config_differences(saved: dict, config: ml_collections.ConfigDict) -> list[tuple]:
    """(field, saved value, current value) for each field that differs, `config.model` first."""
    old, new = _flat(saved), _flat(json.loads(config.to_json()))
    keys = [k for k in old.keys() | new.keys() if old.get(k, "(none)") != new.get(k, "(none)")]
    keys.sort(key=lambda k: (not k.startswith("config.model."), k))
    return [(k, old.get(k, "(none)"), new.get(k, "(none)")) for k in keys]


def _first(names: set[str] | list[str]) -> str:
    """The one to show: a parameter (rather than an optimizer moment), then by name."""
    return min(names, key=lambda k: ("params" not in k.split("/"), k))


def _mismatch(saved: dict[str, tuple], wanted: dict[str, tuple]) -> str | None:
    """How the checkpoint's arrays differ from the ones the config makes, or None."""
    shapes = [k for k in wanted.keys() & saved.keys() if saved[k] != wanted[k]]
    missing, extra = wanted.keys() - saved.keys(), saved.keys() - wanted.keys()
    if shapes:
        k = _first(shapes)
        return f"{k} is {saved[k]} there but {wanted[k]} here; differing arrays: {len(shapes)}"
    if missing:
        return f"it has no {_first(missing)}; missing arrays: {len(missing)}"
    if extra:
        return f"it has {_first(extra)}, which this config lacks; extra arrays: {len(extra)}"
    return None


def check_fits(
    mngr: ocp.CheckpointManager,
    step: int,
    target: Any,
    config: ml_collections.ConfigDict | None = None,
) -> None:
    """Raises ValueError when checkpoint `step` cannot restore into `target`: an array of
    another shape, or one that only one of them has (settings that shape the networks
    changed, e.g. `model.generator.ngf`, or the method did).

    The message names the checkpoint, the fields of `config` (the one `target` was made
    from) that differ from the config the checkpoint was written with, and an array that
    does not fit.
    """
    try:
        metadata = mngr.item_metadata(step)["state"]
    except Exception:  # Unreadable metadata (another Orbax version): let the restore decide.
        return
    if metadata is None:
        return
    what = _mismatch(_shapes(metadata), _shapes(target))
    if what is None:
        return
    path = pathlib.Path(mngr.directory) / str(step)
    changes = []
    if config is not None:
        try:
            saved = mngr.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))
            changes = _config_differences(saved["config"], config)
        except Exception:  # The message below still names the checkpoint and the array.
            pass
    if changes:
        key, old, new = changes[0]
        cause = f"was written with {key}={old} but the config says {new}"
        if len(changes) > 1:
            others = ", ".join(f"{k} {o} -> {n}" for k, o, n in changes[1:4])
            more = f" and {len(changes) - 4} more" if len(changes) > 4 else ""
            cause += f" (also changed: {others}{more})"
    else:
        cause = "was written by networks of other shapes"
    raise ValueError(
        f"{path} {cause}; its arrays do not fit ({what}); "
        "use another --workdir or the same settings"
    )


def restore_state(
    mngr: ocp.CheckpointManager,
    step: int,
    target: Any,
    config: ml_collections.ConfigDict | None = None,
) -> Any:
    """Restores the state at `step` into the shapes, dtypes and shardings of `target`.

    Raises ValueError (see `check_fits`) when the checkpoint's arrays do not fit `target`;
    `config`, the one `target` was made from, lets the message name the fields that changed.
    """
    check_fits(mngr, step, target, config)
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
    restored = mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract)))
    return restored["state"]


def load(
    path: str | pathlib.Path, step: int | None = None
) -> tuple[ml_collections.ConfigDict, dict[str, Any], int]:
    """Loads (config, state as numpy pytree, step) from a workdir or checkpoints folder.

    `step` defaults to the newest. Raises FileNotFoundError naming the path when there is
    no checkpoint, and ValueError listing the available steps when `step` is not one.
    """
    directory = checkpoint_dir(path)
    if not directory.is_dir():
        raise FileNotFoundError(f"no checkpoint folder at {directory}")
    mngr = manager(directory, create=False)
    steps = mngr.all_steps()
    if not steps:
        raise FileNotFoundError(f"no checkpoints in {directory}")
    if step is None:
        step = max(steps)
    elif step not in steps:
        raise ValueError(f"no checkpoint at step {step} in {directory}; available: {steps}")
    # Onto this process's first device, whichever devices and hosts wrote it (the default,
    # their shardings, fails on other devices: 8 TPU cores' checkpoint read on one CPU).
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    abstract = jax.tree.map(
        lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
        mngr.item_metadata(step)["state"],
    )
    restored = mngr.restore(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract), config=ocp.args.JsonRestore()
        ),
    )
    mngr.close()
    config = ml_collections.ConfigDict(restored["config"])
    return config, restored["state"], step
