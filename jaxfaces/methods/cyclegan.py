"""CycleGAN (Zhu et al. 2017), faithful to the reference PyTorch implementation.

G_A: A -> B and G_B: B -> A; D_A tells real B from G_A's fakes, D_B real A from G_B's.
One train step, as the reference's `optimize_parameters`: both generators are updated on
adversarial + cycle + identity losses, then both discriminators on real images and on fakes
drawn through the image history pools.

The state is a plain dict pytree (it checkpoints, shards and restores without classes):
  step, rng, params/{g_a,g_b,d_a,d_b}, batch_stats/{...} (empty without batch norm),
  opt_g, opt_d, pool_a (fakes of A, for D_B), pool_b (fakes of B, for D_A),
  and, with `train.ema_decay` > 0, ema/{g_a,g_b}: an exponential moving average of the
  generators' parameters (Yazici et al. 2019), which translation then uses.
"""

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxfaces import losses, pool
from jaxfaces import rng as rngs
from jaxfaces.models import discriminators, generators

State = dict[str, Any]
GENERATOR_OF = {"AtoB": "g_a", "BtoA": "g_b"}


def models(config: ml_collections.ConfigDict) -> dict[str, nn.Module]:
    """The four networks, by state key."""
    g = generators.make_generator(config.model.generator)
    d = discriminators.make_discriminator(config.model.discriminator)
    return {"g_a": g, "g_b": g, "d_a": d, "d_b": d}


def lr_schedule(config: ml_collections.ConfigDict) -> optax.Schedule:
    """Constant `optim.lr`, then linear decay to 0 over the last `train.decay_steps` steps."""
    lr, total, decay = config.optim.lr, config.train.num_steps, config.train.decay_steps
    if not 0 <= decay <= total:
        raise ValueError(
            f"config.train.decay_steps ({decay}) must be in [0, config.train.num_steps={total}]"
        )
    if decay == 0:
        return optax.constant_schedule(lr)
    decayed = optax.join_schedules(
        [optax.constant_schedule(lr), optax.linear_schedule(lr, 0.0, decay)], [total - decay]
    )
    return lambda step: jnp.maximum(decayed(step), 0.0)  # No rounding below 0 past the end.


def optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
    """Adam with the reference's betas and the step schedule (one per network pair)."""
    return optax.adam(lr_schedule(config), b1=config.optim.b1, b2=config.optim.b2)


def init_state(config: ml_collections.ConfigDict, rng: jax.Array) -> State:
    """Fresh parameters (N(0, 0.02) convolutions), optimizer states and empty pools."""
    size = config.data.size
    x = jnp.zeros((1, size, size, 3), jnp.float32)
    nets = models(config)
    keys = dict(zip(nets, jax.random.split(jax.random.fold_in(rng, 0), len(nets)), strict=True))
    variables = {
        name: net.init({"params": keys[name], "dropout": keys[name]}, x, train=False)
        for name, net in nets.items()
    }
    params = {k: v["params"] for k, v in variables.items()}
    stats = {k: v["batch_stats"] for k, v in variables.items() if "batch_stats" in v}
    tx = optimizer(config)
    g_params = {k: params[k] for k in ("g_a", "g_b")}
    d_params = {k: params[k] for k in ("d_a", "d_b")}
    pool_size = config.loss.pool_size
    ema = jax.tree.map(jnp.copy, g_params)  # Its own buffers: the state is donated.
    extra = {"ema": ema} if config.train.get("ema_decay", 0.0) > 0 else {}
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


