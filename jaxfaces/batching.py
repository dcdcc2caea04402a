"""Applying a compiled function to a set of images a batch at a time, one compiled shape."""

from collections.abc import Callable
from typing import Any

import jax
import numpy as np


def pad_batch(batch: np.ndarray, size: int) -> np.ndarray:
    """`batch` with zero rows appended up to `size` rows (unchanged when it has them)."""
    batch = np.asarray(batch)
    if len(batch) >= size:
        return batch
    return np.concatenate([batch, np.zeros((size - len(batch), *batch.shape[1:]), batch.dtype)])


def apply_batched(fn: Callable[[np.ndarray], Any], items: np.ndarray, batch_size: int = 16) -> Any:
    """`fn` over `items` (axis 0) in batches of `batch_size`, outputs concatenated.

    When there is more than one batch, the last is padded with zeros to `batch_size` (and
    the padding's outputs dropped), so that one compiled program serves every batch; a
    single batch of fewer items runs as it is. `fn` returns an array or a pytree of arrays
    with the batch on axis 0; the result has the same structure, as numpy arrays.
    """
    items = np.asarray(items)
    size = max(1, min(int(batch_size), len(items)))
    outputs = []
    for start in range(0, len(items), size):
        valid = len(items[start : start + size])
        out = fn(pad_batch(items[start : start + size], size))
        outputs.append(jax.tree.map(lambda y, valid=valid: np.asarray(y)[:valid], out))
    if not outputs:
        raise ValueError("apply_batched needs at least one item")
    return jax.tree.map(lambda *ys: np.concatenate(ys), *outputs)
