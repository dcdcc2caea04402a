"""Image metrics against hand-computed values and independent NumPy references."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from jaxfaces import metrics


def rand_images(n: int, size: int, seed: int = 0, channels: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (n, size, size, channels)).astype(np.float32)


# --------------------------------------------------------------------------- L1, PSNR


def test_l1_and_cycle_l1_hand_values():
    x = np.zeros((2, 4, 4, 3), np.float32)
    y = np.zeros_like(x)
    y[0] = 0.5  # Every pixel 0.5 away.
    y[1, :2] = -2.0  # Half the pixels 2 away.
    np.testing.assert_allclose(metrics.l1(x, y), [0.5, 1.0])
    np.testing.assert_allclose(metrics.cycle_l1(x, y), [0.5, 1.0])
    np.testing.assert_allclose(jax.jit(metrics.l1)(y, x), [0.5, 1.0])


def test_psnr_hand_values_and_cap():
    x = np.zeros((3, 8, 8, 3), np.float32)
    y = x.copy()
    y[0] = 0.2  # MSE 0.04: 10 log10(4 / 0.04) = 20 dB.
    y[1, :4] = 2.0  # MSE 2: 10 log10(2) dB.
    out = np.asarray(jax.jit(metrics.psnr)(x, y))
    np.testing.assert_allclose(out[:2], [20.0, 10 * math.log10(2)], rtol=1e-5)
    assert out[2] == metrics.PSNR_CAP_DB == 100.0  # Identical.
    np.testing.assert_allclose(  # float32 log10: within a few ulps.
        metrics.psnr(x[:1], y[:1], data_range=1.0), [10 * math.log10(25)], rtol=1e-6
    )
    tiny = x[:1] + 1e-7  # 10 log10(4 / 1e-14) = 146 dB: capped too.
    assert float(metrics.psnr(x[:1], tiny)[0]) == 100.0


# --------------------------------------------------------------------------- SSIM


def ssim_reference(x: np.ndarray, y: np.ndarray, data_range: float = 2.0) -> np.ndarray:
    """Wang et al. (2004) with an explicit 11x11 window at every position it fits, float64."""
    g = np.exp(-0.5 * ((np.arange(11) - 5) / 1.5) ** 2)
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    out = []
    for img_x, img_y in zip(x.astype(np.float64), y.astype(np.float64), strict=True):
        per_channel = []
        for c in range(x.shape[-1]):
            px = sliding_window_view(img_x[..., c], (11, 11))
            py = sliding_window_view(img_y[..., c], (11, 11))
            mx = (px * w).sum(axis=(-1, -2))
            my = (py * w).sum(axis=(-1, -2))
            dx, dy = px - mx[..., None, None], py - my[..., None, None]
            vx, vy = (dx * dx * w).sum(axis=(-1, -2)), (dy * dy * w).sum(axis=(-1, -2))
            cov = (dx * dy * w).sum(axis=(-1, -2))
            s = (2 * mx * my + c1) * (2 * cov + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
            per_channel.append(s.mean())
        out.append(np.mean(per_channel))
    return np.array(out)


def test_ssim_matches_windowed_reference():
    rng = np.random.default_rng(1)
    x = rand_images(3, 24, seed=1)
    noise = np.array([0.05, 0.3, 1.0], np.float32)[:, None, None, None]
    y = np.clip(x + noise * rng.normal(size=x.shape), -1, 1).astype(np.float32)
    y[2] = 0.5 - 0.5 * x[2]  # Anticorrelated and brighter: SSIM just below 0.
    x = x[:, :, :20]  # Not square.
    y = y[:, :, :20]
    out = np.asarray(jax.jit(metrics.ssim)(x, y))
    ref = ssim_reference(x, y)
    assert ref[0] > 0.9 and ref[2] < 0
    np.testing.assert_allclose(out, ref, rtol=0, atol=2e-6)


def test_ssim_hand_cases():
    x = rand_images(1, 16, seed=2)
    np.testing.assert_allclose(metrics.ssim(x, x), [1.0], atol=1e-6)
    # Flat images: no variance, so SSIM is (2ab + C1) / (a^2 + b^2 + C1), C1 = (0.01 * 2)^2.
    a, b, c1 = 0.5, -0.25, 0.02**2
    flat_a = np.full((1, 12, 12, 3), a, np.float32)
    flat_b = np.full((1, 12, 12, 3), b, np.float32)
    want = (2 * a * b + c1) / (a * a + b * b + c1)
    np.testing.assert_allclose(metrics.ssim(flat_a, flat_b), [want], rtol=1e-5)
    with pytest.raises(ValueError, match="at least 11 px"):
        metrics.ssim(x[:, :10, :10], x[:, :10, :10])


# --------------------------------------------------------------------------- adversarial


def test_adversarial_accuracy_counts_patches():
    real = np.array([[[0.9, 0.2], [0.7, 0.6]]])  # 3 of 4 above 0.5.
    fake = np.array([0.1, 0.8])  # 1 of 2 below.
    assert float(metrics.adversarial_accuracy(real, fake)) == pytest.approx(4 / 6)
    assert float(metrics.adversarial_accuracy(real - 0.5, fake - 0.5, 0.0)) == pytest.approx(4 / 6)
    perfect = jax.jit(metrics.adversarial_accuracy)(jnp.ones((2, 6, 6, 1)), jnp.zeros((2, 6, 6, 1)))
    assert float(perfect) == 1.0
    assert metrics.gan_threshold("lsgan") == 0.5 and metrics.gan_threshold("vanilla") == 0.0
    assert metrics.gan_threshold("hinge") == 0.0
    with pytest.raises(ValueError, match="lsgan, vanilla"):
        metrics.gan_threshold("wgan")


# --------------------------------------------------------------------------- SWD


def mirror_blur_reference(img: np.ndarray) -> np.ndarray:
    """5x5 [1 4 6 4 1]^2 / 256 blur of one (H, W) plane, edges mirrored (d c b | a b c d)."""
    k = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]) / 256.0
    h, w = img.shape
    m = lambda i, n: -i if i < 0 else (2 * (n - 1) - i if i >= n else i)
    out = np.zeros((h, w))
    for y in range(h):
        for x in range(w):
            out[y, x] = sum(
                k[dy + 2, dx + 2] * img[m(y + dy, h), m(x + dx, w)]
                for dy in range(-2, 3)
                for dx in range(-2, 3)
            )
    return out


def test_pyramid_steps_match_mirror_convolution():
    x = rand_images(1, 8, seed=3, channels=1)
    plane = x[0, :, :, 0].astype(np.float64)
    down = np.asarray(metrics.pyr_down(x))[0, :, :, 0]
    np.testing.assert_allclose(down, mirror_blur_reference(plane)[::2, ::2], atol=1e-6)
    zeros = np.zeros((16, 16))
    zeros[::2, ::2] = plane
    up = np.asarray(metrics.pyr_up(x))[0, :, :, 0]
    np.testing.assert_allclose(up, 4 * mirror_blur_reference(zeros), atol=1e-6)
    levels = metrics.laplacian_pyramid(x, 2)
    assert [lvl.shape for lvl in levels] == [(1, 8, 8, 1), (1, 4, 4, 1)]
    np.testing.assert_allclose(levels[1], metrics.pyr_down(x), atol=1e-7)
    np.testing.assert_allclose(levels[0] + metrics.pyr_up(levels[1]), x, atol=1e-6)
    assert metrics.swd_resolutions(64, 64) == [64, 32, 16]
    assert metrics.swd_resolutions(48, 40) == [48, 24]  # 20 px wide is >= 16; 10 is not.


def test_sliced_wasserstein_one_dimension_by_hand():
    a = np.array([[3.0], [0.0], [2.0], [1.0]], np.float32)
    b = np.array([[7.0], [1.0], [5.0], [3.0]], np.float32)
    # 1-D directions are +-1; sorted, the gaps are 1, 2, 3, 4 whichever sign: mean 2.5.
    got = metrics.sliced_wasserstein(jnp.asarray(a), jnp.asarray(b), jax.random.key(0))
    assert float(got) == pytest.approx(2.5, rel=1e-6)


def test_sliced_wasserstein_of_a_translated_set():
    # b = a + s: every projection moves by s.d, so the distance is E|s.d| over unit
    # directions d, which is |s| * 2 / pi in two dimensions.
    a = np.random.default_rng(4).normal(size=(300, 2)).astype(np.float32)
    s = np.array([3.0, -4.0], np.float32)
    got = metrics.sliced_wasserstein(
        jnp.asarray(a), jnp.asarray(a + s), jax.random.key(1), dirs_per_repeat=512, repeats=4
    )
    assert float(got) == pytest.approx(5.0 * 2 / math.pi, rel=0.03)


def smooth_images(n: int, size: int, seed: int, freq: float) -> np.ndarray:
    """Random sums of sinusoids of about `freq` cycles per image, in [-1, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = np.zeros((n, size, size, 3))
    for _ in range(4):
        fy, fx = rng.uniform(0.5, 1.5, (2, n, 1, 1, 1)) * freq
        phase = rng.uniform(0, 2 * np.pi, (n, 1, 1, 3))
        out += np.sin(2 * np.pi * (fy * yy[..., None] + fx * xx[..., None]) + phase)
    return (out / 4).astype(np.float32)


def test_swd_identical_sets_give_exactly_zero():
    x = smooth_images(4, 32, seed=5, freq=2)
    out = metrics.swd(x, x, jax.random.key(7))
    assert out == {"swd_32": 0.0, "swd_16": 0.0, "swd": 0.0}


def test_swd_orders_distributions():
    key = jax.random.key(8)
    x = smooth_images(8, 32, seed=6, freq=2)
    rng = np.random.default_rng(9)
    near = x + 0.02 * rng.normal(size=x.shape).astype(np.float32)
    other = smooth_images(8, 32, seed=10, freq=2)  # Same distribution, other images.
    far = smooth_images(8, 32, seed=11, freq=8)  # Finer structure.
    d_near = metrics.swd(x, near, key)
    d_other = metrics.swd(x, other, key)
    d_far = metrics.swd(x, far, key)
    assert d_near["swd"] < d_far["swd"] / 3
    assert d_near["swd"] < d_other["swd"] < d_far["swd"]
    for level in ("swd_32", "swd_16"):
        assert d_near[level] < d_far[level]
    assert d_far["swd"] == pytest.approx((d_far["swd_32"] + d_far["swd_16"]) / 2)
    # Each set is normalised per channel, so a global colour gain and offset are invisible.
    d_affine = metrics.swd(x, 0.5 * x + 0.3, key)
    assert d_affine["swd"] < 1e-2 < d_near["swd"]


def test_swd_patches_are_crops_of_the_pyramid():
    x = rand_images(2, 16, seed=12)
    (desc,) = metrics._descriptors(x, np.arange(2), jax.random.key(3), 1, 7, 32)
    desc = np.asarray(desc).reshape(2, 32, 7, 7, 3)
    crops = sliding_window_view(x, (7, 7), axis=(1, 2)).transpose(0, 1, 2, 4, 5, 3)
    for i in range(2):
        found = [(crops[i] == patch).all(axis=(-3, -2, -1)) for patch in desc[i]]
        assert all(f.sum() == 1 for f in found)  # Each patch is one crop of its own image.
        assert len({tuple(np.argwhere(f)[0]) for f in found}) > 16  # At varied places.


def test_swd_sets_of_different_sizes():
    x = smooth_images(6, 16, seed=13, freq=2)
    out = metrics.swd(x, x[:4], jax.random.key(2), chunk=4)
    assert set(out) == {"swd_16", "swd"}
    assert (
        0
        < out["swd"]
        < metrics.swd(x, smooth_images(4, 16, seed=14, freq=6), jax.random.key(2))["swd"]
    )
    with pytest.raises(ValueError, match="at least 16 px"):
        metrics.swd(x[:, :8, :8], x[:, :8, :8], jax.random.key(0))


# --------------------------------------------------------------------------- FID


def trace_sqrt_reference(s1: np.ndarray, s2: np.ndarray) -> float:
    """tr (S1 S2)^1/2 from the (real, nonnegative) eigenvalues of the non-symmetric S1 S2."""
    return float(np.sqrt(np.clip(np.linalg.eigvals(s1 @ s2).real, 0, None)).sum())


def test_frechet_distance_closed_forms():
    assert metrics.frechet_distance([0.0], [[1.0]], [1.0], [[4.0]]) == pytest.approx(2.0)
    rng = np.random.default_rng(15)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    s1, s2 = rng.uniform(0.1, 3, 5), rng.uniform(0.1, 3, 5)
    want = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    got = metrics.frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2))
    assert got == pytest.approx(want, rel=1e-10)
    m1, m2, a, b = rng.normal(size=(2, 6)).tolist() + list(rng.normal(size=(2, 6, 6)))
    c1, c2 = a @ a.T + 0.1 * np.eye(6), b @ b.T + 0.1 * np.eye(6)  # Full covariances.
    want = np.sum((np.subtract(m1, m2)) ** 2) + np.trace(c1 + c2) - 2 * trace_sqrt_reference(c1, c2)
    assert metrics.frechet_distance(m1, c1, m2, c2) == pytest.approx(want, rel=1e-9)


