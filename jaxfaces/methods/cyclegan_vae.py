"""CycleGAN+VAE: the thesis's latent-space CycleGAN (its section 3.2.2).

Two stages (`stages`):

1. "vae" (`vae_stage.num_steps` steps): one VAE, shared by both domains, learns to compress
   the images of A and B into a spatial latent (`model.vae`) and reconstruct them: L1
   reconstruction + `vae_stage.kl_weight` x KL to N(0, I) (per latent element), plus
   optionally `vae_stage.vgg_weight` x the L1 distance of VGG19 features.
2. "cyclegan" (`train.num_steps` steps; `optim` and the `train` schedule are this stage's):
   with the encoder E and decoder D frozen, a CycleGAN between the latent spaces. For x in
   A, z = E(x) (the posterior mean); G maps z to a latent of B, F maps back; D_Y judges
   G(z) against w = E(y) for y in B, D_X judges F(w) against z; cycle L1 on the latents
   (z -> G -> F -> z, w -> F -> G -> w), optional identity L1 (G(w) ~ w, F(z) ~ z), the
   thesis's CycleGAN weights (`loss`), LSGAN, pools of past fake latents. One train step
   updates G and F, then D_X and D_Y on pooled fakes, as the pixel CycleGAN.

Translation renders the translated latent: A -> B is D(G(E(x))), B -> A is D(F(E(y))).

`vae_stage.pretrained` names a workdir of an earlier cyclegan_vae run: its VAE is loaded
into the fresh state (`load_frozen`) and stage 1 has 0 steps.

State (a dict pytree): step, rng, vae/{encoder, decoder}, opt_vae, params/{g, f, d_x, d_y},
opt_g, opt_d, pool_x (fake latents of A, for D_X), pool_y (fake latents of B, for D_Y),
with `train.ema_decay` > 0 ema/{g, f} (translation uses it), with the VGG term
frozen/vgg.
"""

import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxfaces import batching, config_check, losses, metrics, optim, pool
from jaxfaces import rng as rngs
from jaxfaces.methods import base
from jaxfaces.models import layers, vae, vgg

State = dict[str, Any]
STAGES = ("vae", "cyclegan")
#: direction -> (the generator that translates it, the critic that judges its output).
GENERATOR_OF = {"AtoB": "g", "BtoA": "f"}
CRITIC_OF = {"AtoB": "d_y", "BtoA": "d_x"}


# --------------------------------------------------------------------------- networks


def num_downs(config: ml_collections.ConfigDict) -> int:
    """Stride-2 steps from `data.size` to `model.vae.latent_size` (ValueError if none fits)."""
    size, latent = config.data.size, config.model.vae.latent_size
    ratio = size // latent if isinstance(latent, int) and latent >= 1 else 0
    if ratio < 1 or ratio * latent != size or ratio & (ratio - 1):
        raise ValueError(
            f"config.model.vae.latent_size ({latent}) must divide config.data.size ({size}) "
            "by a power of 2"
        )
    return int(math.log2(ratio))


def vae_nets(config: ml_collections.ConfigDict) -> tuple[vae.Encoder, vae.Decoder]:
    """(encoder, decoder) of `model.vae`, computing in `train.dtype`."""
    c = config.model.vae
    dtype = layers.compute_dtype(config.train.get("dtype", "float32"))
    common = dict(nf=c.nf, num_downs=num_downs(config), n_blocks=c.n_blocks, norm=c.norm)
    enc = vae.Encoder(latent_channels=c.latent_channels, padding=c.padding, dtype=dtype, **common)
    dec = vae.Decoder(upsample=c.upsample, padding=c.padding, dtype=dtype, **common)
    return enc, dec


def latent_nets(config: ml_collections.ConfigDict) -> dict[str, Any]:
    """The latent CycleGAN's four networks by state key."""
    dtype = layers.compute_dtype(config.train.get("dtype", "float32"))
    g, d = config.model.latent_generator, config.model.latent_discriminator
    gen = vae.LatentGenerator(g.ngf, g.n_blocks, g.norm, g.padding, g.residual, dtype)
    critic = vae.LatentCritic(d.ndf, d.n_layers, d.norm, d.padding, dtype)
    return {"g": gen, "f": gen, "d_x": critic, "d_y": critic}


