"""Data parallelism over a 1-D device mesh: batch sharded over "data", state replicated."""

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def make_mesh() -> Mesh:
    """A mesh of every device of every process, on one axis named "data"."""
    # Auto axes: XLA propagates the batch sharding through every op (reshapes and gathers of
    # the CPU convolution paths included) without per-op annotations.
    auto = (jax.sharding.AxisType.Auto,)
    return jax.make_mesh((jax.device_count(),), ("data",), axis_types=auto)


def replicated(mesh: Mesh) -> NamedSharding:
    """Sharding of a value copied whole to every device."""
    return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh) -> NamedSharding:
    """Sharding of a batch split along its first axis over the "data" axis."""
    return NamedSharding(mesh, PartitionSpec("data"))


def global_batch(local: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """Assembles each process's slice of the batch into one array sharded over the mesh."""
    sharding = batch_sharded(mesh)
    return {
        k: jax.make_array_from_process_local_data(sharding, np.asarray(v)) for k, v in local.items()
    }


def to_host(tree: Any) -> Any:
    """A numpy copy of a replicated pytree, readable on any process."""
    return jax.tree.map(
        lambda x: np.asarray(x.addressable_data(0)) if isinstance(x, jax.Array) else x, tree
    )
