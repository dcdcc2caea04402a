"""Latent Features Transfer (the thesis's sections 3.1 and 4.2.1): translation in VGG19 space.

Training: a `FeatureTranslator` per direction maps the frozen VGG19's features of an image of
one domain (content layer conv3_2, style layers conv1_1 ... conv5_1) to the features of its
counterpart in the other domain, on pairs (config.data.paired). The loss between translated
features T(z_a) and the target's features z_b is

    style_weight * sum_l w_l E_l(T(z_a)_l, gram(z_b)_l) + content_weight * MSE(T(z_a)_c, z_b_c)

(`losses.style_layer_loss`, weights w_l 0.5, 1, 1.5, 3, 4). The features of all training pairs
are computed once before the first step (`train_batches`: a `data.feature_store.FeatureStore`,
in memory or memory-mapped on disk) and the jitted step reads batches of them: no VGG19 runs
while training. Both directions train in one run (`lft.directions="both"`) or one alone.

Translation: z = VGG(x), z_hat = T(z), then an image is optimised to match z_hat with
Gatys et al.'s content + Gram loss (`nst.optimise`: Adam lr 2 in 0-255 units for 100 steps,
one compiled `lax.scan`, a batch of independent problems), starting from the input (plus
noise), white noise, or the target domain's mean training image.

State (a dict pytree): step, params/{AtoB, BtoA} (the trained directions), opt, and
frozen/{vgg, mean_a, mean_b}: the VGG19 layers used and each domain's mean training image,
checkpointed with the rest so a checkpoint translates with exactly the VGG19 it was trained
on (`load_frozen` fills them in a fresh state).
"""

import hashlib
import pathlib
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxfaces import batching, losses, optim
from jaxfaces.data import feature_store, preprocess, sources
from jaxfaces.methods import base, nst
from jaxfaces.models import feature_translator
from jaxfaces.models import vgg as vgg_lib
from jaxfaces.models.layers import check_choice

State = dict[str, Any]
#: direction -> (source domain, target domain).
DOMAINS = {"AtoB": ("a", "b"), "BtoA": ("b", "a")}
DIRECTION_CHOICES = ("both", "AtoB", "BtoA")
CACHES = ("auto", "memory", "disk")


def directions(config: ml_collections.ConfigDict) -> tuple[str, ...]:
    """The directions this run trains (`lft.directions`: both | AtoB | BtoA)."""
    which = check_choice("config.lft.directions", config.lft.directions, DIRECTION_CHOICES)
    return tuple(DOMAINS) if which == "both" else (which,)


def layers(config: ml_collections.ConfigDict) -> tuple[str, ...]:
    """The VGG19 layers translated: the content layer, then the style layers (no repeats)."""
    return tuple(dict.fromkeys((config.lft.content_layer, *config.lft.style_layers)))


def synthesis_settings(config: ml_collections.ConfigDict) -> nst.Settings:
    """The `nst.Settings` of the synthesis (`lft.synthesis` with the training layers)."""
    c, syn = config.lft, config.lft.synthesis
    s = nst.Settings(
        content_layer=c.content_layer,
        style_layers=tuple(c.style_layers),
        style_layer_weights=tuple(float(w) for w in c.style_layer_weights),
        content_weight=float(syn.content_weight),
        style_weight=float(syn.style_weight),
        tv_weight=float(syn.tv_weight),
        optimizer=syn.optimizer,
        lr=float(syn.lr),
        steps=int(syn.steps),
        lbfgs_memory=int(syn.lbfgs_memory),
        pool=config.vgg.pool,
    )
    s.check()
    check_choice("config.lft.synthesis.init", syn.init, nst.INITS)
    return s


def check_config(config: ml_collections.ConfigDict) -> None:
    """Raises ValueError naming the key of a bad setting, before anything compiles."""
    directions(config)
    synthesis_settings(config)
    check_choice("config.lft.feature_cache", config.lft.feature_cache, CACHES)
    t = config.model.translator
    check_choice("config.model.translator.variant", t.variant, feature_translator.VARIANTS)
    check_choice(
        "config.model.translator.output_norm", t.output_norm, feature_translator.OUTPUT_NORMS
    )
    if not config.data.get("paired", False):
        raise ValueError("Latent Features Transfer trains on pairs: set config.data.paired=True")


