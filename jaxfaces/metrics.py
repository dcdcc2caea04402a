"""Image-quality metrics for translated faces (see docs/METRICS.md).

Images are NHWC batches in [-1, 1], the project's range. Per-pair metrics (`l1`, `psnr`,
`ssim`) return one value per image and are pure, jit-compatible JAX functions; `swd`
compares two sets of images; `fid` and `kid` compare two sets of InceptionV3 features
(`inception_features`), in float64 NumPy.
"""

import functools
import logging
import os
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxfaces import batching, losses
from jaxfaces.models import inception

logger = logging.getLogger(__name__)

#: PSNR of identical images (the true value, infinity, would poison averages).
PSNR_CAP_DB = 100.0

SSIM_WINDOW, SSIM_SIGMA, SSIM_K1, SSIM_K2 = 11, 1.5, 0.01, 0.03

#: Decision threshold on discriminator outputs per GAN mode: LSGAN targets are 0 and 1,
#: vanilla outputs are logits (sigmoid 0.5 at 0).
# wgan-gp has none: a critic's outputs have no fixed offset between real and fake.
GAN_THRESHOLDS = {"lsgan": 0.5, "vanilla": 0.0, "hinge": 0.0}

#: cv2.pyrDown / pyrUp binomial taps, one axis.
PYRAMID_TAPS = (1 / 16, 4 / 16, 6 / 16, 4 / 16, 1 / 16)


def _per_image_mean(x: jax.Array) -> jax.Array:
    return jnp.mean(x, axis=tuple(range(1, x.ndim)))


def l1(x: jax.Array, y: jax.Array) -> jax.Array:
    """Mean absolute difference of each image pair, in [-1, 1] units (0 to 2).

    Args:
      x, y: images of the same shape (N, H, W, C).

    Returns:
      (N,) float32.
    """
    return _per_image_mean(jnp.abs(jnp.asarray(x, jnp.float32) - jnp.asarray(y, jnp.float32)))


def cycle_l1(x: jax.Array, reconstruction: jax.Array) -> jax.Array:
    """Cycle-consistency error: `l1` of each image and its round trip A -> B -> A, (N,)."""
    return l1(x, reconstruction)


def psnr(x: jax.Array, y: jax.Array, data_range: float = 2.0) -> jax.Array:
    """Peak signal-to-noise ratio of each image pair in dB, 10 log10(range^2 / MSE).

    Args:
      x, y: images of the same shape (N, H, W, C).
      data_range: max - min of the pixel range (2 for [-1, 1]).

    Returns:
      (N,) float32; identical images (MSE 0) give `PSNR_CAP_DB` (100 dB), not infinity,
      and no pair gives more.
    """
    diff = jnp.asarray(x, jnp.float32) - jnp.asarray(y, jnp.float32)
    mse = _per_image_mean(jnp.square(diff))
    db = 10.0 * jnp.log10(data_range**2 / jnp.where(mse > 0, mse, 1.0))
    return jnp.where(mse > 0, jnp.minimum(db, PSNR_CAP_DB), PSNR_CAP_DB)