def latent_shape(config: ml_collections.ConfigDict) -> tuple[int, int, int]:
    """(h, w, C) of the latent of a `data.size` image."""
    side = config.model.vae.latent_size
    return (side, side, config.model.vae.latent_channels)


def spatial_multiple(config: ml_collections.ConfigDict) -> int:
    """The encoder's stride: image sides must be multiples of it."""
    return 2 ** num_downs(config)


def encode_mean(config: ml_collections.ConfigDict) -> Callable[[Any, jax.Array], jax.Array]:
    """(encoder params, images) -> the posterior means E(x)."""
    enc, _ = vae_nets(config)
    return lambda params, x: enc.apply({"params": params}, x, train=False)[0]


# --------------------------------------------------------------------------- config


def vgg_layers(config: ml_collections.ConfigDict) -> tuple[str, ...]:
    """The VGG19 layers of the VAE's feature term (none when it is off)."""
    return (config.vae_stage.vgg_layer,) if config.vae_stage.vgg_weight > 0 else ()


def check_config(config: ml_collections.ConfigDict) -> None:
    """Raises ValueError naming the key of a bad setting (before anything compiles).

    `vae_stage.pretrained` is checked when it is read (`load_frozen`, a fresh run only): a
    resumed run holds its VAE and needs that folder no more.
    """
    num_downs(config)
    for key in ("latent_channels", "nf"):
        config_check.at_least(config, f"model.vae.{key}", 1)
    config_check.at_least(config, "model.vae.n_blocks", 0)
    for section in ("vae", "latent_generator", "latent_discriminator"):
        config_check.one_of(config, f"model.{section}.norm", vae.NORMS)
        config_check.one_of(config, f"model.{section}.padding", layers.PADDINGS)
    config_check.one_of(config, "model.vae.upsample", layers.UPSAMPLES)
    config_check.at_least(config, "model.latent_generator.ngf", 1)
    config_check.at_least(config, "model.latent_generator.n_blocks", 0)
    if not isinstance(config.model.latent_generator.residual, bool):
        raise ValueError("config.model.latent_generator.residual must be True or False")
    config_check.at_least(config, "model.latent_discriminator.ndf", 1)
    config_check.at_least(config, "model.latent_discriminator.n_layers", 0)
    config_check.one_of(config, "loss.gan_mode", losses.GAN_MODES)
    for key in ("lambda_a", "lambda_b", "lambda_identity", "gp_weight"):
        config_check.at_least(config, f"loss.{key}", 0, integer=False)
    config_check.at_least(config, "loss.pool_size", 0)
    s = "vae_stage"
    config_check.at_least(config, f"{s}.num_steps", 0)
    config_check.at_least(config, f"{s}.kl_weight", 0, integer=False)
    config_check.at_least(config, f"{s}.vgg_weight", 0, integer=False)
    config_check.above(config, f"{s}.lr", 0)
    config_check.in_range(config, f"{s}.b1", 0, 1)
    config_check.in_range(config, f"{s}.b2", 0, 1)
    config_check.in_range(config, f"{s}.decay_fraction", 0, 1, high_open=False)
    if not isinstance(config.vae_stage.pretrained, str):
        raise ValueError("config.vae_stage.pretrained must be a workdir path or ''")
    if config.vae_stage.vgg_weight > 0 and config.vae_stage.vgg_layer not in vgg.LAYERS:
        raise ValueError(
            f"unknown config.vae_stage.vgg_layer {config.vae_stage.vgg_layer!r}; "
            f"valid: {', '.join(vgg.LAYERS)}"
        )


def stages(config: ml_collections.ConfigDict) -> tuple[base.Stage, ...]:
    """("vae", vae_stage.num_steps, or 0 with a pretrained VAE), ("cyclegan", train.num_steps)."""
    vae_steps = 0 if config.vae_stage.pretrained else config.vae_stage.num_steps
    return base.make_stages(("vae", vae_steps), ("cyclegan", config.train.num_steps))