def translator(config: ml_collections.ConfigDict) -> feature_translator.FeatureTranslator:
    """The translator network (the same architecture both ways)."""
    t = config.model.translator
    return feature_translator.FeatureTranslator(
        layers=layers(config), variant=t.variant, output_norm=t.output_norm
    )


def features(config: ml_collections.ConfigDict, vgg_params: Any, images: jax.Array) -> dict:
    """The VGG19 features of [-1, 1] images at the translated layers."""
    net = vgg_lib.VGG19(pool=config.vgg.pool)
    return net.apply({"params": vgg_params}, images, layers(config))


def _feature_shapes(config: ml_collections.ConfigDict, size: int) -> dict[str, tuple]:
    shapes = vgg_lib.param_shapes(layers(config))
    x = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
    out = jax.eval_shape(lambda p, x: features(config, p, x), shapes, x)
    return {k: v.shape[1:] for k, v in out.items()}


def init_state(config: ml_collections.ConfigDict, rng: jax.Array) -> State:
    """Fresh translators and optimizer state; zero placeholders for the frozen parts."""
    check_config(config)
    size = config.data.size
    net = translator(config)
    dummy = {k: jnp.zeros((1, *s), jnp.float32) for k, s in _feature_shapes(config, size).items()}
    params = {
        d: net.init(jax.random.fold_in(rng, i), dummy)["params"]
        for i, d in enumerate(directions(config))
    }
    vgg_zeros = jax.tree.map(
        lambda a: jnp.zeros(a.shape, a.dtype), vgg_lib.param_shapes(layers(config))
    )
    mean = jnp.zeros((size, size, 3), jnp.float32)
    return {
        "step": jnp.zeros((), jnp.int32),
        "params": params,
        "opt": optim.adam(config).init(params),
        "frozen": {"vgg": vgg_zeros, "mean_a": mean, "mean_b": jnp.copy(mean)},
    }


def load_frozen(config: ml_collections.ConfigDict, state: State) -> State:
    """Puts the VGG19 weights (`config.vgg.weights`) and the domains' mean training images
    into a fresh state."""
    params, described = vgg_lib.resolve_params(config.vgg.weights)
    print(f"VGG19 weights for Latent Features Transfer: {described}", flush=True)
    vgg = {k: params[k] for k in vgg_lib.param_shapes(layers(config))}
    a, b, _ = feature_store.training_pairs(config.data)
    mean_a = preprocess.to_float(a).mean(axis=0)
    mean_b = preprocess.to_float(b).mean(axis=0)
    return {**state, "frozen": {"vgg": vgg, "mean_a": mean_a, "mean_b": mean_b}}


# --------------------------------------------------------------------------- features


def _digest(tree: Any) -> str:
    """SHA-256 of a pytree's arrays (to tell whose VGG19 computed a cache)."""
    h = hashlib.sha256()
    for leaf in jax.tree.leaves(tree):
        h.update(np.ascontiguousarray(np.asarray(leaf)).tobytes())
    return h.hexdigest()


