"""The generic training loop: config -> data -> method step -> checkpoints, logs, images.

Running the same command again in the same workdir resumes from the newest checkpoint;
the data stream is a pure function of (seed, step), so a resumed run equals an
uninterrupted one. SIGINT / SIGTERM save a checkpoint before exiting.
"""

import dataclasses
import pathlib
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from clu import metric_writers
from jax.experimental import multihost_utils

from jaxfaces import data as data_lib
from jaxfaces import rng as rngs
from jaxfaces.data import sources, synthetic
from jaxfaces.methods import get_method
from jaxfaces.training import checkpoint, eval_schedule, sharding
from jaxfaces.training.progress import Progress, format_duration


def enable_compilation_cache(workdir: pathlib.Path) -> None:
    """Caches compiled programs in WORKDIR/xla_cache (unless a cache is configured already),
    so a resumed run does not compile again."""
    if not jax.config.jax_compilation_cache_dir:
        jax.config.update("jax_compilation_cache_dir", str(workdir / "xla_cache"))


def prepare_data(config: ml_collections.ConfigDict) -> None:
    """Writes the built-in procedural data to `data.root` first when asked to."""
    syn = config.data.synthetic
    if syn.enabled:
        if not config.data.root:
            raise ValueError(
                "config.data.synthetic.enabled needs config.data.root (where to write)"
            )
        if jax.process_index() == 0:
            synthetic.ensure_dataset(
                config.data.root,
                size=syn.size,
                num_train=syn.num_train,
                num_test=syn.num_test,
                seed=config.seed,
                paired=bool(config.data.get("paired", False)),  # trainA/trainB as pairs.
            )
        if jax.process_count() > 1:  # The other hosts wait until the data is written.
            multihost_utils.sync_global_devices("jaxfaces:synthetic_data")


class StopRequested:
    """Turns SIGINT / SIGTERM into a flag the loop checks after each step."""

    def __init__(self):
        self.signal: int | None = None

    def __enter__(self):
        self._old = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _handle(self, signum, frame):
        if self.signal is not None:  # A second Ctrl-C: stop without waiting.
            raise KeyboardInterrupt
        self.signal = signum
        print(
            f"\n{signal.Signals(signum).name} received: saving a checkpoint, then stopping "
            "(again to abort)",
            flush=True,
        )

    def __exit__(self, *exc):
        for s, handler in self._old.items():
            signal.signal(s, handler)


class StepProfiler:
    """`train.profile` = N > 0: a `jax.profiler` trace of N steps into WORKDIR/profile.

    Tracing starts after the run's first step (which compiles) and stops after N steps or
    when the loop ends; TensorBoard's profile plugin, XProf or Perfetto open it.
    """

    def __init__(self, num: int, logdir: pathlib.Path, start: int):
        self.num, self.logdir, self.first = int(num), logdir, start + 1
        self.active, self.done = False, start

    def before_step(self, done: int) -> None:
        """Called with the number of steps done, before the next one runs."""
        if self.num > 0 and done == self.first:
            jax.profiler.start_trace(str(self.logdir))
            self.active = True

    def after_step(self, done: int, outputs: Any) -> None:
        """Called with the number of steps done and the last step's outputs."""
        self.done = done
        if self.active and done >= self.first + self.num:
            self.stop(outputs)

    def stop(self, outputs: Any = None) -> None:
        """Waits for `outputs`, then ends the trace (if one is running)."""
        if self.active:
            jax.block_until_ready(outputs)
            jax.profiler.stop_trace()
            self.active = False
            print(
                f"Profile of steps {self.first + 1}-{self.done} written to {self.logdir}",
                flush=True,
            )


def _image_grid(images: np.ndarray, max_rows: int = 4) -> np.ndarray:
    """uint8 (1, rows*H, W, 3) from a float [-1, 1] batch of side-by-side rows."""
    rows = np.asarray(images[:max_rows], np.float32)
    return data_lib.to_uint8(np.concatenate(list(rows), axis=0))[None]


class NonFiniteError(ValueError):
    """A loss or the state became NaN or infinite; nothing non-finite was saved."""


