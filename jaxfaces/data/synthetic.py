"""Procedural faces with ground-truth translations: the built-in default data set.

Two domains are drawn from the same random scene parameters (head pose and shape, skin,
hair, eyes, brows, nose, mouth, clothes, background, light):

* **A, "photo"**: a smoothly shaded, antialiased face (Lambert light on an ellipsoid head,
  a soft highlight, a gradient background), rendered at twice the size and box-filtered.
* **B, "painting"**: a deterministic painterly rendering of the same scene, computed from
  the supersampled photo by local operators only: luminance softly posterised into a few
  tone bands, mapped onto a warm golden oil-paint ramp (umber, sienna, ochre, cream) with
  the photo's hues turned and laid over it, and dark outlines wherever the photo has an
  edge. Each painting is thus close to a local
  function of its photo (and the photo, roughly, of its painting), so a small
  convolutional network can learn both directions, while the two differ a lot pixel-wise.

Layout written by `write_dataset` (PNG files ``000000.png``, ``000001.png``, ...)::

    root/trainA/      photos of num_train scenes
    root/trainB/      paintings of num_train other scenes (unpaired)
    root/testA/       photos of num_test scenes
    root/truthAtoB/   the paintings of the testA scenes (same file names)
    root/testB/       paintings of num_test other scenes
    root/truthBtoA/   the photos of the testB scenes (same file names)
    root/manifest.json  parameters, the files written, the identity-baseline L1 both ways

The writer only ever writes into a missing or empty folder, or one whose ``manifest.json``
it wrote (``"generator": "jaxfaces.data.synthetic"``). That manifest lists every file the
writer made and is written *first* (``"complete": false``, listing the old files and the
new), then the images, then the manifest again (``"complete": true``): a write that was
interrupted leaves a folder still recognised as the writer's own, and the next call
rewrites it. Rewriting (other size, counts or seed) removes only listed files, and is
refused, deleting nothing, when anything else lies in the folder.

With ``paired=True`` (``--paired``), trainB/ holds instead the paintings of the trainA
scenes, under the same file names: training pairs for supervised methods
(``config.data.paired``); every other folder is the same as without it.

Command line::

    python -m jaxfaces.data.synthetic --out DIR [--size 64] [--num_train 400]
        [--num_test 50] [--seed 0] [--paired]
"""

from __future__ import annotations

import argparse
import json
import numbers
import os
import pathlib
import re
from collections.abc import Sequence

import numpy as np
from PIL import Image

GENERATOR = "jaxfaces.data.synthetic"  # Marks the manifests this module writes.
VERSION = 1  # Of the images: the same parameters give the same bytes.
MIN_SIZE = 16
SPLITS = ("trainA", "trainB", "testA", "truthAtoB", "testB", "truthBtoA")
MANIFEST = "manifest.json"

# Manifests written before the file list: written last (so complete), with the files
# implied by the counts.
_LEGACY_GENERATOR = "jaxfaces.synthetic"
_MANIFEST_TMP = "manifest.json.jaxfaces-tmp"  # Written, then renamed onto the manifest.
_LISTED = re.compile(rf"(?:{'|'.join(SPLITS)})/[0-9]{{6,}}\.png")  # What a manifest may list.
_FIX = (
    "to train on your own images there, set --config.data.synthetic.enabled=False; for the"
    " built-in faces, choose a new or empty folder (--config.data.root=DIR, or --out DIR"
    " for python -m jaxfaces.data.synthetic)"
)

_SUPERSAMPLE = 2  # Render at this multiple of the size, then box-filter down.
_CHUNK = 32  # Scenes rendered at once (bounds memory at large sizes).

# Skin tones from pale to dark (interpolated); hair and iris palettes (picked, then jittered).
_SKIN = np.array(
    [[0.96, 0.80, 0.70], [0.87, 0.65, 0.52], [0.70, 0.48, 0.34], [0.45, 0.29, 0.19]],
    np.float32,
)
_HAIR = np.array(
    [
        [0.07, 0.06, 0.05],
        [0.24, 0.15, 0.08],
        [0.45, 0.29, 0.15],
        [0.86, 0.72, 0.42],
        [0.62, 0.26, 0.10],
        [0.62, 0.61, 0.60],
    ],
    np.float32,
)
_IRIS = np.array(
    [[0.35, 0.20, 0.10], [0.25, 0.45, 0.70], [0.30, 0.50, 0.30], [0.45, 0.48, 0.50]],
    np.float32,
)
# Hair styles (short, long, bob): ellipse centre v, width (x face aspect) and height,
# lowest v of the hair behind the head, and how far the fringe drops over the forehead.
_STYLE_CENTRE_V = np.array([-0.12, 0.30, -0.05], np.float32)
_STYLE_WIDTH = np.array([1.10, 1.30, 1.25], np.float32)
_STYLE_HEIGHT = np.array([1.08, 1.45, 1.15], np.float32)
_STYLE_BOTTOM_V = np.array([0.05, 1.60, 0.55], np.float32)
_STYLE_FRINGE = np.array([0.0, 0.0, 0.18], np.float32)