def build_feature_store(
    config: ml_collections.ConfigDict,
    vgg_params: Any,
    cache_dir: str | pathlib.Path | None = None,
) -> feature_store.FeatureStore:
    """The VGG19 features (and images) of every training pair, computed once.

    Keys: "a", "b" (float32 images in [-1, 1]) and "a/<layer>", "b/<layer>" (features).
    With `data.flip` the mirrored pairs are added (2N rows). Kept in memory, or under
    `cache_dir` as memory-mapped .npy files (`lft.feature_cache`: auto picks disk when the
    features pass `lft.cache_mb`), reused by a later run with the same fingerprint.
    """
    a, b, names = feature_store.training_pairs(config.data)
    if config.data.flip:
        a, b = np.concatenate([a, a[:, :, ::-1]]), np.concatenate([b, b[:, :, ::-1]])
    size = int(config.data.size)
    shapes = _feature_shapes(config, size)
    specs = {d: ((size, size, 3), np.dtype(np.float32)) for d in ("a", "b")}
    specs.update({f"{d}/{k}": (s, np.dtype(np.float32)) for d in "ab" for k, s in shapes.items()})
    n = len(a)
    total_mb = n * sum(int(np.prod(s)) * 4 for s, _ in specs.values()) / 2**20
    mode = config.lft.feature_cache
    if mode == "auto":
        mode = "disk" if total_mb > config.lft.cache_mb and cache_dir else "memory"
    if mode == "disk" and not cache_dir:
        raise ValueError("config.lft.feature_cache='disk' needs a folder (config.lft.cache_dir)")
    fn = jax.jit(lambda p, x: features(config, p, x))
    params = jax.device_put(vgg_params)
    batch = max(1, int(config.lft.feature_batch))

    def compute(start: int, stop: int) -> dict[str, np.ndarray]:
        out = {}
        for d, images in (("a", a), ("b", b)):
            x = preprocess.to_float(images[start:stop])
            out[d] = x
            feats = fn(params, jnp.asarray(batching.pad_batch(x, batch)))  # One shape.
            out.update({f"{d}/{k}": np.asarray(v)[: stop - start] for k, v in feats.items()})
        return out

    fingerprint = {
        "names": names,
        "flip": bool(config.data.flip),
        "size": size,
        "layers": list(shapes),
        "pool": config.vgg.pool,
        "vgg": _digest(vgg_params),
    }
    where = pathlib.Path(cache_dir) if mode == "disk" else None
    print(
        f"Latent Features Transfer: VGG19 features of {n} training pairs "
        f"({total_mb:.0f} MB, {'on disk in ' + str(where) if where else 'in memory'})",
        flush=True,
    )
    return feature_store.FeatureStore.build(n, specs, compute, batch, where, fingerprint)


def train_batches(
    config: ml_collections.ConfigDict,
    state: State,
    workdir: str | pathlib.Path,
    stage: base.Stage | None = None,
    *,
    start_step: int = 0,
    process_index: int = 0,
    process_count: int = 1,
    num_devices: int = 1,
) -> Iterator[dict[str, np.ndarray]]:
    """The loop's data hook: batches of cached features instead of images.

    The features are computed with the VGG19 in `state` (the one checkpointed), once, into
    memory or `lft.cache_dir` (default WORKDIR/feature_cache).
    """
    del stage
    batch = sources.check_batch(config.data, process_index, process_count, num_devices)
    vgg = jax.tree.map(lambda x: np.asarray(x.addressable_data(0)), state["frozen"]["vgg"])
    cache_dir = config.lft.cache_dir or pathlib.Path(workdir) / "feature_cache"
    store = build_feature_store(config, vgg, cache_dir)
    return store.batches(
        seed=config.seed,
        batch_size=batch,
        start_step=start_step,
        process_index=process_index,
        process_count=process_count,
    )


# --------------------------------------------------------------------------- training


def feature_losses(
    config: ml_collections.ConfigDict, predicted: dict, target: dict
) -> dict[str, jax.Array]:
    """Batch-mean {style, content, total} between translated and target features."""
    c = config.lft
    weights = dict(zip(c.style_layers, (float(w) for w in c.style_layer_weights), strict=True))
    grams = {k: losses.normalized_gram(target[k]) for k in weights}
    style = jnp.mean(losses.style_loss(predicted, grams, weights))
    content = jnp.mean(losses.feature_mse(predicted[c.content_layer], target[c.content_layer]))
    total = c.style_weight * style + c.content_weight * content
    return {"style": style, "content": content, "total": total}


