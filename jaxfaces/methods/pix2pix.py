"""pix2pix (Isola et al. 2017), faithful to the reference PyTorch implementation.

A conditional GAN on pairs: G translates an input image x to G(x); the PatchGAN D sees the
input beside an output on the channel axis, (x, G(x)) as fake and (x, y) as real. One train
step is the reference's `optimize_parameters`: G's forward pass once, then D on
(x, G(x)) (fake, detached) and (x, y) (real), each term halved, then G on the updated D's
verdict on (x, G(x)) plus `loss.lambda_l1` (100) times the L1 distance of G(x) to y. No image
pool. Vanilla GAN by default (every `losses.GAN_MODES` works).

`pix2pix.directions`: AtoB (the reference's default), BtoA, or both: two independent
pix2pix models (G and D each way) trained side by side on the same pairs, so that
translate.py works both ways.

At test time the reference keeps the generator in training mode (batch norm normalises by
the statistics of the image itself, dropout stays on) unless it is run with `--eval`;
`model.generator.eval_mode` is that switch (False: the reference's default). In training
mode each image is translated alone (the reference tests at batch size 1), with a fixed
dropout mask, so a translation does not depend on the other images of its batch.

State (a dict pytree): step, rng, params/{g_AtoB, d_AtoB, g_BtoA, d_BtoA} (the trained
directions), batch_stats/{...} (batch norm only), opt_g, opt_d.
"""

import functools
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxfaces import batching, losses, metrics, optim
from jaxfaces import rng as rngs
from jaxfaces.methods import base
from jaxfaces.models import discriminators, generators, layers

State = dict[str, Any]
DIRECTION_CHOICES = ("both", "AtoB", "BtoA")
#: direction -> (input domain, output domain) in a batch {"a", "b"} of pairs.
DOMAINS = {"AtoB": ("a", "b"), "BtoA": ("b", "a")}
#: The key that seeds the fixed dropout mask of training-mode translation.
TRANSLATE_DROPOUT_SEED = 0


def directions(config: ml_collections.ConfigDict) -> tuple[str, ...]:
    """The directions this run trains (`pix2pix.directions`: both | AtoB | BtoA)."""
    which = layers.check_choice(
        "config.pix2pix.directions", config.pix2pix.directions, DIRECTION_CHOICES
    )
    return tuple(DOMAINS) if which == "both" else (which,)


def models(config: ml_collections.ConfigDict) -> tuple[nn.Module, nn.Module]:
    """(G, D), computing in `train.dtype` (parameters stay float32)."""
    dtype = layers.compute_dtype(config.train.get("dtype", "float32"))
    g = generators.make_generator(config.model.generator, dtype)
    d = discriminators.make_discriminator(config.model.discriminator, dtype)
    return g, d


def check_config(config: ml_collections.ConfigDict) -> None:
    """Raises ValueError naming the key of a bad setting (before anything compiles)."""
    directions(config)
    g, _ = models(config)
    losses.gan_loss(jnp.zeros(()), True, config.loss.gan_mode)
    if not config.loss.lambda_l1 >= 0:
        raise ValueError(f"config.loss.lambda_l1 must be >= 0, got {config.loss.lambda_l1}")
    if not isinstance(config.model.generator.get("eval_mode", False), bool):
        raise ValueError("config.model.generator.eval_mode must be True or False")
    if not (config.data.get("paired", False) or config.data.get("aligned", False)):
        raise ValueError(
            "pix2pix trains on pairs: set config.data.paired=True (same-named files) or "
            "config.data.aligned=True (A|B images)"
        )
    stride = getattr(g, "stride", 1)
    if config.data.size % stride:
        raise ValueError(
            f"config.data.size ({config.data.size}) must be a multiple of {stride}, the "
            f"stride of config.model.generator.name {config.model.generator.name!r}"
        )


def init_state(config: ml_collections.ConfigDict, rng: jax.Array) -> State:
    """Fresh generators and discriminators (N(0, 0.02) convolutions) and Adam states."""
    check_config(config)
    size = config.data.size
    g, d = models(config)
    x = jnp.zeros((1, size, size, 3), jnp.float32)
    pair = jnp.zeros((1, size, size, 6), jnp.float32)
    variables = {}
    for i, direction in enumerate(directions(config)):
        k_g, k_d = jax.random.split(jax.random.fold_in(jax.random.fold_in(rng, 0), i))
        variables[f"g_{direction}"] = g.init({"params": k_g, "dropout": k_g}, x, train=False)
        variables[f"d_{direction}"] = d.init({"params": k_d}, pair, train=False)
    params = {k: v["params"] for k, v in variables.items()}
    stats = {k: v["batch_stats"] for k, v in variables.items() if "batch_stats" in v}
    tx = optim.adam(config)
    return {
        "step": jnp.zeros((), jnp.int32),
        "rng": rngs.to_data(jax.random.fold_in(rng, 1)),
        "params": params,
        "batch_stats": stats,
        "opt_g": tx.init({k: v for k, v in params.items() if k.startswith("g_")}),
        "opt_d": tx.init({k: v for k, v in params.items() if k.startswith("d_")}),
    }