# Painting palette: luminance ramp from umber through sienna and ochre to cream.
_RAMP_X = np.array([0.0, 0.35, 0.65, 1.0], np.float32)
_RAMP_RGB = np.array(
    [[0.12, 0.06, 0.04], [0.48, 0.24, 0.09], [0.88, 0.62, 0.26], [1.0, 0.96, 0.80]],
    np.float32,
)
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
_TONE_LEVELS = 6  # Tone bands of the painting.
_TONE_SHARPNESS = 5.0  # Steepness of the soft staircase (larger: flatter bands).
_HUE_TURN = np.deg2rad(-35.0)  # Rotation of the chroma plane (skin turns golden).
_OUTLINE_RGB = np.array([0.10, 0.05, 0.03], np.float32)
_OUTLINE_EDGES = (0.05, 0.11)  # Sobel magnitudes where outlines start and saturate.
_OUTLINE_OPACITY = 0.8


def _tone_ramp(levels: int, sharpness: float, size: int = 4096) -> np.ndarray:
    """Painting colour of each photo luminance in [0, 1] (table of `size` rows of RGB).

    The luminance goes through a soft staircase of `levels` tone bands (strictly increasing,
    so invertible, but nearly flat within each band), then along the palette ramp.
    """
    t = np.linspace(0.0, 1.0, size) * levels
    k = np.minimum(np.floor(t), levels - 1)
    step = 0.5 + 0.5 * np.tanh(sharpness * (t - k - 0.5)) / np.tanh(sharpness / 2.0)
    tone = (k + step) / levels
    ramp = [np.interp(tone, _RAMP_X, _RAMP_RGB[:, i]) for i in range(3)]
    return np.stack(ramp, axis=-1).astype(np.float32)


_TONE_LUT = _tone_ramp(_TONE_LEVELS, _TONE_SHARPNESS)


def _check_min(name: str, value: int, minimum: int) -> None:
    """Raises ValueError naming the argument unless value is an integer >= minimum."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectorised HSV (all in [0, 1]) to RGB, shape (..., 3)."""
    k = (np.array([5.0, 3.0, 1.0], np.float32) + h[..., None] * 6.0) % 6.0
    f = np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
    return (v[..., None] * (1.0 - s[..., None] * f)).astype(np.float32)