def test_fid_of_samples():
    rng = np.random.default_rng(16)
    few_a, few_b = rng.normal(size=(10, 32)), 2 + 0.5 * rng.normal(size=(12, 32))
    # Fewer samples than dimensions (the nuclear-norm route) and more (the eigh route).
    for a, b in ((few_a, few_b), (few_a[:, :4], few_b[:, :4])):
        ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
        want = (
            np.sum((a.mean(0) - b.mean(0)) ** 2)
            + np.trace(ca + cb)
            - 2 * trace_sqrt_reference(ca, cb)
        )
        assert metrics.fid(a, b) == pytest.approx(want, rel=1e-8)
        assert abs(metrics.fid(a, a)) < 1e-9 * want
    # Large samples of two diagonal Gaussians approach the closed form.
    mu2, s1, s2 = (
        np.array([1.0, 0, -2, 0.5]),
        np.array([1.0, 2, 0.5, 1]),
        np.array([4.0, 1, 1, 0.25]),
    )
    a = rng.normal(size=(40000, 4)) * np.sqrt(s1)
    b = mu2 + rng.normal(size=(40000, 4)) * np.sqrt(s2)
    want = np.sum(mu2**2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    assert metrics.fid(a, b) == pytest.approx(want, rel=0.02)
    with pytest.raises(ValueError, match="N >= 2"):
        metrics.fid(a[:1], b)


# --------------------------------------------------------------------------- KID


def kid_direct(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2, k(u, v) = (u.v / d + 1)^3, by explicit sums over pairs."""
    d = x.shape[1]
    k = lambda u, v: (np.dot(u, v) / d + 1) ** 3
    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_kid_matches_direct_sums():
    rng = np.random.default_rng(17)
    x, y = rng.normal(size=(12, 5)), 0.5 + rng.normal(size=(12, 5))
    mean, std = metrics.kid(x, y, jax.random.key(0), num_subsets=5, subset_size=50)
    assert mean == pytest.approx(kid_direct(x, y), rel=1e-10)
    assert std < 1e-12  # Subsets clipped to the 12 features: the same set, reordered.
    assert mean > 0.1


def test_kid_subsets_with_and_without_precomputed_kernels(monkeypatch):
    rng = np.random.default_rng(18)
    x, y = rng.normal(size=(40, 6)), 0.3 + rng.normal(size=(30, 6))
    key = jax.random.key(5)
    fast = metrics.kid(x, y, key, num_subsets=20, subset_size=10)
    monkeypatch.setattr(metrics, "KID_GRAM_LIMIT", 0)
    slow = metrics.kid(x, y, key, num_subsets=20, subset_size=10)
    np.testing.assert_allclose(fast, slow, rtol=1e-10)
    assert fast[1] > 0  # Different subsets give different estimates.


def test_kid_is_unbiased():
    # Two samples of one distribution: the unbiased estimate averages to 0 over many
    # independent draws; the biased one (self-similarities kept) is clearly positive.
    rng = np.random.default_rng(19)
    unbiased, biased = [], []
    for _ in range(300):
        x, y = rng.normal(size=(2, 10, 3))
        unbiased.append(metrics.kid(x, y, num_subsets=1)[0])
        k = metrics.polynomial_kernel
        biased.append(k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean())
    unbiased, biased = np.array(unbiased), np.array(biased)
    stderr = unbiased.std() / np.sqrt(len(unbiased))
    assert abs(unbiased.mean()) < 3 * stderr
    assert biased.mean() > 10 * biased.std() / np.sqrt(len(biased))


# --------------------------------------------------------------------------- checkerboard


def test_checkerboard_of_pure_grids_is_one_and_of_a_mixture_by_hand():
    i, j = np.mgrid[:65, :65].astype(np.float32)
    grid = (-1.0) ** (i + j)
    stripes = (-1.0) ** j
    pure = np.stack([grid, stripes], 0)[..., None].repeat(3, -1)
    np.testing.assert_allclose(metrics.checkerboard(pure), [1.0, 1.0], rtol=1e-6)
    # A period-4 wave: high-passed to half its amplitude, mean square b^2/8, and no period-2
    # part (its phase means in every 8 px tile are 0). With a grid of amplitude a beside it
    # the share is a^2 / (a^2 + b^2 / 8) (65 px: the reflected edge continues the wave).
    a, b = 0.1, 0.4
    mixed = (a * grid + b * np.cos(np.pi * j / 2))[None, ..., None].repeat(3, -1)
    np.testing.assert_allclose(metrics.checkerboard(mixed), [a**2 / (a**2 + b**2 / 8)], rtol=1e-4)


def test_checkerboard_is_low_on_clean_faces_and_rises_with_a_faint_grid():
    from jaxfaces.data import synthetic

    scenes = synthetic.sample_scenes(np.random.default_rng(0), 8)
    for faces in (synthetic.render_photo(scenes, 64), synthetic.render_painting(scenes, 64)):
        clean = np.asarray(faces, np.float32) / 127.5 - 1
        score = np.asarray(metrics.checkerboard(clean))
        assert score.shape == (8,) and np.all(score < 0.1), score
        i, j = np.mgrid[:64, :64]
        gridded = clean + 0.05 * ((-1.0) ** (i + j))[None, ..., None]
        assert np.all(np.asarray(metrics.checkerboard(gridded)) > 3 * score)
    noise = np.random.default_rng(1).normal(size=(4, 64, 64, 3))
    assert np.all(np.abs(np.asarray(metrics.checkerboard(noise)) - 0.07) < 0.02)
    with pytest.raises(ValueError, match="at least 8 px"):
        metrics.checkerboard(np.zeros((1, 6, 6, 3)))
