"""Evaluation on the test splits: metrics, translations, sheets and an HTML report.

One `Evaluator` serves the end of training (WORKDIR/samples), the evaluations during
training (every `train.eval_every` steps: WORKDIR/eval/step_NNNNNN, indexed by
WORKDIR/eval/index.html) and evaluate.py. For each direction with a test split, every test
image is translated and translated back; these metrics are computed where they apply:

- `cycle_l1`: L1 of the round trip (A -> B -> A for AtoB) to the input.
- `l1`, `psnr`, `ssim` to the true translations (the built-in data's `truthAtoB/`,
  `truthBtoA/`, or `config.data.truth_a2b` / `truth_b2a`), with `identity_l1` (the input
  against the truth) as the baseline and `ratio` = l1 / identity_l1.
- `swd`: sliced Wasserstein distance (x1e3) of the translations to the real test images
  of the target domain; `identity_swd`: of the inputs, the baseline.
- `adversarial_accuracy`: how often the trained discriminator of the target domain tells
  real test images from translations (per PatchGAN output; 0.5 is chance), when the state
  has discriminators (a training state does, a converted generator-only one does not).
- `fid`, `kid` to the real target-domain images, when Inception weights are available.

Translations are rounded to 8 bits before any metric (the round trip starts from the
rounded translation), so the metrics are those of the image files written.

Output folder: index.html (the metrics table, then per direction a grid of input |
translation | truth | reconstruction), metrics.json ({direction: {metric: value}}),
metrics.csv, AtoB.png / BtoA.png sheets (input | translation | reconstruction [| truth]),
AtoB/NAME.png every translation (PNG: lossless), AtoB/{input,truth,reconstruction}/ the
grid's other images.
"""

import dataclasses
import json
import pathlib
from collections.abc import Collection
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxfaces import data as data_lib
from jaxfaces import metrics, report
from jaxfaces.methods import get_method
from jaxfaces.models import discriminators, inception
from jaxfaces.training import checkpoint

#: direction -> (source domain, target domain, truth config field, truth folder under root).
SIDES = {"AtoB": ("a", "b", "truth_a2b", "truthAtoB"), "BtoA": ("b", "a", "truth_b2a", "truthBtoA")}
#: The discriminator that judges a direction's translations (it learnt the target domain).
DISCRIMINATOR_OF = {"AtoB": "d_a", "BtoA": "d_b"}
OTHER = {"AtoB": "BtoA", "BtoA": "AtoB"}
BATCH = 16  # Images per compiled call.


def truth_folder(data_cfg: ml_collections.ConfigDict, direction: str) -> pathlib.Path | None:
    """The folder of true translations for `direction`'s test images, if there is one."""
    _, _, key, default = SIDES[direction]
    if data_cfg.get(key):
        return pathlib.Path(data_cfg[key])
    if data_cfg.get("root") and (pathlib.Path(data_cfg.root) / default).is_dir():
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


def quantise(images: np.ndarray) -> np.ndarray:
    """[-1, 1] images rounded to 8 bits, as written to image files, back in [-1, 1]."""
    return data_lib.to_float(data_lib.to_uint8(images))


def _png(name: str) -> str:
    """The file name an image is written under: its test image's, as PNG (lossless)."""
    return f"{pathlib.Path(name).stem}.png"


@dataclasses.dataclass
class Outputs:
    """One direction's images, all (N, H, W, 3) in [-1, 1]."""

    names: list[str]
    inputs: np.ndarray
    translations: np.ndarray
    reconstructions: np.ndarray | None
    truth: np.ndarray | None


