"""BicycleGAN (Zhu et al., NeurIPS 2017): many plausible translations of one image.

pix2pix with a latent code z (N(0, I), `model.generator.nz` dimensions) given to the U-Net
(`model.generator.where_add`: "input" or "all" levels), a ResNet encoder E of target
images to a Gaussian over z, and two multi-scale discriminators. One train step is the
authors' `optimize_parameters` (junyanz/BicycleGAN, models/bicycle_gan_model.py) on a batch
of pairs (A, B) split in halves:

- cVAE-GAN, first half: z_e = mu + exp(logvar / 2) eps with (mu, logvar) = E(B1);
  G(A1, z_e) should reproduce B1 (`loss.lambda_l1` x L1) and fool D (`lambda_gan`);
  KL(N(mu, exp(logvar)) || N(0, I)) summed over the codes and dimensions (`lambda_kl`).
- cLR-GAN: z_r ~ N(0, I); G(A1, z_r) should fool D2 (`lambda_gan2`, real images: the
  second half B2), and E must recover z_r from it: `lambda_z` x L1(mu(E(G(A1, z_r))), z_r).
  This latent term updates G only: E's parameters get no gradient from it (the authors
  freeze E for it), though it reaches G through E.
- G and E are updated together (Adam each; one optax Adam over both is the same update);
  then D on (B1 real, G(A1, z_e) fake) and D2 on (B2 real, G(A1, z_r) fake) with the fakes
  of that same forward pass. D losses are the sum over scales of real + fake terms, not
  halved (as the authors'). LSGAN by default; `model.discriminator.conditional` gives D
  the input beside the image (the authors' --conditional_D, off by default).

Translation (`make_translate`) uses z = 0, the prior's mean; `make_latent` gives
translate.py and evaluation the translation with any z, and E's mean as the code of a
target image. Networks run in inference mode at test time (no dropout: the diversity is
z's alone). Norms: instance (the authors') or none; batch norm is refused.

`bicyclegan.directions`: AtoB (the authors' one model), BtoA, or both (two independent
models trained side by side on the same pairs).

State: step, rng, params/{g_T, e_T, d_T, d2_T} for each trained direction T, opt_g
(over every g_T and e_T), opt_d (over every d_T and d2_T).
"""

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxfaces import batching, losses, metrics, optim
from jaxfaces import rng as rngs
from jaxfaces.methods import base
from jaxfaces.models import bicyclegan as nets
from jaxfaces.models import generators, layers

State = dict[str, Any]
DIRECTION_CHOICES = ("both", "AtoB", "BtoA")
#: direction -> (input domain, output domain) in a batch {"a", "b"} of pairs.
DOMAINS = {"AtoB": ("a", "b"), "BtoA": ("b", "a")}
NORMS = ("instance", "none")
GAN_MODES = ("lsgan", "vanilla", "hinge")
#: Keys of the fixed latent codes of the training visuals.
VISUAL_SEED = 0


class Networks(NamedTuple):
    g: nn.Module
    e: nn.Module
    d: nn.Module  # D and D2 share the architecture, not the weights.


def directions(config: ml_collections.ConfigDict) -> tuple[str, ...]:
    """The directions this run trains (`bicyclegan.directions`: both | AtoB | BtoA)."""
    which = layers.check_choice(
        "config.bicyclegan.directions", config.bicyclegan.directions, DIRECTION_CHOICES
    )
    return tuple(DOMAINS) if which == "both" else (which,)


def nz(config: ml_collections.ConfigDict) -> int:
    """The size of z (`model.generator.nz`, an integer >= 1)."""
    value = config.model.generator.get("nz")
    if not isinstance(value, int) or value < 1:
        raise ValueError(f"config.model.generator.nz must be an integer >= 1, got {value!r}")
    return value