def make_train_step(config: ml_collections.ConfigDict) -> Callable[[State, dict], tuple]:
    """Returns the pure `train_step(state, batch) -> (state, metrics)` to jit."""
    nets = models(config)
    tx = optimizer(config)
    schedule = lr_schedule(config)
    cfg = config.loss
    gan = lambda logits, real: losses.gan_loss(logits, real, cfg.gan_mode)
    losses.gan_loss(jnp.zeros(()), True, cfg.gan_mode)  # Unknown modes fail here, not in jit.

    def train_step(state: State, batch: dict[str, jax.Array]) -> tuple[State, dict]:
        key = jax.random.fold_in(rngs.from_data(state["rng"]), state["step"])
        k_g, k_d, k_pool_a, k_pool_b = jax.random.split(key, 4)
        real_a, real_b = batch["a"], batch["b"]
        d_params = {k: state["params"][k] for k in ("d_a", "d_b")}

        def g_loss_fn(g_params):
            run = _Runner(nets, {**g_params, **d_params}, state["batch_stats"], k_g)
            fake_b = run("g_a", real_a)
            rec_a = run("g_b", fake_b)
            fake_a = run("g_b", real_b)
            rec_b = run("g_a", fake_a)
            terms = {}
            if cfg.lambda_identity > 0:
                terms["idt_a"] = losses.l1(run("g_a", real_b), real_b) * (
                    cfg.lambda_b * cfg.lambda_identity
                )
                terms["idt_b"] = losses.l1(run("g_b", real_a), real_a) * (
                    cfg.lambda_a * cfg.lambda_identity
                )
            terms["g_a"] = gan(run("d_a", fake_b), True)
            terms["g_b"] = gan(run("d_b", fake_a), True)
            terms["cycle_a"] = losses.l1(rec_a, real_a) * cfg.lambda_a
            terms["cycle_b"] = losses.l1(rec_b, real_b) * cfg.lambda_b
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
            d_a = 0.5 * (gan(run("d_a", real_b), True) + gan(run("d_a", pooled_b), False))
            d_b = 0.5 * (gan(run("d_b", real_a), True) + gan(run("d_b", pooled_a), False))
            return d_a + d_b, ({"d_a": d_a, "d_b": d_b}, run.stats)

        (_, (d_terms, stats)), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(d_params)
        d_updates, opt_d = tx.update(d_grads, state["opt_d"], d_params)
        d_params = optax.apply_updates(d_params, d_updates)

        ema = {}
        if "ema" in state:
            decay = config.train.ema_decay
            ema["ema"] = jax.tree.map(
                lambda e, p: decay * e + (1 - decay) * p, state["ema"], g_params
            )
        metrics = {f"loss/{k}": v for k, v in {**terms, **d_terms}.items()}
        metrics["loss/g_total"] = loss_g
        metrics["lr"] = schedule(state["step"])
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


def generator_variables(state: State, direction: str) -> dict[str, Any]:
    """The Flax variables of the generator that translates in `direction` (AtoB | BtoA).

    The moving average of its parameters when the state keeps one, else the parameters.
    """
    if direction not in GENERATOR_OF:
        raise ValueError(f"unknown direction {direction!r}; valid: {', '.join(GENERATOR_OF)}")
    name = GENERATOR_OF[direction]
    if name not in state["params"]:
        have = [d for d, n in GENERATOR_OF.items() if n in state["params"]]
        raise ValueError(f"this checkpoint has no {direction} generator; it has: {have}")
    params = state.get("ema") or state["params"]
    variables = {"params": params[name]}
    stats = state.get("batch_stats") or {}
    if name in stats:
        variables["batch_stats"] = stats[name]
    return variables


def make_translate(config: ml_collections.ConfigDict) -> Callable[[dict, jax.Array], jax.Array]:
    """Returns `translate(generator_variables, images) -> images` (inference mode)."""
    g = generators.make_generator(config.model.generator)
    return lambda variables, x: g.apply(variables, x, train=False)


def make_visuals(config: ml_collections.ConfigDict) -> Callable[[State, dict], dict]:
    """Returns `visuals(state, batch)`: real, fake and reconstructed images both ways."""
    translate = make_translate(config)

    def visuals(state: State, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
        g_a, g_b = (generator_variables(state, d) for d in ("AtoB", "BtoA"))
        fake_b, fake_a = translate(g_a, batch["a"]), translate(g_b, batch["b"])
        return {
            "AtoB": jnp.concatenate([batch["a"], fake_b, translate(g_b, fake_b)], axis=2),
            "BtoA": jnp.concatenate([batch["b"], fake_a, translate(g_a, fake_a)], axis=2),
        }

    return visuals