@dataclasses.dataclass
class Evaluation:
    """The result of `Evaluator.compute`: metrics, images and notes on what was skipped."""

    step: int | None
    metrics: dict[str, dict[str, float]]
    outputs: dict[str, Outputs]
    notes: list[str]

    def summary(
        self, where: pathlib.Path | str | None = None, skip_notes: Collection[str] = ()
    ) -> str:
        """The console text: where it was written, the metrics table, the notes (but
        `skip_notes`, said before)."""
        head = "Evaluation" + (f" at step {self.step}" if self.step is not None else "")
        lines = [head + (f": {where}" if where else "")]
        if self.metrics:
            lines.append(report.format_table(self.metrics))
        lines += [f"  note: {n}" for n in self.notes if n not in skip_notes]
        return "\n".join(lines)

    def scalars(self, prefix: str = "eval") -> dict[str, float]:
        """{"eval/AtoB/l1": ...} for the metric writers."""
        return {f"{prefix}/{d}/{k}": v for d, m in self.metrics.items() for k, v in m.items()}

    def write(
        self,
        out_dir: str | pathlib.Path,
        title: str = "Evaluation",
        meta: dict[str, str] | None = None,
        up_link: str | None = None,
        max_sheet_rows: int = 8,
        max_grid_rows: int = 16,
    ) -> pathlib.Path:
        """Writes the report folder (see the module docstring); returns index.html's path."""
        out_dir = pathlib.Path(out_dir)
        grids = []
        for direction, o in self.outputs.items():
            for name, image in zip(o.names, o.translations, strict=True):
                data_lib.save_image(out_dir / direction / _png(name), image)
            sheet = [o.inputs, o.translations, o.reconstructions, o.truth]
            rows = np.concatenate([c for c in sheet if c is not None], axis=2)[:max_sheet_rows]
            data_lib.save_image(out_dir / f"{direction}.png", np.concatenate(list(rows), axis=0))
            columns = {"input": o.inputs, "translation": o.translations}
            columns["truth"] = o.truth
            columns["reconstruction"] = o.reconstructions
            columns = {k: v for k, v in columns.items() if v is not None}
            grid_rows = []
            for i, name in enumerate(o.names[:max_grid_rows]):
                paths = []
                for column, images in columns.items():
                    if column == "translation":
                        path = f"{direction}/{_png(name)}"
                    else:
                        path = f"{direction}/{column}/{_png(name)}"
                        data_lib.save_image(out_dir / path, images[i])
                    paths.append(path)
                grid_rows.append((name, paths))
            src, dst = (s.upper() for s in SIDES[direction][:2])
            shown = f"first {len(grid_rows)} of {len(o.names)}"
            grids.append(
                report.Grid(f"{src} -> {dst} ({shown} test images)", list(columns), grid_rows)
            )
        info = dict(meta or {})
        if self.step is not None:
            info.setdefault("step", str(self.step))
        return report.write_page(out_dir, title, self.metrics, grids, self.notes, info, up_link)


_COMPILED: dict[str, tuple] = {}


def _compiled(config: ml_collections.ConfigDict) -> tuple:
    """(translate, discriminate or None), jitted once per method and networks (per process)."""
    key = json.dumps({"method": config.method, "model": config.model.to_dict()}, sort_keys=True)
    if key not in _COMPILED:
        method = get_method(config.method)
        translate = jax.jit(method.make_translate(config))
        discriminate = None
        if "discriminator" in config.get("model", {}):
            net = discriminators.make_discriminator(config.model.discriminator)
            discriminate = jax.jit(lambda variables, x: net.apply(variables, x, train=False))
        _COMPILED[key] = (translate, discriminate)
    return _COMPILED[key]


def _batched(fn, variables, images: np.ndarray) -> np.ndarray:
    """`fn(variables, batch)` over `images` in batches of one shape (the last one padded)."""
    size = min(BATCH, len(images))
    out = []
    for i in range(0, len(images), size):
        batch = images[i : i + size]
        valid = len(batch)
        if valid < size:
            batch = np.concatenate([batch, np.zeros((size - valid, *batch.shape[1:]), batch.dtype)])
        out.append(np.asarray(fn(variables, jnp.asarray(batch)))[:valid])
    return np.concatenate(out)


def _test_split(
    data_cfg: ml_collections.ConfigDict, domain: str
) -> tuple[np.ndarray, list[str]] | None:
    """`data.test_images`, or None when the config names no data at all (a converted
    checkpoint's)."""
    sources = (f"test_{domain}", "root", "a", "b", "tfds")
    if not any(data_cfg.get(k) for k in sources):
        return None
    return data_lib.test_images(data_cfg, domain)


def discriminator_variables(state: dict[str, Any], direction: str) -> dict[str, Any] | None:
    """The Flax variables of the discriminator judging `direction`, or None if the state
    has none (a converted, generator-only checkpoint)."""
    name = DISCRIMINATOR_OF[direction]
    params = state.get("params") or {}
    if name not in params:
        return None
    variables = {"params": params[name]}
    stats = state.get("batch_stats") or {}
    if name in stats:
        variables["batch_stats"] = stats[name]
    return variables


