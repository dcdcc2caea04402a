"""Model FLOPs of a JAX function: the multiply-adds of its convolutions and matrix products.

`count(fn, *args)` traces `fn` (nothing is compiled or run) and adds 2 x the multiply-adds
of every `conv_general_dilated` and `dot_general`, in nested jaxprs too (jit, custom_vjp,
remat, scan). A convolution counts only the products that touch real input: taps that fall
on padding or between the input pixels of a dilated (transposed) convolution are left out,
so the count is the work of the reference layers, whatever form computes them. Trace with
`jaxfaces.models.fast_conv.impl("xla")` to count the reference convolutions; elementwise
work (norms, activations, the optimizer) is not counted.
"""

from collections.abc import Callable
from typing import Any

import jax
import jax.extend
import numpy as np


def _valid_pairs(
    in_size: int, k: int, out: int, stride: int, pad_lo: int, lhs_dil: int, rhs_dil: int
) -> int:
    """Output positions x kernel taps of one spatial axis that land on a real input pixel."""
    pos = np.arange(out)[:, None] * stride + np.arange(k)[None, :] * rhs_dil - pad_lo
    real = (pos >= 0) & (pos <= (in_size - 1) * lhs_dil) & (pos % lhs_dil == 0)
    return int(real.sum())


def conv_flops(eqn: Any) -> int:
    """2 x the real multiply-adds of one `conv_general_dilated` equation."""
    p = eqn.params
    lhs, rhs = eqn.invars[0].aval.shape, eqn.invars[1].aval.shape
    out = eqn.outvars[0].aval.shape
    dn = p["dimension_numbers"]
    lhs_spec, rhs_spec, out_spec = dn.lhs_spec, dn.rhs_spec, dn.out_spec
    pairs = 1
    for d in range(len(lhs_spec) - 2):
        pairs *= _valid_pairs(
            lhs[lhs_spec[d + 2]],
            rhs[rhs_spec[d + 2]],
            out[out_spec[d + 2]],
            p["window_strides"][d],
            p["padding"][d][0],
            p["lhs_dilation"][d],
            p["rhs_dilation"][d],
        )
    in_features = lhs[lhs_spec[1]] // p["feature_group_count"]
    return 2 * out[out_spec[0]] * pairs * in_features * rhs[rhs_spec[0]]


def dot_flops(eqn: Any) -> int:
    """2 x the multiply-adds of one `dot_general` equation."""
    (contract, _), _ = eqn.params["dimension_numbers"]
    lhs = eqn.invars[0].aval.shape
    return 2 * int(np.prod(eqn.outvars[0].aval.shape)) * int(np.prod([lhs[d] for d in contract]))


def jaxpr_flops(jaxpr: Any) -> int:
    """FLOPs of a jaxpr, recursing into sub-jaxprs (scan bodies times their length)."""
    total = 0
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == "conv_general_dilated":
            total += conv_flops(eqn)
        elif name == "dot_general":
            total += dot_flops(eqn)
        if name == "cond":  # One branch runs: count the costliest.
            total += max(jaxpr_flops(b.jaxpr) for b in eqn.params["branches"])
            continue
        times = eqn.params.get("length", 1) if name == "scan" else 1
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            total += times * jaxpr_flops(sub)
    return total


def count(fn: Callable[..., Any], *args: Any) -> int:
    """Model FLOPs of `fn(*args)` (args may be `jax.ShapeDtypeStruct`s)."""
    return jaxpr_flops(jax.make_jaxpr(fn)(*args).jaxpr)
