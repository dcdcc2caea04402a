"""BicycleGAN's own networks (Zhu et al. 2017, the authors' junyanz/BicycleGAN): the
ResNet encoder E of an image to a Gaussian latent code, and the two-scale PatchGAN.

`ResnetEncoder` (the authors' E_ResNet with vaeLike=True): a 4x4 stride-2 convolution
(nef), `n_blocks - 1` residual blocks that each halve H and W (filters nef x min(4, n + 1)),
LeakyReLU 0.2, the average over positions, and two linear layers to the mean and the
log-variance of z (N, nz). The authors average an 8 x 8 map (a 256 px image through
resnet_256); the average over all positions is the same there and lets any size divisible
by 2**n_blocks work. Each block (the authors' BasicBlock): [norm, LeakyReLU, conv3x3,
norm, LeakyReLU, conv3x3, 2x2 mean pool] + [2x2 mean pool, conv1x1] on the shortcut.

`MultiScalePatchGAN` (the authors' D_NLayersMulti): `num_d` PatchGANs, the i-th with
round(ndf / 2**i) filters on the image downsampled i times (`discriminators.avg_pool_half`);
it returns the list of their logit maps. (`discriminators.MultiScale` keeps ndf at every
scale, as pix2pixHD and MUNIT; the authors of BicycleGAN halve it.)

Parameter paths: `conv_in`, `block_{n}/{norm_0, conv_0, norm_1, conv_1, shortcut}`,
`fc_mean`, `fc_logvar`; `scale_{i}/conv_k` for the discriminator.
"""

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxfaces.models import discriminators, layers


def mean_pool2(x: jax.Array) -> jax.Array:
    """2x2 average pooling, stride 2 (H and W even)."""
    n, h, w, c = x.shape
    return x.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


class EncoderBlock(nn.Module):
    """The authors' BasicBlock: a residual block that halves H and W."""

    features: int
    norm: str = "instance"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
        conv = functools.partial(layers.PaddedConv, padding="zero", dtype=self.dtype)
        y = layers.leaky_relu(layers.Norm(self.norm, name="norm_0")(x, train))
        y = conv(x.shape[-1], 3, 1, 1, name="conv_0")(y)
        y = layers.leaky_relu(layers.Norm(self.norm, name="norm_1")(y, train))
        y = mean_pool2(conv(self.features, 3, 1, 1, name="conv_1")(y))
        return y + conv(self.features, 1, 1, 0, name="shortcut")(mean_pool2(x))


class ResnetEncoder(nn.Module):
    """Images (N, H, W, 3) in [-1, 1] -> (mean, log-variance) of z, each (N, nz), float32.

    H and W must be multiples of `stride` (2**n_blocks). resnet_256: n_blocks 5 (the
    authors' default), resnet_128: 4.
    """

    nz: int = 8
    nef: int = 64
    n_blocks: int = 5
    norm: str = "instance"
    dtype: Any = jnp.float32

    @property
    def stride(self) -> int:
        return 2**self.n_blocks

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = True) -> tuple[jax.Array, jax.Array]:
        h, w = x.shape[1:3]
        if h % self.stride or w % self.stride:
            raise ValueError(
                f"the ResNet encoder with n_blocks {self.n_blocks} needs H and W divisible by "
                f"{self.stride}, got {h}x{w}"
            )
        y = layers.PaddedConv(self.nef, 4, 2, 1, "zero", True, self.dtype, name="conv_in")(
            x.astype(self.dtype)
        )
        for n in range(1, self.n_blocks):
            features = self.nef * min(4, n + 1)
            y = EncoderBlock(features, self.norm, self.dtype, name=f"block_{n}")(y, train)
        pooled = layers.leaky_relu(y).astype(jnp.float32).mean(axis=(1, 2))
        dense = functools.partial(nn.Dense, self.nz, kernel_init=layers.conv_init)
        return dense(name="fc_mean")(pooled), dense(name="fc_logvar")(pooled)


class MultiScalePatchGAN(nn.Module):
    """`num_d` PatchGANs on the image at successive halvings; a list of logit maps."""

    ndf: int = 64
    n_layers: int = 3
    norm: str = "instance"
    num_d: int = 2
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = True) -> list[jax.Array]:
        out = []
        for i in range(self.num_d):
            ndf = int(round(self.ndf / 2**i))
            d = discriminators.PatchGAN(
                ndf, self.n_layers, self.norm, self.dtype, name=f"scale_{i}"
            )
            out.append(d(x, train))
            if i != self.num_d - 1:
                x = discriminators.avg_pool_half(x)
        return out


ENCODERS = {"resnet": ResnetEncoder}


def make_encoder(cfg: Any, nz: int, dtype: Any = jnp.float32) -> nn.Module:
    """The encoder named by `config.model.encoder` (name, nef, n_blocks, norm) to z of nz."""
    name = cfg["name"]
    if name not in ENCODERS:
        raise ValueError(
            f"unknown config.model.encoder.name {name!r}; valid: {', '.join(ENCODERS)}"
        )
    layers.check_choice("config.model.encoder.norm", cfg["norm"], layers.NORMS)
    n_blocks = cfg["n_blocks"]
    if not isinstance(n_blocks, int) or n_blocks < 1:
        raise ValueError(f"config.model.encoder.n_blocks must be an integer >= 1, got {n_blocks!r}")
    return ENCODERS[name](nz=nz, nef=cfg["nef"], n_blocks=n_blocks, norm=cfg["norm"], dtype=dtype)


def make_discriminator(cfg: Any, dtype: Any = jnp.float32) -> nn.Module:
    """The multi-scale PatchGAN of `config.model.discriminator` (ndf, n_layers, norm, num_d)."""
    if cfg["name"] != "patchgan":
        raise ValueError(
            f"unknown config.model.discriminator.name {cfg['name']!r}; valid: patchgan"
        )
    layers.check_choice("config.model.discriminator.norm", cfg["norm"], layers.NORMS)
    num_d = cfg["num_d"]
    if not isinstance(num_d, int) or num_d < 1:
        raise ValueError(f"config.model.discriminator.num_d must be an integer >= 1, got {num_d!r}")
    return MultiScalePatchGAN(cfg["ndf"], cfg["n_layers"], cfg["norm"], num_d, dtype)
