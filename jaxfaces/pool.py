"""The image history pool of Shrivastava et al. (2017), as a pure function.

The discriminators see, half of the time, fakes made by earlier generators: the pool keeps
up to `size` past fakes; until it is full every new fake is stored and returned as is; once
full, each new fake is, with probability 0.5, swapped for a random stored one (which is
returned, the new one taking its place), else returned as is.

A pool is a dict `{"images": (size, H, W, C), "count": int32 scalar}`: a plain pytree that
checkpoints and shards like any other state.
"""

import jax
import jax.numpy as jnp

Pool = dict[str, jax.Array]


def init(size: int, image_shape: tuple[int, ...], dtype=jnp.float32) -> Pool:
    """An empty pool of `size` images of `image_shape` (H, W, C)."""
    return {"images": jnp.zeros((size, *image_shape), dtype), "count": jnp.zeros((), jnp.int32)}


def query(pool: Pool, images: jax.Array, key: jax.Array) -> tuple[Pool, jax.Array]:
    """Pushes a batch of fakes through the pool, one image at a time, in batch order.

    Returns the new pool and the batch to show the discriminator. A pool of size 0 returns
    the batch unchanged.
    """
    size = pool["images"].shape[0]
    if size == 0:
        return pool, images

    def one(state, inputs):
        buffer, count = state
        image, k = inputs
        image = image.astype(buffer.dtype)
        k_swap, k_idx = jax.random.split(k)
        full = count >= size
        swap = full & (jax.random.uniform(k_swap) < 0.5)
        idx = jnp.where(full, jax.random.randint(k_idx, (), 0, size), count)
        stored = buffer[idx]
        keep_stored = full & ~swap  # Full and not swapped: the pool is left as it was.
        buffer = buffer.at[idx].set(jnp.where(keep_stored, stored, image))
        return (buffer, jnp.minimum(count + 1, size)), jnp.where(swap, stored, image)

    # A Python loop, not lax.scan: the batch may be sharded over devices, and batches are small.
    state, out = (pool["images"], pool["count"]), []
    for i, k in enumerate(jax.random.split(key, images.shape[0])):
        state, image = one(state, (images[i], k))
        out.append(image)
    buffer, count = state
    return {"images": buffer, "count": count}, jnp.stack(out).astype(images.dtype)
