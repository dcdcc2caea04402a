"""CycleGAN (Zhu et al. 2017), faithful to the reference PyTorch implementation.

G_A: A -> B and G_B: B -> A; D_A tells real B from G_A's fakes, D_B real A from G_B's.
One train step, as the reference's `optimize_parameters`: both generators are updated on
adversarial + cycle + identity losses, then both discriminators on real images and on fakes
drawn through the image history pools.

The state is a plain dict pytree (it checkpoints, shards and restores without classes):
  step, rng, params/{g_a,g_b,d_a,d_b}, batch_stats/{...} (empty without batch norm),
  opt_g, opt_d, pool_a (fakes of A, for D_B), pool_b (fakes of B, for D_A),
  and, with `train.ema_decay` > 0, ema/{g_a,g_b}: an exponential moving average of the
  generators' parameters (Yazici et al. 2019), which translation then uses;
  with the VGG identity loss, frozen/vgg: the VGG19 weights (checkpointed with the rest, so
  a resumed run uses the weights it started with).

The thesis's improvements are switches, all off in the reference config: noise on the
discriminators' inputs (`loss.d_noise`), total variation (`loss.tv_weight`), PacGAN
(`model.discriminator.pack`), the VGG content + style loss in place of the pixel identity
loss (`loss.identity = "vgg"`: CycleGAN+NST), and the wgan-gp / hinge GAN losses.
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

from jaxfaces import batching, losses, metrics, noise, optim, pool
from jaxfaces import rng as rngs
from jaxfaces.methods import base
from jaxfaces.models import discriminators, generators, layers, vgg

State = dict[str, Any]
GENERATOR_OF = {"AtoB": "g_a", "BtoA": "g_b"}
#: The discriminator that judges a direction's translations (it learnt the target domain).
DISCRIMINATOR_OF = {"AtoB": "d_a", "BtoA": "d_b"}


def models(config: ml_collections.ConfigDict) -> dict[str, nn.Module]:
    """The four networks, by state key, computing in `train.dtype` (parameters stay fp32)."""
    dtype = layers.compute_dtype(config.train.get("dtype", "float32"))
    g = generators.make_generator(config.model.generator, dtype)
    d = discriminators.make_discriminator(config.model.discriminator, dtype)
    return {"g_a": g, "g_b": g, "d_a": d, "d_b": d}


def pack_size(config: ml_collections.ConfigDict) -> int:
    """PacGAN's m: images per discriminator input (1 = the plain discriminator)."""
    m = int(config.model.discriminator.get("pack", 1))
    if m < 1:
        raise ValueError(f"config.model.discriminator.pack must be >= 1, got {m}")
    return m


IDENTITY_KINDS = ("pixel", "vgg")


def uses_vgg(config: ml_collections.ConfigDict) -> bool:
    """Whether the identity loss is the VGG content + style loss (CycleGAN+NST)."""
    kind = config.loss.get("identity", "pixel")
    if kind not in IDENTITY_KINDS:
        raise ValueError(
            f"unknown config.loss.identity {kind!r}; valid: {', '.join(IDENTITY_KINDS)}"
        )
    return kind == "vgg" and config.loss.lambda_identity > 0


def vgg_layers(config: ml_collections.ConfigDict) -> tuple[str, ...]:
    """The VGG19 layers the identity loss reads."""
    c = config.loss.vgg
    return (c.content_layer, *c.style_layers)


def vgg_shapes(config: ml_collections.ConfigDict) -> dict:
    """Shape-only VGG19 parameters up to the deepest layer the identity loss reads."""
    return vgg.param_shapes(vgg_layers(config))


def load_frozen(config: ml_collections.ConfigDict, state: State) -> State:
    """Puts the VGG19 weights (`config.vgg.weights`) into a fresh state, if it uses them."""
    if "frozen" not in state:
        return state
    params, described = vgg.resolve_params(config.vgg.weights)
    print(f"VGG19 weights for the identity loss: {described}", flush=True)
    shapes = vgg_shapes(config)
    return {**state, "frozen": {"vgg": {k: params[k] for k in shapes}}}


