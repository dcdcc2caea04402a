"""The networks of UNIT (Liu, Breuel, Kautz 2017): two VAEs whose high-level layers are shared.

The authors' VAEGen (NVlabs/UNIT, NVlabs/MUNIT `networks.py`), cut where UNIT shares:

`Encoder` (one per domain): c7s1-dim (instance norm, ReLU), `n_downsample` conv4x4
stride 2 (doubling the filters; instance norm, ReLU), then its private residual blocks.
`ResBlocks` (the shared part): residual blocks of 3x3 convolutions with instance norm; one
set ends both encoders, another begins both decoders (`shared_blocks` of them each, the
last encoder blocks and the first decoder blocks, as the paper's E_1, E_2 and G_1, G_2).
`Decoder` (one per domain): its private residual blocks, `n_downsample` x (nearest x2
upsampling, conv5x5 halving the filters, layer norm, ReLU), c7s1-3 and tanh.

The encoders' output h is the mean of the latent posterior N(h, I) (the authors' reduced
VAE: unit variance, so the encoder outputs the mean only). Padding is `padding` (the
authors': reflect) everywhere. Convolutions are initialised `weight_init`: "kaiming" (the
authors' generators: He normal, std sqrt(2 / fan_in), zero bias) or "gaussian" (N(0, 0.02)).
The authors' instance norm keeps running statistics (`track_running_stats=True`) that
their evaluation mode uses; here instance norm always normalises by the image's own
statistics, in training and in translation alike.
"""

import functools
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxfaces.models import fast_conv, layers

INITS = ("kaiming", "gaussian")
NORMS = ("instance", "layer", "none")


def kernel_init(kind: str):
    """He normal (fan in, gain sqrt(2); PyTorch's kaiming_normal_) or N(0, 0.02)."""
    layers.check_choice("config.model.generator.init", kind, INITS)
    if kind == "gaussian":
        return layers.conv_init

    def init(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
        fan_in = math.prod(shape[:-1])  # HWIO.
        return jax.random.normal(key, shape, dtype) * math.sqrt(2.0 / fan_in)

    return init


class LayerNorm(nn.Module):
    """MUNIT's LayerNorm: each example normalised over all its positions and channels by its
    mean and (unbiased) standard deviation, (x - mean) / (std + eps), then a per-channel
    scale (initialised U(0, 1)) and shift (0)."""

    epsilon: float = 1e-5

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x32 = x.astype(jnp.float32)
        axes = tuple(range(1, x.ndim))
        mean = x32.mean(axis=axes, keepdims=True)
        n = math.prod(x.shape[1:])
        var = jnp.square(x32 - mean).sum(axis=axes, keepdims=True) / max(n - 1, 1)
        y = (x32 - mean) / (jnp.sqrt(var) + self.epsilon)
        gamma = self.param("scale", nn.initializers.uniform(1.0), (x.shape[-1],))
        beta = self.param("bias", nn.initializers.zeros, (x.shape[-1],))
        return (y * gamma + beta).astype(x.dtype)


class ConvBlock(nn.Module):
    """MUNIT's Conv2dBlock: pad, convolution (with bias), norm, activation."""

    features: int
    kernel: int
    stride: int = 1
    norm: str = "instance"
    activation: str = "relu"  # relu | tanh | none
    padding: str = "reflect"
    weight_init: str = "kaiming"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        layers.check_choice("norm", self.norm, NORMS)
        x = layers.pad(x, self.kernel // 2 if self.stride == 1 else 1, self.padding)
        k = self.kernel
        w = self.param("kernel", kernel_init(self.weight_init), (k, k, x.shape[-1], self.features))
        b = self.param("bias", nn.initializers.zeros, (self.features,))
        y = fast_conv.conv2d(x.astype(self.dtype), w.astype(self.dtype), self.stride)
        y = y + b.astype(self.dtype)
        if self.norm == "instance":
            y = layers.InstanceNorm()(y)
        elif self.norm == "layer":
            y = LayerNorm(name="norm")(y)
        if self.activation == "relu":
            y = nn.relu(y)
        elif self.activation == "tanh":
            y = jnp.tanh(y.astype(jnp.float32))
        return y


def _common(module: nn.Module) -> dict[str, Any]:
    """The padding, init and dtype fields a module hands to its blocks."""
    return dict(padding=module.padding, weight_init=module.weight_init, dtype=module.dtype)


class ResBlocks(nn.Module):
    """`n_blocks` residual blocks x + (conv3x3, IN, ReLU, conv3x3, IN)(x), filters kept:
    `res_i/conv_0`, `res_i/conv_1`."""

    n_blocks: int
    padding: str = "reflect"
    weight_init: str = "kaiming"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        block = functools.partial(
            ConvBlock,
            kernel=3,
            padding=self.padding,
            weight_init=self.weight_init,
            dtype=self.dtype,
        )
        for i in range(self.n_blocks):
            dim = x.shape[-1]
            y = block(dim, name=f"res_{i}_conv_0")(x)
            y = block(dim, activation="none", name=f"res_{i}_conv_1")(y)
            x = x + y
        return x


class Encoder(nn.Module):
    """A domain's private encoder: images (N, H, W, 3) -> features (N, H/s, W/s, dim s),
    s = 2**n_downsample (H and W must be multiples of s)."""

    dim: int = 64
    n_downsample: int = 2
    n_blocks: int = 3
    padding: str = "reflect"
    weight_init: str = "kaiming"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        s = 2**self.n_downsample
        if x.shape[1] % s or x.shape[2] % s:
            raise ValueError(
                f"the UNIT encoder needs H and W divisible by {s}, got {x.shape[1]}x{x.shape[2]}"
            )
        block = functools.partial(
            ConvBlock, padding=self.padding, weight_init=self.weight_init, dtype=self.dtype
        )
        x = block(self.dim, 7, name="conv_in")(x.astype(self.dtype))
        for i in range(self.n_downsample):
            x = block(self.dim * 2 ** (i + 1), 4, stride=2, name=f"down_{i}")(x)
        return ResBlocks(self.n_blocks, **_common(self), name="blocks")(x)


class Decoder(nn.Module):
    """A domain's private decoder: features (N, h, w, C) -> images (N, h s, w s, 3) in
    [-1, 1], s = 2**n_downsample."""

    n_downsample: int = 2
    n_blocks: int = 3
    padding: str = "reflect"
    weight_init: str = "kaiming"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        block = functools.partial(
            ConvBlock, padding=self.padding, weight_init=self.weight_init, dtype=self.dtype
        )
        x = ResBlocks(self.n_blocks, **_common(self), name="blocks")(h.astype(self.dtype))
        for i in range(self.n_downsample):
            x = layers.upsample2x(x, "nearest")
            x = block(x.shape[-1] // 2, 5, norm="layer", name=f"up_{i}")(x)
        x = block(3, 7, norm="none", activation="tanh", name="conv_out")(x)
        return x.astype(jnp.float32)