def models(config: ml_collections.ConfigDict, dtype: Any = None) -> Networks:
    """(G, E, D) computing in `dtype` (default `train.dtype`; parameters stay float32)."""
    if dtype is None:
        dtype = layers.compute_dtype(config.train.get("dtype", "float32"))
    size = nz(config)
    return Networks(
        g=generators.make_generator(config.model.generator, dtype),
        e=nets.make_encoder(config.model.encoder, size, dtype),
        d=nets.make_discriminator(config.model.discriminator, dtype),
    )


def check_config(config: ml_collections.ConfigDict) -> None:
    """Raises ValueError naming the key of a bad setting (before anything compiles)."""
    directions(config)
    if config.model.generator.name not in generators.UNETS:
        raise ValueError(
            f"config.model.generator.name must be a U-Net ({', '.join(generators.UNETS)}), "
            f"got {config.model.generator.name!r}"
        )
    g, e, _ = models(config)
    for part in ("generator", "encoder", "discriminator"):
        layers.check_choice(f"config.model.{part}.norm", config.model[part].norm, NORMS)
    layers.check_choice("config.loss.gan_mode", config.loss.gan_mode, GAN_MODES)
    for key in ("lambda_l1", "lambda_gan", "lambda_gan2", "lambda_z", "lambda_kl"):
        if not config.loss[key] >= 0:
            raise ValueError(f"config.loss.{key} must be >= 0, got {config.loss[key]}")
    if not isinstance(config.model.discriminator.get("conditional"), bool):
        raise ValueError("config.model.discriminator.conditional must be True or False")
    batch = config.data.batch_size
    if batch < 2 or batch % 2:
        raise ValueError(
            f"config.data.batch_size ({batch}) must be even: half the pairs train the "
            "encoded (cVAE-GAN) part, half the random-z (cLR-GAN) part"
        )
    if not (config.data.get("paired", False) or config.data.get("aligned", False)):
        raise ValueError(
            "bicyclegan trains on pairs: set config.data.paired=True (same-named files) or "
            "config.data.aligned=True (A|B images)"
        )
    for what, net in (("config.model.generator", g), ("config.model.encoder", e)):
        if config.data.size % net.stride:
            raise ValueError(
                f"config.data.size ({config.data.size}) must be a multiple of {net.stride}, "
                f"the stride of {what}"
            )


def init_state(config: ml_collections.ConfigDict, rng: jax.Array) -> State:
    """Fresh G, E, D, D2 for each trained direction (N(0, 0.02) weights) and Adam states."""
    check_config(config)
    net = models(config)
    size = config.data.size
    x = jnp.zeros((1, size, size, 3), jnp.float32)
    d_in = jnp.zeros((1, size, size, 6 if config.model.discriminator.conditional else 3))
    z = jnp.zeros((1, nz(config)), jnp.float32)
    params = {}
    for i, t in enumerate(directions(config)):
        k_g, k_e, k_d, k_d2 = jax.random.split(jax.random.fold_in(jax.random.fold_in(rng, 0), i), 4)
        params[f"g_{t}"] = net.g.init({"params": k_g}, x, train=False, z=z)["params"]
        params[f"e_{t}"] = net.e.init({"params": k_e}, x, train=False)["params"]
        params[f"d_{t}"] = net.d.init({"params": k_d}, d_in, train=False)["params"]
        params[f"d2_{t}"] = net.d.init({"params": k_d2}, d_in, train=False)["params"]
    tx = optim.adam(config)
    return {
        "step": jnp.zeros((), jnp.int32),
        "rng": rngs.to_data(jax.random.fold_in(rng, 1)),
        "params": params,
        "opt_g": tx.init(_generator_side(params)),
        "opt_d": tx.init(_discriminator_side(params)),
    }


def _generator_side(params: dict) -> dict:
    return {k: v for k, v in params.items() if k[:2] in ("g_", "e_")}


def _discriminator_side(params: dict) -> dict:
    return {k: v for k, v in params.items() if k.startswith("d")}


# --------------------------------------------------------------------------- losses