def init_state(config: ml_collections.ConfigDict, rng: jax.Array) -> State:
    """Fresh parameters (N(0, 0.02) convolutions), optimizer states and empty pools."""
    size = config.data.size
    x = jnp.zeros((1, size, size, 3), jnp.float32)
    packed = jnp.zeros((1, size, size, 3 * pack_size(config)), jnp.float32)
    nets = models(config)
    keys = dict(zip(nets, jax.random.split(jax.random.fold_in(rng, 0), len(nets)), strict=True))
    variables = {
        name: net.init(
            {"params": keys[name], "dropout": keys[name]},
            packed if name.startswith("d_") else x,
            train=False,
        )
        for name, net in nets.items()
    }
    params = {k: v["params"] for k, v in variables.items()}
    stats = {k: v["batch_stats"] for k, v in variables.items() if "batch_stats" in v}
    tx = optim.adam(config)
    g_params = {k: params[k] for k in ("g_a", "g_b")}
    d_params = {k: params[k] for k in ("d_a", "d_b")}
    pool_size = config.loss.pool_size
    extra = optim.ema_init(config, g_params)
    if uses_vgg(config):  # Placeholders; `load_frozen` puts the weights in.
        zeros = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), vgg_shapes(config))
        extra["frozen"] = {"vgg": zeros}
    return {
        **extra,
        "step": jnp.zeros((), jnp.int32),
        "rng": rngs.to_data(jax.random.fold_in(rng, 1)),
        "params": params,
        "batch_stats": stats,
        "opt_g": tx.init(g_params),
        "opt_d": tx.init(d_params),
        "pool_a": pool.init(pool_size, (size, size, 3)),
        "pool_b": pool.init(pool_size, (size, size, 3)),
    }


class _Runner:
    """Applies the networks, threading batch-norm statistics through the calls in order."""

    def __init__(self, nets, params, stats, key, train: bool = True):
        self.nets, self.params, self.stats = nets, params, dict(stats)
        self.key, self.train, self.calls = key, train, 0

    def __call__(self, name: str, x: jax.Array) -> jax.Array:
        self.calls += 1
        variables = {"params": self.params[name]}
        net_rngs = {"dropout": jax.random.fold_in(self.key, self.calls)}
        if name not in self.stats:
            return self.nets[name].apply(variables, x, train=self.train, rngs=net_rngs)
        variables["batch_stats"] = self.stats[name]
        y, updates = self.nets[name].apply(
            variables, x, train=self.train, rngs=net_rngs, mutable=["batch_stats"]
        )
        if self.train:
            self.stats[name] = updates["batch_stats"]
        return y


