"""Convolutions written as matrix products for XLA:CPU; XLA's own convolutions elsewhere.

On the CPU, XLA's convolutions run well below the speed of its matrix multiply, above all
their kernel gradients, the backward pass of the transposed convolution (12-14x slower than
PyTorch's) and narrow outputs (a 7x7, 64 -> 3 channel layer takes 10x PyTorch's time).
On the matrix path every convolution, and each of its two gradients, is one matrix product
plus data movement:

* forward, `im2col`: each output pixel's K*K window gathered side by side on the channel
  axis, times the kernel as a (K*K*C, O) matrix;
* forward of a narrow convolution (O <= C/4), `col2im`: the input times the kernel as
  (C, K*K*O), then the K*K output slices shifted and summed;
* input gradient: g times the kernel transposed, scattered back to the input pixels
  (col2im; by phase for stride 2);
* kernel gradient: g transposed times the input's windows.

On large maps one im2col matrix no longer fits in the cache and the products turn
memory-bound (33 GFLOP/s for a 3x3, 64-channel conv at 256 px, against ~120 for the
machine's matmul). There the windows are gathered and multiplied by bands of output rows of
about `TILE_FLOATS` floats each (`lax.map` for the forward pass, a `lax.scan` summing the
kernel gradient), and the stride-1 input gradient becomes the banded full correlation of
g with the flipped kernel: 1.5-3x faster than one big matrix at 64-256 px. Beyond that,
per kind of layer (each measured per layer with `bench/conv_layers.py`):

* 3x3 stride-1 convolutions on maps of 1024 pixels or more (the residual blocks from 64 px
  batch 4 or 128 px batch 1 up; VGG19): Winograd, for the forward pass and both gradients
  (`_winograd`, `_winograd_kernel_grad`): F(4x4, 3x3), 36 products per 4x4 outputs instead
  of 144, on maps of 4096 pixels or more and for every kernel gradient; F(2x2, 3x3), 16 per
  2x2 instead of 36, for the forward pass on smaller maps;
* RGB-side layers (4 or fewer channels in or out): windows gathered channel-major, each
  (tap, channel) one shifted copy of whole rows (`_few_forward`, `_few_kernel_grad`), and
  from the few-channel side only: the 7x7 input layer's kernel gradient was 2-5x slower
  in XLA;
* the x2 transposed convolution: backward as its adjoint, a 3x3 stride-2 convolution of g
  (9 blocks of products, no zeros); forward on large maps as its sub-pixel form, a 2x2
  convolution to 4x the channels then depth-to-space, with the 2x2 kernel built from the
  stored 3x3 one; and by symmetry the stride-2 input gradient of a 3x3 convolution on large
  maps is that sub-pixel transposed convolution of g.

XLA's passes stay where they are as fast: the forward pass of the transposed convolution on
small maps, strided convolutions from 4 or fewer channels, and, under "auto", convolutions
of fewer than `MIN_MATMUL_MACS` multiply-adds (`MIN_SUBPIXEL_MACS` for the transposed one),
which also compile faster. Each form computes the same function as
`lax.conv_general_dilated` up to float rounding (sums run in another order), from the same
parameters in the same HWIO layout. The backward pass keeps only the input and the kernel
(`jax.custom_vjp`) and gathers the windows again, so memory stays that of the convolutions.

`set_impl("auto" | "xla" | "matmul")` (or the `impl` context manager) picks the path for
code traced from then on (a function jitted before keeps its trace). "auto", the default,
takes the matrix path when JAX's default backend is the CPU and XLA's convolutions on GPU
and TPU (cuDNN, the MXU); "matmul" forces it at every size.
"""

import contextlib
import functools
from collections.abc import Iterator
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

IMPLS = ("auto", "xla", "matmul")
_impl = "auto"


def set_impl(name: str) -> str:
    """Sets the convolution path for code traced from now on; returns the previous one."""
    global _impl
    if name not in IMPLS:
        raise ValueError(f"unknown convolution impl {name!r}; valid: {', '.join(IMPLS)}")
    previous, _impl = _impl, name
    return previous


@contextlib.contextmanager
def impl(name: str) -> Iterator[None]:
    """`with fast_conv.impl("xla"): ...` traces the enclosed code with that path."""
    previous = set_impl(name)
    try:
        yield
    finally:
        set_impl(previous)


#: Under "auto", convolutions of fewer multiply-adds than this keep XLA's form: up to about
#: this size (e.g. 64 channels at 8x8) XLA's is as fast, and it compiles faster.
MIN_MATMUL_MACS = 30_000_000
#: The same for the transposed convolution, whose XLA backward pass is slow at any size.
MIN_SUBPIXEL_MACS = 5_000_000


def use_matmul(macs: int | None = None, threshold: int = MIN_MATMUL_MACS) -> bool:
    """Whether a convolution of `macs` multiply-adds traced now takes the matrix path."""
    if _impl == "auto":
        return jax.default_backend() == "cpu" and (macs is None or macs >= threshold)
    return _impl == "matmul"