def gaussian_taps(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """Normalised 1-D Gaussian window (the separable factor of SSIM's 11x11 window)."""
    r = np.arange(size) - (size - 1) / 2
    taps = np.exp(-0.5 * (r / sigma) ** 2)
    return taps / taps.sum()


def _separable_filter(x: jax.Array, taps: np.ndarray, padding: str | list) -> jax.Array:
    """Filters every channel of NHWC `x` with `taps` along H, then W (no cross-channel mixing)."""
    n, h, w, c = x.shape
    planes = x.transpose(0, 3, 1, 2).reshape(n * c, h, w, 1)
    k = jnp.asarray(taps, x.dtype)
    for kernel in (k.reshape(-1, 1, 1, 1), k.reshape(1, -1, 1, 1)):
        planes = jax.lax.conv_general_dilated(
            planes,
            kernel,
            window_strides=(1, 1),
            padding=padding,
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
            precision=jax.lax.Precision.HIGHEST,
        )
    _, h2, w2, _ = planes.shape
    return planes.reshape(n, c, h2, w2).transpose(0, 2, 3, 1)


def ssim(x: jax.Array, y: jax.Array, data_range: float = 2.0) -> jax.Array:
    """Structural similarity of each image pair (Wang et al. 2004), averaged over channels.

    Local means, variances and covariance come from an 11x11 Gaussian window (sigma 1.5)
    over the positions where it fits inside the image (no padding); the SSIM map is
    averaged over those positions and the channels. This equals
    `skimage.metrics.structural_similarity(x, y, data_range=2, channel_axis=-1,
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False)`.

    Args:
      x, y: images of the same shape (N, H, W, C), H and W at least 11.
      data_range: max - min of the pixel range (2 for [-1, 1]).

    Returns:
      (N,) float32 in [-1, 1]; 1 for identical images.
    """
    x = jnp.asarray(x, jnp.float32)
    y = jnp.asarray(y, jnp.float32)
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(f"ssim needs two NHWC batches of one shape; got {x.shape}, {y.shape}")
    if min(x.shape[1:3]) < SSIM_WINDOW:
        raise ValueError(f"ssim needs images of at least {SSIM_WINDOW} px; got {x.shape[1:3]}")
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    stats = _separable_filter(
        jnp.concatenate([x, y, x * x, y * y, x * y], axis=-1), gaussian_taps(), "VALID"
    )
    mx, my, mxx, myy, mxy = jnp.split(stats, 5, axis=-1)
    vx, vy, cov = mxx - mx * mx, myy - my * my, mxy - mx * my
    num = (2 * mx * my + c1) * (2 * cov + c2)
    den = (mx * mx + my * my + c1) * (vx + vy + c2)
    return _per_image_mean(num / den)


#: `checkerboard`: the high-pass filter's taps (binomial blur subtracted: it passes the
#: period-2 grid whole, as the blur's response at 2 px is 0) and the block side (px).
CHECKERBOARD_BLUR = (0.25, 0.5, 0.25)
CHECKERBOARD_BLOCK = 8


def checkerboard(images: jax.Array, block: int = CHECKERBOARD_BLOCK) -> jax.Array:
    """The share of each image's high-frequency energy in a period-2 grid (0 to 1).

    The artefact of stride-2 transposed convolutions (Odena et al. 2016, "Deconvolution and
    checkerboard artifacts") is a pattern repeating every 2 px. Per channel, the image is
    high-passed (x minus a [1, 2, 1] / 4 binomial blur, reflect-padded: a pure period-2 pattern
    passes unchanged, smooth shading and gradients are removed); in each `block` x `block`
    tile, the period-2 pattern that fits the residual best is the mean of each of the four
    pixel phases (row and column parity) less their average; its energy (mean square over
    the tile) is summed over tiles and channels and divided by the residual's energy.
    A pure grid scores 1; white noise about 0.07 (8 px tiles); clean faces a few hundredths
    (0.025 for the thesis's portraits at 64 px). Compare a method's translations with real
    images of the target domain (`evaluation`: `checkerboard` beside `target_checkerboard`).

    Args:
      images: (N, H, W, C), H and W at least `block` (the part past the last whole tile is
        left out); `block` even.

    Returns:
      (N,) float32.
    """
    x = jnp.asarray(images, jnp.float32)
    if x.ndim != 4 or block % 2 or min(x.shape[1:3]) < block:
        raise ValueError(
            f"checkerboard needs NHWC images of at least {block} px and an even block; "
            f"got {x.shape}, block {block}"
        )
    blurred = _separable_filter(
        jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), "reflect"),
        np.asarray(CHECKERBOARD_BLUR),
        "VALID",
    )
    residual = x - blurred
    n, h, w, c = x.shape
    th, tw = h // block, w // block
    tiles = residual[:, : th * block, : tw * block].reshape(
        n, th, block // 2, 2, tw, block // 2, 2, c
    )
    phases = tiles.mean(axis=(2, 5))  # (n, th, 2, tw, 2, c): each pixel phase's mean.
    pattern = phases - phases.mean(axis=(2, 4), keepdims=True)
    grid = jnp.sum(jnp.mean(pattern**2, axis=(2, 4)), axis=(1, 2, 3))
    total = jnp.sum(jnp.mean(tiles**2, axis=(2, 3, 5, 6)), axis=(1, 2, 3))
    return grid / jnp.maximum(total, 1e-12)