def _vae_optim_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The stage-1 optimiser as a config `optim.adam` reads: `vae_stage`'s lr, betas and
    decay over `vae_stage.num_steps`."""
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
    """Fresh VAE and latent CycleGAN (N(0, 0.02) convolutions), Adam states, empty pools."""
    size = config.data.size
    x = jnp.zeros((1, size, size, 3), jnp.float32)
    z = jnp.zeros((1, *latent_shape(config)), jnp.float32)
    enc, dec = vae_nets(config)
    k_enc, k_dec, *k_nets = jax.random.split(jax.random.fold_in(rng, 0), 6)
    vae_params = {
        "encoder": enc.init(k_enc, x, train=False)["params"],
        "decoder": dec.init(k_dec, z, train=False)["params"],
    }
    nets = latent_nets(config)
    params = {
        name: net.init(k, z, train=False)["params"]
        for (name, net), k in zip(nets.items(), k_nets, strict=True)
    }
    g_params = {k: params[k] for k in ("g", "f")}
    d_params = {k: params[k] for k in ("d_x", "d_y")}
    tx = optim.adam(config)
    extra = optim.ema_init(config, g_params)
    if vgg_layers(config):  # Placeholders; `load_frozen` puts the weights in.
        shapes = vgg.param_shapes(vgg_layers(config))
        extra["frozen"] = {"vgg": jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), shapes)}
    pool_size = config.loss.pool_size
    return {
        **extra,
        "step": jnp.zeros((), jnp.int32),
        "rng": rngs.to_data(jax.random.fold_in(rng, 1)),
        "vae": vae_params,
        "opt_vae": optim.adam(_vae_optim_config(config)).init(vae_params),
        "params": params,
        "opt_g": tx.init(g_params),
        "opt_d": tx.init(d_params),
        "pool_x": pool.init(pool_size, latent_shape(config)),
        "pool_y": pool.init(pool_size, latent_shape(config)),
    }


def _shapes(tree: Any) -> dict[str, tuple[int, ...]]:
    return {
        jax.tree_util.keystr(path): tuple(np.shape(leaf))
        for path, leaf in jax.tree_util.tree_leaves_with_path(tree)
    }


def pretrained_vae(config: ml_collections.ConfigDict, want: Any) -> Any:
    """The VAE parameters of the run `vae_stage.pretrained` names, checked against the
    shapes of `want`; ValueError / FileNotFoundError (one line, naming it) otherwise."""
    from jaxfaces.methods import get_method  # The registry imports this module.
    from jaxfaces.training import checkpoint

    path = config.vae_stage.pretrained
    where = f"config.vae_stage.pretrained ({path})"
    try:
        saved, state, step = checkpoint.load(path)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"{where}: {e}") from e
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from e
    try:
        method = get_method(saved.method)
    except ValueError:
        method = None
    if method is not METHOD or "vae" not in state:
        raise ValueError(f"{where}: a {saved.method!r} run, not a cyclegan_vae one: it has no VAE")
    vae_stop = stages(saved)[0].stop
    if step < vae_stop:
        raise ValueError(
            f"{where}: its newest checkpoint (step {step}) is inside its VAE stage "
            f"({vae_stop} steps): finish that run first"
        )
    got, wanted = _shapes(state["vae"]), _shapes(want)
    if got != wanted:
        bad = min(k for k in got.keys() | wanted.keys() if got.get(k) != wanted.get(k))
        changed = [
            f"{k} {saved.model.vae.get(k)} -> {v}"
            for k, v in config.model.vae.items()
            if saved.model.vae.get(k) != v
        ]
        if saved.data.size != config.data.size:
            changed.append(f"data.size {saved.data.size} -> {config.data.size}")
        raise ValueError(
            f"{where}: its VAE does not fit config.model.vae ({bad} is {got.get(bad)} there, "
            f"{wanted.get(bad)} here; changed: {', '.join(changed) or 'none'})"
        )
    return state["vae"]


def load_frozen(config: ml_collections.ConfigDict, state: State) -> State:
    """Puts the pretrained VAE (`vae_stage.pretrained`) and the VGG19 weights of the VAE's
    feature term into a fresh state, as the config asks."""
    if config.vae_stage.pretrained:
        state = {**state, "vae": pretrained_vae(config, state["vae"])}
        print(f"VAE from {config.vae_stage.pretrained}: stage 1 skipped", flush=True)
    if "frozen" in state:
        params, described = vgg.resolve_params(config.vgg.weights)
        print(f"VGG19 weights for the VAE's feature term: {described}", flush=True)
        shapes = vgg.param_shapes(vgg_layers(config))
        state = {**state, "frozen": {"vgg": {k: params[k] for k in shapes}}}
    return state


# --------------------------------------------------------------------------- stage 1


def _make_vae_step(config: ml_collections.ConfigDict, stage: base.Stage):
    """Stage 1: the VAE on the images of both domains; nothing else changes."""
    enc, dec = vae_nets(config)
    opt_config = _vae_optim_config(config)
    tx, schedule = optim.adam(opt_config), optim.lr_schedule(opt_config)
    s = config.vae_stage
    feature_layers = vgg_layers(config)
    net = vgg.VGG19(pool=config.vgg.pool) if feature_layers else None

    def loss_fn(params, x, key, vgg_params):
        mean, logvar = enc.apply({"params": params["encoder"]}, x)
        rec = dec.apply({"params": params["decoder"]}, vae.reparameterize(mean, logvar, key))
        n = x.shape[0] // 2  # Domain A, then B.
        terms = {
            "vae_l1_a": losses.l1(rec[:n], x[:n]),
            "vae_l1_b": losses.l1(rec[n:], x[n:]),
            "kl": jnp.mean(vae.kl_to_standard_normal(mean, logvar)),
        }
        total = losses.l1(rec, x) + s.kl_weight * terms["kl"]
        if feature_layers:  # One VGG19 pass over reconstructions and inputs.
            f = net.apply({"params": vgg_params}, jnp.concatenate([rec, x]), feature_layers)
            f = f[feature_layers[0]]
            terms["vgg"] = losses.l1(f[: x.shape[0]], jax.lax.stop_gradient(f[x.shape[0] :]))
            total = total + s.vgg_weight * terms["vgg"]
        return total, terms

    def train_step(state: State, batch: dict[str, jax.Array]) -> tuple[State, dict]:
        key = jax.random.fold_in(rngs.from_data(state["rng"]), state["step"])
        x = jnp.concatenate([batch["a"], batch["b"]])
        vgg_params = state["frozen"]["vgg"] if feature_layers else None
        total_fn = functools.partial(loss_fn, x=x, key=key, vgg_params=vgg_params)
        (total, terms), grads = jax.value_and_grad(total_fn, has_aux=True)(state["vae"])
        updates, opt_vae = tx.update(grads, state["opt_vae"], state["vae"])
        metrics = {f"loss/{k}": v for k, v in terms.items()}
        metrics["loss/vae_total"] = total
        metrics["lr"] = schedule(state["step"] - stage.start)
        new_state = {
            **state,
            "step": state["step"] + 1,
            "vae": optax.apply_updates(state["vae"], updates),
            "opt_vae": opt_vae,
        }
        return new_state, metrics

    return train_step


# --------------------------------------------------------------------------- stage 2


def _make_cyclegan_step(config: ml_collections.ConfigDict, stage: base.Stage):
    """Stage 2: the CycleGAN between the frozen encoder's latent spaces."""
    nets = latent_nets(config)
    encode = encode_mean(config)
    tx, schedule = optim.adam(config), optim.lr_schedule(config)
    cfg = config.loss

    def gan(logits, real, discriminator=False):
        return losses.gan_loss(logits, real, cfg.gan_mode, discriminator)

    def run(params, name, z):
        return nets[name].apply({"params": params[name]}, z)

    def train_step(state: State, batch: dict[str, jax.Array]) -> tuple[State, dict]:
        key = jax.random.fold_in(rngs.from_data(state["rng"]), state["step"])
        k_pool_x, k_pool_y, k_gp = jax.random.split(key, 3)
        enc_params = state["vae"]["encoder"]
        z, w = (jax.lax.stop_gradient(encode(enc_params, batch[k])) for k in ("a", "b"))
        d_params = {k: state["params"][k] for k in ("d_x", "d_y")}
        g_params = {k: state["params"][k] for k in ("g", "f")}

        def g_loss_fn(g_params):
            p = {**g_params, **d_params}
            fake_w, fake_z = run(p, "g", z), run(p, "f", w)
            terms = {
                "g": gan(run(p, "d_y", fake_w), True),
                "f": gan(run(p, "d_x", fake_z), True),
                "cycle_a": cfg.lambda_a * losses.l1(run(p, "f", fake_w), z),
                "cycle_b": cfg.lambda_b * losses.l1(run(p, "g", fake_z), w),
            }
            if cfg.lambda_identity > 0:
                idt = cfg.lambda_identity
                terms["idt_a"] = cfg.lambda_b * idt * losses.l1(run(p, "g", w), w)
                terms["idt_b"] = cfg.lambda_a * idt * losses.l1(run(p, "f", z), z)
            return sum(terms.values()), (terms, fake_w, fake_z)

        (loss_g, (terms, fake_w, fake_z)), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(
            g_params
        )
        g_updates, opt_g = tx.update(g_grads, state["opt_g"], g_params)
        g_params = optax.apply_updates(g_params, g_updates)

        pool_x, pooled_z = pool.query(state["pool_x"], jax.lax.stop_gradient(fake_z), k_pool_x)
        pool_y, pooled_w = pool.query(state["pool_y"], jax.lax.stop_gradient(fake_w), k_pool_y)

        def d_loss_fn(d_params):
            out = {}
            for name, real, fake, tag in (("d_y", w, pooled_w, 0), ("d_x", z, pooled_z, 1)):
                out[name] = 0.5 * (
                    gan(run(d_params, name, real), True, True)
                    + gan(run(d_params, name, fake), False, True)
                )
                if cfg.gan_mode == "wgan-gp":
                    critic = functools.partial(run, d_params, name)
                    out[f"gp_{name[-1]}"] = cfg.gp_weight * losses.gradient_penalty(
                        critic, real, fake, jax.random.fold_in(k_gp, tag)
                    )
            return sum(out.values()), out

        (_, d_terms), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(d_params)
        d_updates, opt_d = tx.update(d_grads, state["opt_d"], d_params)
        d_params = optax.apply_updates(d_params, d_updates)

        extra = optim.ema_update(config, state, g_params)
        metrics = {f"loss/{k}": v for k, v in {**terms, **d_terms}.items()}
        metrics["loss/g_total"] = loss_g
        metrics["lr"] = schedule(state["step"] - stage.start)
        new_state = {
            **state,
            **extra,
            "step": state["step"] + 1,
            "params": {**g_params, **d_params},
            "opt_g": opt_g,
            "opt_d": opt_d,
            "pool_x": pool_x,
            "pool_y": pool_y,
        }
        return new_state, metrics

    return train_step