def vgg_identity_terms(
    config: ml_collections.ConfigDict,
    vgg_params: Any,
    source: jax.Array,
    translated: jax.Array,
    style: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """CycleGAN+NST's (content, style) losses of a translation (`losses.content_style_identity`
    on the VGG19 features of the translation, its source and a target-domain image, computed
    in one pass), replacing the identity loss."""
    c = config.loss.vgg
    net = vgg.VGG19(pool=config.vgg.pool)
    both = net.apply(
        {"params": vgg_params}, jnp.concatenate([translated, source, style]), vgg_layers(config)
    )
    n = source.shape[0]
    f_t, f_s, f_y = ({k: v[i * n : (i + 1) * n] for k, v in both.items()} for i in range(3))
    weights = dict(zip(c.style_layers, c.style_layer_weights, strict=True))
    return losses.content_style_identity(f_t, f_s, f_y, c.content_layer, weights, c.style_form)


def check_config(config: ml_collections.ConfigDict) -> None:
    """Raises ValueError naming the key of a bad setting (before anything compiles)."""
    generators.make_generator(config.model.generator)
    discriminators.make_discriminator(config.model.discriminator)
    losses.gan_loss(jnp.zeros(()), True, config.loss.gan_mode)
    noise.check(config.loss.d_noise)
    pack_size(config)
    if uses_vgg(config):
        c = config.loss.vgg
        if c.style_form not in losses.STYLE_FORMS:
            raise ValueError(
                f"unknown config.loss.vgg.style_form {c.style_form!r}; "
                f"valid: {', '.join(losses.STYLE_FORMS)}"
            )
        if len(c.style_layers) != len(c.style_layer_weights):
            raise ValueError(
                "config.loss.vgg.style_layers and style_layer_weights differ in length"
            )


def _merged(run: Callable, name: str, *xs: jax.Array) -> list[jax.Array]:
    """`[run(name, x) for x in xs]` as one call on the batches put one after the other (for
    networks that treat each image of a batch on its own)."""
    ends = np.cumsum([x.shape[0] for x in xs])[:-1]
    return jnp.split(run(name, jnp.concatenate(xs, axis=0)), ends, axis=0)


def make_train_step(
    config: ml_collections.ConfigDict, stage: base.Stage | None = None
) -> Callable[[State, dict], tuple]:
    """Returns the pure `train_step(state, batch) -> (state, metrics)` to jit (one stage)."""
    del stage
    nets = models(config)
    tx = optim.adam(config)
    schedule = optim.lr_schedule(config)
    cfg = config.loss
    check_config(config)
    m = pack_size(config)
    vgg_identity = uses_vgg(config)
    # A discriminator that treats each image of a batch on its own (no batch norm) sees the
    # real and the fake batch in one call: the same function, half the calls, larger products.
    merge_d_calls = config.model.discriminator.norm != "batch"

    def gan(logits, real, discriminator=False):
        return losses.gan_loss(logits, real, cfg.gan_mode, discriminator)

    def train_step(state: State, batch: dict[str, jax.Array]) -> tuple[State, dict]:
        key = jax.random.fold_in(rngs.from_data(state["rng"]), state["step"])
        k_g, k_d, k_pool_a, k_pool_b = jax.random.split(key, 4)
        k_noise, k_gp = jax.random.fold_in(key, 4), jax.random.fold_in(key, 5)
        real_a, real_b = batch["a"], batch["b"]
        d_params = {k: state["params"][k] for k in ("d_a", "d_b")}
        step = state["step"]

        def d_input(x, tag):
            """A batch as D sees it: noised (per call site), then packed."""
            x = noise.apply(x, jax.random.fold_in(k_noise, tag), step, cfg.d_noise)
            return discriminators.pack(x, m)

        def discriminate(run, name, x, tag):
            return run(name, d_input(x, tag))

        def g_loss_fn(g_params):
            run = _Runner(nets, {**g_params, **d_params}, state["batch_stats"], k_g)
            fake_b = run("g_a", real_a)
            rec_a = run("g_b", fake_b)
            fake_a = run("g_b", real_b)
            rec_b = run("g_a", fake_a)
            terms = {}
            if cfg.lambda_identity > 0 and not vgg_identity:
                # idt_a: G_A keeps a real B as it is; idt_b: G_B keeps a real A.
                terms["idt_a"] = losses.l1(run("g_a", real_b), real_b) * (
                    cfg.lambda_b * cfg.lambda_identity
                )
                terms["idt_b"] = losses.l1(run("g_b", real_a), real_a) * (
                    cfg.lambda_a * cfg.lambda_identity
                )
            if vgg_identity:
                p = state["frozen"]["vgg"]
                content_a, style_a = vgg_identity_terms(config, p, real_a, fake_b, real_b)
                content_b, style_b = vgg_identity_terms(config, p, real_b, fake_a, real_a)
                terms["content_a"] = cfg.vgg.content_weight * content_a
                terms["style_a"] = cfg.vgg.style_weight * style_a
                terms["content_b"] = cfg.vgg.content_weight * content_b
                terms["style_b"] = cfg.vgg.style_weight * style_b
            terms["g_a"] = gan(discriminate(run, "d_a", fake_b, 0), True)
            terms["g_b"] = gan(discriminate(run, "d_b", fake_a, 1), True)
            terms["cycle_a"] = losses.l1(rec_a, real_a) * cfg.lambda_a
            terms["cycle_b"] = losses.l1(rec_b, real_b) * cfg.lambda_b
            if cfg.tv_weight > 0:
                tv = losses.total_variation(fake_a).mean() + losses.total_variation(fake_b).mean()
                terms["tv"] = cfg.tv_weight * tv
            total = sum(terms.values())
            return total, (terms, fake_a, fake_b, run.stats)

        g_params = {k: state["params"][k] for k in ("g_a", "g_b")}
        (loss_g, (terms, fake_a, fake_b, stats)), g_grads = jax.value_and_grad(
            g_loss_fn, has_aux=True
        )(g_params)
        g_updates, opt_g = tx.update(g_grads, state["opt_g"], g_params)
        g_params = optax.apply_updates(g_params, g_updates)

        pool_a, pooled_a = pool.query(state["pool_a"], jax.lax.stop_gradient(fake_a), k_pool_a)
        pool_b, pooled_b = pool.query(state["pool_b"], jax.lax.stop_gradient(fake_b), k_pool_b)

        def d_loss_fn(d_params):
            run = _Runner(nets, d_params, stats, k_d)
            out, gp = {}, {}
            for name, real, fake, tag in (
                ("d_a", real_b, pooled_b, 2),
                ("d_b", real_a, pooled_a, 4),
            ):
                if merge_d_calls:
                    on_real, on_fake = _merged(
                        run, name, d_input(real, tag), d_input(fake, tag + 1)
                    )
                else:
                    on_real = discriminate(run, name, real, tag)
                    on_fake = discriminate(run, name, fake, tag + 1)
                out[name] = 0.5 * (gan(on_real, True, True) + gan(on_fake, False, True))
                if cfg.gan_mode == "wgan-gp":
                    critic = lambda x, name=name: run(name, discriminators.pack(x, m))  # noqa: E731
                    gp[f"gp_{name[-1]}"] = cfg.gp_weight * losses.gradient_penalty(
                        critic, real, fake, jax.random.fold_in(k_gp, tag)
                    )
            return sum(out.values()) + sum(gp.values()), ({**out, **gp}, run.stats)

        (_, (d_terms, stats)), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(d_params)
        d_updates, opt_d = tx.update(d_grads, state["opt_d"], d_params)
        d_params = optax.apply_updates(d_params, d_updates)

        ema = optim.ema_update(config, state, g_params)
        metrics = {f"loss/{k}": v for k, v in {**terms, **d_terms}.items()}
        metrics["loss/g_total"] = loss_g
        metrics["lr"] = schedule(state["step"])
        if cfg.d_noise.kind != "none":
            metrics["d_noise"] = (
                noise.signal_weight(step, cfg.d_noise)
                if cfg.d_noise.kind == "uniform"
                else noise.noise_sigma(step, cfg.d_noise)
            )
        new_state = {
            **state,
            **ema,
            "step": state["step"] + 1,
            "params": {**g_params, **d_params},
            "batch_stats": stats,
            "opt_g": opt_g,
            "opt_d": opt_d,
            "pool_a": pool_a,
            "pool_b": pool_b,
        }
        return new_state, metrics

    return train_step


def translator_variables(state: State, direction: str) -> dict[str, Any] | None:
    """The Flax variables of the generator that translates in `direction` (AtoB | BtoA), or
    None when the state has none (a converted checkpoint may hold one generator).

    The moving average of its parameters when the state keeps one, else the parameters.
    """
    name = GENERATOR_OF[base.check_direction(direction)]
    return base.network_variables(state, name, state.get("ema") or state.get("params") or {})


def make_translate(config: ml_collections.ConfigDict) -> Callable[[dict, jax.Array], jax.Array]:
    """Returns `translate(translator_variables, images) -> images` (inference mode)."""
    g = generators.make_generator(config.model.generator)
    return lambda variables, x: g.apply(variables, x, train=False)


def spatial_multiple(config: ml_collections.ConfigDict) -> int:
    """The generator's stride: image sides must be multiples of it."""
    return generators.make_generator(config.model.generator).stride


def make_critic(config: ml_collections.ConfigDict) -> base.Critic:
    """The discriminators for evaluation: D_A judges AtoB's translations (it learnt domain B),
    D_B judges BtoA's. PacGAN packs each image with the next m - 1 of its set, as in training.
    """
    d = discriminators.make_discriminator(config.model.discriminator)
    m = pack_size(config)
    apply = jax.jit(lambda variables, x: d.apply(variables, x, train=False))

    def logits(variables: dict[str, Any], images: np.ndarray) -> np.ndarray:
        packed = np.asarray(discriminators.pack(jnp.asarray(images), m))
        return batching.apply_batched(functools.partial(apply, variables), packed)

    try:
        threshold, why = metrics.gan_threshold(config.loss.gan_mode), ""
    except ValueError:
        threshold = None
        why = f"gan_mode {config.loss.gan_mode!r} has no real / fake decision threshold"
    return base.Critic(
        variables=lambda state, direction: base.network_variables(
            state, DISCRIMINATOR_OF[direction]
        ),
        logits=logits,
        threshold=threshold,
        min_images=m,
        no_threshold=why,
    )


def from_translators(config: ml_collections.ConfigDict, variables: dict[str, Any]) -> State:
    """A translation-only state (no discriminators, optimizer states or pools: it cannot
    resume training) holding the generators' variables given by direction."""
    del config
    return base.translation_state(
        {GENERATOR_OF[base.check_direction(d)]: v for d, v in variables.items()}
    )


def make_visuals(
    config: ml_collections.ConfigDict, stage: base.Stage | None = None
) -> Callable[[State, dict], dict]:
    """Returns `visuals(state, batch)`: real, fake and reconstructed images both ways."""
    del stage
    translate = make_translate(config)

    def visuals(state: State, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
        g_a, g_b = (translator_variables(state, d) for d in ("AtoB", "BtoA"))
        fake_b, fake_a = translate(g_a, batch["a"]), translate(g_b, batch["b"])
        return {
            "AtoB": jnp.concatenate([batch["a"], fake_b, translate(g_b, fake_b)], axis=2),
            "BtoA": jnp.concatenate([batch["b"], fake_a, translate(g_a, fake_a)], axis=2),
        }

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
    load_frozen=load_frozen,
    from_translators=from_translators,
)
