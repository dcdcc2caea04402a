"""The same train step on 1 device and on 8 (fake CPU) devices gives the same parameters."""

import pathlib
import subprocess
import sys
import textwrap

ROOT = pathlib.Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import os
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
    import jax, numpy as np
    from jax.sharding import Mesh
    from configs import test
    from jaxfaces import rng
    from jaxfaces.methods import cyclegan
    from jaxfaces.training import sharding

    assert jax.device_count() == 8, jax.devices()
    config = test.get_config()
    config.data.batch_size = 8
    batches = [
        {k: np.random.default_rng([i, j]).uniform(-1, 1, (8, 32, 32, 3)).astype(np.float32)
         for j, k in enumerate("ab")}
        for i in range(3)
    ]

    def run(devices):
        mesh = Mesh(np.array(devices), ("data",))
        state = jax.jit(lambda: cyclegan.init_state(config, rng.key(0)),
                        out_shardings=sharding.replicated(mesh))()
        step = jax.jit(cyclegan.make_train_step(config),
                       in_shardings=(sharding.replicated(mesh), sharding.batch_sharded(mesh)),
                       out_shardings=(sharding.replicated(mesh), sharding.replicated(mesh)),
                       donate_argnums=0)
        for b in batches:
            batch = sharding.global_batch(b, mesh)
            assert len(batch["a"].sharding.device_set) == len(devices)
            state, metrics = step(state, batch)
        return sharding.to_host(state)

    one, eight = run(jax.devices()[:1]), run(jax.devices())
    worst = max(float(np.abs(a - b).max()) for a, b in
                zip(jax.tree.leaves(one["params"]), jax.tree.leaves(eight["params"])))
    moved = max(float(np.abs(a - b).max()) for a, b in
                zip(jax.tree.leaves(one["params"]),
                    jax.tree.leaves(cyclegan.init_state(config, rng.key(0))["params"])))
    print("MAXDIFF", worst, "MOVED", moved)
    """
)


def test_one_and_eight_devices_agree():
    r = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert r.returncode == 0, r.stderr[-3000:]
    line = next(x for x in r.stdout.splitlines() if x.startswith("MAXDIFF"))
    _, worst, _, moved = line.split()
    assert float(moved) > 1e-4  # Three Adam steps moved the parameters ...
    assert float(worst) < 1e-5  # ... identically on 1 and on 8 devices.
