"""Neural style transfer (Gatys et al. 2016) on VGG19 features, as the thesis uses it.

An image is optimised so that its VGG19 features match a content image's at one layer
(content loss 1/2 sum (F - P)^2) and its Gram matrices match a style image's over several
layers (style loss sum_l w_l E_l, see `losses.style_layer_loss`), plus an optional total
variation term: total = content_weight * content + style_weight * style + tv_weight * tv.

Pixel scale: the optimised variable is the image in 0-255 units (the thesis's Adam lr 2 is
then two grey levels per step); VGG19 sees it as [0, 1] normalised by the ImageNet mean and
std (torchvision's convention), and TV is measured on the 0-255 image. Adam steps are
followed by clipping to [0, 255]; L-BFGS runs unconstrained and the result is clipped.

The whole optimisation is one compiled `lax.scan`; a batch of (content, style, init) triples
is optimised as independent problems (`vmap`), so a batch gives the same images as one-by-one
runs. The loss parts are recorded at every step.
"""

import csv
import pathlib
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxfaces import data as data_lib
from jaxfaces import losses
from jaxfaces.data import preprocess
from jaxfaces.models import vgg as vgg_lib
from jaxfaces.models.layers import check_choice

INITS = ("content", "noise", "mean")
OPTIMIZERS = ("adam", "lbfgs")
LOSS_PARTS = ("total", "content", "style", "tv")


class Settings(NamedTuple):
    """The static (hashable) settings of one style-transfer run; see configs/nst.py."""

    content_layer: str = "conv3_2"
    style_layers: tuple[str, ...] = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
    style_layer_weights: tuple[float, ...] = (0.5, 1.0, 1.5, 3.0, 4.0)
    content_weight: float = 1.0
    style_weight: float = 1e5
    tv_weight: float = 0.0
    optimizer: str = "adam"
    lr: float = 2.0
    steps: int = 100
    lbfgs_memory: int = 10
    pool: str = "avg"

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> "Settings":
        """Settings from `config.nst` and `config.vgg.pool`, checked."""
        c = config.nst
        s = cls(
            content_layer=c.content_layer,
            style_layers=tuple(c.style_layers),
            style_layer_weights=tuple(float(w) for w in c.style_layer_weights),
            content_weight=float(c.content_weight),
            style_weight=float(c.style_weight),
            tv_weight=float(c.tv_weight),
            optimizer=c.optimizer,
            lr=float(c.lr),
            steps=int(c.steps),
            lbfgs_memory=int(c.lbfgs_memory),
            pool=config.vgg.pool,
        )
        s.check()
        return s

    def check(self) -> None:
        """Raises ValueError naming the config key of a bad setting."""
        check_choice("config.nst.optimizer", self.optimizer, OPTIMIZERS)
        check_choice("config.vgg.pool", self.pool, vgg_lib.POOLS)
        for layer in (self.content_layer, *self.style_layers):
            vgg_lib._depth(layer)  # Raises for an unknown layer name.
        if len(self.style_layers) != len(self.style_layer_weights):
            raise ValueError(
                f"config.nst.style_layers ({len(self.style_layers)}) and "
                f"config.nst.style_layer_weights ({len(self.style_layer_weights)}) differ in length"
            )
        if self.steps < 1:
            raise ValueError(f"config.nst.steps must be >= 1, got {self.steps}")

    @property
    def layers(self) -> tuple[str, ...]:
        return (self.content_layer, *self.style_layers)

    @property
    def weights(self) -> dict[str, float]:
        return dict(zip(self.style_layers, self.style_layer_weights, strict=True))


def to_pixels(x: jax.Array) -> jax.Array:
    """[-1, 1] images -> 0-255 units (the optimised variable's scale)."""
    return (x + 1.0) * 127.5


def from_pixels(p: jax.Array) -> jax.Array:
    """0-255 units -> [-1, 1] images."""
    return p / 127.5 - 1.0


def features(params: Any, images: jax.Array, s: Settings) -> dict[str, jax.Array]:
    """VGG19 activations of [-1, 1] images at the content and style layers."""
    return vgg_lib.VGG19(pool=s.pool).apply({"params": params}, images, s.layers)