def gan_threshold(gan_mode: str) -> float:
    """The decision threshold of `adversarial_accuracy` for a `config.loss.gan_mode`."""
    if gan_mode not in GAN_THRESHOLDS:
        raise ValueError(f"unknown gan_mode {gan_mode!r}; valid: {', '.join(losses.GAN_MODES)}")
    return GAN_THRESHOLDS[gan_mode]


def adversarial_accuracy(
    d_real_logits: jax.Array, d_fake_logits: jax.Array, threshold: float = 0.5
) -> jax.Array:
    """Fraction of discriminator (PatchGAN) outputs that classify their patch correctly.

    A real image's output is correct above `threshold`, a translated image's below it;
    every output of every image counts once, so 1 means the discriminator tells every
    patch apart and 0.5 (with as many real as fake outputs) is chance.

    Args:
      d_real_logits: discriminator outputs on real images, any shape.
      d_fake_logits: its outputs on translated images, any shape.
      threshold: `gan_threshold(gan_mode)`: 0.5 for LSGAN, 0 for vanilla logits.

    Returns:
      float32 scalar in [0, 1].
    """
    real = jnp.asarray(d_real_logits, jnp.float32) > threshold
    fake = jnp.asarray(d_fake_logits, jnp.float32) < threshold
    return (real.sum() + fake.sum()) / (real.size + fake.size)


# --------------------------------------------------------------------------- SWD


def _pyramid_filter(x: jax.Array) -> jax.Array:
    """The 5x5 binomial blur of cv2.pyrDown, mirrored edges (d c b | a b c d | c b a)."""
    x = jnp.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="reflect")
    return _separable_filter(x, np.asarray(PYRAMID_TAPS), "VALID")


def pyr_down(x: jax.Array) -> jax.Array:
    """Blurs and keeps every second row and column (cv2.pyrDown): (N, H, W, C) -> H/2, W/2."""
    return _pyramid_filter(x)[:, ::2, ::2]


def pyr_up(x: jax.Array) -> jax.Array:
    """Zero-interleaves and blurs with 4x the taps (cv2.pyrUp): (N, H, W, C) -> 2H, 2W."""
    n, h, w, c = x.shape
    up = jnp.zeros((n, 2 * h, 2 * w, c), x.dtype).at[:, ::2, ::2].set(x)
    return 4.0 * _pyramid_filter(up)


def laplacian_pyramid(images: jax.Array, num_levels: int) -> list[jax.Array]:
    """Band-pass levels, finest first; the last level is the blurred, downsampled residual.

    Args:
      images: (N, H, W, C) with H and W divisible by 2^(num_levels - 1).
      num_levels: levels, each half the size of the one before.
    """
    levels = [jnp.asarray(images, jnp.float32)]
    for _ in range(1, num_levels):
        levels.append(pyr_down(levels[-1]))
        levels[-2] = levels[-2] - pyr_up(levels[-1])
    return levels


def swd_resolutions(height: int, width: int, min_size: int = 16) -> list[int]:
    """Heights of the pyramid levels SWD compares: height, height/2, ... while >= min_size."""
    sizes, h, w = [], height, width
    while min(h, w) >= min_size:
        sizes.append(h)
        if h % 2 or w % 2:
            break
        h, w = h // 2, w // 2
    return sizes


