"""Loss functions: pure functions of arrays (GAN and pixel losses: float32 scalars; feature
losses: one float32 value per example)."""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

GAN_MODES = ("lsgan", "vanilla", "wgan-gp", "hinge")


def gan_loss(
    logits: jax.Array, target_is_real: bool, mode: str = "lsgan", discriminator: bool = False
) -> jax.Array:
    """Adversarial loss of discriminator outputs against an all-real or all-fake target.

    `lsgan`: mean squared error to 1 (real) or 0 (fake) (Mao et al. 2017).
    `vanilla`: binary cross-entropy with logits (Goodfellow et al. 2014).
    `wgan-gp`: -mean (real) or mean (fake) of the critic's outputs (Gulrajani et al. 2017;
    add `gradient_penalty` to the critic's loss).
    `hinge`: for the discriminator mean relu(1 - x) (real) or mean relu(1 + x) (fake); for
    the generator (`discriminator=False`) -mean (Lim & Ye 2017, Miyato et al. 2018).
    """
    logits = logits.astype(jnp.float32)
    if mode == "lsgan":
        return jnp.mean(jnp.square(logits - (1.0 if target_is_real else 0.0)))
    if mode == "vanilla":
        target = jnp.full_like(logits, 1.0 if target_is_real else 0.0)
        return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, target))
    if mode == "wgan-gp" or (mode == "hinge" and not discriminator):
        return -jnp.mean(logits) if target_is_real else jnp.mean(logits)
    if mode == "hinge":
        return jnp.mean(jax.nn.relu(1.0 - logits if target_is_real else 1.0 + logits))
    raise ValueError(f"unknown config.loss.gan_mode {mode!r}; valid: {', '.join(GAN_MODES)}")


def gradient_penalty(
    critic: Callable[[jax.Array], jax.Array],
    real: jax.Array,
    fake: jax.Array,
    key: jax.Array,
) -> jax.Array:
    """WGAN-GP's mean over examples of (||grad critic(x_hat)||_2 - 1)^2.

    x_hat = e real + (1 - e) fake with e ~ U(0, 1) per example; the gradient is that of the
    sum of the critic's outputs (every patch of a PatchGAN) with respect to x_hat, flattened
    per example, as the reference's `cal_gradient_penalty`.
    """
    e = jax.random.uniform(key, (real.shape[0],) + (1,) * (real.ndim - 1), real.dtype)
    x_hat = e * real + (1.0 - e) * jax.lax.stop_gradient(fake)
    grads = jax.grad(lambda x: jnp.sum(critic(x).astype(jnp.float32)))(x_hat)
    norms = jnp.sqrt(jnp.sum(jnp.square(grads.reshape(grads.shape[0], -1)), axis=1) + 1e-16)
    return jnp.mean(jnp.square(norms - 1.0))


def l1(x: jax.Array, y: jax.Array) -> jax.Array:
    """Mean absolute difference (cycle and identity losses)."""
    return jnp.mean(jnp.abs(x.astype(jnp.float32) - y.astype(jnp.float32)))


# --------------------------------------------------------------------------- feature losses
# These return one value per example (shape (N,)), so that a batch of independent images
# (style transfer, Latent Features Transfer) can be optimised together and reported apart.


def gram(features: jax.Array) -> jax.Array:
    """Gram matrices G = F^T F of NHWC features, F the (H*W, C) matrix: (N, C, C), float32."""
    f = features.astype(jnp.float32)
    f = f.reshape(f.shape[0], -1, f.shape[-1])
    return jnp.einsum("nmc,nmd->ncd", f, f, precision=jax.lax.Precision.HIGHEST)


def content_loss(features: jax.Array, target: jax.Array) -> jax.Array:
    """Gatys et al.'s content loss 1/2 sum (F - P)^2 of each example: (N,)."""
    diff = features.astype(jnp.float32) - target.astype(jnp.float32)
    return 0.5 * jnp.sum(jnp.square(diff), axis=tuple(range(1, diff.ndim)))


def normalized_gram(features: jax.Array) -> jax.Array:
    """G / M, M = H * W positions: the Gram matrix that `style_layer_loss` compares.

    With it, images of different sizes have comparable style targets.
    """
    return gram(features) / (features.shape[1] * features.shape[2])


def style_layer_loss(features: jax.Array, target_gram: jax.Array) -> jax.Array:
    """E = 1 / (4 C^2 M^4) sum (G - S)^2 of each example: (N,).

    G is the Gram matrix of `features` (M = H * W positions, C channels); `target_gram` is
    S / M_s, the target's `normalized_gram`, so the target image may have another size (with
    equal sizes this is exactly the formula above: Gatys et al.'s E_l on Grams divided by M).
    """
    c, m = features.shape[-1], features.shape[1] * features.shape[2]
    diff = normalized_gram(features) - target_gram.astype(jnp.float32)
    return jnp.sum(jnp.square(diff), axis=(1, 2)) / (4.0 * c * c * m * m)


def style_loss(
    features: dict[str, jax.Array],
    target_grams: dict[str, jax.Array],
    weights: dict[str, float],
) -> jax.Array:
    """sum_l w_l E_l over the style layers named in `weights`: (N,)."""
    return sum(
        w * style_layer_loss(features[name], target_grams[name]) for name, w in weights.items()
    )


def total_variation(x: jax.Array) -> jax.Array:
    """sum |x[i+1, j] - x[i, j]| + |x[i, j+1] - x[i, j]| of each NHWC image: (N,).

    The anisotropic total variation (as `tf.image.total_variation`).
    """
    x = x.astype(jnp.float32)
    dy = jnp.abs(x[:, 1:] - x[:, :-1]).sum(axis=(1, 2, 3))
    dx = jnp.abs(x[:, :, 1:] - x[:, :, :-1]).sum(axis=(1, 2, 3))
    return dy + dx


def feature_mse(features: jax.Array, target: jax.Array) -> jax.Array:
    """Mean squared difference of each example's features: (N,) (Latent Features Transfer)."""
    diff = features.astype(jnp.float32) - target.astype(jnp.float32)
    return jnp.mean(jnp.square(diff), axis=tuple(range(1, diff.ndim)))


STYLE_FORMS = ("gram", "features_l1")


def content_style_identity(
    translated: dict[str, jax.Array],
    source: dict[str, jax.Array],
    style: dict[str, jax.Array],
    content_layer: str,
    style_weights: dict[str, float],
    style_form: str = "gram",
) -> tuple[jax.Array, jax.Array]:
    """CycleGAN+NST's (content, style) losses of a translation (scalars), given the VGG
    features of the translation, of its source image and of a target-domain image.

    content: mean squared difference of the content layer's features of the translation
    and its source; style: between the translation and the target-domain image over the
    layers of `style_weights`, weighted, either as Gram matrices (`gram`: Gatys et al.'s
    E_l, as the thesis text) or as the mean absolute difference of the raw activations
    (`features_l1`, as the thesis's code). The source and style features are constants.
    """
    content = jnp.mean(
        jnp.square(translated[content_layer] - jax.lax.stop_gradient(source[content_layer]))
    )
    if style_form == "gram":
        grams = {k: jax.lax.stop_gradient(normalized_gram(style[k])) for k in style_weights}
        return content, jnp.mean(style_loss(translated, grams, style_weights))
    if style_form == "features_l1":
        return content, sum(
            w * l1(translated[k], jax.lax.stop_gradient(style[k])) for k, w in style_weights.items()
        )
    raise ValueError(
        f"unknown config.loss.vgg.style_form {style_form!r}; valid: {', '.join(STYLE_FORMS)}"
    )