def targets_from_features(
    content_features: dict[str, jax.Array], style_features: dict[str, jax.Array], s: Settings
) -> dict[str, Any]:
    """The fixed targets: the content layer's features and the style layers' normalised Grams.

    The features may come from images or, as in Latent Features Transfer, from a network
    that predicts them.
    """
    return {
        "content": content_features[s.content_layer],
        "grams": {name: losses.normalized_gram(style_features[name]) for name in s.style_layers},
    }


def targets(params: Any, content: jax.Array, style: jax.Array, s: Settings) -> dict[str, Any]:
    """The targets of a batch of content images and their style images (both [-1, 1])."""
    return targets_from_features(features(params, content, s), features(params, style, s), s)


def loss_parts(params: Any, pixels: jax.Array, target: dict[str, Any], s: Settings) -> dict:
    """Per-example loss parts {total, content, style, tv} (each (N,)) of 0-255 images."""
    feats = features(params, from_pixels(pixels), s)
    parts = {
        "content": losses.content_loss(feats[s.content_layer], target["content"]),
        "style": losses.style_loss(feats, target["grams"], s.weights),
        "tv": losses.total_variation(pixels),
    }
    parts["total"] = (
        s.content_weight * parts["content"]
        + s.style_weight * parts["style"]
        + s.tv_weight * parts["tv"]
    )
    return parts


def _optimise_one(params: Any, init: jax.Array, target: dict[str, Any], s: Settings):
    """Optimises one image (H, W, 3) in 0-255 units; returns (image, {part: (steps + 1,)})."""
    batch1 = jax.tree.map(lambda t: t[None], target)

    def parts_of(p):
        return jax.tree.map(lambda v: v[0], loss_parts(params, p[None], batch1, s))

    def value(p):
        return parts_of(p)["total"]

    def value_and_parts(p):
        parts = parts_of(p)
        return parts["total"], parts

    if s.optimizer == "adam":
        opt = optax.adam(s.lr)

        def step(carry, _):
            p, state = carry
            (_, parts), grad = jax.value_and_grad(value_and_parts, has_aux=True)(p)
            updates, state = opt.update(grad, state, p)
            p = jnp.clip(optax.apply_updates(p, updates), 0.0, 255.0)
            return (p, state), parts
    else:
        opt = optax.lbfgs(memory_size=s.lbfgs_memory)
        value_and_grad = optax.value_and_grad_from_state(value)

        def step(carry, _):
            p, state = carry
            v, grad = value_and_grad(p, state=state)
            updates, state = opt.update(grad, state, p, value=v, grad=grad, value_fn=value)
            return (optax.apply_updates(p, updates), state), parts_of(p)

    (final, _), history = jax.lax.scan(step, (init, opt.init(init)), length=s.steps)
    final = jnp.clip(final, 0.0, 255.0)
    last = parts_of(final)
    history = jax.tree.map(lambda h, v: jnp.concatenate([h, v[None]]), history, last)
    return final, history