def _xla_conv(x: jax.Array, w: jax.Array, stride: int) -> jax.Array:
    return jax.lax.conv_general_dilated(
        x, w, (stride, stride), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )


_DOT = (((3,), (0,)), ((), ()))  # (N, H, W, K) x (K, O) -> (N, H, W, O)
_DOT_T = (((3,), (1,)), ((), ()))  # (N, H, W, K) x (O, K) -> (N, H, W, O)
_OVER_PIXELS = (((0, 1, 2), (0, 1, 2)), ((), ()))  # (N, H, W, A) x (N, H, W, B) -> (A, B)


def _out_size(size: int, k: int, stride: int) -> int:
    return (size - k) // stride + 1


def _pad(x: jax.Array, h: int, w: int) -> jax.Array:
    return jnp.pad(x, ((0, 0), (h, h), (w, w), (0, 0)))


#: Convolutions from or to this few channels (RGB) keep XLA's passes: windows or blocks of
#: 3 channels are slow to gather and scatter, and XLA does well there. Exception: the
#: forward pass of a narrow output layer (64 -> 3), 10x faster as col2im.
_FEW_CHANNELS = 4


def _narrow(c: int, o: int) -> bool:
    """Whether a C -> O convolution is cheaper computed by columns of its output."""
    return 4 * o <= c


def _columns(x: jax.Array, kh: int, kw: int, stride: int) -> jax.Array:
    """(N, Ho, Wo, kh*kw*C): each output pixel's window, ordered (dy, dx, c) like HWIO.

    Two gathers with small static indices (along W, then along H): XLA compiles them much
    faster than a concatenation of K*K slices, and runs them as fast.
    """
    n, h, w, c = x.shape
    out_h, out_w = _out_size(h, kh, stride), _out_size(w, kw, stride)
    cols = (np.arange(out_w)[:, None] * stride + np.arange(kw)).reshape(-1)
    x = jnp.take(x, cols, axis=2, indices_are_sorted=True).reshape(n, h, out_w, kw * c)
    rows = (np.arange(out_h)[:, None] * stride + np.arange(kh)).reshape(-1)
    x = jnp.take(x, rows, axis=1, indices_are_sorted=True).reshape(n, out_h, kh, out_w, kw * c)
    return x.transpose(0, 1, 3, 2, 4).reshape(n, out_h, out_w, kh * kw * c)


def _shift_sum(z: jax.Array, kh: int, kw: int, c: int) -> jax.Array:
    """y[:, i, j] = sum over taps (dy, dx) of z[:, i + dy, j + dx, block (dy, dx)]: col2im.

    z has kh*kw blocks of c channels, ordered (dy, dx). Summed along W, then along H.
    """
    n, h, w, _ = z.shape
    out_h, out_w = _out_size(h, kh, 1), _out_size(w, kw, 1)
    z = z.reshape(n, h, w, kh, kw * c)
    rows = sum(z[:, :, t : t + out_w, :, t * c : (t + 1) * c] for t in range(kw))
    return sum(rows[:, t : t + out_h, :, t] for t in range(kh))


def _scatter_sum(dp: jax.Array, kh: int, kw: int, c: int) -> jax.Array:
    """x[:, i + dy, j + dx] += dp[:, i, j, block (dy, dx)]: the transpose of `_columns`.

    Each block is zero-padded into place (XLA fuses the pads into the sums), along W, then H.
    """
    n, h, w, _ = dp.shape
    dp = dp.reshape(n, h, w, kh, kw * c)
    wpad = ((0, 0), (0, 0), None, (0, 0), (0, 0))
    rows = sum(
        jnp.pad(dp[..., t * c : (t + 1) * c], wpad[:2] + ((t, kw - 1 - t),) + wpad[3:])
        for t in range(kw)
    )  # (N, H, W + kw - 1, kh, C)
    return sum(
        jnp.pad(rows[:, :, :, t], ((0, 0), (t, kh - 1 - t), (0, 0), (0, 0))) for t in range(kh)
    )


def _forward(x: jax.Array, w: jax.Array, stride: int) -> jax.Array:
    kh, kw, c, o = w.shape
    if c <= _FEW_CHANNELS:
        return _few_forward(x, w) if stride == 1 else _xla_conv(x, w, stride)
    if _use_winograd(x, w, stride):
        return _winograd(x, w)
    if stride == 1 and _narrow(c, o):
        z = jax.lax.dot_general(x, w.transpose(2, 0, 1, 3).reshape(c, kh * kw * o), _DOT)
        return _shift_sum(z, kh, kw, o)
    wm = w.reshape(kh * kw * c, o)
    n, out_h, out_w = (
        x.shape[0],
        _out_size(x.shape[1], kh, stride),
        _out_size(x.shape[2], kw, stride),
    )
    rows, bands = _bands(n, out_h, out_w, kh * kw * c)
    if bands == 1:
        return jax.lax.dot_general(_columns(x, kh, kw, stride), wm, _DOT)
    x = _pad_rows(x, (rows * bands - 1) * stride + kh)

    def band(i):
        cols = _columns(_row_slab(x, i, rows, kh, stride), kh, kw, stride)
        return jax.lax.dot_general(cols, wm, _DOT)

    y = _map_bands(band, bands)  # (bands, N, rows, Wo, O)
    return y.transpose(1, 0, 2, 3, 4).reshape(n, rows * bands, out_w, o)[:, :out_h]


