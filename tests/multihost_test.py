"""`train.py --distributed`: two processes on this machine train as one process with two devices.

Two `train.py` processes (one CPU device each, JAX's gloo collectives over 127.0.0.1) run
one step of the test CycleGAN next to a one-process run with two (fake) CPU devices. Both
split the global batch of 2 the same way (image i on device i), so they compute the same
step: each device runs the same program on the same image, and the two shards' gradient
sums are combined by one addition, which is commutative. Only if the compiled kernels
differed between the two kinds of run could rounding differ; the tolerances allow that and
no more (see `test_two_processes_train_as_one_process_with_two_devices`).

What else the two processes must get right: each reads its own half of every batch (the
other half would give other losses), only process 0 prints the loss lines, evaluates and
writes TensorBoard, both write one checkpoint together, and a single process with one
device reads it back.
"""

import os
import pathlib
import socket
import struct
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from tensorboard.compat.proto import event_pb2

from configs import test as test_config
from jaxfaces.data import synthetic
from jaxfaces.training import checkpoint

ROOT = pathlib.Path(__file__).resolve().parents[1]

#: N u: u = 2^-24 the float32 unit roundoff, N = 2 x 32 x 32 x 3 the longest sum of the step
#: (the L1 means over the batch), a bound on the relative rounding error of any N-term sum.
TOL = 2 * 32 * 32 * 3 * 2.0**-24

