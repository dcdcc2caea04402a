"""The networks of CycleGAN+VAE (the thesis's section 3.2.2): a convolutional VAE with a
spatial Gaussian latent, and the latent CycleGAN's generator and critic.

`Encoder`: c7s1-nf, `num_downs` stride-2 convolutions (doubling the filters), residual
blocks, and a 3x3 convolution to 2 C channels: the mean and the log-variance of a
(H / 2**num_downs, W / 2**num_downs, C) latent. `Decoder`: a 3x3 convolution from the
latent, residual blocks, `num_downs` resize-convolutions (halving the filters; Odena et al.
2016, as the thesis's generators), c7s1-3 and tanh. Padding is reflection padding.

`LatentGenerator`: maps a latent map to a latent map of the same shape (3x3 convolutions and
residual blocks, no resampling); with `residual` it predicts a change added to its input
(the translations of these domains keep most of the picture). `LatentCritic`: a
PatchGAN-style critic over latent positions, 3x3 stride-1 convolutions ending in one logit
per position.

`reparameterize` and `kl_to_standard_normal` are the VAE's sampling and KL term.
"""

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxfaces.models import generators, layers

#: Norms the VAE and the latent networks accept (batch norm would need running statistics).
NORMS = ("instance", "none")


class Encoder(nn.Module):
    """Images (N, H, W, 3) in [-1, 1] -> (mean, log-variance), each (N, H/s, W/s, C),
    s = 2**num_downs."""

    nf: int = 16
    num_downs: int = 2
    n_blocks: int = 2
    latent_channels: int = 16
    norm: str = "none"
    padding: str = "reflect"
    dtype: Any = jnp.float32

    @property
    def stride(self) -> int:
        return 2**self.num_downs

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = True) -> tuple[jax.Array, jax.Array]:
        h, w = x.shape[1:3]
        if h % self.stride or w % self.stride:
            raise ValueError(
                f"the VAE encoder needs H and W divisible by {self.stride}, got {h}x{w}"
            )
        block = functools.partial(
            generators.ConvNormReLU, norm=self.norm, padding=self.padding, dtype=self.dtype
        )
        x = x.astype(self.dtype)
        x = block(self.nf, kernel=7, pad_width=3, name="conv_in")(x, train)
        for i in range(self.num_downs):
            x = block(self.nf * 2 ** (i + 1), stride=2, pad_width=1, name=f"down_{i}")(x, train)
        for i in range(self.n_blocks):
            x = generators.ResnetBlock(self.norm, self.padding, dtype=self.dtype, name=f"res_{i}")(
                x, train
            )
        out = layers.PaddedConv(
            2 * self.latent_channels, 3, 1, 1, self.padding, True, self.dtype, name="conv_out"
        )(x).astype(jnp.float32)
        mean, logvar = jnp.split(out, 2, axis=-1)
        return mean, logvar


class Decoder(nn.Module):
    """Latents (N, h, w, C) -> images (N, h s, w s, 3) in [-1, 1], s = 2**num_downs."""

    nf: int = 16
    num_downs: int = 2
    n_blocks: int = 2
    norm: str = "none"
    padding: str = "reflect"
    upsample: str = "nearest"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, z: jax.Array, train: bool = True) -> jax.Array:
        block = functools.partial(
            generators.ConvNormReLU, norm=self.norm, padding=self.padding, dtype=self.dtype
        )
        x = block(self.nf * 2**self.num_downs, name="conv_in")(z.astype(self.dtype), train)
        for i in range(self.n_blocks):
            x = generators.ResnetBlock(self.norm, self.padding, dtype=self.dtype, name=f"res_{i}")(
                x, train
            )
        for i in range(self.num_downs):
            features = self.nf * 2 ** (self.num_downs - 1 - i)
            x = block(features, upsample=self.upsample, name=f"up_{i}")(x, train)
        x = layers.PaddedConv(3, 7, 1, 3, self.padding, True, self.dtype, name="conv_out")(x)
        return jnp.tanh(x.astype(jnp.float32))


class LatentGenerator(nn.Module):
    """A latent map to a latent map of the same shape: 3x3 conv (ngf), residual blocks,
    3x3 conv back to the latent's channels; `residual`: the output is input + that."""

    ngf: int = 64
    n_blocks: int = 3
    norm: str = "instance"
    padding: str = "reflect"
    residual: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, z: jax.Array, train: bool = True) -> jax.Array:
        channels = z.shape[-1]
        x = generators.ConvNormReLU(
            self.ngf, norm=self.norm, padding=self.padding, dtype=self.dtype, name="conv_in"
        )(z.astype(self.dtype), train)
        for i in range(self.n_blocks):
            x = generators.ResnetBlock(self.norm, self.padding, dtype=self.dtype, name=f"res_{i}")(
                x, train
            )
        x = layers.PaddedConv(channels, 3, 1, 1, self.padding, True, self.dtype, name="conv_out")(
            x
        ).astype(jnp.float32)
        return z.astype(jnp.float32) + x if self.residual else x


class LatentCritic(nn.Module):
    """PatchGAN-style critic over latent positions: 3x3 conv (ndf) + LeakyReLU 0.2, then
    `n_layers` of 3x3 conv (filters doubling up to 8 ndf) + norm + LeakyReLU, then a 3x3
    conv to one logit per position (all stride 1, reflection padding). Each logit sees
    2 n_layers + 5 latent positions across."""

    ndf: int = 64
    n_layers: int = 2
    norm: str = "instance"
    padding: str = "reflect"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, z: jax.Array, train: bool = True) -> jax.Array:
        conv = functools.partial(
            layers.PaddedConv, kernel=3, stride=1, pad_width=1, padding=self.padding,
            dtype=self.dtype,
        )  # fmt: skip
        x = layers.leaky_relu(conv(self.ndf, name="conv_0")(z.astype(self.dtype)))
        for n in range(1, self.n_layers + 1):
            x = conv(
                self.ndf * min(2**n, 8), use_bias=layers.uses_bias(self.norm), name=f"conv_{n}"
            )(x)
            x = layers.leaky_relu(layers.Norm(self.norm, name=f"norm_{n}")(x, train))
        x = conv(1, name=f"conv_{self.n_layers + 1}")(x)
        return x.astype(jnp.float32)


def reparameterize(mean: jax.Array, logvar: jax.Array, key: jax.Array) -> jax.Array:
    """A sample z = mean + exp(logvar / 2) * eps, eps ~ N(0, I) (differentiable in both)."""
    eps = jax.random.normal(key, mean.shape, jnp.float32)
    return mean + jnp.exp(0.5 * logvar) * eps


def kl_to_standard_normal(mean: jax.Array, logvar: jax.Array) -> jax.Array:
    """KL(N(mean, exp(logvar)) || N(0, 1)) of each example, averaged over its latent
    elements: (N,). Per element: (mean^2 + exp(logvar) - 1 - logvar) / 2."""
    kl = 0.5 * (jnp.square(mean) + jnp.exp(logvar) - 1.0 - logvar)
    return jnp.mean(kl.reshape(kl.shape[0], -1), axis=1)