#: The windows of at most this many floats are gathered at once (4 MiB in fp32): larger
#: im2col matrices are built and multiplied by bands of output rows, so that each band stays
#: in the cache (1.3-3x faster on 64-256 px maps than one big matrix, measured on 2 cores).
TILE_FLOATS = 1 << 20


def _bands(n: int, out_h: int, out_w: int, cols: int) -> tuple[int, int]:
    """(rows per band, bands): bands of about TILE_FLOATS, the output rows split evenly."""
    bands = -(-n * out_h * out_w * cols // TILE_FLOATS)
    bands = min(max(bands, 1), out_h)
    rows = -(-out_h // bands)
    return rows, -(-out_h // rows)


def _map_bands(band, bands: int) -> jax.Array:
    """band(i) for each band i, stacked on a new leading axis (`lax.map`); a single band is
    called directly, so small maps compile no loop."""
    if bands == 1:
        return band(jnp.int32(0))[None]
    return jax.lax.map(band, jnp.arange(bands))


def _sum_bands(band, bands: int, zero: jax.Array) -> jax.Array:
    """The sum over bands of band(acc, i) -> (acc + term, None) (`lax.scan`), from `zero`."""
    if bands == 1:
        return band(zero, jnp.int32(0))[0]
    return jax.lax.scan(band, zero, jnp.arange(bands))[0]


def _pad_rows(x: jax.Array, height: int) -> jax.Array:
    """Zero rows appended so that x has at least `height` rows (the last band's overhang)."""
    extra = height - x.shape[1]
    return x if extra <= 0 else jnp.pad(x, ((0, 0), (0, extra), (0, 0), (0, 0)))


def _row_slab(x: jax.Array, i: jax.Array, rows: int, k: int, stride: int) -> jax.Array:
    """The input rows that output band `i` (of `rows` rows) reads."""
    return jax.lax.dynamic_slice_in_dim(x, i * rows * stride, (rows - 1) * stride + k, axis=1)


# Winograd's minimal filtering F(m x m, 3x3) (Lavin & Gray, "Fast Algorithms for
# Convolutional Neural Networks", 2016): each m x m block of outputs of a 3x3 convolution is
# A^T [(G w G^T) * (B^T d B)] A over its (m+2) x (m+2) input tile d, so per channel pair
# (m+2)^2 multiplications make m^2 outputs instead of 9 m^2: the (C, O) products become
# (m+2)^2 matrix products of the transformed tiles. F(2x2, 3x3): 16 products per 4 outputs,
# 2.25x fewer flops than im2col, transforms of additions and halves (error ~1e-6 relative
# in fp32, as im2col's); F(4x4, 3x3): 36 per 16, 4x fewer, transforms with small integer
# and 1/6, 1/24 coefficients (error ~5e-6 relative, still float rounding of the same sum).
class _WinogradForm(NamedTuple):
    m: int  # Outputs per tile side; tiles are m + 2 wide, at stride m.
    bt: np.ndarray  # (m+2, m+2): B^T, the input transform.
    g: np.ndarray  # (m+2, 3): G, the kernel transform.
    at: np.ndarray  # (m, m+2): A^T, the output transform.


_F2 = _WinogradForm(
    m=2,
    bt=np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]),
    g=np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]),
    at=np.array([[1, 1, 1, 0], [0, 1, -1, -1]]),
)
# Interpolation points 0, 1, -1, 2, -2 and infinity.
_F4 = _WinogradForm(
    m=4,
    bt=np.array(
        [
            [4, 0, -5, 0, 1, 0],
            [0, -4, -4, 1, 1, 0],
            [0, 4, -4, -1, 1, 0],
            [0, -2, -1, 2, 1, 0],
            [0, 2, -1, -2, 1, 0],
            [0, 4, 0, -5, 0, 1],
        ]
    ),
    g=np.array(
        [
            [1 / 4, 0, 0],
            [-1 / 6, -1 / 6, -1 / 6],
            [-1 / 6, 1 / 6, -1 / 6],
            [1 / 24, 1 / 12, 1 / 6],
            [1 / 24, -1 / 12, 1 / 6],
            [0, 0, 1],
        ]
    ),
    at=np.array(
        [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]
    ),
)
#: Winograd takes over 3x3 stride-1 fp32 convolutions of at least this many output pixels
#: (batch included) and `MIN_WINOGRAD_CHANNELS` channels on both sides: there it is faster
#: than im2col (the residual blocks' layers 1.3-1.5x at 128 px batch 4 and 256 px; the whole
#: train step ~10% at 64 px batch 4, whose residual maps are 4 x 16x16); on smaller maps
#: (16x16 alone) its 16 small matrix products are 2-3x slower.
MIN_WINOGRAD_PIXELS = 32 * 32
MIN_WINOGRAD_CHANNELS = 32
#: The forward pass (and the input gradient, a forward correlation) takes F(4x4, 3x3) from
#: this many output pixels, F(2x2, 3x3) below: F(4x4)'s products have a 16th as many rows
#: as the map has pixels, too few on smaller maps to run at speed (a 32x32 residual layer:
#: 14-18 ms against 9-11). The kernel gradient, whose products sum over the tiles, takes
#: F(4x4, 3x3) on every map Winograd is used on.
MIN_WINOGRAD4_PIXELS = 64 * 64
#: Tiles are transformed and multiplied by bands of tile rows of about this many floats
#: (transformed tiles times the wider channel side), 4x as many for F(4x4, 3x3), whose
#: products then keep enough rows (the residual layer at 128 px batch 4: fwd 22-24 ms in
#: bands of 4M floats, 32-36 in bands of 1M).
WINOGRAD_TILE_FLOATS = 1 << 20


