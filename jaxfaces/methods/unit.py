"""UNIT (Liu, Breuel, Kautz 2017): unsupervised translation through a shared latent space.

Two VAEs, {E_1, G_1} for domain A and {E_2, G_2} for B, whose high-level layers are one
set of parameters: the last `model.generator.shared_blocks` residual blocks of the
encoders (`enc_shared`) and the first as many of the decoders (`dec_shared`). An image's
latent code is h = E(x), the mean of a unit-variance Gaussian posterior N(h, I); training
decodes samples z = h + n, n ~ N(0, I), translation decodes h. A -> B is G_2(E_1(x)),
B -> A is G_1(E_2(y)). Two multi-scale LSGAN discriminators (`model.discriminator`): D_1
(`d_a`) tells real A from B -> A translations, D_2 (`d_b`) real B from A -> B ones.

The objective is the authors' (NVlabs/UNIT and the UNIT trainer of NVlabs/MUNIT), per
domain: VAE (`recon_x_w` x L1(G(z), x) + `recon_kl_w` x KL), GAN (`gan_w` x the
generator's LSGAN loss on the translation into that domain, summed over scales) and the
VAE-like cycle (`recon_x_cyc_w` x L1 of x -> other domain -> back, + `recon_kl_cyc_w` x
the KL of the translation's code). With a unit-variance posterior the KL to N(0, I) is
sum(h^2) / 2 up to a constant; the authors' term (`kl_term`) is the mean of h^2 over the
code's elements.

One train step, in the authors' order: the discriminators on real images and this step's
translations (no image pool), then the generators against the updated discriminators. The
generators' forward pass runs once (`jax.vjp`) and serves both updates; both use the same
latent noise. Adam with the authors' coupled L2 weight decay (`optim.weight_decay`, as
PyTorch's Adam(weight_decay=...)) and their step decay (`optim.lr_policy = "step"`: x
`optim.gamma` every `optim.step_size` steps) or the project's constant-then-linear decay
("linear", `train.decay_fraction`).

State (a dict pytree): step, rng, params/{gen, d_a, d_b} (gen: enc_a, enc_b, enc_shared,
dec_shared, dec_a, dec_b), opt_g, opt_d, and with `train.ema_decay` > 0 ema/{gen} (a
moving average of the generators' parameters, which translation then uses).
"""

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxfaces import batching, config_check, losses, metrics, optim
from jaxfaces import rng as rngs
from jaxfaces.methods import base
from jaxfaces.models import discriminators, layers, unit

State = dict[str, Any]
GEN_PARTS = ("enc_a", "enc_b", "enc_shared", "dec_shared", "dec_a", "dec_b")
#: The discriminator that judges a direction's translations (it learnt the target domain).
DISCRIMINATOR_OF = {"AtoB": "d_b", "BtoA": "d_a"}
#: direction -> (source domain, target domain).
DOMAINS = {"AtoB": ("a", "b"), "BtoA": ("b", "a")}
GAN_MODES = ("lsgan", "vanilla")
LR_POLICIES = ("step", "linear")
DISC_NORMS = ("none", "instance")


# --------------------------------------------------------------------------- networks


def nets(config: ml_collections.ConfigDict) -> dict[str, Any]:
    """The modules by role: encoder, shared (the shared blocks, a `ResBlocks`), decoder,
    discriminator; computing in `train.dtype`."""
    dtype = layers.compute_dtype(config.train.get("dtype", "float32"))
    g, d = config.model.generator, config.model.discriminator
    private = g.n_res - g.shared_blocks
    common = dict(padding=g.padding, weight_init=g.init, dtype=dtype)
    return {
        "encoder": unit.Encoder(g.dim, g.n_downsample, private, **common),
        "shared": unit.ResBlocks(g.shared_blocks, **common),
        "decoder": unit.Decoder(g.n_downsample, private, **common),
        "discriminator": discriminators.MultiScale(
            d.num_scales, "munit", d.ndf, d.n_layers, d.norm, d.padding, dtype
        ),
    }


