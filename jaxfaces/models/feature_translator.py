"""The feature translator of Latent Features Transfer: VGG19 features of one domain -> the other.

One branch per VGG19 layer used (the content layer and the style layers), each mapping the
source image's (N, H, W, C) features to predicted target features of the same shape:

    conv -> instance norm -> LeakyReLU -> conv -> instance norm -> LeakyReLU -> conv -> norm

`variant="conv"` (the thesis): 3x3 stride-1 convolutions with reflection padding;
`variant="dense"`: 1x1 convolutions, i.e. the same dense layers at every position.
`output_norm` chooses the last normalisation: "instance" (the thesis: plain instance norm,
so each predicted channel has zero mean and unit variance per image), "affine" (instance
norm with a learned per-channel scale and shift) or "none".

Parameter paths: `<layer>/conv_<i>/{kernel,bias}` (and `<layer>/output_norm/{scale,bias}`
with the affine output).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxfaces.models.layers import Dtype, InstanceNorm, PaddedConv, check_choice, leaky_relu

VARIANTS = ("conv", "dense")
OUTPUT_NORMS = ("instance", "affine", "none")
KERNEL = {"conv": 3, "dense": 1}


class AffineInstanceNorm(nn.Module):
    """Instance norm, then a learned per-channel scale (init 1) and shift (init 0)."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones, (c,))
        bias = self.param("bias", nn.initializers.zeros, (c,))
        return InstanceNorm()(x) * scale.astype(x.dtype) + bias.astype(x.dtype)


class FeatureBranch(nn.Module):
    """Three convolutions mapping (N, H, W, C) features to (N, H, W, C) features.

    Attributes:
      variant: "conv" (3x3, reflection padding) or "dense" (1x1).
      output_norm: "instance", "affine" or "none" after the third convolution.
      dtype: computation dtype; parameters stay float32.
    """

    variant: str = "conv"
    output_norm: str = "instance"
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        check_choice("feature translator variant", self.variant, VARIANTS)
        check_choice("feature translator output_norm", self.output_norm, OUTPUT_NORMS)
        k = KERNEL[self.variant]
        channels = x.shape[-1]
        for i in range(3):
            x = PaddedConv(channels, k, 1, k // 2, "reflect", True, self.dtype, name=f"conv_{i}")(x)
            if i < 2:
                x = leaky_relu(InstanceNorm()(x))
            elif self.output_norm == "instance":
                x = InstanceNorm()(x)
            elif self.output_norm == "affine":
                x = AffineInstanceNorm(name="output_norm")(x)
        return x


class FeatureTranslator(nn.Module):
    """Maps {layer: features} of one domain to {layer: features} of the other, per layer.

    Attributes:
      layers: the VGG19 layers translated (one `FeatureBranch` each, named after the layer).
      variant: "conv" (thesis) or "dense".
      output_norm: see `FeatureBranch`.
      dtype: computation dtype.
    """

    layers: tuple[str, ...]
    variant: str = "conv"
    output_norm: str = "instance"
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, features: dict[str, jax.Array]) -> dict[str, jax.Array]:
        missing = [name for name in self.layers if name not in features]
        if missing:
            raise ValueError(f"feature translator: no input features for layers {missing}")
        return {
            name: FeatureBranch(self.variant, self.output_norm, self.dtype, name=name)(
                features[name]
            )
            for name in self.layers
        }
