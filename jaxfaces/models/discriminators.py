"""Discriminators: the PatchGAN of pix2pix / CycleGAN; the multi-scale discriminator
(pix2pixHD, MUNIT / UNIT, BicycleGAN)."""

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
    it has 2,764,737 parameters, as the reference. `out_channels` > 1 gives that many logits
    per patch (DTN's three-way discriminator: one per class).
    """

    ndf: int = 64
    n_layers: int = 3
    norm: str = "instance"
    dtype: Any = jnp.float32
    out_channels: int = 1

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
        x = conv(self.out_channels, stride=1, name=f"conv_{self.n_layers + 1}")(x)
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


# --------------------------------------------------------------------------- multi-scale


def avg_pool_half(x: jax.Array) -> jax.Array:
    """PyTorch's `AvgPool2d(3, stride=2, padding=1, count_include_pad=False)`: each output is
    the mean of the input pixels (not the padding) of its 3x3 window; H and W roughly halve
    (ceil(H / 2)). The multi-scale discriminators' downsampling (pix2pixHD, MUNIT, UNIT)."""
    window, strides = (1, 3, 3, 1), (1, 2, 2, 1)
    pads = ((0, 0), (1, 1), (1, 1), (0, 0))
    x32 = x.astype(jnp.float32)
    total = jax.lax.reduce_window(x32, 0.0, jax.lax.add, window, strides, pads)
    ones = jnp.ones((1, *x.shape[1:3], 1), jnp.float32)
    count = jax.lax.reduce_window(ones, 0.0, jax.lax.add, window, strides, pads)
    return (total / count).astype(x.dtype)


class ScaleNet(nn.Module):
    """One scale of the MUNIT / UNIT discriminator (`MsImageDis._make_net`): conv4x4 s2 +
    LeakyReLU 0.2 (no norm), `n_layers - 1` of conv4x4 s2 + norm + LeakyReLU with the filters
    doubling (no cap), and a 1x1 convolution to one logit per position; every convolution
    has a bias, padding 1 of `padding`. Its input side shrinks 2**n_layers times."""

    ndf: int = 64
    n_layers: int = 4
    norm: str = "none"
    padding: str = "reflect"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
        conv = functools.partial(
            layers.PaddedConv, kernel=4, stride=2, pad_width=1, padding=self.padding,
            dtype=self.dtype,
        )  # fmt: skip
        x = layers.leaky_relu(conv(self.ndf, name="conv_0")(x.astype(self.dtype)))
        for n in range(1, self.n_layers):
            x = conv(self.ndf * 2**n, name=f"conv_{n}")(x)
            x = layers.leaky_relu(layers.Norm(self.norm, name=f"norm_{n}")(x, train))
        x = layers.PaddedConv(1, 1, dtype=self.dtype, name=f"conv_{self.n_layers}")(x)
        return x.astype(jnp.float32)


#: Per-scale networks of `MultiScale`: the MUNIT / UNIT one and the pix2pix PatchGAN.
SCALE_NETS = {"munit": ScaleNet, "patchgan": PatchGAN}


class MultiScale(nn.Module):
    """`num_scales` discriminators of one architecture, the k-th judging the image
    average-pooled k times (`avg_pool_half`): pix2pixHD's multi-scale discriminator, as
    MUNIT / UNIT (`MsImageDis`, scale net "munit") and BicycleGAN (`D_NLayersMulti`, scale net
    "patchgan") use it. Returns a tuple of logit maps, finest scale first; parameters
    `scale_k/...` (scale_0: the full-size image).

    Each scale's network shrinks its input 2**n_layers times ("patchgan": 2**(n_layers-1)
    with a stride-1 tail), so the image must be large enough for the coarsest scale
    (`multiscale_min_size`).
    """

    num_scales: int = 3
    scale_net: str = "munit"
    ndf: int = 64
    n_layers: int = 4
    norm: str = "none"
    padding: str = "reflect"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = True) -> tuple[jax.Array, ...]:
        layers.check_choice("scale_net", self.scale_net, tuple(SCALE_NETS))
        outputs = []
        for k in range(self.num_scales):
            if self.scale_net == "munit":
                net = ScaleNet(
                    self.ndf, self.n_layers, self.norm, self.padding, self.dtype, name=f"scale_{k}"
                )
            else:
                net = PatchGAN(self.ndf, self.n_layers, self.norm, self.dtype, name=f"scale_{k}")
            outputs.append(net(x, train))
            if k + 1 < self.num_scales:
                x = avg_pool_half(x)
        return tuple(outputs)


def multiscale_min_size(num_scales: int, n_layers: int) -> int:
    """The smallest image side (a power of 2) for which every convolution of every scale of
    a "munit" `MultiScale` sees at least 2 x 2 pixels (reflection padding needs 2)."""
    return 2 ** (n_layers + num_scales - 1)