def kl_loss(mu: jax.Array, logvar: jax.Array) -> jax.Array:
    """The authors' KL term: -1/2 sum(1 + logvar - mu^2 - exp(logvar)) over every code and
    dimension (a sum, not a mean), float32."""
    mu, logvar = mu.astype(jnp.float32), logvar.astype(jnp.float32)
    return -0.5 * jnp.sum(1.0 + logvar - jnp.square(mu) - jnp.exp(logvar))


def latent_l1(predicted: jax.Array, z: jax.Array) -> jax.Array:
    """The latent regression term: mean |E(G(A, z)) - z|."""
    return losses.l1(predicted, z)


def multi_gan(logits: list[jax.Array], real: bool, mode: str, discriminator: bool = False):
    """The GAN loss summed over the scales of a multi-scale discriminator."""
    return sum(losses.gan_loss(x, real, mode, discriminator) for x in logits)


def draw_noise(key: jax.Array, half: int, size: int) -> tuple[jax.Array, jax.Array]:
    """(eps for the reparameterisation, z_random), each (half, size) from N(0, I)."""
    k_eps, k_z = jax.random.split(key)
    return (
        jax.random.normal(k_eps, (half, size), jnp.float32),
        jax.random.normal(k_z, (half, size), jnp.float32),
    )


def split_halves(a: jax.Array, b: jax.Array) -> tuple[jax.Array, ...]:
    """(A1, B1, A2, B2): the encoded half and the random half of a batch of pairs."""
    half = a.shape[0] // 2
    return a[:half], b[:half], a[half:], b[half:]


def _d_input(conditional: bool, condition: jax.Array, image: jax.Array) -> jax.Array:
    return jnp.concatenate([condition, image], -1) if conditional else image


def generator_losses(
    config: ml_collections.ConfigDict,
    net: Networks,
    params: dict[str, Any],
    a: jax.Array,
    b: jax.Array,
    eps: jax.Array,
    z_random: jax.Array,
    dropout_key: jax.Array,
) -> tuple[dict[str, jax.Array], dict[str, jax.Array]]:
    """One direction's G and E terms (weighted) on a batch of pairs (a -> b).

    Args:
      params: {"g", "e", "d", "d2"}: that direction's network parameters.
      eps, z_random: (half, nz) noise: the reparameterisation's and the cLR-GAN's code.

    Returns:
      ({"G_GAN", "G_GAN2", "G_L1", "kl", "z_L1"}, {"fake_encoded", "fake_random"}).
    """
    cfg, conditional = config.loss, config.model.discriminator.conditional
    a1, b1, _, _ = split_halves(a, b)
    mu, logvar = net.e.apply({"params": params["e"]}, b1, train=True)
    z_encoded = mu + jnp.exp(0.5 * logvar) * eps
    k1, k2 = jax.random.split(dropout_key)
    generate = functools.partial(net.g.apply, {"params": params["g"]}, a1, True)
    fake_encoded = generate(z=z_encoded, rngs={"dropout": k1})
    fake_random = generate(z=z_random, rngs={"dropout": k2})
    judge = lambda p, x: net.d.apply({"params": p}, _d_input(conditional, a1, x))  # noqa: E731
    # E frozen for the latent term: its parameters get no gradient, G still does.
    mu2, _ = net.e.apply({"params": jax.lax.stop_gradient(params["e"])}, fake_random)
    terms = {
        "G_GAN": cfg.lambda_gan * multi_gan(judge(params["d"], fake_encoded), True, cfg.gan_mode),
        "G_GAN2": cfg.lambda_gan2 * multi_gan(judge(params["d2"], fake_random), True, cfg.gan_mode),
        "G_L1": cfg.lambda_l1 * losses.l1(fake_encoded, b1),
        "kl": cfg.lambda_kl * kl_loss(mu, logvar),
        "z_L1": cfg.lambda_z * latent_l1(mu2, z_random),
    }
    return terms, {"fake_encoded": fake_encoded, "fake_random": fake_random}