class Evaluator:
    """Evaluates states of one config on its test splits; loads the data and compiles once.

    Args:
      config: the run's config (`config.data` names the test splits).
      truth: per direction, a folder of true translations or None, overriding
        `truth_folder(config.data, direction)` for the directions it names.
      inception_weights: passed to `metrics.fid_kid_or_none` (None: its default).
    """

    def __init__(
        self,
        config: ml_collections.ConfigDict,
        truth: dict[str, pathlib.Path | None] | None = None,
        inception_weights: str | None = None,
    ):
        self.config = config
        self.method = get_method(config.method)
        self.inception_weights = inception_weights
        self.tests: dict[str, tuple[np.ndarray, list[str]] | None] = {
            domain: _test_split(config.data, domain) for domain in ("a", "b")
        }
        self.truth: dict[str, np.ndarray | None] = {}
        self.truth_folders: dict[str, pathlib.Path | None] = {}
        for direction, (src, *_) in SIDES.items():
            folder = (truth or {}).get(direction, truth_folder(config.data, direction))
            test = self.tests[src]
            self.truth_folders[direction] = folder if test is not None else None
            self.truth[direction] = (
                load_truth(pathlib.Path(folder), test[1], config.data.size)
                if folder is not None and test is not None
                else None
            )
        self._identity_swd: dict[str, float] = {}
        self._inception: dict[str, Any] | None = None
        self._inception_note: str | None = None
        self._swd_key = jax.random.key(0)  # Fixed: the same patches at every evaluation.

    @property
    def has_test_split(self) -> bool:
        return any(t is not None for t in self.tests.values())

    def _inception_params(self) -> dict[str, Any] | None:
        """The Inception weights, read once; None (with a note why) when unavailable."""
        if self._inception is None and self._inception_note is None:
            try:
                self._inception = inception.load_params(self.inception_weights)
            except (FileNotFoundError, ValueError) as e:
                self._inception_note = f"FID/KID skipped: {e}"
        return self._inception

    def _generator(self, state: dict[str, Any], direction: str) -> dict[str, Any] | None:
        try:
            return self.method.generator_variables(state, direction)
        except (ValueError, KeyError):  # A converted checkpoint may hold one generator.
            return None

    def _adversarial_accuracy(
        self,
        state: dict[str, Any],
        direction: str,
        real: np.ndarray,
        fake: np.ndarray,
        notes: list[str],
    ) -> float | None:
        """The trained discriminator's accuracy on `real` vs `fake` (None, noted, if none)."""
        _, discriminate = _compiled(self.config)
        variables = discriminator_variables(state, direction)
        if variables is None or discriminate is None:
            notes.append(f"{direction}: no discriminator in the checkpoint")
            return None
        try:
            threshold = metrics.gan_threshold(self.config.loss.gan_mode)
        except ValueError:
            notes.append(
                f"{direction}: no adversarial accuracy: gan_mode "
                f"{self.config.loss.gan_mode!r} has no real / fake decision threshold"
            )
            return None
        m = int(self.config.model.discriminator.get("pack", 1))
        if min(len(real), len(fake)) < m:
            notes.append(f"{direction}: no adversarial accuracy: fewer images than a pack ({m})")
            return None
        # PacGAN packs each image with the next m - 1 of the same set (as in training).
        logits = [
            _batched(discriminate, variables, np.asarray(discriminators.pack(x, m)))
            for x in (real, fake)
        ]
        return float(metrics.adversarial_accuracy(*logits, threshold))

    def compute(self, state: dict[str, Any], step: int | None = None) -> Evaluation:
        """Translates the test splits with `state` and computes every metric that applies."""
        translate, _ = _compiled(self.config)
        gens = {d: self._generator(state, d) for d in SIDES}
        results, outputs, notes = {}, {}, []
        for direction, (src, dst, *_) in SIDES.items():
            test, target = self.tests[src], self.tests[dst]
            if test is None:
                notes.append(f"{direction}: no test images of domain {src.upper()}")
                continue
            if gens[direction] is None:
                notes.append(f"{direction}: the checkpoint has no {direction} generator")
                continue
            images, names = test
            fake = quantise(_batched(translate, gens[direction], images))
            back = gens[OTHER[direction]]
            rec = None if back is None else quantise(_batched(translate, back, fake))
            truth = self.truth[direction]
            outputs[direction] = Outputs(names, images, fake, rec, truth)
            m: dict[str, float] = {}
            if truth is not None:
                m["l1"] = float(np.mean(metrics.l1(fake, truth)))
                m["identity_l1"] = float(np.mean(metrics.l1(images, truth)))
                m["ratio"] = m["l1"] / max(m["identity_l1"], 1e-12)
                m["psnr"] = float(np.mean(metrics.psnr(fake, truth)))
                if min(images.shape[1:3]) >= metrics.SSIM_WINDOW:
                    m["ssim"] = float(np.mean(metrics.ssim(fake, truth)))
            else:
                notes.append(f"{direction}: no true translations known: no L1/PSNR/SSIM")
            if rec is not None:
                m["cycle_l1"] = float(np.mean(metrics.l1(rec, images)))
            else:
                notes.append(f"{direction}: no {OTHER[direction]} generator: no reconstruction")
            if target is None:
                notes.append(
                    f"{direction}: no real test images of domain {dst.upper()}: "
                    "no SWD, adversarial accuracy, FID or KID"
                )
            else:
                real = target[0]
                if metrics.swd_resolutions(*images.shape[1:3]):  # At least 16 px.
                    m["swd"] = metrics.swd(fake, real, self._swd_key)["swd"]
                    if direction not in self._identity_swd:
                        baseline = metrics.swd(images, real, self._swd_key)["swd"]
                        self._identity_swd[direction] = baseline
                    m["identity_swd"] = self._identity_swd[direction]
                accuracy = self._adversarial_accuracy(state, direction, real, fake, notes)
                if accuracy is not None:
                    m["adversarial_accuracy"] = accuracy
                params = self._inception_params()
                fid_kid = None
                if params is not None:
                    fid_kid = metrics.fid_kid_or_none(real, fake, weights=params)
                    if fid_kid is None:
                        notes.append(f"{direction}: FID/KID skipped: fewer than 2 images a set")
                m.update({k: float(v) for k, v in (fid_kid or {}).items()})
            results[direction] = m
        if self._inception_note and self.tests["a"] is not None and self.tests["b"] is not None:
            notes.append(self._inception_note)
        return Evaluation(step, results, outputs, notes)