TRAIN_ARGS = (
    "train.py",
    "--config=configs/test.py",
    "--config.data.synthetic.enabled=True",  # Process 0 writes it; process 1 waits.
    "--config.train.num_steps=1",
    "--config.train.eval_every=0",  # Only the final evaluation (process 0).
    "--config.train.log_every=1",
    "--config.train.log_images_every=1",  # The image grid of a batch spread over processes.
    "--config.train.ckpt_every=1",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(devices: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(JAX_PLATFORMS="cpu", JAX_CPU_COLLECTIVES_IMPLEMENTATION="gloo")
    if devices > 1:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    if jax.config.jax_compilation_cache_dir:  # The test session's cache (conftest.py).
        env["JAX_COMPILATION_CACHE_DIR"] = jax.config.jax_compilation_cache_dir
    return env


def _scalars(workdir: pathlib.Path) -> dict[str, dict[int, float]]:
    """{tag: {step: value}} of the run's one TensorBoard event file (TFRecord framing)."""
    (events,) = (workdir / "tensorboard").glob("events.out.tfevents.*")
    data, i, out = events.read_bytes(), 0, {}
    while i < len(data):
        (n,) = struct.unpack("<Q", data[i : i + 8])
        event = event_pb2.Event.FromString(data[i + 12 : i + 12 + n])
        i += 12 + n + 4  # Length, its CRC, the record, its CRC.
        for v in event.summary.value:
            if v.metadata.plugin_data.plugin_name == "scalars":
                value = np.frombuffer(v.tensor.tensor_content, np.float32)
                out.setdefault(v.tag, {})[event.step] = float(value[0])
    return out


def _run_all(runs: dict[str, tuple[list[str], dict]], tmp: pathlib.Path) -> dict[str, str]:
    """Starts every run at once, waits for all; returns each one's output, asserting status 0."""
    procs = {}
    for name, (args, env) in runs.items():
        log = open(tmp / f"{name}.log", "w")  # noqa: SIM115 (closed below)
        procs[name] = (
            subprocess.Popen(
                [sys.executable, *args], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            ),
            log,
        )
    deadline = time.monotonic() + 300
    try:
        for proc, _ in procs.values():
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for proc, log in procs.values():
            if proc.poll() is None:  # A process waiting forever for its peer.
                proc.kill()
                proc.wait()
            log.close()
    outputs = {name: (tmp / f"{name}.log").read_text() for name in runs}
    for name, (proc, _) in procs.items():
        assert proc.returncode == 0, f"{name} exited {proc.returncode}:\n{outputs[name][-3000:]}"
    return outputs


@pytest.mark.slow
def test_two_processes_train_as_one_process_with_two_devices(tmp_path):
    two, ref = tmp_path / "two", tmp_path / "ref"
    address = f"127.0.0.1:{_free_port()}"
    runs = {
        f"process_{i}": (
            [
                *TRAIN_ARGS,
                f"--workdir={two}",
                f"--config.data.root={tmp_path / 'data_two'}",
                "--distributed",
                f"--coordinator_address={address}",
                "--num_processes=2",
                f"--process_id={i}",
            ],
            _env(devices=1),
        )
        for i in (0, 1)
    }
    # The reference reads the same images (written here) without a test split: no evaluation.
    syn = test_config.get_config().data.synthetic
    data = synthetic.ensure_dataset(
        tmp_path / "data", size=syn.size, num_train=syn.num_train, num_test=syn.num_test
    )
    runs["reference"] = (
        [
            *TRAIN_ARGS,
            f"--workdir={ref}",
            "--config.data.synthetic.enabled=False",
            f"--config.data.a={data / 'trainA'}",
            f"--config.data.b={data / 'trainB'}",
        ],
        _env(devices=2),
    )
    out = _run_all(runs, tmp_path)
    for name in runs:
        assert "on 2 cpu device(s)" in out[name], out[name][-2000:]

    # Process 0 prints the losses and evaluates; process 1 does neither.
    assert "step 1/1 |" in out["process_0"] and "step 1/1 |" not in out["process_1"]
    assert "Evaluation at step 1" in out["process_0"]
    assert "Evaluation" not in out["process_1"] + out["reference"]
    assert (two / "samples" / "index.html").is_file()
    # One TensorBoard file (process 0's), with the same losses as the reference's.
    losses, ref_losses = _scalars(two), _scalars(ref)
    terms = [k for k in ref_losses if k.startswith("loss/")]
    assert len(terms) >= 5 and all(set(ref_losses[k]) == {1} for k in terms)
    for k in terms:  # Only with each process's own half of the batch.
        assert losses[k][1] == pytest.approx(ref_losses[k][1], rel=TOL, abs=0), k

    # The checkpoint written by both processes, read by this process (one device).
    assert jax.device_count() == 1
    config, state, step = checkpoint.load(two)
    assert step == 1 and config.method == "cyclegan" and config.data.batch_size == 2
    _, ref_state, _ = checkpoint.load(ref)
    assert jax.tree.structure(state) == jax.tree.structure(ref_state)
    lr = config.optim.lr
    compared = 0
    for net in ("g_a", "g_b", "d_a", "d_b"):
        # After Adam's first step, mu = (1 - b1) g: the step's gradient.
        opt = "opt_g" if net.startswith("g") else "opt_d"
        grads, ref_grads = state[opt][0]["mu"][net], ref_state[opt][0]["mu"][net]
        g, g_ref = (
            np.concatenate([np.ravel(x) for x in jax.tree.leaves(t)]) for t in (grads, ref_grads)
        )
        assert np.linalg.norm(g - g_ref) <= TOL * np.linalg.norm(g_ref), net
        # Adam's first step moves each entry by lr g / (|g| + eps): the same but where the
        # sign of g is set by rounding (exactly-zero gradients, e.g. the conv biases before
        # an instance norm); those still moved by at most lr in each run.
        for (path, p), p_ref, gi, gi_ref in zip(
            jax.tree_util.tree_leaves_with_path(state["params"][net]),
            jax.tree.leaves(ref_state["params"][net]),
            jax.tree.leaves(grads),
            jax.tree.leaves(ref_grads),
            strict=True,
        ):
            name = f"{net}{jax.tree_util.keystr(path)}"
            p, p_ref, gi, gi_ref = (np.asarray(x) for x in (p, p_ref, gi, gi_ref))
            assert np.all(np.abs(p - p_ref) <= 2 * lr * (1 + TOL)), name
            settled = np.abs(gi_ref) > 10 * np.abs(gi - gi_ref)
            np.testing.assert_allclose(p[settled], p_ref[settled], rtol=TOL, atol=lr * TOL)
            compared += int(settled.sum())
    assert compared > 0.99 * sum(x.size for x in jax.tree.leaves(state["params"]))
    # The rest (image pools: generated images; RNG key, step, counts) alike.
    for key in ("pool_a", "pool_b", "rng", "step"):
        for a, b in zip(jax.tree.leaves(state[key]), jax.tree.leaves(ref_state[key]), strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=TOL)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--process_id=0"], "--process_id needs --distributed"),
        (["--distributed", "--num_processes=2", "--process_id=2"], "--process_id (2) must be in"),
        (["--distributed", "--num_processes=0"], "--num_processes (0) must be at least 1"),
        (["--distributed", "--coordinator_address=localhost"], "must be HOST:PORT"),
    ],
)
def test_bad_distributed_flags_are_one_line(flags, message, tmp_path):
    r = subprocess.run(
        [sys.executable, "train.py", "--config=configs/test.py", f"--workdir={tmp_path}", *flags],
        cwd=ROOT,
        env=_env(devices=1),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2, r.stderr[-2000:]
    errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0], r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    assert not any(tmp_path.iterdir())  # Refused before anything was written.
