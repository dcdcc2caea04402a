"""InceptionV3 of FID (pytorch-fid's `fid_inception_v3`), NHWC, for 2048-d pool features.

The network of TensorFlow's FID code (inception-2015-12-05), as pytorch-fid ports it:
torchvision's InceptionV3 layout with its blocks patched (average pools that leave the
padding out of the count; a max pool in the last block's pool branch). Modules are named
as the PyTorch ones (`Mixed_5b/branch1x1/conv`), so the weights convert by name
(`python -m jaxfaces.convert inception`, see docs/METRICS.md).

`load_params` reads the converted weights; `weights_path` finds them (both through
`models.weights`, which VGG19 shares).
"""

import os
import pathlib
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxfaces.models import weights

Dtype = Any

#: The PyTorch weights pytorch-fid uses (ported from TensorFlow's FID Inception).
FID_WEIGHTS_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
    "pt_inception-2015-12-05-6726825d.pth"
)
#: Environment variable naming the converted weights file.
ENV_VAR = "JAXFACES_INCEPTION"
#: Where the converted weights are looked for when neither a path nor ENV_VAR is given.
DEFAULT_PATH = pathlib.Path("~/.cache/jaxfaces/inception_fid.msgpack")
#: Input size the network was trained at; images are resized to it first.
INPUT_SIZE = 299
FEATURES = 2048
#: channels_7x7 of the four InceptionC blocks.
MIXED_6_CHANNELS = {"Mixed_6b": 128, "Mixed_6c": 160, "Mixed_6d": 160, "Mixed_6e": 192}


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm (eps 1e-3, running statistics), ReLU."""

    features: int
    kernel_size: tuple[int, int]
    strides: int = 1
    padding: tuple[int, int] = (0, 0)
    dtype: Dtype = jnp.float32
    precision: Any = jax.lax.Precision.HIGHEST

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        ph, pw = self.padding
        x = nn.Conv(
            self.features,
            self.kernel_size,
            strides=self.strides,
            padding=((ph, ph), (pw, pw)),
            use_bias=False,
            dtype=self.dtype,
            precision=self.precision,
            name="conv",
        )(x)
        x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, dtype=self.dtype, name="bn")(x)
        return nn.relu(x)


def _avg_pool_3x3(x: jax.Array) -> jax.Array:
    """3x3 average, stride 1, padding 1, the padding left out of the count (TensorFlow's)."""
    return nn.avg_pool(x, (3, 3), padding=((1, 1), (1, 1)), count_include_pad=False)


def _max_pool_3x3_s2(x: jax.Array) -> jax.Array:
    return nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")


class _Block(nn.Module):
    """Base of the Inception blocks: `self.conv(name, features, kernel, ...)` makes a layer."""

    dtype: Dtype = jnp.float32
    precision: Any = jax.lax.Precision.HIGHEST

    def conv(
        self,
        name: str,
        features: int,
        kernel: int | tuple[int, int],
        strides: int = 1,
        padding: int | tuple[int, int] = 0,
    ) -> BasicConv2d:
        kernel = (kernel, kernel) if isinstance(kernel, int) else kernel
        padding = (padding, padding) if isinstance(padding, int) else padding
        return BasicConv2d(
            features, kernel, strides, padding, self.dtype, self.precision, name=name
        )


class InceptionA(_Block):
    """35x35 block: 1x1 | 5x5 | double 3x3 | average pool + 1x1 (pytorch-fid FIDInceptionA)."""

    pool_features: int = 32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        b1 = self.conv("branch1x1", 64, 1)(x)
        b5 = self.conv("branch5x5_2", 64, 5, padding=2)(self.conv("branch5x5_1", 48, 1)(x))
        b3 = self.conv("branch3x3dbl_1", 64, 1)(x)
        b3 = self.conv("branch3x3dbl_2", 96, 3, padding=1)(b3)
        b3 = self.conv("branch3x3dbl_3", 96, 3, padding=1)(b3)
        bp = self.conv("branch_pool", self.pool_features, 1)(_avg_pool_3x3(x))
        return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(_Block):
    """35 -> 17 reduction: stride-2 3x3 | double 3x3 (stride 2) | max pool (Mixed_6a)."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        b3 = self.conv("branch3x3", 384, 3, strides=2)(x)
        bd = self.conv("branch3x3dbl_1", 64, 1)(x)
        bd = self.conv("branch3x3dbl_2", 96, 3, padding=1)(bd)
        bd = self.conv("branch3x3dbl_3", 96, 3, strides=2)(bd)
        return jnp.concatenate([b3, bd, _max_pool_3x3_s2(x)], axis=-1)


class InceptionC(_Block):
    """17x17 block with factorised 7x7s (pytorch-fid FIDInceptionC)."""

    channels_7x7: int = 128

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c7 = self.channels_7x7
        b1 = self.conv("branch1x1", 192, 1)(x)
        b7 = self.conv("branch7x7_1", c7, 1)(x)
        b7 = self.conv("branch7x7_2", c7, (1, 7), padding=(0, 3))(b7)
        b7 = self.conv("branch7x7_3", 192, (7, 1), padding=(3, 0))(b7)
        bd = self.conv("branch7x7dbl_1", c7, 1)(x)
        bd = self.conv("branch7x7dbl_2", c7, (7, 1), padding=(3, 0))(bd)
        bd = self.conv("branch7x7dbl_3", c7, (1, 7), padding=(0, 3))(bd)
        bd = self.conv("branch7x7dbl_4", c7, (7, 1), padding=(3, 0))(bd)
        bd = self.conv("branch7x7dbl_5", 192, (1, 7), padding=(0, 3))(bd)
        bp = self.conv("branch_pool", 192, 1)(_avg_pool_3x3(x))
        return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(_Block):
    """17 -> 8 reduction: 1x1 + stride-2 3x3 | 1x1, 1x7, 7x1, stride-2 3x3 | max pool."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        b3 = self.conv("branch3x3_2", 320, 3, strides=2)(self.conv("branch3x3_1", 192, 1)(x))
        b7 = self.conv("branch7x7x3_1", 192, 1)(x)
        b7 = self.conv("branch7x7x3_2", 192, (1, 7), padding=(0, 3))(b7)
        b7 = self.conv("branch7x7x3_3", 192, (7, 1), padding=(3, 0))(b7)
        b7 = self.conv("branch7x7x3_4", 192, 3, strides=2)(b7)
        return jnp.concatenate([b3, b7, _max_pool_3x3_s2(x)], axis=-1)


class InceptionE(_Block):
    """8x8 block with split 1x3 / 3x1 branches; `pool` "avg" (Mixed_7b) or "max" (Mixed_7c).

    pytorch-fid's FIDInceptionE_1 and FIDInceptionE_2: the FID network's last block pools
    with a 3x3 max (stride 1, padding 1) where InceptionV3 averages.
    """

    pool: str = "avg"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        b1 = self.conv("branch1x1", 320, 1)(x)
        b3 = self.conv("branch3x3_1", 384, 1)(x)
        b3 = jnp.concatenate(
            [
                self.conv("branch3x3_2a", 384, (1, 3), padding=(0, 1))(b3),
                self.conv("branch3x3_2b", 384, (3, 1), padding=(1, 0))(b3),
            ],
            axis=-1,
        )
        bd = self.conv("branch3x3dbl_1", 448, 1)(x)
        bd = self.conv("branch3x3dbl_2", 384, 3, padding=1)(bd)
        bd = jnp.concatenate(
            [
                self.conv("branch3x3dbl_3a", 384, (1, 3), padding=(0, 1))(bd),
                self.conv("branch3x3dbl_3b", 384, (3, 1), padding=(1, 0))(bd),
            ],
            axis=-1,
        )
        if self.pool == "avg":
            pooled = _avg_pool_3x3(x)
        elif self.pool == "max":
            pooled = nn.max_pool(x, (3, 3), padding=((1, 1), (1, 1)))
        else:
            raise ValueError(f"unknown pool {self.pool!r}; valid: avg, max")
        bp = self.conv("branch_pool", 192, 1)(pooled)
        return jnp.concatenate([b1, b3, bd, bp], axis=-1)


def resize_to_input(images: jax.Array, size: int = INPUT_SIZE) -> jax.Array:
    """Bilinear resize to size x size without antialiasing, as pytorch-fid's F.interpolate.

    Both sample at pixel centres (align_corners=False) and weight the two nearest pixels on
    each axis, so they agree for any input size; larger inputs are downsampled without a
    low-pass filter (aliasing, as in pytorch-fid), unlike `jax.image.resize(...,
    antialias=True)` or PIL.
    """
    n, _, _, c = images.shape
    return jax.image.resize(images, (n, size, size, c), "bilinear", antialias=False)


class InceptionV3(nn.Module):
    """The FID InceptionV3 up to its global average pool: (N, H, W, 3) -> (N, 2048).

    Attributes:
      resize: resize inputs to 299 x 299 first (`resize_to_input`), as pytorch-fid does;
        without it any size from 75 px works.
      dtype: compute dtype.
      precision: matmul precision of the convolutions (full float32 by default, so
        features agree across CPU, GPU and TPU).

    Inputs are RGB in [-1, 1] (pytorch-fid's `normalize_input` maps [0, 1] there).
    """

    resize: bool = True
    dtype: Dtype = jnp.float32
    precision: Any = jax.lax.Precision.HIGHEST

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = jnp.asarray(x, jnp.float32)
        if self.resize:
            x = resize_to_input(x)
        x = x.astype(self.dtype)
        kw = {"dtype": self.dtype, "precision": self.precision}
        conv = lambda name, *args, **kwargs: BasicConv2d(*args, **kwargs, **kw, name=name)
        x = conv("Conv2d_1a_3x3", 32, (3, 3), strides=2)(x)
        x = conv("Conv2d_2a_3x3", 32, (3, 3))(x)
        x = conv("Conv2d_2b_3x3", 64, (3, 3), padding=(1, 1))(x)
        x = _max_pool_3x3_s2(x)
        x = conv("Conv2d_3b_1x1", 80, (1, 1))(x)
        x = conv("Conv2d_4a_3x3", 192, (3, 3))(x)
        x = _max_pool_3x3_s2(x)
        x = InceptionA(pool_features=32, **kw, name="Mixed_5b")(x)
        x = InceptionA(pool_features=64, **kw, name="Mixed_5c")(x)
        x = InceptionA(pool_features=64, **kw, name="Mixed_5d")(x)
        x = InceptionB(**kw, name="Mixed_6a")(x)
        for name, c7 in MIXED_6_CHANNELS.items():
            x = InceptionC(channels_7x7=c7, **kw, name=name)(x)
        x = InceptionD(**kw, name="Mixed_7a")(x)
        x = InceptionE(pool="avg", **kw, name="Mixed_7b")(x)
        x = InceptionE(pool="max", **kw, name="Mixed_7c")(x)
        return jnp.mean(x.astype(jnp.float32), axis=(1, 2))


# --------------------------------------------------------------------------- weights


def weights_path(path: str | os.PathLike | None = None) -> pathlib.Path:
    """The converted FID Inception weights: `path`, else $JAXFACES_INCEPTION, else the cache.

    Raises:
      FileNotFoundError: if the chosen file does not exist; the message names every place
        looked and how to get the file (`weights.find`).
    """
    return weights.find(
        path,
        name="FID Inception",
        env_var=ENV_VAR,
        default=DEFAULT_PATH,
        given_as="evaluate.py --inception, or weights= / load_params(path)",
        how_to=_convert_command,
    )


def _convert_command(out: pathlib.Path) -> str:
    return (
        f"download {FID_WEIGHTS_URL} and convert it (needs torch): python -m jaxfaces.convert "
        f"inception --pth pt_inception-2015-12-05-6726825d.pth --out {out}"
    )


#: The checksum file written beside a converted weights file (`FILE.sha256`).
sha256_path = weights.sha256_path


def load_params(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """Reads converted weights: `{"params": ..., "batch_stats": ...}` for `InceptionV3`.

    The file is found by `weights_path(path)`. When its `.sha256` file is beside it, the
    contents must match it.

    Raises:
      FileNotFoundError: if there is no weights file (the message says how to make one).
      ValueError: if the file does not match its checksum or is not converted weights.
    """
    path = weights_path(path)
    variables = weights.load(path, kind="a converted Inception weights file")
    if not isinstance(variables, dict) or set(variables) != {"params", "batch_stats"}:
        raise ValueError(f"{path} is not a converted Inception weights file")
    return variables
