"""Image-to-image generators: the reference CycleGAN ResNet generator.

Parameter paths follow the architecture (`conv_in`, `down_0`, `res_3/conv_1`, `up_1`,
`conv_out`) so that `jaxfaces.convert.pytorch_cyclegan` maps PyTorch keys by a table.
"""

import functools
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxfaces.models import layers


class ConvNormReLU(nn.Module):
    """A padded convolution (or x2 upsampling convolution), a norm and a ReLU."""

    features: int
    kernel: int = 3
    stride: int = 1
    pad_width: int = 1
    norm: str = "instance"
    padding: str = "reflect"
    upsample: str | None = None
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
        bias = layers.uses_bias(self.norm)
        if self.upsample:
            conv = layers.upsample_conv(
                self.features, self.upsample, self.padding, bias, self.dtype
            )
        else:
            conv = layers.PaddedConv(
                self.features,
                self.kernel,
                self.stride,
                self.pad_width,
                self.padding,
                bias,
                self.dtype,
                name="conv",
            )
        x = conv(x)
        x = layers.Norm(self.norm, name="norm")(x, train)
        return nn.relu(x)


class ResnetBlock(nn.Module):
    """x + (pad, conv3x3, norm, ReLU, [dropout 0.5], pad, conv3x3, norm)(x)."""

    norm: str = "instance"
    padding: str = "reflect"
    dropout: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
        dim = x.shape[-1]
        bias = layers.uses_bias(self.norm)
        conv = functools.partial(layers.PaddedConv, dim, 3, 1, 1, self.padding, bias, self.dtype)
        y = conv(name="conv_0")(x)
        y = nn.relu(layers.Norm(self.norm, name="norm_0")(y, train))
        if self.dropout:
            y = nn.Dropout(0.5, deterministic=not train)(y)
        y = conv(name="conv_1")(y)
        y = layers.Norm(self.norm, name="norm_1")(y, train)
        return x + y


class ResnetGenerator(nn.Module):
    """The CycleGAN generator (Johnson et al. 2016 as adapted by Zhu et al. 2017).

    c7s1-ngf, two stride-2 convolutions (d2ngf, d4ngf), `n_blocks` residual blocks, two x2
    upsamplings (u2ngf, u ngf), c7s1-3 and tanh. With ngf=64, 9 blocks and instance norm it
    has 11,378,179 parameters, as the reference. Input and output are NHWC in [-1, 1]; H and
    W must be multiples of 4 (`stride`).
    """

    stride: ClassVar[int] = 4  # Input sides must be multiples of this.
    ngf: int = 64
    n_blocks: int = 9
    norm: str = "instance"
    upsample: str = "transpose"
    padding: str = "reflect"
    dropout: bool = False
    out_channels: int = 3
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
        h, w = x.shape[1:3]
        if h % self.stride or w % self.stride:
            raise ValueError(
                f"ResnetGenerator needs H and W divisible by {self.stride}, got {h}x{w}"
            )
        block = functools.partial(
            ConvNormReLU, norm=self.norm, padding=self.padding, dtype=self.dtype
        )
        x = x.astype(self.dtype)
        x = block(self.ngf, kernel=7, pad_width=3, name="conv_in")(x, train)
        for i in range(2):
            x = block(
                self.ngf * 2 ** (i + 1), stride=2, pad_width=1, padding="zero", name=f"down_{i}"
            )(x, train)
        for i in range(self.n_blocks):
            x = ResnetBlock(self.norm, self.padding, self.dropout, self.dtype, name=f"res_{i}")(
                x, train
            )
        for i in range(2):
            x = block(self.ngf * 2 ** (1 - i), upsample=self.upsample, name=f"up_{i}")(x, train)
        x = layers.PaddedConv(
            self.out_channels, 7, 1, 3, self.padding, True, self.dtype, name="conv_out"
        )(x)
        return jnp.tanh(x.astype(jnp.float32))


GENERATORS = {
    "resnet": ResnetGenerator,
    "resnet_6blocks": functools.partial(ResnetGenerator, n_blocks=6),
    "resnet_9blocks": functools.partial(ResnetGenerator, n_blocks=9),
}


def make_generator(cfg: Any, dtype: Any = jnp.float32) -> nn.Module:
    """Builds the generator named by `config.model.generator` (a ConfigDict or mapping)."""
    name = cfg["name"]
    if name not in GENERATORS:
        raise ValueError(
            f"unknown config.model.generator.name {name!r}; valid: {', '.join(GENERATORS)}"
        )
    kwargs = dict(
        ngf=cfg["ngf"],
        norm=cfg["norm"],
        upsample=cfg["upsample"],
        padding=cfg["padding"],
        dropout=cfg.get("dropout", False),
        dtype=dtype,
    )
    if name == "resnet":
        kwargs["n_blocks"] = cfg["n_blocks"]
    for key, choices in (
        ("norm", layers.NORMS),
        ("upsample", layers.UPSAMPLES),
        ("padding", layers.PADDINGS),
    ):
        layers.check_choice(f"config.model.generator.{key}", kwargs[key], choices)
    return GENERATORS[name](**kwargs)