def make_train_step(
    config: ml_collections.ConfigDict, stage: base.Stage | None = None
) -> Callable[[State, dict], tuple]:
    """Returns the pure `train_step(state, batch) -> (state, metrics)` on feature batches."""
    del stage
    check_config(config)
    net, tx, schedule = translator(config), optim.adam(config), optim.lr_schedule(config)
    names, trained = layers(config), directions(config)

    def train_step(state: State, batch: dict[str, jax.Array]) -> tuple[State, dict]:
        def loss_fn(params):
            total, metrics = 0.0, {}
            for d in trained:
                src, dst = DOMAINS[d]
                z = {k: batch[f"{src}/{k}"] for k in names}
                target = {k: batch[f"{dst}/{k}"] for k in names}
                parts = feature_losses(config, net.apply({"params": params[d]}, z), target)
                total = total + parts["total"]
                metrics.update({f"loss/{d}_{k}": v for k, v in parts.items()})
            return total, metrics

        (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["params"])
        updates, opt = tx.update(grads, state["opt"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        metrics["lr"] = schedule(state["step"])
        new_state = {**state, "step": state["step"] + 1, "params": params, "opt": opt}
        return new_state, metrics

    return train_step


# --------------------------------------------------------------------------- translation


def translator_variables(state: State, direction: str) -> dict[str, Any] | None:
    """What `make_translate`'s function needs for `direction`: the translator's parameters,
    the VGG19 weights and the target domain's mean training image (None if not trained)."""
    if base.check_direction(direction) not in state["params"]:
        return None
    dst = DOMAINS[direction][1]
    frozen = state["frozen"]
    return {
        "translator": state["params"][direction],
        "vgg": frozen["vgg"],
        "mean": frozen[f"mean_{dst}"],
    }


def translated_targets(
    config: ml_collections.ConfigDict, variables: dict[str, Any], images: jax.Array
) -> dict[str, Any]:
    """The synthesis targets of [-1, 1] images: `nst` targets of their translated features."""
    z = features(config, variables["vgg"], images)
    z_hat = translator(config).apply({"params": variables["translator"]}, z)
    return nst.targets_from_features(z_hat, z_hat, synthesis_settings(config))


def initial_images(
    config: ml_collections.ConfigDict, variables: dict[str, Any], images: jax.Array
) -> jax.Array:
    """The synthesis starts (`lft.synthesis.init`): the input (+ noise), white noise, or the
    target domain's mean training image (resized to the input's size); the noise is drawn
    from a key of `config.seed`, so the same images give the same output."""
    syn = config.lft.synthesis
    mean = variables["mean"]
    if mean.shape != images.shape[1:]:  # Translating at another size than trained.
        mean = jax.image.resize(mean, images.shape[1:], "bilinear")
    key = jax.random.key(config.seed)
    return nst.initial_images(syn.init, images, key, syn.init_noise, mean)


def synthesise(
    config: ml_collections.ConfigDict, vgg_params: Any, target: dict[str, Any], init: jax.Array
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Optimises images from `init` against `target` (`nst.optimise` with `lft.synthesis`).

    Returns images in [-1, 1] and the loss parts at each step, {part: (N, steps + 1)}.
    """
    return nst.optimise(vgg_params, target, init, synthesis_settings(config))


def make_translate(config: ml_collections.ConfigDict) -> Callable[[dict, jax.Array], jax.Array]:
    """Returns `translate(variables, images) -> images`: features, translation, synthesis."""
    synthesis_settings(config)  # Bad settings fail here, not in jit.

    def translate(variables: dict[str, Any], images: jax.Array) -> jax.Array:
        target = translated_targets(config, variables, images)
        init = initial_images(config, variables, images)
        return synthesise(config, variables["vgg"], target, init)[0]

    return translate


def make_visuals(
    config: ml_collections.ConfigDict, stage: base.Stage | None = None
) -> Callable[[State, dict], dict]:
    """Returns `visuals(state, batch)`: source | translation | true counterpart, per direction
    trained, for the batch's first 4 pairs (one synthesis for all directions)."""
    del stage

    def visuals(state: State, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
        trained = directions(config)
        sources, targets, inits = [], [], []
        for d in trained:
            x = batch[DOMAINS[d][0]][:4]
            variables = translator_variables(state, d)
            sources.append(x)
            targets.append(translated_targets(config, variables, x))
            inits.append(initial_images(config, variables, x))
        target = jax.tree.map(lambda *t: jnp.concatenate(t), *targets)
        fakes, _ = synthesise(config, state["frozen"]["vgg"], target, jnp.concatenate(inits))
        out, start = {}, 0
        for d, x in zip(trained, sources, strict=True):
            fake = fakes[start : start + len(x)]
            start += len(x)
            out[d] = jnp.concatenate([x, fake, batch[DOMAINS[d][1]][:4]], axis=2)
        return out

    return visuals


def spatial_multiple(config: ml_collections.ConfigDict) -> int:
    """Images are translated at sides rounded to multiples of 4, as the CycleGAN's (the
    synthesis itself works at any size; 4 keeps translate.py's sizes as they were)."""
    del config
    return 4


METHOD = base.Method(
    init_state=init_state,
    make_train_step=make_train_step,
    make_visuals=make_visuals,
    make_translate=make_translate,
    translator_variables=translator_variables,
    check_config=check_config,
    spatial_multiple=spatial_multiple,
    load_frozen=load_frozen,
    train_batches=train_batches,
)