def sample_scenes(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Draws the parameters of `n` random face scenes.

    Args:
        rng: Source of randomness.
        n: Number of scenes.

    Returns:
        Dict of arrays of length `n`: float32 (colours in [0, 1] and the light's unit
        direction with shape (n, 3)), and the int `hair_style`. Lengths are in units of the
        face half-height, positions are fractions of the image side, angles in radians.
    """
    _check_min("n", n, 0)
    # Draw order is part of the data set's definition: append new draws, never reorder.

    def u(lo: float, hi: float) -> np.ndarray:
        return rng.uniform(lo, hi, n).astype(np.float32)

    def jitter(colours: np.ndarray, sigma: float) -> np.ndarray:
        noise = rng.normal(0.0, sigma, colours.shape)
        return np.clip(colours + noise, 0.0, 1.0).astype(np.float32)

    tone = rng.uniform(0.0, len(_SKIN) - 1, n)
    lo = np.minimum(tone.astype(int), len(_SKIN) - 2)
    skin = _SKIN[lo] + (tone - lo)[:, None] * (_SKIN[lo + 1] - _SKIN[lo])
    light = np.stack([u(-0.8, 0.8), u(-0.7, 0.2), u(0.8, 1.2)], axis=-1)
    bg_hue, bg_sat, bg_val = u(0.0, 1.0), u(0.1, 0.7), u(0.35, 0.95)
    return {
        "cx": u(0.40, 0.60),
        "cy": u(0.40, 0.52),
        "scale": u(0.20, 0.27),
        "aspect": u(0.70, 0.86),
        "jaw": u(0.05, 0.22),
        "angle": u(-0.22, 0.22),
        "skin": jitter(skin, 0.02),
        "blush": u(0.0, 0.3),
        "hair": jitter(_HAIR[rng.integers(0, len(_HAIR), n)], 0.04),
        "hair_style": rng.integers(0, len(_STYLE_WIDTH), n),
        "hair_volume": u(0.0, 1.0),
        "hairline": u(-0.78, -0.52),
        "hair_part": u(-1.0, 1.0),
        "eye_y": u(-0.18, -0.06),
        "eye_dx": u(0.30, 0.40),
        "eye_rx": u(0.12, 0.17),
        "eye_squint": u(0.45, 0.70),
        "gaze": u(-0.35, 0.35),
        "iris": jitter(_IRIS[rng.integers(0, len(_IRIS), n)], 0.05),
        "brow_gap": u(0.16, 0.24),
        "brow_thick": u(0.035, 0.065),
        "brow_arch": u(0.0, 1.0),
        "brow_tilt": u(-0.15, 0.15),
        "nose_y": u(0.18, 0.30),
        "mouth_y": u(0.46, 0.58),
        "mouth_w": u(0.20, 0.32),
        "smile": u(-0.10, 0.35),
        "lip_thick": u(0.045, 0.08),
        "lips": jitter(np.array([[0.72, 0.30, 0.30]], np.float32).repeat(n, 0), 0.06),
        "clothes": _hsv_to_rgb(u(0.0, 1.0), u(0.2, 0.8), u(0.2, 0.85)),
        "bg_top": _hsv_to_rgb(bg_hue, bg_sat, bg_val),
        "bg_bottom": _hsv_to_rgb((bg_hue + u(-0.08, 0.08)) % 1.0, bg_sat, bg_val * u(0.55, 0.9)),
        "light": (light / np.linalg.norm(light, axis=-1, keepdims=True)).astype(np.float32),
        "ambient": u(0.30, 0.50),
        "specular": u(0.03, 0.15),
    }


def _cosine(nx: np.ndarray, ny: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Clipped cosine between unit directions (..., 3) and surface normals (nx, ny, +z)."""
    nz = np.sqrt(np.clip(1.0 - nx * nx - ny * ny, 0.05, 1.0))
    dot = nx * direction[..., 0] + ny * direction[..., 1] + nz * direction[..., 2]
    dot = dot / np.sqrt(nx * nx + ny * ny + nz * nz)
    return np.clip(dot, 0.0, 1.0)


def _lambert(nx: np.ndarray, ny: np.ndarray, light: np.ndarray, ambient: np.ndarray):
    """Brightness of surfaces with normals (nx, ny, +z) under directional lights (..., 3)."""
    return ambient + (1.0 - ambient) * _cosine(nx, ny, light)


# Regions of a photo, back to front; each has a base colour per scene (see `_palette`).
_LABELS = (
    "background hair neck clothes ear skin nose_shadow nostril lip_upper lip_lower mouth_line"
    " lash eye_white iris pupil brow fringe"
).split()
_L = {name: np.uint8(i) for i, name in enumerate(_LABELS)}


def _palette(s: dict[str, np.ndarray]) -> np.ndarray:
    """Base colour of every region for every scene, shape (n, regions, 3)."""
    skin, hair, lips = (np.asarray(s[k], np.float32) for k in ("skin", "hair", "lips"))
    grey = np.ones_like(skin)
    colours = dict(
        background=s["bg_top"], hair=hair, neck=skin, clothes=s["clothes"], ear=0.9 * skin,
        skin=skin, nose_shadow=0.8 * skin, nostril=0.5 * skin, lip_upper=0.85 * lips,
        lip_lower=lips, mouth_line=0.35 * lips, lash=0.4 * hair, eye_white=0.94 * grey,
        iris=s["iris"], pupil=0.04 * grey, brow=0.7 * hair, fringe=hair,
    )  # fmt: skip
    return np.stack([colours[k] for k in _LABELS], axis=1).astype(np.float32)


def _face_labels(u: np.ndarray, v: np.ndarray, q: dict[str, np.ndarray]) -> np.ndarray:
    """Regions of the face (skin and features) at head coordinates (u, v) of scenes q."""
    layers = []  # (mask, region), back to front; regions are numbered in drawing order.
    # Nose: shadow under the tip and two nostrils.
    nose_u, nose_v = u / 0.11, (v - q["nose_y"]) / 0.07
    layers.append(((nose_u * nose_u + nose_v * nose_v <= 1.0) & (nose_v > 0.0), "nose_shadow"))
    nostril = ((np.abs(u) - 0.06) / 0.045) ** 2 + ((v - q["nose_y"] - 0.03) / 0.03) ** 2
    layers.append((nostril <= 1.0, "nostril"))
    # Mouth: lips around a smiling (or frowning) centre line.
    mu = u / q["mouth_w"]
    off = v - (q["mouth_y"] - 0.5 * q["smile"] * mu * mu)
    lip_t = q["lip_thick"] * np.sqrt(np.clip(1.0 - mu * mu, 0.0, 1.0))
    layers.append(((np.abs(off) < lip_t) & (off < 0.0), "lip_upper"))
    layers.append(((np.abs(off) < lip_t) & (off >= 0.0), "lip_lower"))
    layers.append((np.abs(off) < 0.3 * lip_t, "mouth_line"))
    # Eyes (lash line, white, iris, pupil) and eyebrows, mirrored.
    eye_ry = q["eye_rx"] * q["eye_squint"]
    for side in (-1.0, 1.0):
        eu, ev = u - side * q["eye_dx"], v - q["eye_y"]
        ell = (eu / q["eye_rx"]) ** 2 + (ev / eye_ry) ** 2
        iris = ((eu - q["gaze"] * q["eye_rx"]) ** 2 + ev * ev) / (eye_ry * eye_ry)
        layers.append(((ell > 1.0) & (ell < 1.5) & (ev < 0.0), "lash"))
        layers.append((ell <= 1.0, "eye_white"))
        layers.append(((ell <= 1.0) & (iris <= 1.1), "iris"))
        layers.append(((ell <= 1.0) & (iris <= 0.25), "pupil"))
        bu = eu / 0.17
        brow_v = q["eye_y"] - q["brow_gap"] - 0.08 * q["brow_arch"] * (1.0 - bu * bu)
        brow_v = brow_v + side * q["brow_tilt"] * eu
        brow_t = q["brow_thick"] * (1.0 - 0.5 * bu * bu)
        layers.append(((np.abs(v - brow_v) < brow_t) & (np.abs(bu) < 1.0), "brow"))
    # Fringe: hair over the forehead down to a wavy, parted hairline.
    hairline = q["hairline"] + _STYLE_FRINGE[q["hair_style"]] + 0.25 * q["hair_part"] * u
    layers.append((v < hairline + 0.04 * np.cos(u * 14.0), "fringe"))
    return _stack_layers(np.full(np.broadcast_shapes(u.shape, v.shape), _L["skin"]), layers)


def _stack_layers(label: np.ndarray, layers: list[tuple[np.ndarray, str]]) -> np.ndarray:
    """Draws regions over label; a region hides the regions numbered below it."""
    for mask, name in layers:
        label = np.maximum(label, mask * _L[name])
    return label


def _head_axes(p: dict[str, np.ndarray], xs: np.ndarray, ys: np.ndarray):
    """Image axes (dx, dy) and head axes (u, v) in face units at pixel centres xs, ys."""
    dx, dy = (xs - p["cx"]) / p["scale"], (ys - p["cy"]) / p["scale"]
    cos, sin = np.cos(p["angle"]), np.sin(p["angle"])
    return dx, dy, cos * dx + sin * dy, cos * dy - sin * dx


def _render_photo_hi(s: dict[str, np.ndarray], res: int) -> np.ndarray:
    """Renders the photos of scenes `s` at res x res: float32 planes (3, n, res, res)."""
    s = {k: np.asarray(x) for k, x in s.items()}
    n = len(s["cx"])
    p = {k: x.reshape(n, 1, 1, *x.shape[1:]) for k, x in s.items()}  # Broadcast over pixels.
    light, amb, aspect = p["light"], p["ambient"], p["aspect"]
    grid = (np.arange(res, dtype=np.float32) + 0.5) / res
    dx, dy, u, v = _head_axes(p, grid[None, None, :], grid[None, :, None])

    # Background, hair behind the head (an ellipse placed by the style), neck and torso.
    style = p["hair_style"].astype(int)
    hu = u / (aspect * (_STYLE_WIDTH[style] + 0.12 * p["hair_volume"]))
    hv = (v - _STYLE_CENTRE_V[style]) / (_STYLE_HEIGHT[style] + 0.06 * p["hair_volume"])
    neck_w = 0.36 * aspect
    layers = [
        ((hu * hu + hv * hv <= 1.0) & (v < _STYLE_BOTTOM_V[style]), "hair"),
        ((np.abs(dx) < neck_w) & (dy > 0.3), "neck"),
        (dy > 1.05 + 0.16 * dx * dx, "clothes"),
    ]
    label = _stack_layers(np.zeros((n, res, res), np.uint8), layers)
    neck = _lambert(np.clip(0.8 * dx / neck_w, -1.0, 1.0), np.float32(0.0), light, amb)
    shades = [
        np.float32(1.0),
        _lambert(0.7 * hu, 0.7 * hv, light, amb),
        neck * (0.65 + 0.35 * np.clip((dy - 0.7) / 0.5, 0.0, 1.0)),  # Shadow under the chin.
        _lambert(np.clip(0.3 * dx, -0.9, 0.9), np.float32(-0.3), light, amb),
    ]
    shade = np.choose(label, shades)

    # The head (ears, face and features) lies in a window of the image around its centre.
    reach = s["scale"] * np.maximum(1.0, 1.1 * s["aspect"] + 0.15)  # Head radius bound.
    win = min(res, int(np.ceil(2.0 * reach.max(initial=0.0) * res)) + 2)
    x0, y0 = (
        np.clip(np.floor(s[k] * res - win / 2), 0, res - win).astype(int) for k in "cx cy".split()
    )
    at = (
        np.arange(n)[:, None, None],
        y0[:, None, None] + np.arange(win)[None, :, None],
        x0[:, None, None] + np.arange(win)[None, None, :],
    )
    _, _, u, v = _head_axes(p, grid[at[2][:, :1]], grid[at[1][:, :, :1]])
    hu, hv = hu[at], hv[at]
    ear_u, ear_v = (np.abs(u) - 0.97 * aspect) / 0.13, (v - p["eye_y"] - 0.08) / 0.22
    fu = u / (aspect * (1.0 - p["jaw"] * np.clip(v, 0.0, 1.0)))
    face = fu * fu + v * v <= 1.0
    head = _stack_layers(label[at], [(ear_u * ear_u + ear_v * ear_v <= 1.0, "ear")])
    head = np.where(face, _face_labels(u, v, p), head)
    label[at] = head
    face_shade = _lambert(0.7 * fu, 0.7 * v, light, amb)
    head_shade = np.where((head >= _L["ear"]) & (head != _L["fringe"]), face_shade, shade[at])
    shade[at] = np.where(head == _L["fringe"], _lambert(0.7 * hu, 0.7 * hv, light, amb), head_shade)

    # Colour planes (red, green, blue): region colours, shaded, plus smooth extras.
    palette = _palette(s).reshape(-1, 3)
    index = label + (np.arange(n, dtype=np.int32) * len(_LABELS))[:, None, None]
    ramp = grid[None, :, None] * (label == _L["background"])  # The background's gradient.
    half = light + np.array([0.0, 0.0, 1.0], np.float32)  # Between the light and the eye.
    gloss = _cosine(0.7 * fu, 0.7 * v, half / np.linalg.norm(half, axis=-1, keepdims=True))
    gloss = gloss * gloss
    gloss = gloss * gloss
    gloss = p["specular"] * (gloss * gloss) ** 2 * ((head > _L["ear"]) & (head != _L["fringe"]))
    cheek = np.clip(1.0 - ((np.abs(u) - 0.45) ** 2 + (v - 0.22) ** 2) / 0.06, 0.0, 1.0)
    blush = p["blush"] * cheek * cheek * (head == _L["skin"]) * face_shade
    planes = np.empty((3, n, res, res), np.float32)
    for c in range(3):
        plane = np.take(palette[:, c], index) * shade
        plane += ramp * (p["bg_bottom"][..., c] - p["bg_top"][..., c])
        plane[at] += gloss + blush * (p["lips"][..., c] - p["skin"][..., c])
        planes[c] = plane
    return np.clip(planes, 0.0, 1.0, out=planes)


def _stylise(photo: np.ndarray) -> np.ndarray:
    """Paints photos, planes (3, n, h, w) in [0, 1], with local operators only."""
    luma = _LUMA[0] * photo[0] + _LUMA[1] * photo[1] + _LUMA[2] * photo[2]
    tone = np.rint(np.clip(luma, 0.0, 1.0) * (len(_TONE_LUT) - 1)).astype(np.int32)
    # Chroma (r - Y, b - Y): turned, then added to the tone's colour at constant luminance.
    cr, cb = photo[0] - luma, photo[2] - luma
    cos, sin = np.cos(_HUE_TURN), np.sin(_HUE_TURN)
    cr, cb = cos * cr - sin * cb, sin * cr + cos * cb
    chroma = (cr, -(_LUMA[0] * cr + _LUMA[2] * cb) / _LUMA[1], cb)
    # Outlines where the photo has an edge (Sobel magnitude of the strongest channel).
    grad = np.zeros_like(luma)
    for plane in photo:
        pad = np.pad(plane, ((0, 0), (1, 1), (1, 1)), mode="edge")
        rows = pad[:, :-2] + 2.0 * pad[:, 1:-1] + pad[:, 2:]
        cols = pad[:, :, :-2] + 2.0 * pad[:, :, 1:-1] + pad[:, :, 2:]
        gx, gy = rows[:, :, 2:] - rows[:, :, :-2], cols[:, 2:] - cols[:, :-2]
        np.maximum(grad, gx * gx + gy * gy, out=grad)
    lo, hi = _OUTLINE_EDGES
    w = np.clip((np.sqrt(grad) / 8.0 - lo) / (hi - lo), 0.0, 1.0)
    w = _OUTLINE_OPACITY * w * w * (3.0 - 2.0 * w)
    paint = np.empty_like(photo)
    for c in range(3):
        colour = np.take(_TONE_LUT[:, c], tone) + chroma[c]
        paint[c] = colour + w * (_OUTLINE_RGB[c] - colour)
    return np.clip(paint, 0.0, 1.0, out=paint)


def _to_images(planes: np.ndarray, factor: int) -> np.ndarray:
    """Box-filters planes (3, n, h, w) by factor into uint8 images (n, h/f, w/f, 3)."""
    total = sum(planes[..., i::factor, j::factor] for i in range(factor) for j in range(factor))
    small = np.rint(total * (255.0 / factor**2)).transpose(1, 2, 3, 0)
    return np.clip(small, 0, 255).astype(np.uint8)


def _render(
    scenes: dict[str, np.ndarray], size: int, photo: bool, painting: bool
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Renders photos and/or paintings of the scenes, in chunks; returns (photos, paintings)."""
    _check_min("size", size, MIN_SIZE)
    n = len(scenes["cx"])
    out_a = np.zeros((n, size, size, 3), np.uint8) if photo else None
    out_b = np.zeros((n, size, size, 3), np.uint8) if painting else None
    for start in range(0, n, _CHUNK):
        chunk = {k: np.asarray(v)[start : start + _CHUNK] for k, v in scenes.items()}
        hi = _render_photo_hi(chunk, size * _SUPERSAMPLE)
        if photo:
            out_a[start : start + _CHUNK] = _to_images(hi, _SUPERSAMPLE)
        if painting:
            out_b[start : start + _CHUNK] = _to_images(_stylise(hi), _SUPERSAMPLE)
    return out_a, out_b


def render_photo(scenes: dict[str, np.ndarray], size: int) -> np.ndarray:
    """Renders domain A: the photos of `scenes`, uint8 of shape (n, size, size, 3)."""
    return _render(scenes, size, photo=True, painting=False)[0]


def render_painting(scenes: dict[str, np.ndarray], size: int) -> np.ndarray:
    """Renders domain B: the paintings of `scenes`, uint8 of shape (n, size, size, 3)."""
    return _render(scenes, size, photo=False, painting=True)[1]


def _l1(x: np.ndarray, y: np.ndarray) -> float:
    """Mean absolute difference of two uint8 image arrays, in [-1, 1] image units."""
    return float(np.abs(x.astype(np.float32) - y.astype(np.float32)).mean() * 2.0 / 255.0)


def _file_names(num_train: int, num_test: int) -> list[str]:
    """The files of a data set, relative to its root, in the order they are written."""
    counts = dict.fromkeys(SPLITS, num_test) | {"trainA": num_train, "trainB": num_train}
    return [f"{split}/{i:06d}.png" for split in SPLITS for i in range(counts[split])]


def _write_pngs(root: pathlib.Path, split: str, images: np.ndarray) -> None:
    (root / split).mkdir(exist_ok=True)
    for i, image in enumerate(images):
        Image.fromarray(image).save(root / split / f"{i:06d}.png", compress_level=1)


def _write_manifest(root: pathlib.Path, manifest: dict) -> None:
    """Replaces root/manifest.json in one step (never a half-written manifest)."""
    tmp = root / _MANIFEST_TMP
    tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(tmp, root / MANIFEST)


def _listed_files(manifest: object) -> set[str] | None:
    """The files a manifest of this module says it wrote; None unless it is one of ours."""
    if not isinstance(manifest, dict):
        return None
    if manifest.get("generator") == GENERATOR:
        files = manifest.get("files")
        if not isinstance(files, list) or not isinstance(manifest.get("complete"), bool):
            return None
        if not all(isinstance(f, str) and _LISTED.fullmatch(f) for f in files):
            return None
        return set(files)
    if manifest.get("generator") == _LEGACY_GENERATOR and manifest.get("version") == 1:
        counts = [manifest.get("num_train"), manifest.get("num_test")]
        if all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in counts):
            return set(_file_names(*counts))
    return None


def _read_own_manifest(root: pathlib.Path) -> dict | None:
    """Root's manifest with "files" as a set and "complete" set; None when there is none.

    Raises:
        ValueError: root holds a manifest.json this module did not write.
    """
    path = root / MANIFEST
    if not path.exists() and not path.is_symlink():
        return None
    try:
        found = None if path.is_symlink() else json.loads(path.read_text())
    except (OSError, ValueError):
        found = None
    files = _listed_files(found)
    if files is None:
        raise ValueError(
            f"{path} was not written by {GENERATOR}: refusing to write the built-in faces into"
            f" {root}, whose files are not its own; {_FIX}"
        )
    return {**found, "files": files, "complete": found.get("complete", True)}


def _foreign_entries(root: pathlib.Path, own: set[str]) -> list[str]:
    """Paths under root (relative, sorted) other than the split folders and the `own` files.

    Symbolic links count as foreign and are not followed.
    """
    own = own | {MANIFEST, _MANIFEST_TMP}
    foreign = []
    for folder, dirs, files in os.walk(root):
        rel = pathlib.Path(folder).relative_to(root)
        for name in list(dirs):
            is_split = rel == pathlib.Path(".") and name in SPLITS
            if not is_split or os.path.islink(os.path.join(folder, name)):
                foreign.append((rel / name).as_posix())
                dirs.remove(name)
        for name in files:  # A link named like our file: writing it would write its target.
            if (rel / name).as_posix() not in own or os.path.islink(os.path.join(folder, name)):
                foreign.append((rel / name).as_posix())
    return sorted(foreign)


def _check_writable(root: pathlib.Path) -> set[str]:
    """The files under root this module may remove; raises unless root is new, empty or ours.

    Raises:
        ValueError: root is a file, holds a manifest.json this module did not write, or
            holds anything this module did not write (naming one entry, and how many).
    """
    if not root.exists() and not root.is_symlink():
        return set()
    if not root.is_dir():
        raise ValueError(f"data root {root} is not a folder (--config.data.root or --out)")
    manifest = _read_own_manifest(root)
    own = manifest["files"] if manifest else set()
    foreign = _foreign_entries(root, own)
    if foreign:
        n = len(foreign)
        what = f"{n} {'entry (' if n == 1 else 'entries (e.g. '}{root / foreign[0]})"
        if manifest is None:
            why = (
                f"{root} is not empty and has no {MANIFEST} of the built-in data: it holds"
                f" {what}; refusing to write the built-in faces there"
            )
        else:
            why = (
                f"{root} holds the built-in faces and also {what} not written by"
                f" {GENERATOR}: refusing to rewrite the faces next to them (move them out first)"
            )
        raise ValueError(f"{why}; {_FIX}")
    return own


def _params(
    size: int, num_train: int, num_test: int, seed: int, paired: bool = False
) -> dict[str, int | str | bool]:
    _check_min("size", size, MIN_SIZE)
    _check_min("num_train", num_train, 1)
    _check_min("num_test", num_test, 1)
    _check_min("seed", seed, 0)
    params = {
        "generator": GENERATOR,
        "version": VERSION,
        "size": int(size),
        "num_train": int(num_train),
        "num_test": int(num_test),
        "seed": int(seed),
    }
    if paired:  # Only when set, so that manifests written before the option still match.
        params["paired"] = True
    return params


def write_dataset(
    root: str | os.PathLike,
    *,
    size: int = 64,
    num_train: int = 400,
    num_test: int = 50,
    seed: int = 0,
    paired: bool = False,
) -> pathlib.Path:
    """Writes the synthetic data set (layout in the module docstring) under `root`.

    `root` must be missing, empty, or hold only what this module wrote there before (as its
    manifest.json lists); those files are replaced. The manifest is written first, marked
    incomplete, and again at the end (see the module docstring).

    Args:
        root: Folder to write to (created if missing).
        size: Side of the square images in pixels (>= 16).
        num_train: Training images per domain (>= 1).
        num_test: Test images per domain (>= 1).
        seed: Seed of the scene draws; the same seed gives byte-identical files.
        paired: trainB/ holds the paintings of the trainA scenes (same names) instead of
            paintings of other scenes.

    Returns:
        `root` as a path.

    Raises:
        ValueError: an argument is out of range, `root` is not a folder, or it holds anything
            this module did not write (a file, a folder, someone else's manifest.json); then
            nothing is written or removed.
    """
    manifest = _params(size, num_train, num_test, seed, paired)
    root = pathlib.Path(root)
    old = _check_writable(root)
    files = _file_names(num_train, num_test)
    root.mkdir(parents=True, exist_ok=True)
    # First the manifest lists every file this write may leave (the old and the new), so
    # that an interrupted write leaves a folder the next call knows as its own.
    _write_manifest(root, {**manifest, "complete": False, "files": sorted(old | set(files))})
    for name in sorted(old - set(files)):
        (root / name).unlink(missing_ok=True)
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)]
    train_a, train_b = _render(sample_scenes(rngs[0], num_train), size, photo=True, painting=paired)
    _write_pngs(root, "trainA", train_a)
    if not paired:
        _, train_b = _render(sample_scenes(rngs[1], num_train), size, photo=False, painting=True)
    _write_pngs(root, "trainB", train_b)
    test_a, truth_ab = _render(sample_scenes(rngs[2], num_test), size, photo=True, painting=True)
    _write_pngs(root, "testA", test_a)
    _write_pngs(root, "truthAtoB", truth_ab)
    truth_ba, test_b = _render(sample_scenes(rngs[3], num_test), size, photo=True, painting=True)
    _write_pngs(root, "testB", test_b)
    _write_pngs(root, "truthBtoA", truth_ba)
    manifest["identity_l1"] = {
        "AtoB": round(_l1(test_a, truth_ab), 6),
        "BtoA": round(_l1(test_b, truth_ba), 6),
    }
    _write_manifest(root, {**manifest, "complete": True, "files": files})
    return root


def ensure_dataset(
    root: str | os.PathLike,
    *,
    size: int = 64,
    num_train: int = 400,
    num_test: int = 50,
    seed: int = 0,
    paired: bool = False,
) -> pathlib.Path:
    """Writes the data set under `root` unless a complete one with these parameters is there.

    A data set is complete when its manifest says so and every file it lists is there.

    Args:
        root: Folder of the data set.
        size: Side of the square images in pixels (>= 16).
        num_train: Training images per domain (>= 1).
        num_test: Test images per domain (>= 1).
        seed: Seed of the scene draws.
        paired: training pairs (see `write_dataset`); a paired data set is rewritten when an
            unpaired one is asked for, and the reverse.

    Returns:
        `root` as a path.

    Raises:
        ValueError: as `write_dataset`, when the data set has to be (re)written.
    """
    wanted = _params(size, num_train, num_test, seed, paired)
    root = pathlib.Path(root)
    found = _read_own_manifest(root) if root.is_dir() else None
    if (
        found is not None
        and found["complete"]
        and all(found.get(k) == v for k, v in wanted.items())
        and bool(found.get("paired", False)) == paired
        and all((root / name).is_file() for name in found["files"])
    ):
        return root
    return write_dataset(
        root, size=size, num_train=num_train, num_test=num_test, seed=seed, paired=paired
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: writes the data set and prints its identity-baseline L1."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="Folder to write the data set to.")
    parser.add_argument("--size", type=int, default=64, help="Image side in pixels.")
    parser.add_argument("--num_train", type=int, default=400, help="Training images a domain.")
    parser.add_argument("--num_test", type=int, default=50, help="Test images a domain.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the scene draws.")
    parser.add_argument(
        "--paired", action="store_true", help="trainB/: the paintings of the trainA scenes."
    )
    args = parser.parse_args(argv)
    kwargs = dict(
        size=args.size, num_train=args.num_train, num_test=args.num_test, paired=args.paired
    )
    try:
        root = write_dataset(args.out, seed=args.seed, **kwargs)
    except ValueError as e:
        parser.error(str(e))
    l1 = json.loads((root / "manifest.json").read_text())["identity_l1"]
    print(
        f"Wrote {args.num_train}+{args.num_train} train and {args.num_test}+{args.num_test} test"
        f" images of {args.size}x{args.size} px (seed {args.seed}) to {root}: "
        + ", ".join(f"{d}/ ({len(list((root / d).glob('*.png')))})" for d in SPLITS)
    )
    print(f"Identity-baseline L1 ([-1, 1] units): AtoB {l1['AtoB']:.4f}, BtoA {l1['BtoA']:.4f}")


if __name__ == "__main__":
    main()