class TrainingEvaluations:
    """A training run's evaluations: every `config.train.eval_every` steps and at the end.

    Periodic ones go to WORKDIR/eval/step_NNNNNN/ (indexed by WORKDIR/eval/index.html), the
    final one to WORKDIR/samples/; each is printed and written to `writer` under eval/.
    The test split is loaded, and the networks compiled, once; the final evaluation reuses
    a periodic one of the same step.
    """

    def __init__(self, config: ml_collections.ConfigDict, workdir: pathlib.Path, writer: Any):
        self.config, self.workdir, self.writer = config, pathlib.Path(workdir), writer
        self.every = config.train.get("eval_every", 0)
        self.last: Evaluation | None = None
        self._evaluator: Evaluator | None = None
        self._said: set[str] = set()  # Notes printed already (printed once per run).

    def _print(self, evaluation: Evaluation, page: pathlib.Path) -> None:
        print(evaluation.summary(page, skip_notes=self._said), flush=True)
        self._said.update(evaluation.notes)

    @property
    def evaluator(self) -> Evaluator:
        if self._evaluator is None:
            self._evaluator = Evaluator(self.config)
        return self._evaluator

    def due(self, step: int) -> bool:
        """Whether `step` is one to evaluate at."""
        return bool(self.every) and step % self.every == 0

    def periodic(self, state: dict[str, Any], step: int) -> Evaluation | None:
        """Evaluates at `step` into WORKDIR/eval/; None (and no more tries) without test data."""
        if not self.evaluator.has_test_split:
            print("train.eval_every: the data has no test split; no evaluations", flush=True)
            self.every = 0
            return None
        self.last = self.evaluator.compute(state, step)
        eval_dir = self.workdir / "eval"
        page = self.last.write(
            report.step_dir(eval_dir, step), f"Evaluation at step {step}", up_link="../index.html"
        )
        report.write_index(eval_dir, f"Evaluations of {self.workdir}")
        if self.last.metrics:
            self.writer.write_scalars(step, self.last.scalars())
        self._print(self.last, page)
        return self.last

    def final(self, state: dict[str, Any], step: int) -> dict[str, dict[str, float]]:
        """Evaluates the trained `state` into WORKDIR/samples/; returns the metrics."""
        evaluation, fresh = self.last, False
        if evaluation is None or evaluation.step != step:
            evaluation, fresh = self.evaluator.compute(state, step), True
            if evaluation.metrics:
                self.writer.write_scalars(step, evaluation.scalars())
        if evaluation.outputs:
            page = evaluation.write(self.workdir / "samples", f"Test evaluation at step {step}")
            if fresh:
                self._print(evaluation, page)
            else:
                print(f"Test evaluation (as at step {step} above) written to {page}", flush=True)
        return evaluation.metrics


