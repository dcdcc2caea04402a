"""The image history pool: fills first, then swaps about half the time, deterministically."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxfaces import pool
from jaxfaces import rng as rngs


def batch(values):
    return jnp.asarray(values, jnp.float32)[:, None, None, None] * jnp.ones((1, 2, 2, 1))


def test_fills_first_and_returns_inputs_while_filling():
    p = pool.init(3, (2, 2, 1))
    p, out = pool.query(p, batch([1, 2]), rngs.key(0))
    np.testing.assert_array_equal(out, batch([1, 2]))
    assert int(p["count"]) == 2
    p, out = pool.query(p, batch([3]), rngs.key(1))
    np.testing.assert_array_equal(out, batch([3]))
    assert int(p["count"]) == 3
    np.testing.assert_array_equal(np.asarray(p["images"][:, 0, 0, 0]), [1, 2, 3])


def test_full_pool_returns_stored_images_about_half_the_time():
    p = pool.init(4, (2, 2, 1))
    p, _ = pool.query(p, batch([1, 2, 3, 4]), rngs.key(0))
    swapped, n = 0, 300
    key = rngs.key(42)
    query = jax.jit(pool.query)
    for i in range(n):
        new = 100 + i
        before = set(np.asarray(p["images"][:, 0, 0, 0]).tolist())
        p, out = query(p, batch([new]), jax.random.fold_in(key, i))
        got = float(out[0, 0, 0, 0])
        after = set(np.asarray(p["images"][:, 0, 0, 0]).tolist())
        if got == new:
            assert after == before  # Not swapped: the pool is unchanged.
        else:
            swapped += 1
            assert got in before and new in after and got not in after
    assert 0.4 < swapped / n < 0.6
    assert int(p["count"]) == 4


def test_deterministic_under_a_key_and_zero_size_is_identity():
    p = pool.init(2, (2, 2, 1))
    p, _ = pool.query(p, batch([1, 2]), rngs.key(0))
    a = pool.query(p, batch([5, 6, 7]), rngs.key(3))
    b = pool.query(p, batch([5, 6, 7]), rngs.key(3))
    jax.tree.map(np.testing.assert_array_equal, a, b)
    empty = pool.init(0, (2, 2, 1))
    _, out = pool.query(empty, batch([9]), rngs.key(0))
    np.testing.assert_array_equal(out, batch([9]))
