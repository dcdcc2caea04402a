"""End-of-training evaluation: translated test sheets both ways, and L1 to ground truth.

For each direction with a test split: every test image is translated and translated back;
`OUT/AtoB.png` (and `BtoA.png`) shows rows of input | translation | reconstruction
(| truth, when known), and `OUT/AtoB/NAME` holds each translation. Where the true
translations are known (the built-in data's `truthAtoB/`, `truthBtoA/`, or
`config.data.truth_a2b` / `truth_b2a`), the mean L1 to the truth is reported beside the
identity baseline (the L1 of the untranslated input to the truth).
"""

import json
import pathlib
from typing import Any

import ml_collections
import numpy as np

from jaxfaces import data as data_lib
from jaxfaces.inference import Translator

SIDES = {"AtoB": ("a", "b", "truth_a2b", "truthAtoB"), "BtoA": ("b", "a", "truth_b2a", "truthBtoA")}


def truth_folder(data_cfg: ml_collections.ConfigDict, direction: str) -> pathlib.Path | None:
    """The folder of true translations for `direction`'s test images, if there is one."""
    _, _, key, default = SIDES[direction]
    if data_cfg.get(key):
        return pathlib.Path(data_cfg[key])
    if data_cfg.root and (pathlib.Path(data_cfg.root) / default).is_dir():
        return pathlib.Path(data_cfg.root) / default
    return None


def load_truth(folder: pathlib.Path, names: list[str], size: int) -> np.ndarray:
    """The true translations of `names` from `folder`, as [-1, 1] arrays of `size`."""
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise ValueError(
            f"{folder} lacks the true translations of {missing[:5]} "
            f"({len(missing)} of {len(names)} test images)"
        )
    return np.stack([data_lib.to_float(data_lib.read_image(folder / n, size)) for n in names])


def l1_per_image(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Mean absolute difference of each image pair, in [-1, 1] units."""
    return np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64)).mean(axis=(1, 2, 3))


def evaluate(
    config: ml_collections.ConfigDict,
    state: dict[str, Any],
    out_dir: str | pathlib.Path,
    max_sheet_rows: int = 8,
) -> dict[str, dict[str, float]]:
    """Translates the test splits, writes sheets and returns (and prints) the metrics."""
    out_dir = pathlib.Path(out_dir)
    results: dict[str, dict[str, float]] = {}
    forward = {d: Translator(config, state, d) for d in SIDES}
    for direction, (src, _, _, _) in SIDES.items():
        test = data_lib.test_images(config.data, src)
        if test is None:
            continue
        images, names = test
        fake = forward[direction](images)
        rec = forward["BtoA" if direction == "AtoB" else "AtoB"](fake)
        columns = [images, fake, rec]
        metrics = {"cycle_l1": float(l1_per_image(rec, images).mean())}
        folder = truth_folder(config.data, direction)
        if folder is not None:
            truth = load_truth(folder, names, config.data.size)
            columns.append(truth)
            metrics["l1"] = float(l1_per_image(fake, truth).mean())
            metrics["identity_l1"] = float(l1_per_image(images, truth).mean())
            metrics["ratio"] = metrics["l1"] / max(metrics["identity_l1"], 1e-12)
        for name, image in zip(names, fake, strict=True):
            data_lib.save_image(out_dir / direction / name, image)
        rows = np.concatenate(columns, axis=2)[:max_sheet_rows]
        data_lib.save_image(out_dir / f"{direction}.png", np.concatenate(list(rows), axis=0))
        results[direction] = metrics
    if results:
        (out_dir / "metrics.json").write_text(json.dumps(results, indent=2))
        print(report(results, out_dir), flush=True)
    return results


def report(results: dict[str, dict[str, float]], out_dir: pathlib.Path) -> str:
    """A short human-readable summary of `evaluate`'s results."""
    lines = [
        f"Test translations written to {out_dir} (sheets: input | translation | "
        "reconstruction [| truth])"
    ]
    for direction, m in results.items():
        text = f"  {direction}: cycle L1 {m['cycle_l1']:.3f}"
        if "l1" in m:
            text += (
                f", L1 to truth {m['l1']:.3f} vs identity baseline "
                f"{m['identity_l1']:.3f} (ratio {m['ratio']:.2f})"
            )
        lines.append(text)
    return "\n".join(lines)