def discriminator_losses(
    config: ml_collections.ConfigDict,
    net: Networks,
    params: dict[str, Any],
    a: jax.Array,
    b: jax.Array,
    fakes: dict[str, jax.Array],
) -> dict[str, jax.Array]:
    """One direction's D terms: D on B1 (real) vs G(A1, z_e); D2 on B2 vs G(A1, z_r)."""
    mode, conditional = config.loss.gan_mode, config.model.discriminator.conditional
    a1, b1, a2, b2 = split_halves(a, b)
    terms = {}
    for name, p, real, fake in (
        ("D", params["d"], (a1, b1), (a1, fakes["fake_encoded"])),
        ("D2", params["d2"], (a2, b2), (a1, fakes["fake_random"])),
    ):
        judge = lambda x, p=p: net.d.apply({"params": p}, _d_input(conditional, *x))  # noqa: E731
        fake = (fake[0], jax.lax.stop_gradient(fake[1]))
        terms[f"{name}_fake"] = multi_gan(judge(fake), False, mode, True)
        terms[f"{name}_real"] = multi_gan(judge(real), True, mode, True)
    return terms


def _direction_params(params: dict, t: str) -> dict:
    return {
        "g": params[f"g_{t}"],
        "e": params[f"e_{t}"],
        "d": params[f"d_{t}"],
        "d2": params[f"d2_{t}"],
    }


def make_train_step(
    config: ml_collections.ConfigDict, stage: base.Stage | None = None
) -> Callable[[State, dict], tuple[State, dict]]:
    """Returns the pure `train_step(state, batch) -> (state, metrics)` to jit."""
    del stage
    check_config(config)
    net = models(config)
    tx = optim.adam(config)
    schedule = optim.lr_schedule(config)
    trained = directions(config)
    size = nz(config)
    half = config.data.batch_size // 2

    def train_step(state: State, batch: dict[str, jax.Array]) -> tuple[State, dict]:
        key = jax.random.fold_in(rngs.from_data(state["rng"]), state["step"])
        params = state["params"]
        data = {t: (batch[DOMAINS[t][0]], batch[DOMAINS[t][1]]) for t in trained}
        noise = {
            t: draw_noise(jax.random.fold_in(key, i), half, size) for i, t in enumerate(trained)
        }
        drop = {t: jax.random.fold_in(key, 100 + i) for i, t in enumerate(trained)}

        def ge_loss(ge_params):
            terms, fakes = {}, {}
            for t in trained:
                p = _direction_params({**params, **ge_params}, t)
                tt, fakes[t] = generator_losses(config, net, p, *data[t], *noise[t], drop[t])
                terms.update({f"{t}_{k}": v for k, v in tt.items()})
            return sum(terms.values()), (terms, fakes)

        ge_params = _generator_side(params)
        (loss_g, (g_terms, fakes)), grads = jax.value_and_grad(ge_loss, has_aux=True)(ge_params)
        updates, opt_g = tx.update(grads, state["opt_g"], ge_params)
        ge_params = optax.apply_updates(ge_params, updates)

        def d_loss(d_params):
            terms = {}
            for t in trained:
                p = _direction_params({**params, **d_params}, t)
                tt = discriminator_losses(config, net, p, *data[t], fakes[t])
                terms.update({f"{t}_{k}": v for k, v in tt.items()})
            return sum(terms.values()), terms

        d_params = _discriminator_side(params)
        (_, d_terms), d_grads = jax.value_and_grad(d_loss, has_aux=True)(d_params)
        updates, opt_d = tx.update(d_grads, state["opt_d"], d_params)
        d_params = optax.apply_updates(d_params, updates)

        out = {f"loss/{k}": v for k, v in {**g_terms, **d_terms}.items()}
        out["loss/g_total"] = loss_g
        out["lr"] = schedule(state["step"])
        new_state = {
            **state,
            "step": state["step"] + 1,
            "params": {**ge_params, **d_params},
            "opt_g": opt_g,
            "opt_d": opt_d,
        }
        return new_state, out

    return train_step


