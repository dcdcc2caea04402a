"""VGG19 feature extractor (torchvision's `vgg19`, configuration E), Flax Linen, NHWC.

The 16 convolutions (3x3, zero padding 1, ReLU) and 5 pools of torchvision's
`vgg19().features`; the classifier is left out. Images come in the project's range [-1, 1]
and are normalised inside with the ImageNet mean and std that torchvision's weights expect.
Activations are named `conv{b}_{l}` (before the ReLU) and `relu{b}_{l}` (after), with `b` the
block (1-5) and `l` the layer in it; only the layers asked for are returned, and nothing past
the deepest of them is computed.

Weights: `python -m jaxfaces.convert vgg19 --pth vgg19-dcbb9e9d.pth --out FILE` converts
torchvision's ImageNet file once; `load_params()` reads the result, found by `find_weights()`
(the file handling, shared with Inception, is `models.weights`).
"""

import os
import pathlib
import re
from collections.abc import Iterable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxfaces.models import fast_conv, weights
from jaxfaces.models.layers import Dtype, check_choice
from jaxfaces.models.weights import sha256 as sha256  # Re-exported: the converter's digest.

#: Output channels of each block's convolutions (configuration E: 2, 2, 4, 4, 4 layers).
BLOCKS = ((64, 2), (128, 2), (256, 4), (512, 4), (512, 4))
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
POOLS = ("max", "avg")

CONV_LAYERS = tuple(f"conv{b + 1}_{i + 1}" for b, (_, n) in enumerate(BLOCKS) for i in range(n))
LAYERS = tuple(f"{kind}{name[4:]}" for name in CONV_LAYERS for kind in ("conv", "relu"))


def torchvision_index(layer: str) -> int:
    """Index in torchvision's `vgg19().features` Sequential of the convolution `conv{b}_{l}`.

    Each convolution is followed by its ReLU, and each block by a pool: conv1_1 is
    `features.0`, conv1_2 `features.2`, conv2_1 `features.5`, ..., conv5_4 `features.34`.
    """
    index = 0
    for b, (_, n) in enumerate(BLOCKS):
        for i in range(n):
            if layer == f"conv{b + 1}_{i + 1}":
                return index
            index += 2
        index += 1
    raise ValueError(f"unknown VGG19 convolution {layer!r}; valid: {', '.join(CONV_LAYERS)}")


def _depth(layer: str) -> int:
    """Position of `layer` in the forward order (its convolution's index in CONV_LAYERS)."""
    match = re.fullmatch(r"(conv|relu)(\d)_(\d)", layer)
    if not match or f"conv{match[2]}_{match[3]}" not in CONV_LAYERS:
        raise ValueError(f"unknown VGG19 layer {layer!r}; valid: conv1_1 ... conv5_4, relu*")
    return CONV_LAYERS.index(f"conv{match[2]}_{match[3]}")


class VGG19(nn.Module):
    """torchvision VGG19 features; `__call__(x, layers)` -> {layer name: activation}.

    Attributes:
      pool: "max" (as trained) or "avg" (Gatys et al.'s choice for image synthesis).
      dtype: computation dtype; parameters stay float32.
    """

    pool: str = "max"
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, layers: Iterable[str] | None = None) -> dict[str, jax.Array]:
        check_choice("VGG19 pool", self.pool, POOLS)
        wanted = tuple(LAYERS if layers is None else layers)
        last = max(_depth(name) for name in wanted) if wanted else -1
        mean = jnp.asarray(IMAGENET_MEAN, jnp.float32)
        std = jnp.asarray(IMAGENET_STD, jnp.float32)
        h = (((x.astype(jnp.float32) + 1.0) / 2.0 - mean) / std).astype(self.dtype)
        out: dict[str, jax.Array] = {}
        depth = 0
        for b, (features, n) in enumerate(BLOCKS):
            for i in range(n):
                if depth > last:
                    return out
                name = f"conv{b + 1}_{i + 1}"
                h = _Conv3x3(features, self.dtype, name=name)(h)
                if name in wanted:
                    out[name] = h
                h = nn.relu(h)
                if f"relu{b + 1}_{i + 1}" in wanted:
                    out[f"relu{b + 1}_{i + 1}"] = h
                depth += 1
            if depth > last:
                return out
            pool = nn.max_pool if self.pool == "max" else nn.avg_pool
            h = pool(h, (2, 2), strides=(2, 2))
        return out


