"""Evaluation on the test splits: translations both ways and every metric that applies.

One `Evaluator` serves the end of training (WORKDIR/samples), the evaluations during
training (`training.eval_schedule`) and evaluate.py (`evaluate_checkpoint`). It reaches the
method only through its interface (`methods.base.Method`): `make_translate`,
`translator_variables` and, for the adversarial accuracy, `make_critic`. For each direction
with a test split, every test image is translated and translated back; these metrics are
computed where they apply:

- `cycle_l1`: L1 of the round trip (A -> B -> A for AtoB) to the input.
- `l1`, `psnr`, `ssim` to the true translations (the built-in data's `truthAtoB/`,
  `truthBtoA/`, or `config.data.truth_a2b` / `truth_b2a`), with `identity_l1` (the input
  against the truth) as the baseline and `ratio` = l1 / identity_l1.
- `swd`: sliced Wasserstein distance (x1e3) of the translations to the real test images
  of the target domain; `identity_swd`: of the inputs, the baseline.
- `checkerboard`: the mean share of the translations' high-frequency energy in a period-2
  grid (`metrics.checkerboard`, the transposed convolution's artefact); `target_checkerboard`:
  the same of the real test images of the target domain, the level to stay near.
- `adversarial_accuracy`: how often the method's trained discriminator of the target domain
  tells real test images from translations (per PatchGAN output; 0.5 is chance), when the
  method and the state have one (a training state does, a converted one does not).
- `fid`, `kid` to the real target-domain images, when Inception weights are available.
- for a method whose translations take a latent code z (`Method.make_latent`):
  `diversity` (mean pairwise L1, 0-1 scale, of SAMPLES translations of each input with
  z ~ N(0, I)), `samples_swd` (their SWD to the real target images) and, with true
  translations, `encoded_l1` / `encoded_ratio` (z = the code of the truth); see
  `latent_metrics`.

Translations are rounded to 8 bits before any metric (the round trip starts from the
rounded translation), so the metrics are those of the image files written. The report
layout is `report.write_evaluation`.
"""

import dataclasses
import pathlib
from collections.abc import Callable, Collection
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxfaces import batching, metrics, outputs, report
from jaxfaces import data as data_lib
from jaxfaces.data import sources
from jaxfaces.methods import base, get_method
from jaxfaces.models import inception
from jaxfaces.training import checkpoint

BATCH = 16  # Images per compiled call.


def quantise(images: np.ndarray) -> np.ndarray:
    """[-1, 1] images rounded to 8 bits, as written to image files, back in [-1, 1]."""
    return data_lib.to_float(data_lib.to_uint8(images))


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
    ) -> pathlib.Path:
        """Writes the report folder (`report.write_evaluation`); returns index.html's path."""
        return report.write_evaluation(self, out_dir, title, meta, up_link)


_COMPILED: dict[str, tuple[Callable, base.Critic | None]] = {}


def _compiled(config: ml_collections.ConfigDict) -> tuple[Callable, base.Critic | None]:
    """(jitted translate, critic) of a config, built once per process for each config.

    Keyed on the whole config: a method's translate may close over any field of it.
    """
    key = config.to_json(sort_keys=True)
    if key not in _COMPILED:
        method = get_method(config.method)
        _COMPILED[key] = (jax.jit(method.make_translate(config)), method.make_critic(config))
    return _COMPILED[key]