@jax.jit(static_argnames=("s",))
def optimise(
    params: Any, target: dict[str, Any], init: jax.Array, s: Settings
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Optimises a batch of images, each against its own targets (see `targets*`).

    Args:
      params: VGG19 parameters.
      target: {"content": (N, ...) features, "grams": {layer: (N, C, C)}}.
      init: (N, H, W, 3) starting images in [-1, 1] (see `initial_images`).
      s: settings.

    Returns:
      (images (N, H, W, 3) in [-1, 1], {part: (N, steps + 1)}): the loss parts at each
      iterate, the last entry being the result's.
    """
    images, history = jax.vmap(lambda i, t: _optimise_one(params, i, t, s))(to_pixels(init), target)
    return jnp.clip(from_pixels(images), -1.0, 1.0), history  # Clip float rounding at 255.


@jax.jit(static_argnames=("s",))
def stylize(
    params: Any, content: jax.Array, style: jax.Array, init: jax.Array, s: Settings
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Style transfer of a batch: each content image takes the style of its style image.

    Args:
      params: VGG19 parameters.
      content: (N, H, W, 3) in [-1, 1].
      style: (N, Hs, Ws, 3) or (1, Hs, Ws, 3) (shared) in [-1, 1].
      init: (N, H, W, 3) starting images in [-1, 1] (see `initial_images`).
      s: settings.

    Returns:
      As `optimise`.
    """
    if style.shape[0] == 1 and content.shape[0] > 1:
        style = jnp.broadcast_to(style, (content.shape[0], *style.shape[1:]))
    return optimise(params, targets(params, content, style, s), init, s)


def initial_images(
    kind: str,
    content: np.ndarray,
    key: jax.Array,
    noise: float = 0.0,
    mean_image: np.ndarray | None = None,
) -> jax.Array:
    """Starting images in [-1, 1] for a (N, H, W, 3) content batch.

    `content`: the content images, plus Gaussian noise of std `noise` (0-255 units);
    `noise`: white noise, uniform over [0, 255]; `mean`: `mean_image` (H, W, 3) for each.
    """
    check_choice("config.nst.init", kind, INITS)
    content = jnp.asarray(content, jnp.float32)
    if kind == "content":
        eps = jax.random.normal(key, content.shape) * (noise / 127.5)
        return jnp.clip(content + eps, -1.0, 1.0)
    if kind == "noise":
        return jax.random.uniform(key, content.shape, minval=-1.0, maxval=1.0)
    if mean_image is None:
        raise ValueError("config.nst.init='mean' needs config.nst.mean_dir (a folder of images)")
    if mean_image.shape != content.shape[1:]:
        raise ValueError(f"mean image {mean_image.shape} differs from content {content.shape[1:]}")
    return jnp.broadcast_to(jnp.asarray(mean_image, jnp.float32), content.shape)


def mean_image(folder: str | pathlib.Path, size: int) -> np.ndarray:
    """The pixel-wise mean, in [-1, 1], of a folder's images resized to size x size."""
    files = data_lib.list_images(folder)
    if not files:
        raise ValueError(f"config.nst.mean_dir {folder} holds no images")
    total = np.zeros((size, size, 3), np.float64)
    for path in files:
        total += data_lib.to_float(data_lib.read_image(path, size))
    return (total / len(files)).astype(np.float32)


# --------------------------------------------------------------------------- files


def run_files(
    config: ml_collections.ConfigDict,
    content_files: list[pathlib.Path],
    style_file: str | pathlib.Path,
    output: str | pathlib.Path,
    params: Any | None = None,
) -> list[pathlib.Path]:
    """Styles each content file after `style_file`; writes OUTPUT/<name> and losses.csv.

    Images are optimised at `config.nst.size` squared, `config.nst.batch_size` at a time,
    and the results resized back to each input's size. Returns the files written.
    """
    s = Settings.from_config(config)
    if params is None:
        params, described = vgg_lib.resolve_params(config.vgg.weights)
        print(f"VGG19 weights: {described}", flush=True)
    size, output = int(config.nst.size), pathlib.Path(output)
    style = data_lib.to_float(data_lib.read_image(style_file, size))[None]
    mean = mean_image(config.nst.mean_dir, size) if config.nst.init == "mean" else None
    key = jax.random.key(config.seed)
    written, rows = [], []
    batch = max(1, int(config.nst.batch_size))
    for start in range(0, len(content_files), batch):
        chunk = content_files[start : start + batch]
        originals = [data_lib.read_image(p) for p in chunk]
        content = np.stack([data_lib.to_float(data_lib.read_image(p, size)) for p in chunk])
        init = initial_images(
            config.nst.init,
            content,
            jax.random.fold_in(key, start),
            config.nst.init_noise,
            mean,
        )
        images, history = stylize(params, content, style, init, s)
        history = jax.tree.map(np.asarray, history)
        for i, (path, original) in enumerate(zip(chunk, originals, strict=True)):
            out = data_lib.to_uint8(np.asarray(images[i]))
            out = preprocess.resize_to(out, *original.shape[:2])
            data_lib.save_image(output / path.name, out)
            written.append(output / path.name)
            rows += [
                [path.name, step, *(f"{history[k][i, step]:.6g}" for k in LOSS_PARTS)]
                for step in range(s.steps + 1)
            ]
            first, last = history["total"][i, 0], history["total"][i, -1]
            print(f"{path.name}: total loss {first:.4g} -> {last:.4g}", flush=True)
    output.mkdir(parents=True, exist_ok=True)
    with open(output / "losses.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "step", *LOSS_PARTS])
        writer.writerows(rows)
    return [*written, output / "losses.csv"]