@functools.partial(jax.jit, static_argnames=("num_levels", "patch_size", "patches_per_image"))
def _descriptors(
    images: jax.Array,
    image_ids: jax.Array,
    key: jax.Array,
    num_levels: int,
    patch_size: int,
    patches_per_image: int,
) -> list[jax.Array]:
    """Random patches of every pyramid level, (N * patches_per_image, P * P * C) per level.

    Patch centres depend only on `key`, the level and the image's index in its set
    (`image_ids`), so the i-th images of two sets of one image size share them.
    """
    r = patch_size // 2
    out = []
    for lvl, level in enumerate(laplacian_pyramid(images, num_levels)):
        _, h, w, c = level.shape
        level_key = jax.random.fold_in(key, lvl)
        keys = jax.vmap(lambda i, k=level_key: jax.random.fold_in(k, i))(image_ids)

        def image_patches(img: jax.Array, k: jax.Array, h=h, w=w, c=c) -> jax.Array:
            ky, kx = jax.random.split(k)
            ys = jax.random.randint(ky, (patches_per_image,), r, h - r)
            xs = jax.random.randint(kx, (patches_per_image,), r, w - r)
            cut = lambda y, x: jax.lax.dynamic_slice(
                img, (y - r, x - r, 0), (patch_size, patch_size, c)
            )
            return jax.vmap(cut)(ys, xs)

        patches = jax.vmap(image_patches)(level, keys)
        out.append(patches.reshape(-1, patch_size * patch_size * c))
    return out


def _set_descriptors(
    images: np.ndarray, key: jax.Array, num_levels: int, patch_size: int, per_image: int, chunk: int
) -> list[np.ndarray]:
    """`_descriptors` of a whole set, `chunk` images at a time (one compiled shape)."""
    n = len(images)
    chunk = min(chunk, n)
    parts = []
    for start in range(0, n, chunk):
        batch = np.asarray(images[start : start + chunk], np.float32)
        ids = np.arange(start, start + chunk)
        valid = len(batch)
        batch = batching.pad_batch(batch, chunk)  # The last chunk reuses the program.
        desc = _descriptors(batch, ids, key, num_levels, patch_size, per_image)
        parts.append([np.asarray(d[: valid * per_image]) for d in desc])
    return [np.concatenate(level) for level in zip(*parts, strict=True)]


def _subset(desc: np.ndarray, m: int, key: jax.Array) -> np.ndarray:
    """`m` rows of `desc` drawn without replacement (all of them, in order, if it has `m`)."""
    if len(desc) == m:
        return desc
    return desc[np.asarray(jax.random.choice(key, len(desc), (m,), replace=False))]


def _normalise(desc: jax.Array, channels: int) -> jax.Array:
    """Zero mean, unit standard deviation per colour channel over all patches of a set."""
    d = desc.reshape(desc.shape[0], -1, channels)
    d = d - d.mean(axis=(0, 1))
    std = d.std(axis=(0, 1))
    return (d / jnp.where(std > 0, std, 1.0)).reshape(desc.shape)


@functools.partial(jax.jit, static_argnames=("dirs_per_repeat", "repeats"))
def sliced_wasserstein(
    a: jax.Array, b: jax.Array, key: jax.Array, dirs_per_repeat: int = 128, repeats: int = 4
) -> jax.Array:
    """Sliced Wasserstein-1 distance of two equally sized point sets (M, D).

    Each of `repeats` x `dirs_per_repeat` random unit directions projects both sets to 1-D,
    where the distance is the mean absolute difference of the sorted projections; the
    result is the mean over all directions.
    """
    if a.shape != b.shape:
        raise ValueError(f"sliced_wasserstein needs sets of one shape; got {a.shape}, {b.shape}")

    def one_repeat(k: jax.Array) -> jax.Array:
        dirs = jax.random.normal(k, (a.shape[1], dirs_per_repeat), jnp.float32)
        dirs = dirs / jnp.linalg.norm(dirs, axis=0, keepdims=True)
        hi = jax.lax.Precision.HIGHEST
        proj_a = jnp.sort(jnp.matmul(a, dirs, precision=hi), axis=0)
        proj_b = jnp.sort(jnp.matmul(b, dirs, precision=hi), axis=0)
        return jnp.mean(jnp.abs(proj_a - proj_b))

    return jnp.mean(jax.lax.map(one_repeat, jax.random.split(key, repeats)))


