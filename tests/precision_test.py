"""`config.train.dtype = "bfloat16"`: bf16 compute, float32 parameters, optimizer and losses."""

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest

from configs import test as test_config
from jaxfaces import rng as rngs
from jaxfaces.methods import cyclegan
from jaxfaces.models import layers


def tiny_config(dtype: str):
    """configs/test.py at 16 px without the identity terms or pools: a quick compile."""
    config = test_config.get_config()
    config.data.size = 16
    config.data.batch_size = 2
    config.loss.lambda_identity = 0.0
    config.loss.pool_size = 0
    config.train.dtype = dtype
    return config


def batches(n: int, size: int = 16):
    rng = np.random.default_rng(0)
    for _ in range(n):
        yield {k: jnp.asarray(rng.uniform(-1, 1, (2, size, size, 3)), jnp.float32) for k in "ab"}


def products_of(jaxpr):
    """The operand dtypes of every convolution and matrix product in a jaxpr (nested too)."""
    for eqn in jaxpr.eqns:
        if eqn.primitive.name in ("conv_general_dilated", "dot_general"):
            yield eqn.invars[0].aval.dtype
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            yield from products_of(sub)


def test_unknown_dtype_lists_the_valid_ones():
    assert layers.compute_dtype("bfloat16") == jnp.bfloat16
    with pytest.raises(ValueError, match="float32, bfloat16"):
        layers.compute_dtype("float16")
    with pytest.raises(ValueError, match="config.train.dtype"):
        cyclegan.models(tiny_config("half"))


def test_bfloat16_computes_in_bf16_and_keeps_float32_state():
    config = tiny_config("bfloat16")
    state = jax.eval_shape(lambda: cyclegan.init_state(config, rngs.key(0)))
    for path, leaf in jax.tree_util.tree_leaves_with_path(state):
        if jnp.issubdtype(leaf.dtype, jnp.floating):
            assert leaf.dtype == jnp.float32, jax.tree_util.keystr(path)
    g = cyclegan.models(config)["g_a"]
    x = jnp.zeros((1, 16, 16, 3))
    params = jax.eval_shape(g.init, rngs.key(0), x)["params"]
    jaxpr = jax.make_jaxpr(lambda p, x: g.apply({"params": p}, x))(params, x).jaxpr
    products = list(products_of(jaxpr))
    assert len(products) >= 8  # Every convolution, in whichever form,
    assert all(dtype == jnp.bfloat16 for dtype in products)  # takes bf16 operands.
    assert jax.eval_shape(lambda p: g.apply({"params": p}, x), params).dtype == jnp.float32


@pytest.mark.slow
def test_bfloat16_trains_and_stays_close_to_float32():
    results = {}
    for dtype in ("float32", "bfloat16"):
        config = tiny_config(dtype)
        state = cyclegan.init_state(config, rngs.key(0))
        step = jax.jit(cyclegan.make_train_step(config))
        history = []
        for batch in batches(4):
            state, metrics = step(state, batch)
            history.append({k: float(v) for k, v in metrics.items() if k.startswith("loss/")})
        results[dtype] = (state, history)
    (s32, h32), (s16, h16) = results["float32"], results["bfloat16"]
    for m32, m16 in zip(h32, h16, strict=True):
        for name, value in m32.items():
            assert np.isfinite(m16[name])
            assert m16[name] == pytest.approx(value, rel=0.05, abs=0.01), name
    # The updates agree: bf16 rounding perturbs Adam's first (sign-like) steps only where
    # gradients are near zero.
    p0 = cyclegan.init_state(tiny_config("float32"), rngs.key(0))["params"]
    moved = {}
    for name, state in (("float32", s32), ("bfloat16", s16)):
        assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(state["params"]))
        deltas = jax.tree.map(lambda p, q: np.ravel(p - q), state["params"], p0)
        moved[name] = np.concatenate([d for d in jax.tree.leaves(deltas)])
    assert np.abs(moved["float32"]).max() > 0 and np.all(np.isfinite(moved["bfloat16"]))
    assert np.corrcoef(moved["float32"], moved["bfloat16"])[0, 1] > 0.8
