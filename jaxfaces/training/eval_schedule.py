"""A training run's evaluations: every `train.eval_every` steps and at the end."""

import pathlib
from typing import Any

import ml_collections

from jaxfaces import evaluation, report


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
        self.last: evaluation.Evaluation | None = None
        self._evaluator: evaluation.Evaluator | None = None
        self._said: set[str] = set()  # Notes printed already (printed once per run).

    def _print(self, result: evaluation.Evaluation, page: pathlib.Path) -> None:
        print(result.summary(page, skip_notes=self._said), flush=True)
        self._said.update(result.notes)

    @property
    def evaluator(self) -> evaluation.Evaluator:
        if self._evaluator is None:
            self._evaluator = evaluation.Evaluator(self.config)
        return self._evaluator

    def due(self, step: int) -> bool:
        """Whether `step` is one to evaluate at."""
        return bool(self.every) and step % self.every == 0

    def periodic(self, state: dict[str, Any], step: int) -> evaluation.Evaluation | None:
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
        result, fresh = self.last, False
        if result is None or result.step != step:
            result, fresh = self.evaluator.compute(state, step), True
            if result.metrics:
                self.writer.write_scalars(step, result.scalars())
        if result.outputs:
            page = result.write(self.workdir / "samples", f"Test evaluation at step {step}")
            if fresh:
                self._print(result, page)
            else:
                print(f"Test evaluation (as at step {step} above) written to {page}", flush=True)
        return result.metrics