def swd(
    images_a: np.ndarray | jax.Array,
    images_b: np.ndarray | jax.Array,
    key: jax.Array,
    patches_per_image: int = 128,
    patch_size: int = 7,
    dirs_per_repeat: int = 128,
    repeats: int = 4,
    min_size: int = 16,
    chunk: int = 64,
) -> dict[str, float]:
    """Sliced Wasserstein distance between two image sets (Karras et al. 2018), x 1e3.

    Each image's Laplacian pyramid (levels down to `min_size` px) gives `patches_per_image`
    random `patch_size`^2 x C patches per level; each set's patches are normalised per
    channel (zero mean, unit std over the set), and the two sets compared per level with
    `sliced_wasserstein` (4 x 128 = 512 directions by default). The defaults are those of
    the ProGAN code. If the sets differ in size, a random subset of the larger one's
    patches, as many as the smaller has, is compared. The same images with the same key
    give exactly 0.

    Args:
      images_a, images_b: (N, H, W, C) sets of one image size; H, W at least `min_size`.
      key: a `jax.random` key; it picks the patches (the same positions in both sets)
        and the directions.
      chunk: images per compiled call when taking patches (memory, not results).

    Returns:
      `{"swd_<height>": ..., "swd": mean over levels}`, Python floats, finest level first.
    """
    images_a, images_b = np.asarray(images_a), np.asarray(images_b)
    if images_a.ndim != 4 or images_a.shape[1:] != images_b.shape[1:]:
        raise ValueError(
            f"swd needs two NHWC sets of one image size; got {images_a.shape}, {images_b.shape}"
        )
    sizes = swd_resolutions(*images_a.shape[1:3], min_size=min_size)
    if not sizes:
        raise ValueError(f"swd needs images of at least {min_size} px; got {images_a.shape[1:3]}")
    k_patch, k_subset, k_dirs = jax.random.split(key, 3)
    args = (k_patch, len(sizes), patch_size, patches_per_image, chunk)
    desc_a, desc_b = _set_descriptors(images_a, *args), _set_descriptors(images_b, *args)
    channels = images_a.shape[-1]
    out = {}
    for lvl, (size, a, b) in enumerate(zip(sizes, desc_a, desc_b, strict=True)):
        m = min(len(a), len(b))
        k_a, k_b = jax.random.split(jax.random.fold_in(k_subset, lvl))
        a, b = _normalise(_subset(a, m, k_a), channels), _normalise(_subset(b, m, k_b), channels)
        dist = sliced_wasserstein(
            a, b, jax.random.fold_in(k_dirs, lvl), dirs_per_repeat=dirs_per_repeat, repeats=repeats
        )
        out[f"swd_{size}"] = float(dist) * 1e3
    out["swd"] = float(np.mean(list(out.values())))
    return out


# --------------------------------------------------------------------------- FID, KID


