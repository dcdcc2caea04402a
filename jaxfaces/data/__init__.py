"""Data input: image folders and TFDS data sets as tf.data streams of NumPy batches.

    it = train_iterator(config.data, seed=config.seed, start_step=step,
                        process_index=jax.process_index(), process_count=jax.process_count(),
                        num_devices=jax.device_count())
    batch = next(it)  # {"a": float32 (B/P, size, size, 3), "b": ...} in [-1, 1]

`train_iterator` and `test_images` live in `pipeline`, which imports TensorFlow; they are
loaded on first use so that code that only reads and writes images does not pay for it.
"""

from jaxfaces.data.folders import IMAGE_EXTENSIONS, list_images
from jaxfaces.data.preprocess import read_image, save_image, to_float, to_uint8

__all__ = [
    "IMAGE_EXTENSIONS",
    "list_images",
    "read_image",
    "save_image",
    "test_images",
    "to_float",
    "to_uint8",
    "train_iterator",
]

_LAZY = ("train_iterator", "test_images")


def __getattr__(name: str):
    if name in _LAZY:
        from jaxfaces.data import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
