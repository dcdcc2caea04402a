"""Orbax checkpoints: the whole train state plus the config that made it.

Layout: WORKDIR/checkpoints/<step>/{state,config}. `state` is the method's state pytree
(parameters, optimizer states, image pools, step, RNG); `config` the run's config as JSON,
so a checkpoint alone says which method and which networks to rebuild.
"""

import json
import pathlib
from typing import Any

import jax
import ml_collections
import orbax.checkpoint as ocp

ITEMS = ("state", "config")


def checkpoint_dir(path: str | pathlib.Path) -> pathlib.Path:
    """WORKDIR/checkpoints for a workdir, or `path` itself if it is a checkpoints folder."""
    path = pathlib.Path(path).expanduser().resolve()
    if (path / "checkpoints").is_dir():
        return path / "checkpoints"
    return path


def manager(
    directory: str | pathlib.Path, keep: int | None = None, create: bool = True
) -> ocp.CheckpointManager:
    """A CheckpointManager over `directory` keeping the newest `keep` checkpoints."""
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=create)
    return ocp.CheckpointManager(pathlib.Path(directory), options=options, item_names=ITEMS)


def save(
    mngr: ocp.CheckpointManager, step: int, state: Any, config: ml_collections.ConfigDict
) -> bool:
    """Saves `state` and `config` at `step` (asynchronously; see `wait_until_finished`)."""
    return mngr.save(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            config=ocp.args.JsonSave(json.loads(config.to_json())),
        ),
        force=True,
    )


def restore_state(mngr: ocp.CheckpointManager, step: int, target: Any) -> Any:
    """Restores the state at `step` into the shapes, dtypes and shardings of `target`."""
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
    restored = mngr.restore(
        step,
        args=ocp.args.Composite(state=ocp.args.StandardRestore(), config=ocp.args.JsonRestore()),
    )
    mngr.close()
    config = ml_collections.ConfigDict(restored["config"])
    return config, restored["state"], step