def feature_statistics(feats: np.ndarray | jax.Array) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and covariance (D, D) of (N, D) features, float64, N - 1 normalised."""
    f = np.asarray(feats, np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"need (N, D) features with N >= 2; got shape {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance(
    mu_a: np.ndarray, cov_a: np.ndarray, mu_b: np.ndarray, cov_b: np.ndarray
) -> float:
    """Fréchet distance of two Gaussians: |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^1/2).

    tr (S_a S_b)^1/2 is the sum of the square roots of the eigenvalues of the symmetric
    S_a^1/2 S_b S_a^1/2, which has the same eigenvalues; round-off negatives are zeroed.
    """
    mu_a, mu_b = np.asarray(mu_a, np.float64), np.asarray(mu_b, np.float64)
    cov_a, cov_b = np.atleast_2d(cov_a).astype(np.float64), np.atleast_2d(cov_b).astype(np.float64)
    w, v = np.linalg.eigh(cov_a)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    inner = root_a @ cov_b @ root_a
    eig = np.linalg.eigvalsh((inner + inner.T) / 2)
    tr_sqrt = np.sqrt(np.clip(eig, 0, None)).sum()
    dist = np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * tr_sqrt
    return float(max(dist, 0.0))


def fid(feats_a: np.ndarray | jax.Array, feats_b: np.ndarray | jax.Array) -> float:
    """Fréchet Inception distance of two feature sets (Heusel et al. 2017).

    The Fréchet distance of Gaussians with the sets' means and covariances. When neither
    set has more features than dimensions, tr (S_a S_b)^1/2 is computed exactly from the
    centred features A, B as the nuclear norm of A B^T / sqrt((n_a - 1)(n_b - 1)) (the
    nonzero eigenvalues of S_a S_b are those of A B^T B A^T, scaled), avoiding square
    roots of round-off in the covariances' null space; otherwise by `frechet_distance`.

    Args:
      feats_a, feats_b: (N, D) features, usually `inception_features` (D = 2048); N >= 2
        each (FID is biased upwards for small N: compare sets of equal size).

    Returns:
      The distance, >= 0; 0 for a set and itself.
    """
    mu_a, cov_a = feature_statistics(feats_a)
    mu_b, cov_b = feature_statistics(feats_b)
    if mu_a.shape != mu_b.shape:
        raise ValueError(f"fid needs features of one dimension; got {mu_a.shape}, {mu_b.shape}")
    n_a, n_b, dim = len(feats_a), len(feats_b), len(mu_a)
    if max(n_a, n_b) > dim:
        return frechet_distance(mu_a, cov_a, mu_b, cov_b)
    a = np.asarray(feats_a, np.float64) - mu_a
    b = np.asarray(feats_b, np.float64) - mu_b
    tr_sqrt = np.linalg.svd(a @ b.T, compute_uv=False).sum() / np.sqrt((n_a - 1) * (n_b - 1))
    dist = np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * tr_sqrt
    return float(max(dist, 0.0))


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """KID's kernel k(x, y) = (x . y / D + 1)^3 of every row pair, (N, M)."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(k_xx: np.ndarray, k_yy: np.ndarray, k_xy: np.ndarray) -> float:
    """Unbiased MMD^2 from the kernel matrices of samples x (m) and y (n).

    Self-similarities (the diagonals of k_xx, k_yy) are left out:
    sum_{i != j} k_xx / (m (m - 1)) + sum_{i != j} k_yy / (n (n - 1)) - 2 mean(k_xy).
    """
    m, n = len(k_xx), len(k_yy)
    xx = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    yy = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(xx + yy - 2 * k_xy.mean())


#: Sets up to this many features (both together) have all kernel values computed once.
KID_GRAM_LIMIT = 6000