def encode(config: ml_collections.ConfigDict, gen: dict, x: jax.Array, domain: str) -> jax.Array:
    """h = E_domain(x): the domain's private encoder, then the shared blocks."""
    n = nets(config)
    f = n["encoder"].apply({"params": gen[f"enc_{domain}"]}, x)
    return n["shared"].apply({"params": gen["enc_shared"]}, f).astype(jnp.float32)


def decode(config: ml_collections.ConfigDict, gen: dict, h: jax.Array, domain: str) -> jax.Array:
    """G_domain(h): the shared blocks, then the domain's private decoder."""
    n = nets(config)
    f = n["shared"].apply({"params": gen["dec_shared"]}, h)
    return n["decoder"].apply({"params": gen[f"dec_{domain}"]}, f)


def discriminate(config: ml_collections.ConfigDict, params: Any, x: jax.Array) -> tuple:
    """A multi-scale discriminator's logit maps (finest first)."""
    return nets(config)["discriminator"].apply({"params": params}, x)


def spatial_multiple(config: ml_collections.ConfigDict) -> int:
    """The encoder's stride: image sides must be multiples of it."""
    return 2**config.model.generator.n_downsample


def code_shape(config: ml_collections.ConfigDict) -> tuple[int, int, int]:
    """(h, w, C) of the latent code of a `data.size` image."""
    g = config.model.generator
    side = config.data.size // 2**g.n_downsample
    return (side, side, g.dim * 2**g.n_downsample)


# --------------------------------------------------------------------------- losses


def kl_term(h: jax.Array) -> jax.Array:
    """The authors' KL term of a unit-variance posterior N(h, I): the mean of h^2 over the
    code's elements (KL(N(h, I) || N(0, I)) = sum(h^2) / 2: twice the per-element KL)."""
    return jnp.mean(jnp.square(h.astype(jnp.float32)))


def multiscale_gan_loss(
    outputs: tuple, target_is_real: bool, mode: str, discriminator: bool = False
) -> jax.Array:
    """`losses.gan_loss` of each scale's logits, summed over the scales (the authors')."""
    return sum(losses.gan_loss(o, target_is_real, mode, discriminator) for o in outputs)


# --------------------------------------------------------------------------- config


def check_config(config: ml_collections.ConfigDict) -> None:
    """Raises ValueError naming the key of a bad setting (before anything compiles)."""
    g = "model.generator"
    for key in ("dim", "n_res"):
        config_check.at_least(config, f"{g}.{key}", 1 if key == "dim" else 0)
    config_check.at_least(config, f"{g}.n_downsample", 0)
    config_check.at_least(config, f"{g}.shared_blocks", 0)
    if config.model.generator.shared_blocks > config.model.generator.n_res:
        raise ValueError(
            f"config.{g}.shared_blocks ({config.model.generator.shared_blocks}) must be <= "
            f"config.{g}.n_res ({config.model.generator.n_res}) (the shared blocks are "
            "the last of the encoder's and the first of the decoder's n_res)"
        )
    config_check.one_of(config, f"{g}.padding", layers.PADDINGS)
    config_check.one_of(config, f"{g}.init", unit.INITS)
    d = "model.discriminator"
    for key in ("ndf", "n_layers", "num_scales"):
        config_check.at_least(config, f"{d}.{key}", 1)
    config_check.one_of(config, f"{d}.norm", DISC_NORMS)
    config_check.one_of(config, f"{d}.padding", layers.PADDINGS)
    size, stride = config.data.size, spatial_multiple(config)
    if size % stride:
        raise ValueError(
            f"config.data.size ({size}) must be a multiple of 2**config.{g}.n_downsample ({stride})"
        )
    c = config.model.discriminator
    smallest = discriminators.multiscale_min_size(c.num_scales, c.n_layers)
    if size < smallest:
        raise ValueError(
            f"config.data.size ({size}) is too small for config.{d}.num_scales "
            f"({c.num_scales}) x n_layers ({c.n_layers}): needs >= {smallest} px"
        )
    config_check.one_of(config, "loss.gan_mode", GAN_MODES)
    for key in ("gan_w", "recon_x_w", "recon_kl_w", "recon_x_cyc_w", "recon_kl_cyc_w"):
        config_check.at_least(config, f"loss.{key}", 0, integer=False)
    config_check.one_of(config, "optim.lr_policy", LR_POLICIES)
    config_check.at_least(config, "optim.weight_decay", 0, integer=False)
    config_check.at_least(config, "optim.step_size", 1)
    config_check.in_range(config, "optim.gamma", 0, 1, low_open=True, high_open=False)