class _Conv3x3(nn.Module):
    """3x3 convolution, zero padding 1, with bias; params `kernel` (HWIO) and `bias`."""

    features: int
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param(
            "kernel", nn.initializers.he_normal(), (3, 3, x.shape[-1], self.features)
        )
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        x = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
        return fast_conv.conv2d(x, kernel.astype(self.dtype)) + bias.astype(self.dtype)


# --------------------------------------------------------------------------- weights

ENV_VAR = "JAXFACES_VGG19"
TORCHVISION_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"


def default_path() -> pathlib.Path:
    """Where converted weights are looked for last: $XDG_CACHE_HOME/jaxfaces/vgg19.msgpack."""
    return weights.cache_path("vgg19.msgpack")


def convert_command(out: str | os.PathLike | None = None) -> str:
    """The commands that fetch and convert torchvision's weights (for error messages, docs)."""
    out = out or default_path()
    return (
        f"download {TORCHVISION_URL} and run: python -m jaxfaces.convert vgg19 "
        f"--pth vgg19-dcbb9e9d.pth --out {out}"
    )


def find_weights(path: str | os.PathLike | None = None) -> pathlib.Path:
    """The converted weight file: `path` if given, else $JAXFACES_VGG19, else default_path().

    Raises:
      FileNotFoundError: naming the file looked for, every place looked and the commands
        that make it (`weights.find`).
    """
    return weights.find(
        path,
        name="VGG19",
        env_var=ENV_VAR,
        default=default_path(),
        given_as="config vgg.weights, or load_params(path)",
        how_to=convert_command,
    )


def save_params(params: dict, path: str | os.PathLike) -> pathlib.Path:
    """Writes `params` as msgpack (no pickle) and its SHA-256 to `path` + ".sha256"."""
    host = jax.tree.map(lambda a: np.asarray(a, np.float32), params)
    return weights.save(host, path)[0]


def load_params(path: str | os.PathLike | None = None) -> dict:
    """The VGG19 parameter pytree from a converted file (see `find_weights` for the search).

    The file's SHA-256 is checked against the `.sha256` file beside it when there is one.

    Raises:
      FileNotFoundError: no weight file (the message says how to make one).
      ValueError: a corrupt file, a checksum mismatch or missing layers.
    """
    path = find_weights(path)
    params = weights.load(path, kind="a converted VGG19 weight file")
    if not isinstance(params, dict):
        raise ValueError(f"{path} is not a converted VGG19 weight file")
    missing = [name for name in CONV_LAYERS if name not in params]
    if missing:
        raise ValueError(f"{path} lacks VGG19 layers {missing}")
    return {name: dict(params[name]) for name in CONV_LAYERS}


def random_params(seed: int = 0) -> dict:
    """Randomly initialised VGG19 parameters (He normal, zero bias): for tests and benchmarks.

    Drawn with NumPy (initialising through Flax would compile the whole network first).
    """
    rng = np.random.default_rng(seed)
    params, in_channels = {}, 3
    for name, (features, _) in zip(CONV_LAYERS, _layer_blocks(), strict=True):
        std = np.sqrt(2.0 / (9 * in_channels))
        kernel = rng.standard_normal((3, 3, in_channels, features), np.float32) * np.float32(std)
        params[name] = {"kernel": kernel, "bias": np.zeros((features,), np.float32)}
        in_channels = features
    return params


def param_shapes(layers: Iterable[str]) -> dict:
    """{conv: {"kernel", "bias": ShapeDtypeStruct}} of the layers up to the deepest in `layers`."""
    last = max(_depth(name) for name in layers)
    out, in_channels = {}, 3
    for name, (features, _) in list(zip(CONV_LAYERS, _layer_blocks(), strict=True))[: last + 1]:
        out[name] = {
            "kernel": jax.ShapeDtypeStruct((3, 3, in_channels, features), jnp.float32),
            "bias": jax.ShapeDtypeStruct((features,), jnp.float32),
        }
        in_channels = features
    return out


def _layer_blocks() -> list[tuple[int, int]]:
    """(features, block index) of each convolution, in order."""
    return [(features, b) for b, (features, n) in enumerate(BLOCKS) for _ in range(n)]


def resolve_params(weights: str | None) -> tuple[dict, str]:
    """(params, description) for a config's `vgg.weights`: a path, "" (search) or "random".

    "random" must be asked for explicitly; it is never a fallback for missing weights.
    """
    if weights == "random":
        return random_params(), "random (explicitly requested; not ImageNet)"
    path = find_weights(weights or None)
    return load_params(path), str(path)