# --------------------------------------------------------------------------- inference


def translator_variables(state: State, direction: str) -> dict[str, Any] | None:
    """{"g": G's variables, "e": E's (when the state has it)} for `direction`, or None."""
    t = base.check_direction(direction)
    g = base.network_variables(state, f"g_{t}")
    if g is None:
        return None
    e = base.network_variables(state, f"e_{t}")
    return {"g": g} if e is None else {"g": g, "e": e}


def make_latent(config: ml_collections.ConfigDict) -> base.Latent:
    """Translation with a given z (N, nz) and E's mean code of target images."""
    net = models(config, jnp.float32)

    def translate(variables: dict, images: jax.Array, z: jax.Array) -> jax.Array:
        return net.g.apply(variables["g"], images, train=False, z=z)

    def encode(variables: dict, images: jax.Array) -> jax.Array:
        if "e" not in variables:
            raise ValueError("this checkpoint has no encoder E for that direction")
        return net.e.apply(variables["e"], images, train=False)[0]

    return base.Latent(dim=nz(config), translate=translate, encode=encode)


def make_translate(config: ml_collections.ConfigDict) -> Callable[[dict, jax.Array], jax.Array]:
    """Returns `translate(translator_variables, images) -> images` with z = 0 (the mean of
    the prior: one deterministic output per input)."""
    latent = make_latent(config)

    def translate(variables: dict, images: jax.Array) -> jax.Array:
        z = jnp.zeros((images.shape[0], latent.dim), jnp.float32)
        return latent.translate(variables, images, z)

    return translate


def spatial_multiple(config: ml_collections.ConfigDict) -> int:
    """Image sides must be multiples of the U-Net's and the encoder's strides."""
    g = generators.make_generator(config.model.generator)
    e = nets.make_encoder(config.model.encoder, nz(config))
    return int(max(g.stride, e.stride))  # Both powers of 2.


def make_critic(config: ml_collections.ConfigDict) -> base.Critic:
    """D of each direction (the cVAE-GAN's) for evaluation: every scale's patch logits of
    an image, flattened side by side; conditional when `model.discriminator.conditional`."""
    d = nets.make_discriminator(config.model.discriminator)
    conditional = bool(config.model.discriminator.conditional)

    def flat(variables, x):
        maps = d.apply(variables, x, train=False)
        return jnp.concatenate([m.reshape(m.shape[0], -1) for m in maps], axis=1)

    apply = jax.jit(flat)

    def logits(variables: dict, images: np.ndarray, inputs: np.ndarray | None = None) -> np.ndarray:
        x = np.asarray(images)
        if conditional:
            x = np.concatenate([np.asarray(inputs), x], axis=-1)
        return batching.apply_batched(functools.partial(apply, variables), x)

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
        conditional=conditional,
    )


def make_visuals(
    config: ml_collections.ConfigDict, stage: base.Stage | None = None
) -> Callable[[State, dict], dict]:
    """Returns `visuals(state, batch)`: input | G(input, E(truth)) | two random-z outputs |
    truth, for each trained direction (the same random codes at every call)."""
    del stage
    latent = make_latent(config)
    trained = directions(config)

    def visuals(state: State, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
        rows = {}
        for t in trained:
            src, dst = (batch[k][:4] for k in DOMAINS[t])
            v = translator_variables(state, t)
            outs = [latent.translate(v, src, latent.encode(v, dst))]
            for i in range(2):
                z = jax.random.normal(rngs.key(VISUAL_SEED + i), (src.shape[0], latent.dim))
                outs.append(latent.translate(v, src, z))
            rows[t] = jnp.concatenate([src, *outs, dst], axis=2)
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
    make_latent=make_latent,
)