def kid(
    feats_a: np.ndarray | jax.Array,
    feats_b: np.ndarray | jax.Array,
    key: jax.Array | None = None,
    num_subsets: int = 100,
    subset_size: int = 1000,
) -> tuple[float, float]:
    """Kernel Inception distance (Bińkowski et al. 2018): unbiased MMD^2, cubic kernel.

    Each of `num_subsets` subsets draws `subset_size` features of each set without
    replacement (clipped to the smaller set: then every subset is the whole of it) and
    computes `mmd2_unbiased` with `polynomial_kernel`, in float64.

    Args:
      feats_a, feats_b: (N, D) features, usually `inception_features`; N >= 2 each.
      key: `jax.random` key for the subsets (default key 0).

    Returns:
      (mean, standard deviation) over the subsets. The mean is unbiased: it can be
      slightly negative when the two sets come from one distribution.
    """
    a, b = np.asarray(feats_a, np.float64), np.asarray(feats_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"kid needs (N, D) feature sets of one D; got {a.shape}, {b.shape}")
    m = min(subset_size, len(a), len(b))
    if m < 2:
        raise ValueError(f"kid needs at least 2 features per set; got {len(a)} and {len(b)}")
    key = jax.random.key(0) if key is None else key
    keys = jax.random.split(key, 2 * num_subsets).reshape(2, num_subsets)
    draw = lambda ks, n: np.asarray(
        jax.vmap(lambda k: jax.random.choice(k, n, (m,), replace=False))(ks)
    )
    idx_a, idx_b = draw(keys[0], len(a)), draw(keys[1], len(b))
    if len(a) + len(b) <= KID_GRAM_LIMIT:
        gram_aa, gram_bb, gram_ab = (polynomial_kernel(u, v) for u, v in ((a, a), (b, b), (a, b)))
        values = [
            mmd2_unbiased(gram_aa[np.ix_(i, i)], gram_bb[np.ix_(j, j)], gram_ab[np.ix_(i, j)])
            for i, j in zip(idx_a, idx_b, strict=True)
        ]
    else:
        values = []
        for i, j in zip(idx_a, idx_b, strict=True):
            x, y = a[i], b[j]
            k = polynomial_kernel
            values.append(mmd2_unbiased(k(x, x), k(y, y), k(x, y)))
    return float(np.mean(values)), float(np.std(values))


# --------------------------------------------------------------------------- Inception


@functools.cache
def _inception_apply(resize: bool) -> Any:
    return jax.jit(inception.InceptionV3(resize=resize).apply)


def inception_features(
    images: np.ndarray | jax.Array,
    params: Mapping[str, Any],
    batch_size: int = 50,
    resize: bool = True,
) -> np.ndarray:
    """2048-d pool features of the FID InceptionV3 (`models.inception`), (N, 2048) float32.

    Args:
      images: (N, H, W, 3) RGB in [-1, 1].
      params: `models.inception.load_params()`.
      batch_size: images per compiled call; the last batch is padded to it.
      resize: resize to 299 x 299 first, as pytorch-fid does (keep it for comparable FIDs).
    """
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"inception_features needs (N, H, W, 3) images; got {images.shape}")
    if len(images) == 0:
        return np.zeros((0, inception.FEATURES), np.float32)
    apply = _inception_apply(resize)
    params = jax.device_put(params)  # Once, not with every batch.
    fn = lambda x: apply(params, jnp.asarray(x, jnp.float32))  # noqa: E731
    return batching.apply_batched(fn, images, batch_size)


def fid_kid_or_none(
    real: np.ndarray | jax.Array,
    fake: np.ndarray | jax.Array,
    weights: str | os.PathLike | Mapping[str, Any] | None = None,
    batch_size: int = 50,
    key: jax.Array | None = None,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
) -> dict[str, float] | None:
    """FID and KID of two image sets, or None (with a warning) when they cannot be computed.

    Args:
      real, fake: (N, H, W, 3) images in [-1, 1], at least 2 of each.
      weights: converted Inception weights: a path, variables from
        `models.inception.load_params`, or None for `$JAXFACES_INCEPTION` or the cache.
      key: `jax.random` key for KID's subsets.

    Returns:
      `{"fid", "kid", "kid_std"}`, or None if the weights are missing or a set has fewer
      than 2 images (the other metrics do not need Inception).
    """
    if min(len(real), len(fake)) < 2:
        logger.warning("FID/KID skipped: need at least 2 images per set")
        return None
    if isinstance(weights, Mapping):
        params = weights
    else:
        try:
            params = inception.load_params(weights)
        except FileNotFoundError as e:
            logger.warning("FID/KID skipped: %s", e)
            return None
    feats_real = inception_features(real, params, batch_size)
    feats_fake = inception_features(fake, params, batch_size)
    kid_mean, kid_std = kid(feats_real, feats_fake, key, kid_subsets, kid_subset_size)
    return {"fid": fid(feats_real, feats_fake), "kid": kid_mean, "kid_std": kid_std}