def make_train_step(
    config: ml_collections.ConfigDict, stage: base.Stage
) -> Callable[[State, dict], tuple[State, dict]]:
    """Returns the pure `train_step(state, batch) -> (state, metrics)` of `stage`."""
    check_config(config)
    layers.check_choice("stage", stage.name, STAGES)
    if stage.name == "vae":
        return _make_vae_step(config, stage)
    return _make_cyclegan_step(config, stage)


# --------------------------------------------------------------------------- inference


def translator_variables(state: State, direction: str) -> dict[str, Any] | None:
    """{"encoder", "decoder", "generator"} parameters for `direction` (the generator's
    moving average when the state keeps one), or None when the state has no such generator."""
    name = GENERATOR_OF[base.check_direction(direction)]
    generators = state.get("ema") or state.get("params") or {}
    if name not in generators or "vae" not in state:
        return None
    return {
        "encoder": state["vae"]["encoder"],
        "decoder": state["vae"]["decoder"],
        "generator": generators[name],
    }


def make_translate(config: ml_collections.ConfigDict) -> Callable[[dict, jax.Array], jax.Array]:
    """Returns `translate(translator_variables, images) -> D(G(E(images)))`."""
    encode = encode_mean(config)
    _, dec = vae_nets(config)
    gen = latent_nets(config)["g"]

    def translate(variables: dict[str, Any], x: jax.Array) -> jax.Array:
        z = gen.apply({"params": variables["generator"]}, encode(variables["encoder"], x))
        return dec.apply({"params": variables["decoder"]}, z, train=False)

    return translate