def _apply_train(net: nn.Module, params: Any, stats: dict, name: str, x: jax.Array, key):
    """`net` in training mode; returns (output, the batch statistics after the call)."""
    variables = {"params": params}
    if name in stats:
        variables["batch_stats"] = stats[name]
    y, updates = net.apply(variables, x, train=True, rngs={"dropout": key}, mutable=["batch_stats"])
    if "batch_stats" in updates:
        stats = {**stats, name: updates["batch_stats"]}
    return y, stats


def make_train_step(
    config: ml_collections.ConfigDict, stage: base.Stage | None = None
) -> Callable[[State, dict], tuple[State, dict]]:
    """Returns the pure `train_step(state, batch) -> (state, metrics)` to jit (one stage)."""
    del stage
    check_config(config)
    g, d = models(config)
    tx = optim.adam(config)
    schedule = optim.lr_schedule(config)
    cfg = config.loss
    trained = directions(config)

    def gan(logits, real, discriminator=False):
        return losses.gan_loss(logits, real, cfg.gan_mode, discriminator)

    def train_step(state: State, batch: dict[str, jax.Array]) -> tuple[State, dict]:
        key = jax.random.fold_in(rngs.from_data(state["rng"]), state["step"])
        params, stats = state["params"], state["batch_stats"]
        inputs = {t: batch[DOMAINS[t][0]] for t in trained}
        truths = {t: batch[DOMAINS[t][1]] for t in trained}
        g_params = {f"g_{t}": params[f"g_{t}"] for t in trained}
        d_params = {f"d_{t}": params[f"d_{t}"] for t in trained}

        def g_forward(g_params):
            """Every direction's translation, once (the reference's `forward`)."""
            out, new_stats = {}, stats
            for i, t in enumerate(trained):
                name = f"g_{t}"
                out[t], new_stats = _apply_train(
                    g, g_params[name], new_stats, name, inputs[t], jax.random.fold_in(key, i)
                )
            return out, new_stats

        fakes, g_vjp, stats = jax.vjp(g_forward, g_params, has_aux=True)

        def d_loss_fn(d_params):
            terms, new_stats = {}, stats
            for i, t in enumerate(trained):
                name = f"d_{t}"
                fake_pair = jnp.concatenate([inputs[t], jax.lax.stop_gradient(fakes[t])], -1)
                real_pair = jnp.concatenate([inputs[t], truths[t]], -1)
                k = jax.random.fold_in(key, 10 + i)
                fake_logits, new_stats = _apply_train(
                    d, d_params[name], new_stats, name, fake_pair, k
                )
                real_logits, new_stats = _apply_train(
                    d, d_params[name], new_stats, name, real_pair, k
                )
                terms[f"{t}_D_fake"] = 0.5 * gan(fake_logits, False, True)
                terms[f"{t}_D_real"] = 0.5 * gan(real_logits, True, True)
                if cfg.gan_mode == "wgan-gp":
                    variables = {"params": d_params[name]}
                    if name in new_stats:
                        variables["batch_stats"] = new_stats[name]
                    critic = lambda x, v=variables: d.apply(  # noqa: E731
                        v, x, train=True, mutable=["batch_stats"]
                    )[0]
                    terms[f"{t}_D_gp"] = cfg.gp_weight * losses.gradient_penalty(
                        critic, real_pair, fake_pair, jax.random.fold_in(key, 20 + i)
                    )
            return sum(terms.values()), (terms, new_stats)

        (_, (d_terms, stats)), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(d_params)
        d_updates, opt_d = tx.update(d_grads, state["opt_d"], d_params)
        d_params = optax.apply_updates(d_params, d_updates)

        def g_loss_fn(fakes):
            """G's loss as a function of its translations, judged by the updated D."""
            terms, new_stats = {}, stats
            for i, t in enumerate(trained):
                name = f"d_{t}"
                fake_pair = jnp.concatenate([inputs[t], fakes[t]], -1)
                logits, new_stats = _apply_train(
                    d, d_params[name], new_stats, name, fake_pair, jax.random.fold_in(key, 30 + i)
                )
                terms[f"{t}_G_GAN"] = gan(logits, True)
                terms[f"{t}_G_L1"] = cfg.lambda_l1 * losses.l1(fakes[t], truths[t])
            return sum(terms.values()), (terms, new_stats)

        (loss_g, (g_terms, stats)), fake_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(fakes)
        (g_grads,) = g_vjp(fake_grads)
        g_updates, opt_g = tx.update(g_grads, state["opt_g"], g_params)
        g_params = optax.apply_updates(g_params, g_updates)

        metrics = {f"loss/{k}": v for k, v in {**g_terms, **d_terms}.items()}
        metrics["loss/g_total"] = loss_g
        metrics["lr"] = schedule(state["step"])
        new_state = {
            **state,
            "step": state["step"] + 1,
            "params": {**g_params, **d_params},
            "batch_stats": stats,
            "opt_g": opt_g,
            "opt_d": opt_d,
        }
        return new_state, metrics

    return train_step


