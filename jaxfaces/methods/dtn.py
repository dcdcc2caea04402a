"""DTN: the Domain Transfer Network (Taigman, Polyak & Wolf, ICLR 2017; the thesis's 2.4.1).

One translator, A -> B: G = g o f, with f a fixed feature extractor and g a decoder from
f's features to images. With D a three-way discriminator (classes: 0 translated source,
1 translated target, 2 real target; softmax cross-entropy, `discriminator_loss`):

  L_D = CE(D(G(x_s)), 0) + CE(D(G(x_t)), 1) + CE(D(x_t), 2)
  L_G = CE(D(G(x_s)), 2) + CE(D(G(x_t)), 2)                    (L_GANG)
        + alpha mean ||f(x_s) - f(G(x_s))||^2                   (L_CONST, f-constancy)
        + beta mean ||x_t - G(x_t)||^2                          (L_TID, target identity)
        + gamma TV(G(x_s))                                      (L_TV, B = 1)

x_s from A (the source), x_t from B (the target). The paper sums over examples and pixels;
here every term is a mean (over examples, positions and channels), so that the weights do
not depend on the batch or image size. TV is the paper's with B = 1: the mean over pixels of
sqrt(dx^2 + dy^2) (`total_variation_b1`). One train step updates g, then D on the
translations made before that update (the order of the project's GANs). f never changes.

f (`model.f.kind`):
  "autoencoder": the encoder (posterior mean) of a VAE the project trains itself on both
    domains in the first stage, "vae" (`vae_stage`, `model.vae`): L1 reconstruction +
    `vae_stage.kl_weight` x KL to N(0, I). g has the VAE decoder's architecture and, with
    `model.g_init` = "decoder", starts the second stage as the trained decoder (G starts as
    the identity). `vae_stage.pretrained` names a CycleGAN+VAE workdir instead: its encoder
    is f (and its decoder g's start) and the first stage has 0 steps.
  "vgg19": torchvision's VGG19 up to `model.f.vgg_layer` (`config.vgg.weights`: the
    converted ImageNet weights; missing weights are the usual error, never random unless
    "random" is asked for). No first stage; g starts random, as in the paper.

The second stage, "dtn", runs `train.num_steps` steps with `optim` and the `train` schedule.
translator_variables(state, "BtoA") is None: DTN translates one way.

State (a dict pytree): step, rng, params/{g, d}, opt_g, opt_d; autoencoder: vae/{encoder,
decoder}, opt_vae; vgg19: frozen/vgg; with `train.ema_decay` > 0: ema/{g} (translation
uses it).
"""

import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxfaces import batching, config_check, optim
from jaxfaces import rng as rngs
from jaxfaces.methods import base, cyclegan_vae
from jaxfaces.models import discriminators, layers, vae, vgg

State = dict[str, Any]
F_KINDS = ("autoencoder", "vgg19")
G_INITS = ("decoder", "random")
STAGES = ("vae", "dtn")
CRITIC_NORMS = ("instance", "none")
#: The discriminator's classes.
SOURCE_FAKE, TARGET_FAKE, TARGET_REAL = 0, 1, 2


# --------------------------------------------------------------------------- losses


def cross_entropy(logits: jax.Array, label: int) -> jax.Array:
    """Mean softmax cross-entropy of (..., 3) logits against one class for all of them."""
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    return -jnp.mean(logp[..., label])