# --------------------------------------------------------------------------- optimiser


def lr_schedule(config: ml_collections.ConfigDict) -> optax.Schedule:
    """ "step": `optim.lr` x `optim.gamma` ** (step // `optim.step_size`) (the authors');
    "linear": constant, then linear decay to 0 (`optim.lr_schedule`)."""
    o = config.optim
    if o.lr_policy == "step":
        return optax.exponential_decay(o.lr, o.step_size, o.gamma, staircase=True)
    return optim.lr_schedule(config)


def optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
    """Adam (`optim.b1`, `optim.b2`) with coupled L2 weight decay, as PyTorch's
    Adam(weight_decay=wd): wd x params is added to the gradient before the moments."""
    o = config.optim
    parts = [optax.add_decayed_weights(o.weight_decay)] if o.weight_decay > 0 else []
    parts += [
        optax.scale_by_adam(b1=o.b1, b2=o.b2),
        optax.scale_by_learning_rate(lr_schedule(config)),
    ]
    return optax.chain(*parts)


# --------------------------------------------------------------------------- state


def init_state(config: ml_collections.ConfigDict, rng: jax.Array) -> State:
    """Fresh generators (`model.generator.init`) and discriminators (N(0, 0.02)), Adam
    states."""
    n = nets(config)
    x = jnp.zeros((1, config.data.size, config.data.size, 3), jnp.float32)
    names = (*GEN_PARTS, "d_a", "d_b")
    keys = dict(zip(names, jax.random.split(jax.random.fold_in(rng, 0), len(names)), strict=True))
    gen = {f"enc_{d}": n["encoder"].init(keys[f"enc_{d}"], x)["params"] for d in "ab"}
    f = n["encoder"].apply({"params": gen["enc_a"]}, x)
    gen["enc_shared"] = n["shared"].init(keys["enc_shared"], f).get("params", {})
    gen["dec_shared"] = n["shared"].init(keys["dec_shared"], f).get("params", {})
    for d in "ab":
        gen[f"dec_{d}"] = n["decoder"].init(keys[f"dec_{d}"], f)["params"]
    gen = {k: gen[k] for k in GEN_PARTS}
    disc = {k: n["discriminator"].init(keys[k], x)["params"] for k in ("d_a", "d_b")}
    tx = optimizer(config)
    extra = optim.ema_init(config, {"gen": gen})
    return {
        **extra,
        "step": jnp.zeros((), jnp.int32),
        "rng": rngs.to_data(jax.random.fold_in(rng, 1)),
        "params": {"gen": gen, **disc},
        "opt_g": tx.init(gen),
        "opt_d": tx.init(disc),
    }


# --------------------------------------------------------------------------- train step


def forward(
    config: ml_collections.ConfigDict, gen: dict, x_a: jax.Array, x_b: jax.Array, key: jax.Array
) -> dict[str, jax.Array]:
    """The generators' training pass: codes, reconstructions, translations, cycles.

    Each decoder runs once on its domain's sample and the other domain's (one batch), so
    its reconstruction and the translation into its domain share the call.
    """
    k_a, k_b, k_ab, k_ba = jax.random.split(key, 4)
    h_a, h_b = encode(config, gen, x_a, "a"), encode(config, gen, x_b, "b")
    z_a = h_a + jax.random.normal(k_a, h_a.shape)
    z_b = h_b + jax.random.normal(k_b, h_b.shape)
    n = x_a.shape[0]
    into_a = decode(config, gen, jnp.concatenate([z_a, z_b]), "a")  # recon_a | b -> a
    into_b = decode(config, gen, jnp.concatenate([z_b, z_a]), "b")  # recon_b | a -> b
    x_ba, x_ab = into_a[n:], into_b[n:]
    h_ab = encode(config, gen, x_ab, "b")  # The A image's code, read back from B.
    h_ba = encode(config, gen, x_ba, "a")
    x_aba = decode(config, gen, h_ab + jax.random.normal(k_ab, h_ab.shape), "a")
    x_bab = decode(config, gen, h_ba + jax.random.normal(k_ba, h_ba.shape), "b")
    return {
        "h_a": h_a, "h_b": h_b, "recon_a": into_a[:n], "recon_b": into_b[:n],
        "x_ab": x_ab, "x_ba": x_ba, "h_ab": h_ab, "h_ba": h_ba, "x_aba": x_aba, "x_bab": x_bab,
    }  # fmt: skip