class Evaluator:
    """Evaluates states of one config on its test splits; loads the data and compiles once.

    Args:
      config: the run's config (`config.data` names the test splits).
      truth: per direction, a folder of true translations or None, overriding
        `sources.truth_folder(config.data, direction)` for the directions it names.
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
            domain: data_lib.test_images(config.data, domain) for domain in sources.DOMAINS
        }
        self.truth: dict[str, np.ndarray | None] = {}
        self.truth_folders: dict[str, pathlib.Path | None] = {}
        from jaxfaces.data import pipeline  # TensorFlow: loaded when evaluating, as test_images.

        for direction, (src, dst, *_) in sources.SIDES.items():
            folder = (truth or {}).get(direction, sources.truth_folder(config.data, direction))
            test = self.tests[src]
            self.truth_folders[direction] = folder if test is not None else None
            self.truth[direction] = (  # Whole images, or the halves of aligned data.
                pipeline.truth_images(config.data, dst, pathlib.Path(folder), test[1])
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

    def _adversarial_accuracy(
        self,
        state: dict[str, Any],
        direction: str,
        real: np.ndarray,
        fake: np.ndarray,
        notes: list[str],
        inputs: np.ndarray,
        truth: np.ndarray | None,
    ) -> float | None:
        """The trained discriminator's accuracy on `real` vs `fake` (None, noted, if none).

        A conditional critic judges pairs: (inputs, truth) are the real ones, (inputs, fake)
        the fakes; without the true translations it gives no accuracy.
        """
        _, critic = _compiled(self.config)
        variables = None if critic is None else critic.variables(state, direction)
        if variables is None:
            notes.append(f"{direction}: no discriminator in the checkpoint")
            return None
        if critic.threshold is None:
            notes.append(f"{direction}: no adversarial accuracy: {critic.no_threshold}")
            return None
        if min(len(real), len(fake)) < critic.min_images:
            notes.append(
                f"{direction}: no adversarial accuracy: fewer images than a pack "
                f"({critic.min_images})"
            )
            return None
        if not critic.conditional:
            logits = [critic.logits(variables, x) for x in (real, fake)]
        elif truth is None:
            notes.append(
                f"{direction}: no adversarial accuracy: the discriminator judges (input, image) "
                "pairs and the true translations are not known"
            )
            return None
        else:
            logits = [critic.logits(variables, x, inputs) for x in (truth, fake)]
        return float(metrics.adversarial_accuracy(*logits, critic.threshold))

    def compute(self, state: dict[str, Any], step: int | None = None) -> Evaluation:
        """Translates the test splits with `state` and computes every metric that applies."""
        translate, _ = _compiled(self.config)
        gens = {d: self.method.translator_variables(state, d) for d in base.DIRECTIONS}
        gens = {d: None if v is None else jax.device_put(v) for d, v in gens.items()}

        def apply(variables: Any, images: np.ndarray) -> np.ndarray:
            fn = lambda x: translate(variables, jnp.asarray(x))  # noqa: E731
            return quantise(batching.apply_batched(fn, images, BATCH))

        results, outputs, notes = {}, {}, []
        for direction, (src, dst, *_) in sources.SIDES.items():
            test, target = self.tests[src], self.tests[dst]
            if test is None:
                notes.append(f"{direction}: no test images of domain {src.upper()}")
                continue
            if gens[direction] is None:
                notes.append(f"{direction}: the checkpoint has no {direction} generator")
                continue
            images, names = test
            fake = apply(gens[direction], images)
            back = gens[base.OTHER[direction]]
            rec = None if back is None else apply(back, fake)
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
                notes.append(
                    f"{direction}: no {base.OTHER[direction]} generator: no reconstruction"
                )
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
                if min(images.shape[1:3]) >= metrics.CHECKERBOARD_BLOCK:
                    m["checkerboard"] = float(np.mean(metrics.checkerboard(fake)))
                    m["target_checkerboard"] = float(np.mean(metrics.checkerboard(real)))
                accuracy = self._adversarial_accuracy(
                    state, direction, real, fake, notes, images, truth
                )
                if accuracy is not None:
                    m["adversarial_accuracy"] = accuracy
                params = self._inception_params()
                fid_kid = None
                if params is not None:
                    fid_kid = metrics.fid_kid_or_none(real, fake, weights=params)
                    if fid_kid is None:
                        notes.append(f"{direction}: FID/KID skipped: fewer than 2 images a set")
                m.update({k: float(v) for k, v in (fid_kid or {}).items()})
            # A method with a latent code: diversity of samples, translation with E(truth).
            real = None if target is None else target[0]
            m.update(latent_metrics(self.config, gens[direction], images, truth, real))
            results[direction] = m
        if self._inception_note and self.tests["a"] is not None and self.tests["b"] is not None:
            notes.append(self._inception_note)
        return Evaluation(step, results, outputs, notes)


def evaluate_checkpoint(
    ckpt: str | pathlib.Path,
    report_dir: str | pathlib.Path | None = None,
    step: int | None = None,
    test: dict[str, str | None] | None = None,
    truth: dict[str, str | None] | None = None,
    inception_weights: str | None = None,
    overwrite: bool = False,
) -> tuple[Evaluation, pathlib.Path]:
    """Evaluates a checkpoint on test folders; writes the report; returns it and its page.

    The report never replaces a test or truth image, nor (unless `overwrite`) a file in
    `report_dir` that jaxfaces did not write there (`outputs.guard`); every file is checked
    before any is written.

    Args:
      ckpt: a workdir or its checkpoints/ folder.
      report_dir: the report folder (default: WORKDIR/report).
      step: the checkpoint step (default: the newest).
      test: {"a": folder, "b": folder} replacing the config's test splits; a domain given
        here has no true translations unless `truth` names them.
      truth: {"AtoB": folder, "BtoA": folder} of true translations of the test images.
      inception_weights: for FID / KID (see `metrics.fid_kid_or_none`).
      overwrite: replace files in `report_dir` that jaxfaces did not write.

    Raises:
      FileNotFoundError / ValueError naming the checkpoint, folder or file at fault,
      ValueError when there are no test images at all, and `outputs.OutputError` (a
      ValueError) naming a file the report would replace.
    """
    config, state, step = checkpoint.load(ckpt, step)
    ckpt_dir = checkpoint.checkpoint_dir(ckpt)
    workdir = ckpt_dir.parent if ckpt_dir.name == "checkpoints" else ckpt_dir
    if (workdir / "xla_cache").is_dir() and not jax.config.jax_compilation_cache_dir:
        jax.config.update("jax_compilation_cache_dir", str(workdir / "xla_cache"))  # Training's.
    folders = {d: sources.truth_folder(config.data, d) for d in sources.SIDES}
    for domain, folder in (test or {}).items():
        if folder:
            config.data[f"test_{domain}"] = str(folder)
            folders["AtoB" if domain == "a" else "BtoA"] = None
    folders.update({d: pathlib.Path(f) for d, f in (truth or {}).items() if f})
    evaluator = Evaluator(config, truth=folders, inception_weights=inception_weights)
    described = {d: sources.describe_test_split(config.data, d) for d in sources.DOMAINS}
    if not evaluator.has_test_split:
        raise ValueError(
            f"no test images: the config of {ckpt} names no test split "
            f"(A: {described['a']}, B: {described['b']}); give --a and/or --b"
        )
    report_dir = pathlib.Path(report_dir) if report_dir else workdir / "report"
    evaluation = evaluator.compute(state, step)
    meta = {"checkpoint": f"{ckpt_dir} (step {step})"}
    for domain in sources.DOMAINS:
        if evaluator.tests[domain] is not None:
            count = len(evaluator.tests[domain][1])
            meta[f"test {domain.upper()}"] = f"{described[domain]} ({count})"
    for direction, folder in evaluator.truth_folders.items():
        if folder is not None:
            meta[f"truth {direction}"] = str(folder)
    targets = [*report.PAGE_FILES, *report.evaluation_files(evaluation)[0]]
    inputs = [
        path
        for folder in (*split_folders(config.data), *evaluator.truth_folders.values())
        if folder is not None and folder.is_dir()
        for path in data_lib.list_images(folder)
    ]
    with outputs.guard(
        report_dir, [report_dir / t for t in targets], inputs, overwrite, flag="--report"
    ):
        page = evaluation.write(
            report_dir, f"Evaluation of {workdir.name} at step {step}", meta=meta
        )
    return evaluation, page


def split_folders(data_cfg: ml_collections.ConfigDict) -> list[pathlib.Path]:
    """The test folders (not TFDS splits) of both domains that `data_cfg` names."""
    splits = (sources.test_split(data_cfg, d) for d in sources.DOMAINS)
    return [s for s in splits if isinstance(s, pathlib.Path)]


# --------------------------------------------------------------------------- latent codes

SAMPLES = 5  # Outputs per input (z ~ N(0, I)) for the diversity figures.
_LATENT: dict[str, tuple[Callable, Callable | None] | None] = {}


def _latent_compiled(config: ml_collections.ConfigDict) -> tuple[Callable, Callable | None] | None:
    """(jitted translate(variables, images, z), jitted encode or None) of a method with a
    latent code (`Method.make_latent`), once per config; None for other methods."""
    key = config.to_json(sort_keys=True)
    if key not in _LATENT:
        latent = get_method(config.method).make_latent(config)
        _LATENT[key] = None if latent is None else (
            jax.jit(latent.translate),
            None if latent.encode is None else jax.jit(latent.encode),
        )  # fmt: skip
    return _LATENT[key]


def translate_with_codes(
    translate: Callable, variables: Any, images: np.ndarray, codes: np.ndarray
) -> np.ndarray:
    """translate(variables, images[i], codes[i]) for every i, BATCH at a time, quantised."""
    images, codes = np.asarray(images, np.float32), np.asarray(codes, np.float32)

    def fn(index: np.ndarray) -> Any:
        return translate(variables, jnp.asarray(images[index]), jnp.asarray(codes[index]))

    return quantise(batching.apply_batched(fn, np.arange(len(images)), BATCH))


def sample_codes(key: jax.Array, samples: int, n: int, dim: int) -> np.ndarray:
    """`samples` codes for each of n inputs from N(0, I): (samples, n, dim)."""
    return np.asarray(jax.random.normal(key, (samples, n, dim), jnp.float32))


def mean_pairwise_l1(samples: np.ndarray) -> float:
    """The mean L1 distance, on a 0-1 scale, between the outputs of one input, averaged over
    the pairs and the inputs: samples (S, N, H, W, C) in [-1, 1], S >= 2."""
    s = len(samples)
    if s < 2:
        raise ValueError(f"the diversity needs at least 2 samples per input, got {s}")
    pairs = [(i, j) for i in range(s) for j in range(i + 1, s)]
    return float(np.mean([np.mean(np.abs(samples[i] - samples[j])) / 2 for i, j in pairs]))


def latent_metrics(
    config: ml_collections.ConfigDict,
    variables: Any,
    images: np.ndarray,
    truth: np.ndarray | None,
    real: np.ndarray | None,
    samples: int = SAMPLES,
    key: jax.Array | None = None,
) -> dict[str, float]:
    """The figures of a method with a latent code (empty for other methods).

    - `diversity`: `mean_pairwise_l1` of `samples` outputs of each input (z ~ N(0, I)),
      on a 0-1 scale (0: z changes nothing).
    - `samples_swd`: SWD (x1e3) of all those outputs to the real target images `real`.
    - `encoded_l1`, `encoded_ratio`: with z the code of each input's true translation
      (`Latent.encode`), L1 ([-1, 1] units) to that truth, and over the identity L1.
    """
    compiled = _latent_compiled(config)
    if compiled is None:
        return {}
    translate, encode = compiled
    key = jax.random.key(1) if key is None else key  # Fixed: the same codes every time.
    latent = get_method(config.method).make_latent(config)
    codes = sample_codes(key, samples, len(images), latent.dim)
    outs = np.stack([translate_with_codes(translate, variables, images, c) for c in codes])
    out = {"diversity": mean_pairwise_l1(outs)}
    if real is not None and metrics.swd_resolutions(*images.shape[1:3]):
        swd_key = jax.random.key(0)
        out["samples_swd"] = metrics.swd(outs.reshape(-1, *outs.shape[2:]), real, swd_key)["swd"]
    if truth is not None and encode is not None:
        z = batching.apply_batched(lambda y: encode(variables, jnp.asarray(y)), truth, BATCH)
        encoded = translate_with_codes(translate, variables, images, z)
        out["encoded_l1"] = float(np.mean(metrics.l1(encoded, truth)))
        identity = float(np.mean(metrics.l1(images, truth)))
        out["encoded_ratio"] = out["encoded_l1"] / max(identity, 1e-12)
    return out
