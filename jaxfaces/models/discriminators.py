"""Discriminators: the PatchGAN of pix2pix / CycleGAN."""

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxfaces.models import layers


class PatchGAN(nn.Module):
    """The reference `NLayerDiscriminator`: a map of real/fake logits over patches.

    conv4x4 s2 + LeakyReLU 0.2, then `n_layers - 1` of conv4x4 s2 + norm + LeakyReLU with
    filters doubling up to 8 ndf, one conv4x4 s1 + norm + LeakyReLU, and a conv4x4 s1 to one
    channel (all zero padding 1). n_layers=3 sees 70x70 patches; with ndf=64 and instance norm
    it has 2,764,737 parameters, as the reference.
    """

    ndf: int = 64
    n_layers: int = 3
    norm: str = "instance"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
        bias = layers.uses_bias(self.norm)
        conv = functools.partial(
            layers.PaddedConv, kernel=4, pad_width=1, padding="zero", dtype=self.dtype
        )
        x = x.astype(self.dtype)
        x = layers.leaky_relu(conv(self.ndf, stride=2, name="conv_0")(x))
        for n in range(1, self.n_layers + 1):
            stride = 2 if n < self.n_layers else 1
            features = self.ndf * min(2**n, 8)
            x = conv(features, stride=stride, use_bias=bias, name=f"conv_{n}")(x)
            x = layers.leaky_relu(layers.Norm(self.norm, name=f"norm_{n}")(x, train))
        x = conv(1, stride=1, name=f"conv_{self.n_layers + 1}")(x)
        return x.astype(jnp.float32)


DISCRIMINATORS = {"patchgan": PatchGAN}


def make_discriminator(cfg: Any, dtype: Any = jnp.float32) -> nn.Module:
    """Builds the discriminator named by `config.model.discriminator`."""
    name = cfg["name"]
    if name not in DISCRIMINATORS:
        raise ValueError(
            f"unknown config.model.discriminator.name {name!r}; valid: {', '.join(DISCRIMINATORS)}"
        )
    layers.check_choice("config.model.discriminator.norm", cfg["norm"], layers.NORMS)
    return DISCRIMINATORS[name](
        ndf=cfg["ndf"], n_layers=cfg["n_layers"], norm=cfg["norm"], dtype=dtype
    )


def pack(x: jax.Array, m: int) -> jax.Array:
    """PacGAN packing (Lin et al. 2018): each image with the next m - 1 of its batch (cyclically)
    on the channel axis, (B, H, W, C) -> (B, H, W, m C); m = 1 returns `x`.

    The batch must hold at least m images, so that a pack holds m different samples.
    """
    if m == 1:
        return x
    if x.shape[0] < m:
        raise ValueError(
            f"PacGAN packs of {m} need batches of at least {m} images, got {x.shape[0]} "
            "(config.data.batch_size vs config.model.discriminator.pack)"
        )
    return jnp.concatenate([jnp.roll(x, -i, axis=0) for i in range(m)], axis=-1)