def generator_terms(
    config: ml_collections.ConfigDict,
    out: dict[str, jax.Array],
    x_a: jax.Array,
    x_b: jax.Array,
    d_params: dict,
) -> dict[str, jax.Array]:
    """The weighted terms of the generators' loss (their sum is the loss)."""
    c = config.loss

    def adv(name, fake):
        return multiscale_gan_loss(discriminate(config, d_params[name], fake), True, c.gan_mode)

    return {
        "adv_a": c.gan_w * adv("d_a", out["x_ba"]),
        "adv_b": c.gan_w * adv("d_b", out["x_ab"]),
        "recon_a": c.recon_x_w * losses.l1(out["recon_a"], x_a),
        "recon_b": c.recon_x_w * losses.l1(out["recon_b"], x_b),
        "kl_a": c.recon_kl_w * kl_term(out["h_a"]),
        "kl_b": c.recon_kl_w * kl_term(out["h_b"]),
        "cyc_a": c.recon_x_cyc_w * losses.l1(out["x_aba"], x_a),
        "cyc_b": c.recon_x_cyc_w * losses.l1(out["x_bab"], x_b),
        "kl_cyc_a": c.recon_kl_cyc_w * kl_term(out["h_ab"]),
        "kl_cyc_b": c.recon_kl_cyc_w * kl_term(out["h_ba"]),
    }


def discriminator_terms(
    config: ml_collections.ConfigDict,
    d_params: dict,
    x_a: jax.Array,
    x_b: jax.Array,
    fake_a: jax.Array,
    fake_b: jax.Array,
) -> dict[str, jax.Array]:
    """`gan_w` x (real -> 1, fake -> 0) of each discriminator, summed over scales; one
    discriminator call on real and fake together."""
    c = config.loss
    out = {}
    for name, real, fake in (("d_a", x_a, fake_a), ("d_b", x_b, fake_b)):
        n = real.shape[0]
        logits = discriminate(config, d_params[name], jnp.concatenate([real, fake]))
        out[name] = c.gan_w * (
            multiscale_gan_loss([o[:n] for o in logits], True, c.gan_mode, True)
            + multiscale_gan_loss([o[n:] for o in logits], False, c.gan_mode, True)
        )
    return out


def make_train_step(
    config: ml_collections.ConfigDict, stage: base.Stage
) -> Callable[[State, dict], tuple[State, dict]]:
    """Returns the pure `train_step(state, batch) -> (state, metrics)`."""
    check_config(config)
    tx, schedule = optimizer(config), lr_schedule(config)

    def train_step(state: State, batch: dict[str, jax.Array]) -> tuple[State, dict]:
        key = jax.random.fold_in(rngs.from_data(state["rng"]), state["step"])
        x_a, x_b = batch["a"], batch["b"]
        gen = state["params"]["gen"]
        d_params = {k: state["params"][k] for k in ("d_a", "d_b")}
        out, pullback = jax.vjp(lambda g: forward(config, g, x_a, x_b, key), gen)

        # 1. The discriminators, on this step's translations.
        def d_loss_fn(d):
            terms = discriminator_terms(config, d, x_a, x_b, out["x_ba"], out["x_ab"])
            return sum(terms.values()), terms

        (_, d_terms), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(d_params)
        d_updates, opt_d = tx.update(d_grads, state["opt_d"], d_params)
        d_params = optax.apply_updates(d_params, d_updates)

        # 2. The generators, against the updated discriminators.
        def g_loss_fn(o):
            terms = generator_terms(config, o, x_a, x_b, d_params)
            return sum(terms.values()), terms

        (loss_g, g_terms), out_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(out)
        (g_grads,) = pullback(out_grads)
        g_updates, opt_g = tx.update(g_grads, state["opt_g"], gen)
        gen = optax.apply_updates(gen, g_updates)

        extra = optim.ema_update(config, state, {"gen": gen})
        metrics_ = {f"loss/{k}": v for k, v in {**g_terms, **d_terms}.items()}
        metrics_["loss/g_total"] = loss_g
        metrics_["lr"] = schedule(state["step"] - stage.start)
        new_state = {
            **state,
            **extra,
            "step": state["step"] + 1,
            "params": {"gen": gen, **d_params},
            "opt_g": opt_g,
            "opt_d": opt_d,
        }
        return new_state, metrics_

    return train_step


