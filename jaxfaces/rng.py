"""PRNG keys of jaxfaces runs.

Keys use JAX's "rbg" implementation (XLA's RngBitGenerator): on CPU, threefry-based
initialisation of a GAN's parameters takes tens of seconds to compile, rbg a few. Keys
carry their implementation, so this changes nothing outside jaxfaces.
"""

import jax

IMPL = "rbg"


def key(seed: int) -> jax.Array:
    """The root key of a run with `seed`."""
    return jax.random.key(seed, impl=IMPL)


def to_data(k: jax.Array) -> jax.Array:
    """Raw uint32 data of a key, for checkpoints."""
    return jax.random.key_data(k)


def from_data(data: jax.Array) -> jax.Array:
    """The key whose raw data is `data`."""
    return jax.random.wrap_key_data(data, impl=IMPL)