def _use_winograd(x: jax.Array, w: jax.Array, stride: int) -> bool:
    kh, kw, c, o = w.shape
    n, h, wd, _ = x.shape
    return (
        (kh, kw, stride) == (3, 3, 1)
        and min(c, o) >= MIN_WINOGRAD_CHANNELS
        and x.dtype == w.dtype == jnp.float32
        and n * (h - 2) * (wd - 2) >= MIN_WINOGRAD_PIXELS
    )


def _winograd_form(x: jax.Array, kernel_grad: bool = False) -> _WinogradForm:
    n, h, wd, _ = x.shape
    return _F4 if kernel_grad or n * (h - 2) * (wd - 2) >= MIN_WINOGRAD4_PIXELS else _F2


def _combine(coeffs: np.ndarray, terms: list) -> jax.Array:
    """sum_k coeffs[k] * terms[k], skipping zeros and multiplying only by coefficients other
    than +-1: the transforms are short sums of strided slices, which XLA fuses."""
    out = None
    for c, t in zip(coeffs.tolist(), terms, strict=True):
        if c == 0:
            continue
        if out is None:
            out = t if c == 1 else -t if c == -1 else c * t
        else:
            out = out + t if c == 1 else out - t if c == -1 else out + c * t
    return out


def _winograd_tiles(x: jax.Array, f: _WinogradForm, th: int, tw: int) -> jax.Array:
    """x (N, m*th + 2, m*tw + 2, C) -> B^T d B of every tile d: ((m+2)^2, N*th*tw, C).

    Tile row k of every tile is the strided slice of rows k, k + m, ...: B^T is a short
    sum of such slices along the rows, then, on all m + 2 transformed rows at once, along
    the columns (per transformed row, the same took XLA 5x longer to compile).
    """
    m, t = f.m, f.m + 2
    rows = [x[:, k : k + m * (th - 1) + 1 : m] for k in range(t)]
    rows = jnp.stack([_combine(f.bt[a], rows) for a in range(t)])  # (t, N, th, W, C)
    cols = [rows[:, :, :, k : k + m * (tw - 1) + 1 : m] for k in range(t)]
    tiles = jnp.stack([_combine(f.bt[b], cols) for b in range(t)], axis=1)
    return tiles.reshape(t * t, -1, x.shape[-1])


def _winograd_outputs(p: jax.Array, f: _WinogradForm) -> jax.Array:
    """A^T p A: (m+2, m+2, N, th, tw, O) products -> (N, m*th, m*tw, O) outputs."""
    m, t = f.m, f.m + 2
    y = jnp.stack([_combine(f.at[r], [p[k] for k in range(t)]) for r in range(m)])
    y = jnp.stack([_combine(f.at[r], [y[:, k] for k in range(t)]) for r in range(m)], axis=1)
    _, _, n, th, tw, o = y.shape
    return y.transpose(2, 3, 0, 4, 1, 5).reshape(n, m * th, m * tw, o)


def _winograd_grad_tiles(g: jax.Array, f: _WinogradForm) -> jax.Array:
    """A g A^T for every m x m block of g (N, m*th, m*tw, O): ((m+2)^2, N*th*tw, O), the
    gradient of the products `_winograd_outputs` takes, tiles ordered as the input's."""
    m, t = f.m, f.m + 2
    rows = [g[:, r::m] for r in range(m)]
    rows = jnp.stack([_combine(f.at[:, a], rows) for a in range(t)])  # (t, N, th, W, O)
    cols = [rows[:, :, :, q::m] for q in range(m)]
    tiles = jnp.stack([_combine(f.at[:, b], cols) for b in range(t)], axis=1)
    return tiles.reshape(t * t, -1, g.shape[-1])