# --------------------------------------------------------------------------- inference


def _generators(state: State) -> dict | None:
    params = (state.get("ema") or state.get("params") or {}).get("gen")
    return params if params and all(k in params for k in GEN_PARTS) else None


def translator_variables(state: State, direction: str) -> dict[str, Any] | None:
    """{"encoder", "enc_shared", "dec_shared", "decoder"}: the source domain's encoder, the
    shared blocks and the target domain's decoder (their moving average when the state keeps
    one); None when the state has no generators."""
    src, dst = DOMAINS[base.check_direction(direction)]
    gen = _generators(state)
    if gen is None:
        return None
    return {
        "encoder": gen[f"enc_{src}"],
        "enc_shared": gen["enc_shared"],
        "dec_shared": gen["dec_shared"],
        "decoder": gen[f"dec_{dst}"],
    }


def make_translate(config: ml_collections.ConfigDict) -> Callable[[dict, jax.Array], jax.Array]:
    """Returns `translate(translator_variables, images) -> G_target(E_source(images))`,
    decoding the posterior mean."""

    def translate(v: dict[str, Any], x: jax.Array) -> jax.Array:
        # As a two-domain generator whose A side is the source and B side the target.
        gen = {"enc_a": v["encoder"], "enc_shared": v["enc_shared"]}
        gen.update(dec_shared=v["dec_shared"], dec_b=v["decoder"])
        return decode(config, gen, encode(config, gen, x, "a"), "b")

    return translate


def make_critic(config: ml_collections.ConfigDict) -> base.Critic:
    """The discriminators for evaluation: D_2 (`d_b`) judges AtoB's translations, D_1 BtoA's;
    every scale's every output counts (a (N, P) array, the scales' maps flattened)."""

    def flat(params, x):
        return jnp.concatenate(
            [o.reshape(o.shape[0], -1) for o in discriminate(config, params, x)], axis=1
        )

    apply = jax.jit(lambda v, x: flat(v["params"], x))

    def logits(variables: dict[str, Any], images: np.ndarray) -> np.ndarray:
        return batching.apply_batched(functools.partial(apply, variables), np.asarray(images))

    threshold = metrics.gan_threshold(config.loss.gan_mode)
    return base.Critic(
        variables=lambda state, direction: base.network_variables(
            state, DISCRIMINATOR_OF[base.check_direction(direction)]
        ),
        logits=logits,
        threshold=threshold,
    )


def make_visuals(
    config: ml_collections.ConfigDict, stage: base.Stage | None = None
) -> Callable[[State, dict], dict]:
    """Returns `visuals(state, batch)`: per direction, input | its reconstruction (own VAE) |
    translation | cycle (translated back), all decoding posterior means."""
    del stage

    def visuals(state: State, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
        gen = _generators(state)
        rows = {}
        for direction, (src, dst) in DOMAINS.items():
            x = batch[src]
            h = encode(config, gen, x, src)
            recon, fake = decode(config, gen, h, src), decode(config, gen, h, dst)
            back = decode(config, gen, encode(config, gen, fake, dst), src)
            rows[direction] = jnp.concatenate([x, recon, fake, back], axis=2)
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
)