@jax.jit
def _all_finite(state: Any) -> jax.Array:
    """Whether every floating-point value of the state is finite (one scalar)."""
    leaves = [x for x in jax.tree.leaves(state) if jnp.issubdtype(x.dtype, jnp.floating)]
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def check_finite(metrics: dict[str, Any], step: int, mngr: Any, state_finite: Any = True) -> None:
    """Raises NonFiniteError naming the step and the term when a metric (or the state) is
    NaN or infinite; the newest checkpoint, all finite, is named as the one kept.

    Called with the metrics the loop fetches at each log interval and before every
    checkpoint, so a diverged run stops without a host round-trip per step.
    """
    bad = [k for k, v in metrics.items() if not np.all(np.isfinite(np.asarray(v)))]
    if not bad and bool(state_finite):
        return
    what = ", ".join(bad) if bad else "the state's parameters (the losses are finite)"
    kept = mngr.latest_step()
    raise NonFiniteError(
        f"non-finite {what} at step {step} (first seen at this check, every "
        "train.log_every steps and before each checkpoint); training stopped, nothing saved; "
        + (f"the newest checkpoint, step {kept}, is kept" if kept else "no checkpoint yet")
        + " (lower optim.lr, or check the data)"
    )


def _stream(method, config, state, workdir, stage, start_step, where) -> Iterator[dict]:
    """The stage's batches: the method's own stream, or the image stream from `start_step`."""
    if method.train_batches is not None:
        batches = method.train_batches(
            config, state, workdir, stage, start_step=start_step, **where
        )
        if batches is not None:
            return batches
    return data_lib.train_iterator(config.data, seed=config.seed, start_step=start_step, **where)


@dataclasses.dataclass
class _Run:
    """What one invocation of `train` shares between its stages and steps."""

    config: ml_collections.ConfigDict
    workdir: pathlib.Path
    method: Any
    mesh: jax.sharding.Mesh
    mngr: Any
    writer: Any
    progress: Progress
    evals: eval_schedule.TrainingEvaluations
    profiler: StepProfiler
    start: int
    num_steps: int
    stop_after: int | None
    is_main: bool = dataclasses.field(default_factory=lambda: jax.process_index() == 0)

    @property
    def nan_at(self) -> int:
        """The test hook `train.debug_nan_at_step` (0: off)."""
        return int(self.config.train.get("debug_nan_at_step", 0))


def _initial_state(config, method, mesh, mngr, workdir: pathlib.Path) -> tuple[Any, int]:
    """(state, step): the newest checkpoint's, or a fresh state with its frozen parts."""
    rng = rngs.key(config.seed)
    state = jax.jit(
        lambda: method.init_state(config, rng), out_shardings=sharding.replicated(mesh)
    )()
    start = mngr.latest_step() or 0
    if start:
        state = checkpoint.restore_state(mngr, start, state, config)
        print(f"Resumed from {workdir / 'checkpoints'} at step {start}", flush=True)
    elif method.load_frozen is not None:  # Pretrained parts (VGG19) of a fresh state.
        state = jax.device_put(method.load_frozen(config, state), sharding.replicated(mesh))
    return state, start


def _compile_stage(run: _Run, stage) -> tuple[Callable, Callable]:
    """The stage's jitted (train step, visuals)."""
    replicated = sharding.replicated(run.mesh)
    step_fn = jax.jit(
        run.method.make_train_step(run.config, stage),
        in_shardings=(replicated, sharding.batch_sharded(run.mesh)),
        out_shardings=(replicated, replicated),
        donate_argnums=0,
    )
    # Replicated: every process can read the images (the batch spans processes).
    visuals = jax.jit(run.method.make_visuals(run.config, stage), out_shardings=replicated)
    return step_fn, visuals


def _after_step(run: _Run, stage, step, state, metrics, batch, visuals, stop) -> None:
    """Logs, images, evaluations and checkpoints due after `step`."""
    config, last = run.config, step == run.num_steps
    if step % config.train.log_every == 0 or last:
        scalars = {k: float(v) for k, v in jax.device_get(metrics).items()}
        check_finite(scalars, step, run.mngr)
        line = run.progress.line(step, scalars)
        scalars["steps_per_sec"] = run.progress.steps_per_sec
        run.writer.write_scalars(step, scalars)
        if run.is_main:
            print(line, flush=True)
    if step % config.train.log_images_every == 0 or last:
        images = jax.device_get(visuals(state, batch))
        run.writer.write_images(step, {k: _image_grid(v) for k, v in images.items()})
    if run.is_main and run.evals.due(step):
        run.evals.periodic(sharding.to_host(state), step)
        run.progress.restart(step)  # The evaluation's time is not training time.
    if run.stop_after is not None and step - run.start >= run.stop_after:
        stop.signal = signal.SIGINT
    if step % config.train.ckpt_every == 0 or step == stage.stop or stop.signal:
        check_finite(jax.device_get(metrics), step, run.mngr, _all_finite(state))
        checkpoint.save(run.mngr, step, state, config)