def make_reconstruct(config: ml_collections.ConfigDict) -> Callable[[dict, jax.Array], jax.Array]:
    """Returns `reconstruct(vae params, images) -> D(E(images))` (the posterior means)."""
    encode = encode_mean(config)
    _, dec = vae_nets(config)
    return lambda p, x: dec.apply({"params": p["decoder"]}, encode(p["encoder"], x), train=False)


def reconstruction_l1(config: ml_collections.ConfigDict, state: State, images: np.ndarray) -> float:
    """Mean L1 of D(E(x)) to x over a set of [-1, 1] images (the VAE's reconstruction
    error, which bounds how close a translation can get to its target)."""
    fn = jax.jit(functools.partial(make_reconstruct(config), state["vae"]))
    rec = batching.apply_batched(lambda x: fn(jnp.asarray(x)), np.asarray(images, np.float32))
    return float(np.mean(metrics.l1(np.asarray(rec), images)))


def make_critic(config: ml_collections.ConfigDict) -> base.Critic:
    """The latent critics for evaluation, on images: D_Y(E(x)) judges AtoB's translations
    (it learnt domain B's latents), D_X(E(x)) BtoA's."""
    encode = encode_mean(config)
    critic = latent_nets(config)["d_y"]
    apply = jax.jit(
        lambda v, x: critic.apply({"params": v["critic"]}, encode(v["encoder"], x), train=False)
    )

    def variables(state: State, direction: str) -> dict[str, Any] | None:
        params = state.get("params") or {}
        name = CRITIC_OF[base.check_direction(direction)]
        if name not in params or "vae" not in state:
            return None
        return {"encoder": state["vae"]["encoder"], "critic": params[name]}

    def logits(v: dict[str, Any], images: np.ndarray) -> np.ndarray:
        return batching.apply_batched(functools.partial(apply, v), np.asarray(images))

    try:
        threshold, why = metrics.gan_threshold(config.loss.gan_mode), ""
    except ValueError:
        threshold = None
        why = f"gan_mode {config.loss.gan_mode!r} has no real / fake decision threshold"
    return base.Critic(variables=variables, logits=logits, threshold=threshold, no_threshold=why)


def make_visuals(
    config: ml_collections.ConfigDict, stage: base.Stage
) -> Callable[[State, dict], dict]:
    """Stage 1: input | VAE reconstruction per domain. Stage 2: input | translation
    (decoded) | cycle reconstruction (decoded) each way."""
    reconstruct, translate = make_reconstruct(config), make_translate(config)

    def vae_visuals(state: State, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
        return {
            f"vae_{k.upper()}": jnp.concatenate([batch[k], reconstruct(state["vae"], batch[k])], 2)
            for k in ("a", "b")
        }

    def gan_visuals(state: State, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
        ab, ba = (translator_variables(state, d) for d in base.DIRECTIONS)
        fake_b, fake_a = translate(ab, batch["a"]), translate(ba, batch["b"])
        return {
            "AtoB": jnp.concatenate([batch["a"], fake_b, translate(ba, fake_b)], axis=2),
            "BtoA": jnp.concatenate([batch["b"], fake_a, translate(ab, fake_a)], axis=2),
        }

    return vae_visuals if stage.name == "vae" else gan_visuals


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