def _describe_split(data_cfg: ml_collections.ConfigDict, domain: str) -> str:
    if data_cfg.get(f"test_{domain}"):
        return str(data_cfg[f"test_{domain}"])
    if data_cfg.get("root"):
        return str(pathlib.Path(data_cfg.root) / f"test{domain.upper()}")
    return f"TFDS {data_cfg.tfds} test{domain.upper()}" if data_cfg.get("tfds") else "none"


def evaluate_checkpoint(
    ckpt: str | pathlib.Path,
    report_dir: str | pathlib.Path | None = None,
    step: int | None = None,
    test: dict[str, str | None] | None = None,
    truth: dict[str, str | None] | None = None,
    inception_weights: str | None = None,
) -> tuple[Evaluation, pathlib.Path]:
    """Evaluates a checkpoint on test folders; writes the report; returns it and its page.

    Args:
      ckpt: a workdir or its checkpoints/ folder.
      report_dir: the report folder (default: WORKDIR/report).
      step: the checkpoint step (default: the newest).
      test: {"a": folder, "b": folder} replacing the config's test splits; a domain given
        here has no true translations unless `truth` names them.
      truth: {"AtoB": folder, "BtoA": folder} of true translations of the test images.
      inception_weights: for FID / KID (see `metrics.fid_kid_or_none`).

    Raises:
      FileNotFoundError / ValueError naming the checkpoint, folder or file at fault, and
      ValueError when there are no test images at all.
    """
    config, state, step = checkpoint.load(ckpt, step)
    ckpt_dir = checkpoint.checkpoint_dir(ckpt)
    workdir = ckpt_dir.parent if ckpt_dir.name == "checkpoints" else ckpt_dir
    if (workdir / "xla_cache").is_dir() and not jax.config.jax_compilation_cache_dir:
        jax.config.update("jax_compilation_cache_dir", str(workdir / "xla_cache"))  # Training's.
    folders = {d: truth_folder(config.data, d) for d in SIDES}
    for domain, folder in (test or {}).items():
        if folder:
            config.data[f"test_{domain}"] = str(folder)
            folders["AtoB" if domain == "a" else "BtoA"] = None
    folders.update({d: pathlib.Path(f) for d, f in (truth or {}).items() if f})
    evaluator = Evaluator(config, truth=folders, inception_weights=inception_weights)
    if not evaluator.has_test_split:
        raise ValueError(
            f"no test images: the config of {ckpt} names no test split "
            f"(A: {_describe_split(config.data, 'a')}, B: {_describe_split(config.data, 'b')}); "
            "give --a and/or --b"
        )
    report_dir = pathlib.Path(report_dir) if report_dir else workdir / "report"
    evaluation = evaluator.compute(state, step)
    meta = {"checkpoint": f"{ckpt_dir} (step {step})"}
    for domain in ("a", "b"):
        if evaluator.tests[domain] is not None:
            count = len(evaluator.tests[domain][1])
            meta[f"test {domain.upper()}"] = f"{_describe_split(config.data, domain)} ({count})"
    for direction, folder in evaluator.truth_folders.items():
        if folder is not None:
            meta[f"truth {direction}"] = str(folder)
    page = evaluation.write(report_dir, f"Evaluation of {workdir.name} at step {step}", meta)
    return evaluation, page