def _run_stage(run: _Run, stage, state, step: int, stop: StopRequested, where: dict):
    """Trains `stage` from `step` until it is done or a stop is asked; (state, step, metrics)."""
    batches = _stream(run.method, run.config, state, run.workdir, stage, step, where)
    step_fn, visuals = _compile_stage(run, stage)
    first, t0, metrics = step + 1, time.perf_counter(), None
    try:
        while step < stage.stop and stop.signal is None:
            batch = sharding.global_batch(next(batches), run.mesh)
            if step + 1 == run.nan_at:  # Test hook: NaN images make every loss NaN.
                batch = jax.tree.map(lambda x: x * np.float32("nan"), batch)
            run.profiler.before_step(step)
            state, metrics = step_fn(state, batch)
            step += 1
            run.profiler.after_step(step, metrics)
            if step == first:
                jax.block_until_ready(metrics)
                run.progress.restart(step)
                took = format_duration(time.perf_counter() - t0)
                print(f"First step (with compilation) took {took}", flush=True)
            _after_step(run, stage, step, state, metrics, batch, visuals, stop)
    finally:
        if hasattr(batches, "close"):
            batches.close()
    return state, step, metrics


def train(
    config: ml_collections.ConfigDict, workdir: str | pathlib.Path, stop_after: int | None = None
) -> dict[str, Any]:
    """Trains `config.method` in `workdir` (resuming if it holds checkpoints).

    The method's stages run in order, each with its own compiled step; the step count is
    global, so a run resumes inside any stage. `stop_after` ends this invocation after that
    many steps, as a Ctrl-C would (a checkpoint is saved; the same call resumes). Returns
    {"state" (numpy), "step", "stopped", "eval"}.
    """
    workdir = pathlib.Path(workdir).expanduser().resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    enable_compilation_cache(workdir)
    method = get_method(config.method)
    method.check_config(config)
    stages = method.stages(config)
    num_steps = stages[-1].stop
    where = dict(
        process_index=jax.process_index(),
        process_count=jax.process_count(),
        num_devices=jax.device_count(),
    )
    sources.check_batch(config.data, **where)
    prepare_data(config)

    mesh = sharding.make_mesh()
    mngr = checkpoint.manager(workdir / "checkpoints", keep=config.train.keep_checkpoints)
    state, start = _initial_state(config, method, mesh, mngr, workdir)
    writer = metric_writers.create_default_writer(
        workdir / "tensorboard", just_logging=jax.process_index() != 0, asynchronous=False
    )
    if start == 0:
        writer.write_hparams(_flatten(config.to_dict()))
    run = _Run(
        config=config,
        workdir=workdir,
        method=method,
        mesh=mesh,
        mngr=mngr,
        writer=writer,
        progress=Progress(start, num_steps),
        evals=eval_schedule.TrainingEvaluations(config, workdir, writer),
        profiler=StepProfiler(config.train.get("profile", 0), workdir / "profile", start),
        start=start,
        num_steps=num_steps,
        stop_after=stop_after,
    )
    if start < num_steps:
        print(
            f"Training {config.method} for {num_steps - start} steps on "
            f"{jax.device_count()} {jax.devices()[0].platform} device(s) in {workdir}",
            flush=True,
        )
    step, metrics = start, None
    try:
        with StopRequested() as stop:
            for stage in stages:
                if step >= stage.stop or stop.signal is not None:
                    continue
                if len(stages) > 1:
                    print(
                        f"Stage {stage.index + 1}/{len(stages)} ({stage.name}): "
                        f"steps {step + 1}-{stage.stop}",
                        flush=True,
                    )
                state, step, metrics = _run_stage(run, stage, state, step, stop, where)
    except NonFiniteError:  # The checkpoints already being written are all finite: finish them.
        checkpoint.close(mngr)
        raise
    run.profiler.stop(metrics)
    checkpoint.close(mngr)
    writer.flush()
    host_state = sharding.to_host(state)
    if stop.signal is not None:
        print(f"Stopped at step {step}; run the same command to resume.", flush=True)
        return {"state": host_state, "step": step, "stopped": True}
    result = {"state": host_state, "step": step, "stopped": False}
    if run.is_main:
        result["eval"] = run.evals.final(host_state, step)
        writer.flush()
    return result


def _flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}, with non-scalar values as strings (for hparams)."""
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v if isinstance(v, (int, float, str, bool)) else str(v)
    return out