def _winograd_kernel(w: jax.Array, f: _WinogradForm) -> jax.Array:
    """G w G^T: (3, 3, C, O) -> ((m+2)^2, C, O), as two small matrix products (an einsum of
    the three operands took XLA 5-17 ms on a 256-channel kernel, this 1-3)."""
    g = jnp.asarray(f.g, w.dtype)
    u = jnp.tensordot(g, w, (1, 0))  # (t, 3, C, O)
    u = jnp.tensordot(g, u, (1, 1))  # (t_b, t_a, C, O)
    return u.transpose(1, 0, 2, 3).reshape(-1, *w.shape[2:])


def _winograd_layout(x: jax.Array, o: int, f: _WinogradForm):
    """x padded to whole bands of tile rows; (x, tile rows per band, bands, tile columns)."""
    n, h, wd, c = x.shape
    m, t = f.m, f.m + 2
    th, tw = -(-(h - 2) // m), -(-(wd - 2) // m)  # Uneven sizes: one more tile, cropped.
    budget = WINOGRAD_TILE_FLOATS * (4 if m == 4 else 1)
    bands = min(max(-(-th * t * t * n * tw * max(c, o) // budget), 1), th)
    rows = -(-th // bands)
    bands = -(-th // rows)
    x = jnp.pad(x, ((0, 0), (0, max(m * rows * bands + 2 - h, 0)), (0, m * tw + 2 - wd), (0, 0)))
    return x, rows, bands, tw


def _winograd(x: jax.Array, w: jax.Array) -> jax.Array:
    """3x3 stride-1 VALID convolution by Winograd F(m x m, 3x3), by bands of tile rows."""
    c, o = w.shape[2:]
    n, h, wd, _ = x.shape
    f = _winograd_form(x)
    m, t = f.m, f.m + 2
    x, rows, bands, tw = _winograd_layout(x, o, f)
    u = _winograd_kernel(w, f)

    def band(i):
        slab = jax.lax.dynamic_slice_in_dim(x, m * rows * i, m * rows + 2, axis=1)
        p = jax.lax.dot_general(_winograd_tiles(slab, f, rows, tw), u, (((2,), (1,)), ((0,), (0,))))
        return _winograd_outputs(p.reshape(t, t, n, rows, tw, o), f)

    y = _map_bands(band, bands)  # (bands, N, m*rows, m*tw, O)
    y = y.transpose(1, 0, 2, 3, 4).reshape(n, m * rows * bands, m * tw, o)
    return y[:, : h - 2, : wd - 2]


def _winograd_kernel_grad(x: jax.Array, g: jax.Array) -> jax.Array:
    """The kernel gradient of `_winograd`: sum over tiles of (B^T d B)^T (A g A^T), per each
    of the (m+2)^2 positions (one matrix product each), then G^T (.) G back to 3x3."""
    c, o = x.shape[-1], g.shape[-1]
    f = _winograd_form(x, kernel_grad=True)
    m, t = f.m, f.m + 2
    x, rows, bands, tw = _winograd_layout(x, o, f)
    out_h, out_w = g.shape[1:3]
    g = jnp.pad(g, ((0, 0), (0, m * rows * bands - out_h), (0, m * tw - out_w), (0, 0)))

    def band(acc, i):
        slab = jax.lax.dynamic_slice_in_dim(x, m * rows * i, m * rows + 2, axis=1)
        g_band = jax.lax.dynamic_slice_in_dim(g, m * rows * i, m * rows, axis=1)
        du = jax.lax.dot_general(
            _winograd_tiles(slab, f, rows, tw),
            _winograd_grad_tiles(g_band, f),
            (((1,), (1,)), ((0,), (0,))),
            preferred_element_type=jnp.float32,
        )
        return acc + du, None

    du = _sum_bands(band, bands, jnp.zeros((t * t, c, o), jnp.float32)).reshape(t, t, c, o)
    gm = jnp.asarray(f.g, jnp.float32)
    dw = jnp.tensordot(gm, du, (0, 0))  # (3, t_b, C, O): G^T along the rows
    return jnp.tensordot(gm, dw, (0, 1)).transpose(1, 0, 2, 3)  # then along the columns


#: Windows of an input with few channels are gathered channel-major, by bands of this many
#: floats: each (channel, tap) is then one slice of whole rows, copied at memory speed.
FEW_TILE_FLOATS = 1 << 19


def _few_bands(x: jax.Array, kh: int, kw: int) -> tuple[jax.Array, int, int, int]:
    """x (N, H, W, C) as (C, N, H', W) padded to whole bands; (x, rows, bands, out_w)."""
    n, h, wd, c = x.shape
    out_h, out_w = _out_size(h, kh, 1), _out_size(wd, kw, 1)
    bands = -(-n * out_h * out_w * kh * kw * c // FEW_TILE_FLOATS)
    bands = min(max(bands, 1), out_h)
    rows = -(-out_h // bands)
    bands = -(-out_h // rows)
    xt = _pad_rows(x, rows * bands + kh - 1).transpose(3, 0, 1, 2)
    return xt, rows, bands, out_w


def _few_columns(xt: jax.Array, i: jax.Array, rows: int, kh: int, kw: int, out_w: int):
    """(kh*kw*C, N, rows, Wo): band i's windows of a channel-major input, ordered (dy, dx, c)."""
    slab = jax.lax.dynamic_slice_in_dim(xt, i * rows, rows + kh - 1, axis=2)
    return jnp.stack(
        [
            slab[ch, :, dy : dy + rows, dx : dx + out_w]
            for dy in range(kh)
            for dx in range(kw)
            for ch in range(xt.shape[0])
        ]
    )


def _few_forward(x: jax.Array, w: jax.Array) -> jax.Array:
    """Stride-1 convolution of a few-channel input: channel-major im2col by bands.

    Gathering 3-channel windows pixel-major moves 12 bytes at a time; channel-major, each of
    the K*K*C rows of the window matrix is a shifted copy of whole image rows. 2-2.5x faster
    than XLA's convolution for the 7x7 RGB input layer at 128-256 px.
    """
    kh, kw, c, o = w.shape
    n, out_h = x.shape[0], _out_size(x.shape[1], kh, 1)
    xt, rows, bands, out_w = _few_bands(x, kh, kw)
    wm = w.reshape(kh * kw * c, o)

    def band(i):
        cols = _few_columns(xt, i, rows, kh, kw, out_w)
        return jax.lax.dot_general(cols, wm, (((0,), (0,)), ((), ())))  # (N, rows, Wo, O)

    y = _map_bands(band, bands)
    return y.transpose(1, 0, 2, 3, 4).reshape(n, rows * bands, out_w, o)[:, :out_h]


def _few_kernel_grad(x: jax.Array, g: jax.Array, w_shape: tuple[int, ...]) -> jax.Array:
    """The stride-1 kernel gradient of a few-channel input: its channel-major windows times g."""
    kh, kw, c, o = w_shape
    xt, rows, bands, out_w = _few_bands(x, kh, kw)
    g = _pad_rows(g, rows * bands)

    def band(acc, i):
        cols = _few_columns(xt, i, rows, kh, kw, out_w)
        g_band = jax.lax.dynamic_slice_in_dim(g, i * rows, rows, axis=1)
        dw = jax.lax.dot_general(
            cols, g_band, (((1, 2, 3), (0, 1, 2)), ((), ())), preferred_element_type=jnp.float32
        )
        return acc + dw, None

    dw = _sum_bands(band, bands, jnp.zeros((kh * kw * c, o), jnp.float32))
    return dw.reshape(kh, kw, c, o).astype(jnp.result_type(g.dtype, x.dtype))


def _input_grad(g: jax.Array, w: jax.Array, stride: int, shape: tuple[int, ...]) -> jax.Array:
    """dx[s*i + dy, s*j + dx] += (g w^T)[i, j, (dy, dx)] for a (N, H, W, C) input."""
    kh, kw, c, o = w.shape
    if stride == 1 and _bands(*g.shape[:3], kh * kw * c)[1] > 1:
        # Large maps: the full correlation of g with the flipped, transposed kernel, by bands
        # (1.6-2x faster there than scattering one big (g w^T) matrix back).
        return _correlate_input_grad(g, w)
    n, h, wd, _ = shape
    if (kh, kw, stride) == (3, 3, 2) and g.shape[0] * g.shape[1] * g.shape[2] >= (
        MIN_SUBPIXEL_FORWARD_PIXELS
    ):
        # Large maps: the adjoint of a 3x3 stride-2 convolution is the x2 transposed one of g
        # with the flipped kernel, shifted by a pixel: its sub-pixel form, by bands (1.3-1.5x
        # faster there than scattering one big (g w^T) matrix by phases).
        gp = jnp.pad(g, ((0, 0), (1, 0), (1, 0), (0, 0)))
        dx = _subpixel(gp, jnp.flip(w, (0, 1)).transpose(0, 1, 3, 2))[:, 1 : h + 1, 1 : wd + 1]
        return jnp.pad(dx, ((0, 0), (0, h - dx.shape[1]), (0, wd - dx.shape[2]), (0, 0)))
    dp = jax.lax.dot_general(g, w.reshape(kh * kw * c, o), _DOT_T)  # (N, Ho, Wo, K*K*C)
    if stride == 1:
        return _scatter_sum(dp, kh, kw, c)
    # Stride s: input row s*r + a gathers the taps dy = a + s*m from g row r - m; each
    # phase (a, b) is a shift-sum over m, and the phases interleave (depth-to-space).
    mh, mw = -(-kh // stride), -(-kw // stride)
    rh, rw = g.shape[1] + mh - 1, g.shape[2] + mw - 1
    dp = _pad(dp, mh - 1, mw - 1).reshape(n, rh + mh - 1, rw + mw - 1, kh, kw, c)
    phases = []
    for a in range(stride):
        for b in range(stride):
            acc = jnp.zeros((n, rh, rw, c), g.dtype)
            for m in range(mh):
                for q in range(mw):
                    dy, dx = a + stride * m, b + stride * q
                    if dy < kh and dx < kw:
                        top, left = mh - 1 - m, mw - 1 - q
                        acc = acc + dp[:, top : top + rh, left : left + rw, dy, dx]
            phases.append(acc)
    z = jnp.stack(phases, axis=3).reshape(n, rh, rw, stride * stride * c)
    dx = depth_to_space(z, stride)[:, :h, :wd]
    return jnp.pad(dx, ((0, 0), (0, h - dx.shape[1]), (0, wd - dx.shape[2]), (0, 0)))


def _kernel_grad(x: jax.Array, g: jax.Array, w_shape: tuple[int, ...], stride: int) -> jax.Array:
    """g^T (O x pixels) times the input's windows: this orientation copies no windows."""
    kh, kw, c, o = w_shape
    n, out_h, out_w = g.shape[:3]
    rows, bands = _bands(n, out_h, out_w, kh * kw * c)
    if bands == 1:
        dw = jax.lax.dot_general(g, _columns(x, kh, kw, stride), _OVER_PIXELS)  # (O, K*K*C)
        return dw.T.reshape(kh, kw, c, o)
    x = _pad_rows(x, (rows * bands - 1) * stride + kh)
    g = _pad_rows(g, rows * bands)  # Zero gradients: the overhang adds nothing.

    def band(acc, i):
        cols = _columns(_row_slab(x, i, rows, kh, stride), kh, kw, stride)
        g_band = jax.lax.dynamic_slice_in_dim(g, i * rows, rows, axis=1)
        dw = jax.lax.dot_general(g_band, cols, _OVER_PIXELS, preferred_element_type=jnp.float32)
        return acc + dw, None

    zero = jnp.zeros((o, kh * kw * c), jnp.float32)
    dw = _sum_bands(band, bands, zero)
    return dw.T.reshape(kh, kw, c, o).astype(jnp.result_type(g.dtype, x.dtype))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _matmul_conv(x: jax.Array, w: jax.Array, stride: int) -> jax.Array:
    return _forward(x, w, stride)


def _matmul_conv_fwd(x, w, stride):
    # Keeps only the input and kernel: the windows are gathered again in the backward pass.
    return _forward(x, w, stride), (x, w)


def _correlate_input_grad(g: jax.Array, w: jax.Array) -> jax.Array:
    """The stride-1 input gradient as the full correlation of g with the flipped kernel."""
    kh, kw = w.shape[:2]
    return _forward(_pad(g, kh - 1, kw - 1), jnp.flip(w, (0, 1)).transpose(0, 1, 3, 2), 1)


def _few_channel_grads(x: jax.Array, w: jax.Array, g: jax.Array, stride: int):
    """Both gradients of a convolution from or to 4 or fewer channels (RGB).

    The windows are gathered from the few-channel side only, where they are small: from x
    for an RGB input (the kernel gradient as `_kernel_grad`; XLA's takes 2-5x longer), from
    g for an RGB output (the kernel gradient is then x^T times the windows of g padded by
    K - 1, taps reversed). The stride-1 input gradient is the correlation of g with the
    flipped kernel (col2im when the input has few channels); strided ones stay XLA's.
    """
    kh, kw, c, o = w.shape
    if c <= _FEW_CHANNELS:
        dw = _few_kernel_grad(x, g, w.shape) if stride == 1 else _kernel_grad(x, g, w.shape, stride)
    elif stride == 1:
        # dw[dy, dx, c, o] = sum_q x[q, c] gp[q + (K-1-dy, K-1-dx), o], gp = g padded by K-1.
        dw = _few_kernel_grad(_pad(g, kh - 1, kw - 1), x, (kh, kw, o, c))
        dw = jnp.flip(dw, (0, 1)).transpose(0, 1, 3, 2)
    else:
        dw = jax.vjp(lambda w: _xla_conv(x, w, stride), w)[1](g)[0]
    if stride == 1:
        dx = _correlate_input_grad(g, w)
    else:
        dx = jax.vjp(lambda x: _xla_conv(x, w, stride), x)[1](g)[0]
    return dx, dw


def _matmul_conv_bwd(stride, res, g):
    x, w = res
    if min(w.shape[2:]) <= _FEW_CHANNELS:
        return _few_channel_grads(x, w, g, stride)
    if _use_winograd(x, w, stride):
        dw = _winograd_kernel_grad(x, g)
    else:
        dw = _kernel_grad(x, g, w.shape, stride)
    return _input_grad(g, w, stride, x.shape), dw


_matmul_conv.defvjp(_matmul_conv_fwd, _matmul_conv_bwd)


def conv2d(x: jax.Array, w: jax.Array, stride: int = 1) -> jax.Array:
    """VALID convolution, NHWC input and HWIO kernel, the same stride on both axes."""
    kh, kw, c, o = w.shape
    n, h, wd, _ = x.shape
    macs = n * _out_size(h, kh, stride) * _out_size(wd, kw, stride) * kh * kw * c * o
    if not use_matmul(macs):
        return _xla_conv(x, w, stride)
    return _matmul_conv(x, w, stride)


# Sub-pixel form of the x2 transposed convolution. In one dimension, over the zero-dilated
# input padded (1, 2), output 2r is x[r] * k[1] and output 2r + 1 is x[r] * k[0] +
# x[r + 1] * k[2]: phase a of tap t (x[r + t]) uses kernel entry _PHASE_TAP[a][t].
_PHASE_TAP = ((1, None), (0, 2))


def subpixel_kernel(w: jax.Array) -> jax.Array:
    """(3, 3, I, O) kernel of the dilated form -> (2, 2, I, 4*O), output channels (a, b, o)."""
    zero = jnp.zeros(w.shape[2:], w.dtype)
    taps = []
    for th in range(2):
        for tw in range(2):
            phases = []
            for a in range(2):
                for b in range(2):
                    i, j = _PHASE_TAP[a][th], _PHASE_TAP[b][tw]
                    phases.append(zero if i is None or j is None else w[i, j])
            taps.append(jnp.stack(phases, axis=1))  # (I, 4, O)
    return jnp.stack(taps).reshape(2, 2, w.shape[2], 4 * w.shape[3])


def depth_to_space(z: jax.Array, block: int = 2) -> jax.Array:
    """(N, H, W, b*b*C) with channels (a, b, c) -> (N, b*H, b*W, C), pixel (b*i + a, b*j + b)."""
    n, h, w, c = z.shape
    c //= block * block
    z = z.reshape(n, h, w, block, block, c).transpose(0, 1, 3, 2, 4, 5)
    return z.reshape(n, h * block, w * block, c)


def _dilated_conv(x: jax.Array, w: jax.Array) -> jax.Array:
    return jax.lax.conv_general_dilated(
        x,
        w,
        window_strides=(1, 1),
        padding=((1, 2), (1, 2)),
        lhs_dilation=(2, 2),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    )


def _subpixel(x: jax.Array, w: jax.Array) -> jax.Array:
    xp = jnp.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0)))
    return depth_to_space(_matmul_conv(xp, subpixel_kernel(w), 1))


#: The forward pass of the x2 transposed convolution takes the sub-pixel form (a banded 2x2
#: convolution to 4x the channels) from this many input pixels (batch included): 1.4-1.5x
#: faster than XLA's there (the last upsampling layer at 128 px batch 4 and 256 px), slower
#: on smaller maps, where its 7 zero blocks of 16 cost more than they save.
MIN_SUBPIXEL_FORWARD_PIXELS = 128 * 128


def _transpose2x_forward(x: jax.Array, w: jax.Array) -> jax.Array:
    if x.shape[0] * x.shape[1] * x.shape[2] >= MIN_SUBPIXEL_FORWARD_PIXELS:
        return _subpixel(x, w)
    return _dilated_conv(x, w)


# The x2 transposed convolution is the adjoint of a stride-2 convolution: in one dimension
# dx[r] = g[2r - 1] w[2] + g[2r] w[1] + g[2r + 1] w[0], a stride-2 correlation of g padded by
# one at the start with the flipped kernel. So its input gradient is that strided
# convolution (im2col, 9 blocks of O x C, no zero blocks), and its kernel gradient the
# strided convolution's kernel gradient with the roles of x and g swapped.
def _transpose2x_grads(x: jax.Array, w: jax.Array, g: jax.Array):
    c, o = w.shape[2:]
    gp = jnp.pad(g, ((0, 0), (1, 0), (1, 0), (0, 0)))
    dx = _forward(gp, jnp.flip(w, (0, 1)).transpose(0, 1, 3, 2), 2)
    dw = _kernel_grad(gp, x, (3, 3, o, c), 2)  # The gradient of the flipped kernel.
    return dx, jnp.flip(dw, (0, 1)).transpose(0, 1, 3, 2)


@jax.custom_vjp
def _matmul_transpose2x(x: jax.Array, w: jax.Array) -> jax.Array:
    return _transpose2x_forward(x, w)


def _matmul_transpose2x_fwd(x, w):
    return _transpose2x_forward(x, w), (x, w)


def _matmul_transpose2x_bwd(res, g):
    return _transpose2x_grads(*res, g)


_matmul_transpose2x.defvjp(_matmul_transpose2x_fwd, _matmul_transpose2x_bwd)


def conv_transpose2x(x: jax.Array, w: jax.Array) -> jax.Array:
    """PyTorch's ConvTranspose2d(3, stride 2, padding 1, output_padding 1), NHWC.

    `w` (3, 3, I, O) is the kernel of the equivalent convolution over the zero-dilated input
    (PyTorch's kernel flipped in space).
    """
    if not use_matmul(x.shape[0] * x.shape[1] * x.shape[2] * w.size, MIN_SUBPIXEL_MACS):
        return _dilated_conv(x, w)
    return _matmul_transpose2x(x, w)
