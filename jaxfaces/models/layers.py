"""Building blocks shared by the generators and discriminators (NHWC, Flax Linen)."""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxfaces.models import fast_conv

Dtype = Any

#: Weight init of the reference CycleGAN (`init_type="normal"`, gain 0.02).
conv_init = nn.initializers.normal(stddev=0.02)

PADDINGS = ("reflect", "zero")
NORMS = ("instance", "batch", "none")


#: Compute precisions of `config.train.dtype`; parameters always stay float32.
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def compute_dtype(name: str) -> Any:
    """The jnp dtype named by `config.train.dtype`; an unknown name raises a ValueError."""
    return DTYPES[check_choice("config.train.dtype", name, tuple(DTYPES))]


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    """Returns `value` if it is one of `choices`, else raises a ValueError naming `name`."""
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; valid: {', '.join(choices)}")
    return value


def pad(x: jax.Array, width: int, mode: str) -> jax.Array:
    """Pads height and width by `width` pixels: `reflect` (edge not repeated) or `zero`."""
    check_choice("padding", mode, PADDINGS)
    if width == 0:
        return x
    pads = ((0, 0), (width, width), (width, width), (0, 0))
    return jnp.pad(x, pads, mode="reflect" if mode == "reflect" else "constant")


class InstanceNorm(nn.Module):
    """Instance normalisation without affine parameters (PyTorch's InstanceNorm2d default)."""

    epsilon: float = 1e-5

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x32 = x.astype(jnp.float32)
        mean = x32.mean(axis=(1, 2), keepdims=True)
        var = jnp.square(x32 - mean).mean(axis=(1, 2), keepdims=True)
        return ((x32 - mean) * jax.lax.rsqrt(var + self.epsilon)).astype(x.dtype)


class Norm(nn.Module):
    """`instance`, `batch` (PyTorch BatchNorm2d semantics) or `none`."""

    kind: str = "instance"

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
        check_choice("norm", self.kind, NORMS)
        if self.kind == "instance":
            return InstanceNorm()(x)
        if self.kind == "batch":
            return nn.BatchNorm(
                use_running_average=not train,
                momentum=0.9,  # PyTorch momentum 0.1.
                epsilon=1e-5,
                scale_init=lambda k, s, d=jnp.float32: 1.0 + 0.02 * jax.random.normal(k, s, d),
                dtype=x.dtype,
            )(x)
        return x


def uses_bias(norm: str) -> bool:
    """The reference's rule: inner convolutions carry a bias only with instance norm.

    (With batch norm its shift replaces the bias; with no norm the reference has none either,
    so that its `norm="none"` weights convert one to one.)
    """
    return norm == "instance"


class PaddedConv(nn.Module):
    """Explicit padding (reflect or zero) then a VALID convolution; params `kernel` (HWIO), `bias`.

    The convolution is `fast_conv.conv2d`: matrix products on the CPU, XLA's elsewhere.

    With `upsample` ("nearest" or "bilinear") the input is first doubled in size: the
    resize-convolution of Odena et al. (2016) that the thesis uses against checkerboard
    artefacts.
    """

    features: int
    kernel: int
    stride: int = 1
    pad_width: int = 0
    padding: str = "reflect"
    use_bias: bool = True
    dtype: Dtype = jnp.float32
    upsample: str | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if self.upsample:
            x = upsample2x(x, self.upsample)
        x = pad(x, self.pad_width, self.padding)
        k = self.kernel
        w = self.param("kernel", conv_init, (k, k, x.shape[-1], self.features))
        y = fast_conv.conv2d(x.astype(self.dtype), w.astype(self.dtype), self.stride)
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,)).astype(self.dtype)
        return y


class ConvTranspose2x(nn.Module):
    """PyTorch `ConvTranspose2d(k=3, stride=2, padding=1, output_padding=1)`: doubles H and W.

    The kernel is stored as the equivalent direct convolution over the zero-dilated input
    (HWIO, spatially flipped with respect to PyTorch's IOHW kernel), so the converter maps
    `w_torch[i, o, 2 - h, 2 - w] -> kernel[h, w, i, o]`. On the CPU it runs in the
    equivalent sub-pixel form (`fast_conv.conv_transpose2x`).
    """

    features: int
    use_bias: bool = True
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", conv_init, (3, 3, x.shape[-1], self.features))
        y = fast_conv.conv_transpose2x(x.astype(self.dtype), kernel.astype(self.dtype))
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,)).astype(self.dtype)
        return y


def upsample2x(x: jax.Array, method: str) -> jax.Array:
    """Doubles H and W: `nearest` (pixel repeat) or `bilinear` (half-pixel centres)."""
    if method == "nearest":
        return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
    n, h, w, c = x.shape
    return jax.image.resize(x, (n, 2 * h, 2 * w, c), method="bilinear").astype(x.dtype)


UPSAMPLES = ("transpose", "nearest", "bilinear")


def upsample_conv(
    features: int, method: str, padding: str, use_bias: bool, dtype: Dtype, name: str = "conv"
) -> nn.Module:
    """x2 upsampling convolution: transposed (reference) or resize-convolution (thesis)."""
    check_choice("upsample", method, UPSAMPLES)
    if method == "transpose":
        return ConvTranspose2x(features, use_bias, dtype, name=name)
    return PaddedConv(features, 3, 1, 1, padding, use_bias, dtype, upsample=method, name=name)


def leaky_relu(x: jax.Array) -> jax.Array:
    """LeakyReLU with slope 0.2, as the PatchGAN uses."""
    return nn.leaky_relu(x, negative_slope=0.2)