def translator_variables(state: State, direction: str) -> dict[str, Any] | None:
    """The variables of the generator that translates in `direction`, or None."""
    return base.network_variables(state, f"g_{base.check_direction(direction)}")


def make_translate(config: ml_collections.ConfigDict) -> Callable[[dict, jax.Array], jax.Array]:
    """Returns `translate(translator_variables, images) -> images`.

    `model.generator.eval_mode` True: inference mode (running batch-norm averages, no
    dropout). False (the reference's test behaviour): training mode, image by image, with
    a fixed dropout mask; the batch-norm statistics computed are discarded.
    """
    g = generators.make_generator(config.model.generator)
    if config.model.generator.get("eval_mode", False):
        return lambda variables, x: g.apply(variables, x, train=False)

    def translate(variables: dict[str, Any], x: jax.Array) -> jax.Array:
        key = rngs.key(TRANSLATE_DROPOUT_SEED)

        def one(image: jax.Array) -> jax.Array:
            y, _ = g.apply(
                variables, image[None], train=True, rngs={"dropout": key}, mutable=["batch_stats"]
            )
            return y[0]

        return jax.vmap(one)(x)

    return translate


def spatial_multiple(config: ml_collections.ConfigDict) -> int:
    """The generator's stride (2**num_downs for a U-Net): image sides must be multiples of it."""
    return int(getattr(generators.make_generator(config.model.generator), "stride", 1))


def make_critic(config: ml_collections.ConfigDict) -> base.Critic:
    """The conditional discriminators for evaluation: D_AtoB judges (input A, image B) pairs,
    D_BtoA (input B, image A) pairs, in inference mode, as a whole set at a time."""
    d = discriminators.make_discriminator(config.model.discriminator)
    apply = jax.jit(lambda variables, x: d.apply(variables, x, train=False))

    def logits(variables: dict[str, Any], images: np.ndarray, inputs: np.ndarray) -> np.ndarray:
        pairs = np.concatenate([np.asarray(inputs), np.asarray(images)], axis=-1)
        return batching.apply_batched(functools.partial(apply, variables), pairs)

    try:
        threshold, why = metrics.gan_threshold(config.loss.gan_mode), ""
    except ValueError:
        threshold = None
        why = f"gan_mode {config.loss.gan_mode!r} has no real / fake decision threshold"
    return base.Critic(
        variables=lambda state, direction: base.network_variables(state, f"d_{direction}"),
        logits=logits,
        threshold=threshold,
        no_threshold=why,
        conditional=True,
    )


def from_translators(config: ml_collections.ConfigDict, variables: dict[str, Any]) -> State:
    """A translation-only state (no discriminators or optimizer states: it cannot resume
    training) holding the generators' variables given by direction."""
    del config
    return base.translation_state({f"g_{base.check_direction(d)}": v for d, v in variables.items()})


def make_visuals(
    config: ml_collections.ConfigDict, stage: base.Stage | None = None
) -> Callable[[State, dict], dict]:
    """Returns `visuals(state, batch)`: input | translation | truth for each trained way."""
    del stage
    translate = make_translate(config)
    trained = directions(config)

    def visuals(state: State, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
        rows = {}
        for t in trained:
            src, dst = (batch[k][:4] for k in DOMAINS[t])
            fake = translate(translator_variables(state, t), src)
            rows[t] = jnp.concatenate([src, fake, dst], axis=2)
        return rows

    return visuals


METHOD = base.Method(
    init_state=init_state,
    make_train_step=make_train_step,
    make_visuals=make_visuals,
    make_translate=make_translate,
    translator_variables=translator_variables,
    check_config=check_config,
    spatial_multiple=spatial_multiple,
    make_critic=make_critic,
    from_translators=from_translators,
)