def discriminator_loss(
    src_fake: jax.Array, tgt_fake: jax.Array, tgt_real: jax.Array
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """(L_D, its three terms) from D's logits on G(x_s), G(x_t) and x_t."""
    terms = {
        "d_src_fake": cross_entropy(src_fake, SOURCE_FAKE),
        "d_tgt_fake": cross_entropy(tgt_fake, TARGET_FAKE),
        "d_tgt_real": cross_entropy(tgt_real, TARGET_REAL),
    }
    return sum(terms.values()), terms


def generator_gan_loss(src_fake: jax.Array, tgt_fake: jax.Array) -> jax.Array:
    """L_GANG from D's logits on G(x_s) and G(x_t): both should pass as real targets."""
    return cross_entropy(src_fake, TARGET_REAL) + cross_entropy(tgt_fake, TARGET_REAL)


def real_logit(logits: jax.Array) -> jax.Array:
    """The log-odds of "real target" against both fake classes: l_2 - logsumexp(l_0, l_1)."""
    logits = logits.astype(jnp.float32)
    return logits[..., TARGET_REAL] - jax.nn.logsumexp(logits[..., :TARGET_REAL], axis=-1)


def total_variation_b1(x: jax.Array) -> jax.Array:
    """The paper's L_TV with B = 1, as a mean: mean over pixels (and channels) of
    sqrt((x[i, j+1] - x[i, j])^2 + (x[i+1, j] - x[i, j])^2) (a small epsilon inside the root
    keeps the gradient finite on flat areas)."""
    x = x.astype(jnp.float32)
    dx = x[:, :-1, 1:] - x[:, :-1, :-1]
    dy = x[:, 1:, :-1] - x[:, :-1, :-1]
    return jnp.mean(jnp.sqrt(jnp.square(dx) + jnp.square(dy) + 1e-8))


def mse(x: jax.Array, y: jax.Array) -> jax.Array:
    """Mean squared difference (L_CONST on features, L_TID on pixels)."""
    return jnp.mean(jnp.square(x.astype(jnp.float32) - y.astype(jnp.float32)))


# --------------------------------------------------------------------------- networks


def _vgg_block(config: ml_collections.ConfigDict) -> int:
    """The block (1-5) of `model.f.vgg_layer`."""
    return int(config.model.f.vgg_layer[-3])


def f_stride(config: ml_collections.ConfigDict) -> int:
    """How much smaller than the image f's feature map is."""
    if config.model.f.kind == "vgg19":
        return 2 ** (_vgg_block(config) - 1)
    return 2 ** cyclegan_vae.num_downs(config)


def feature_channels(config: ml_collections.ConfigDict) -> int:
    """Channels of f's feature map."""
    if config.model.f.kind == "vgg19":
        return vgg.BLOCKS[_vgg_block(config) - 1][0]
    return config.model.vae.latent_channels


def generator(config: ml_collections.ConfigDict) -> vae.Decoder:
    """g: f's features -> images, the VAE decoder's architecture (`model.vae`: nf, n_blocks,
    norm, padding, upsample) with one resize-convolution per halving of f."""
    c = config.model.vae
    return vae.Decoder(
        nf=c.nf,
        num_downs=int(math.log2(f_stride(config))),
        n_blocks=c.n_blocks,
        norm=c.norm,
        padding=c.padding,
        upsample=c.upsample,
        dtype=layers.compute_dtype(config.train.get("dtype", "float32")),
    )


def discriminator(config: ml_collections.ConfigDict) -> discriminators.PatchGAN:
    """The three-way PatchGAN (three logits per patch)."""
    d = config.model.discriminator
    dtype = layers.compute_dtype(config.train.get("dtype", "float32"))
    return discriminators.PatchGAN(
        ndf=d.ndf, n_layers=d.n_layers, norm=d.norm, dtype=dtype, out_channels=3
    )


def make_f(config: ml_collections.ConfigDict) -> Callable[[Any, jax.Array], jax.Array]:
    """(f's parameters, images) -> f's features (frozen: the caller stops gradients into
    the parameters; gradients flow to the images, for L_CONST)."""
    if config.model.f.kind == "vgg19":
        net, layer = vgg.VGG19(pool=config.vgg.pool), config.model.f.vgg_layer
        return lambda params, x: net.apply({"params": params}, x, (layer,))[layer]
    return cyclegan_vae.encode_mean(config)


def f_params(state: State) -> Any:
    """f's (frozen) parameters in a state."""
    if "frozen" in state:
        return state["frozen"]["vgg"]
    return state["vae"]["encoder"]


def spatial_multiple(config: ml_collections.ConfigDict) -> int:
    """Image sides must be multiples of f's stride (g scales back by it)."""
    return f_stride(config)


# --------------------------------------------------------------------------- config


def check_config(config: ml_collections.ConfigDict) -> None:
    """Raises ValueError naming the key of a bad setting (before anything compiles)."""
    config_check.one_of(config, "model.f.kind", F_KINDS)
    config_check.one_of(config, "model.g_init", G_INITS)
    kind = config.model.f.kind
    if kind == "vgg19":
        layer = config.model.f.vgg_layer
        if layer not in vgg.LAYERS:
            raise ValueError(
                f"unknown config.model.f.vgg_layer {layer!r}; valid: {', '.join(vgg.LAYERS)}"
            )
        if config.data.size % f_stride(config):
            raise ValueError(
                f"config.data.size ({config.data.size}) must be a multiple of "
                f"{f_stride(config)} for config.model.f.vgg_layer {layer!r}"
            )
        if config.model.g_init != "random":
            raise ValueError(
                "config.model.g_init must be 'random' with config.model.f.kind 'vgg19' "
                "(there is no decoder to start from)"
            )
        if config.vae_stage.pretrained:
            raise ValueError(
                "config.vae_stage.pretrained names a CycleGAN+VAE encoder, but "
                "config.model.f.kind is 'vgg19'"
            )
    else:
        cyclegan_vae.num_downs(config)
        config_check.at_least(config, "model.vae.latent_channels", 1)
        if config.vae_stage.num_steps == 0 and not config.vae_stage.pretrained:
            raise ValueError(
                "config.vae_stage.num_steps is 0 and config.vae_stage.pretrained is empty: "
                "f (config.model.f.kind 'autoencoder') would be an untrained encoder"
            )
    config_check.at_least(config, "model.vae.nf", 1)
    config_check.at_least(config, "model.vae.n_blocks", 0)
    config_check.one_of(config, "model.vae.norm", vae.NORMS)
    config_check.one_of(config, "model.vae.padding", layers.PADDINGS)
    config_check.one_of(config, "model.vae.upsample", layers.UPSAMPLES)
    config_check.at_least(config, "model.discriminator.ndf", 1)
    config_check.at_least(config, "model.discriminator.n_layers", 1)
    config_check.one_of(config, "model.discriminator.norm", CRITIC_NORMS)
    for key in ("alpha", "beta", "gamma"):
        config_check.at_least(config, f"loss.{key}", 0, integer=False)
    s = "vae_stage"
    config_check.at_least(config, f"{s}.num_steps", 0)
    config_check.at_least(config, f"{s}.kl_weight", 0, integer=False)
    config_check.above(config, f"{s}.lr", 0)
    config_check.in_range(config, f"{s}.b1", 0, 1)
    config_check.in_range(config, f"{s}.b2", 0, 1)
    config_check.in_range(config, f"{s}.decay_fraction", 0, 1, high_open=False)
    if not isinstance(config.vae_stage.pretrained, str):
        raise ValueError("config.vae_stage.pretrained must be a workdir path or ''")
    config_check.in_range(config, "train.ema_decay", 0, 1, required=False)


def stages(config: ml_collections.ConfigDict) -> tuple[base.Stage, ...]:
    """("vae", vae_stage.num_steps; 0 with a pretrained VAE or a VGG19 f), ("dtn",
    train.num_steps)."""
    own = config.model.f.kind == "autoencoder" and not config.vae_stage.pretrained
    vae_steps = config.vae_stage.num_steps if own else 0
    return base.make_stages(("vae", vae_steps), ("dtn", config.train.num_steps))


def _vae_optim_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The first stage's optimiser as a config `optim.adam` reads: `vae_stage`'s lr, betas
    and decay over `vae_stage.num_steps`."""
    s = config.vae_stage
    return ml_collections.ConfigDict(
        {
            "optim": {"lr": s.lr, "b1": s.b1, "b2": s.b2},
            "train": {
                "num_steps": max(int(s.num_steps), 1),
                "decay_fraction": s.decay_fraction,
                "decay_steps": None,
            },
        }
    )


# --------------------------------------------------------------------------- state


def init_state(config: ml_collections.ConfigDict, rng: jax.Array) -> State:
    """Fresh g and D (N(0, 0.02) convolutions), the autoencoder (or VGG19 placeholders),
    Adam states."""
    size = config.data.size
    side = size // f_stride(config)
    x = jnp.zeros((1, size, size, 3), jnp.float32)
    z = jnp.zeros((1, side, side, feature_channels(config)), jnp.float32)
    k_g, k_d, k_enc, k_dec = jax.random.split(jax.random.fold_in(rng, 0), 4)
    params = {
        "g": generator(config).init(k_g, z, train=False)["params"],
        "d": discriminator(config).init(k_d, x, train=False)["params"],
    }
    tx = optim.adam(config)
    state = {
        "step": jnp.zeros((), jnp.int32),
        "rng": rngs.to_data(jax.random.fold_in(rng, 1)),
        "params": params,
        "opt_g": tx.init(params["g"]),
        "opt_d": tx.init(params["d"]),
    }
    if config.model.f.kind == "vgg19":  # Placeholders; `load_frozen` puts the weights in.
        shapes = vgg.param_shapes((config.model.f.vgg_layer,))
        state["frozen"] = {"vgg": jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), shapes)}
    else:
        enc, dec = cyclegan_vae.vae_nets(config)
        vae_params = {
            "encoder": enc.init(k_enc, x, train=False)["params"],
            "decoder": dec.init(k_dec, z, train=False)["params"],
        }
        state["vae"] = vae_params
        state["opt_vae"] = optim.adam(_vae_optim_config(config)).init(vae_params)
    return {**state, **optim.ema_init(config, {"g": params["g"]})}


def load_frozen(config: ml_collections.ConfigDict, state: State) -> State:
    """Puts the VGG19 weights (f = "vgg19") or a CycleGAN+VAE run's VAE
    (`vae_stage.pretrained`) into a fresh state."""
    if "frozen" in state:
        params, described = vgg.resolve_params(config.vgg.weights)
        print(f"DTN's f: VGG19 up to {config.model.f.vgg_layer}, weights {described}", flush=True)
        shapes = vgg.param_shapes((config.model.f.vgg_layer,))
        state = {**state, "frozen": {"vgg": {k: params[k] for k in shapes}}}
    if config.model.f.kind == "autoencoder" and config.vae_stage.pretrained:
        state = {**state, "vae": cyclegan_vae.pretrained_vae(config, state["vae"])}
        print(f"DTN's f: the encoder of {config.vae_stage.pretrained}: stage 1 skipped", flush=True)
    return state


# --------------------------------------------------------------------------- stage 1


def _make_vae_step(config: ml_collections.ConfigDict, stage: base.Stage):
    """Stage 1: the autoencoder on the images of both domains; nothing else changes."""
    enc, dec = cyclegan_vae.vae_nets(config)
    opt_config = _vae_optim_config(config)
    tx, schedule = optim.adam(opt_config), optim.lr_schedule(opt_config)
    kl_weight = config.vae_stage.kl_weight

    def loss_fn(params, x, key):
        mean, logvar = enc.apply({"params": params["encoder"]}, x)
        rec = dec.apply({"params": params["decoder"]}, vae.reparameterize(mean, logvar, key))
        n = x.shape[0] // 2  # Domain A, then B.
        terms = {
            "vae_l1_a": jnp.mean(jnp.abs(rec[:n] - x[:n])),
            "vae_l1_b": jnp.mean(jnp.abs(rec[n:] - x[n:])),
            "kl": jnp.mean(vae.kl_to_standard_normal(mean, logvar)),
        }
        total = jnp.mean(jnp.abs(rec - x)) + kl_weight * terms["kl"]
        return total, terms

    def train_step(state: State, batch: dict[str, jax.Array]) -> tuple[State, dict]:
        key = jax.random.fold_in(rngs.from_data(state["rng"]), state["step"])
        x = jnp.concatenate([batch["a"], batch["b"]])
        (total, terms), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["vae"], x, key)
        updates, opt_vae = tx.update(grads, state["opt_vae"], state["vae"])
        out = {f"loss/{k}": v for k, v in terms.items()}
        out["loss/vae_total"] = total
        out["lr"] = schedule(state["step"] - stage.start)
        new_state = {
            **state,
            "step": state["step"] + 1,
            "vae": optax.apply_updates(state["vae"], updates),
            "opt_vae": opt_vae,
        }
        return new_state, out

    return train_step


# --------------------------------------------------------------------------- stage 2


def _starting_g(config: ml_collections.ConfigDict, stage: base.Stage, state: State) -> State:
    """With `model.g_init` = "decoder", the state whose g (and its moving average) is the
    trained VAE decoder at the stage's first step; otherwise `state`."""
    if config.model.g_init != "decoder":
        return state
    first = state["step"] == stage.start
    take = functools.partial(jax.tree.map, lambda d, g: jnp.where(first, d, g))
    decoder = state["vae"]["decoder"]
    state = {**state, "params": {**state["params"], "g": take(decoder, state["params"]["g"])}}
    if "ema" in state:
        state["ema"] = {"g": take(decoder, state["ema"]["g"])}
    return state


def _make_dtn_step(config: ml_collections.ConfigDict, stage: base.Stage):
    """Stage 2: g (then D) with f frozen."""
    g_net, d_net, f = generator(config), discriminator(config), make_f(config)
    tx, schedule = optim.adam(config), optim.lr_schedule(config)
    alpha, beta, gamma = config.loss.alpha, config.loss.beta, config.loss.gamma

    def critic(d_params, x):
        return d_net.apply({"params": d_params}, x)

    def train_step(state: State, batch: dict[str, jax.Array]) -> tuple[State, dict]:
        state = _starting_g(config, stage, state)
        xs, xt = batch["a"], batch["b"]
        fp = jax.lax.stop_gradient(f_params(state))
        fs = jax.lax.stop_gradient(f(fp, xs))
        ft = jax.lax.stop_gradient(f(fp, xt))
        d_params = state["params"]["d"]

        def g_loss_fn(g_params):
            gs = g_net.apply({"params": g_params}, fs)
            gt = g_net.apply({"params": g_params}, ft)
            logits = critic(d_params, jnp.concatenate([gs, gt]))
            gang = generator_gan_loss(logits[: len(xs)], logits[len(xs) :])
            terms = {
                "gang": gang,
                "const": mse(f(fp, gs), fs),
                "tid": mse(gt, xt),
                "tv": total_variation_b1(gs),
            }
            total = gang + alpha * terms["const"] + beta * terms["tid"] + gamma * terms["tv"]
            return total, (terms, gs, gt)

        grad_fn = jax.value_and_grad(g_loss_fn, has_aux=True)
        (loss_g, (terms, gs, gt)), g_grads = grad_fn(state["params"]["g"])
        g_updates, opt_g = tx.update(g_grads, state["opt_g"], state["params"]["g"])
        g_params = optax.apply_updates(state["params"]["g"], g_updates)

        fakes = jax.lax.stop_gradient(jnp.concatenate([gs, gt]))

        def d_loss_fn(d_params):
            logits = critic(d_params, jnp.concatenate([fakes, xt]))
            n = len(xs)
            loss_d, d_terms = discriminator_loss(
                logits[:n], logits[n : n + len(xt)], logits[n + len(xt) :]
            )
            return loss_d, d_terms

        (loss_d, d_terms), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(d_params)
        d_updates, opt_d = tx.update(d_grads, state["opt_d"], d_params)

        new_state = {
            **state,
            "step": state["step"] + 1,
            "params": {"g": g_params, "d": optax.apply_updates(d_params, d_updates)},
            "opt_g": opt_g,
            "opt_d": opt_d,
        }
        new_state.update(optim.ema_update(config, state, {"g": g_params}))
        out = {f"loss/{k}": v for k, v in {**terms, **d_terms}.items()}
        out["loss/g_total"] = loss_g
        out["loss/d"] = loss_d
        out["lr"] = schedule(state["step"] - stage.start)
        return new_state, out

    return train_step


def make_train_step(
    config: ml_collections.ConfigDict, stage: base.Stage
) -> Callable[[State, dict], tuple[State, dict]]:
    """Returns the pure `train_step(state, batch) -> (state, metrics)` of `stage`."""
    check_config(config)
    layers.check_choice("stage", stage.name, STAGES)
    if stage.name == "vae":
        return _make_vae_step(config, stage)
    return _make_dtn_step(config, stage)


# --------------------------------------------------------------------------- inference


def translator_variables(state: State, direction: str) -> dict[str, Any] | None:
    """{"f", "g"} parameters for "AtoB" (g's moving average when the state keeps one);
    None for "BtoA" (DTN translates one way) or a state without g."""
    if base.check_direction(direction) != "AtoB":
        return None
    g = (state.get("ema") or state.get("params") or {}).get("g")
    if g is None or ("frozen" not in state and "vae" not in state):
        return None
    return {"f": f_params(state), "g": g}


def make_translate(config: ml_collections.ConfigDict) -> Callable[[dict, jax.Array], jax.Array]:
    """Returns `translate(translator_variables, images) -> g(f(images))`."""
    g_net, f = generator(config), make_f(config)

    def translate(variables: dict[str, Any], x: jax.Array) -> jax.Array:
        return g_net.apply({"params": variables["g"]}, f(variables["f"], x), train=False)

    return translate


def make_critic(config: ml_collections.ConfigDict) -> base.Critic:
    """D for evaluation: AtoB's translations are judged by the log-odds of "real target"
    against both fake classes (threshold 0); no critic for BtoA."""
    d_net = discriminator(config)
    apply = jax.jit(lambda p, x: real_logit(d_net.apply({"params": p}, x, train=False)))

    def variables(state: State, direction: str) -> Any:
        if base.check_direction(direction) != "AtoB":
            return None
        return (state.get("params") or {}).get("d")

    def logits(v: Any, images) -> Any:
        return batching.apply_batched(functools.partial(apply, v), images)

    return base.Critic(variables=variables, logits=logits, threshold=0.0)


def make_visuals(
    config: ml_collections.ConfigDict, stage: base.Stage
) -> Callable[[State, dict], dict]:
    """Stage 1: input | reconstruction per domain. Stage 2: source | G(source) and
    target | G(target) (the target identity)."""
    translate = make_translate(config)

    def vae_visuals(state: State, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
        reconstruct = cyclegan_vae.make_reconstruct(config)
        return {
            f"vae_{k.upper()}": jnp.concatenate([batch[k], reconstruct(state["vae"], batch[k])], 2)
            for k in ("a", "b")
        }

    def dtn_visuals(state: State, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
        v = translator_variables(state, "AtoB")
        return {
            "AtoB": jnp.concatenate([batch["a"], translate(v, batch["a"])], axis=2),
            "BtoB": jnp.concatenate([batch["b"], translate(v, batch["b"])], axis=2),
        }

    return vae_visuals if stage.name == "vae" else dtn_visuals


METHOD = base.Method(
    init_state=init_state,
    make_train_step=make_train_step,
    make_visuals=make_visuals,
    make_translate=make_translate,
    translator_variables=translator_variables,
    check_config=check_config,
    stages=stages,
    spatial_multiple=spatial_multiple,
    make_critic=make_critic,
    load_frozen=load_frozen,
)
