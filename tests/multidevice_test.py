"""The same CycleGAN train step on 1 device and on 8 (fake CPU) devices computes the same step.

Sharding changes only the order of float sums (batch means, kernel gradients), so two runs
differ by rounding alone, and the comparison must not amplify it. Two things in a real run
do, so the test's subprocess takes both out, changing no op that sharding touches:

* Adam divides each gradient by its own magnitude: rounding noise in a nearly-zero gradient
  becomes a step of up to lr (the conv biases before an instance norm have an exactly zero
  gradient). Over 3 steps this put the losses 3.1e-4 apart on an AMD EPYC. So the optimiser
  is plain SGD (linear in the gradient), which also keeps each step's gradient in its state
  for the comparison.
* The kinks of ReLU, LeakyReLU and the L1 losses' |x|: with ~1e6 activations and forward
  rounding of ~1e-6, about one activation per step lands on the other side of 0 in one run
  only, and its derivative jumps from 1 to 0. Measured, with SGD and the real activations:
  the 1-device run's G_A gradient 8.9e-4 (relative, all of G_A) away from the 8-device one
  at step 1, 1.1e-2 at step 3, on data and parameters where nothing is wrong. So ReLU,
  LeakyReLU and |x| are replaced by smooth versions (x * sigmoid(2x) for the step function,
  sqrt(x^2 + d^2) - d for |x|); with smooth activations the networks' gradients agree to
  2-4e-7 at all 3 steps.

Tolerance, from float32 arithmetic: TOL = N u, with u = 2^-24 the unit roundoff and N = 24576
(8 images x 32 x 32 x 3) the longest sum in the step (the L1 means; a full-resolution kernel
gradient sums 8 x 32 x 32 = 8192 products). N u bounds the relative error of an N-term
sum in any order, which is what sharding changes; the shorter sums along a gradient's chain
of layers each add less (typically sqrt(n) u), so N u = 1.5e-3 also covers the whole chain,
on any CPU's kernels. Measured on an AMD EPYC (2 cores), over the 3 steps, in units of TOL
(relative value, margin): losses 3.5e-4 (5.1e-7, 2900x), live gradient tensors 7.8e-3
(1.1e-5, 130x), biases before a norm 5.4e-5 (7.9e-8 of their network's gradient), summed updates
1.4e-2 (2.0e-5, 74x; the rounding of p + update), translations 6.1e-4 (8.9e-7, 1600x).

Three plausible sharding bugs, one step each through the same compiled 8-device step, are far
out (the test asserts it): fed the next batch, the four networks' gradients differ by
280-840 TOL (0.41-1.2); every device seeing the first device's slice, 450-1600 TOL
(0.65-2.4); the slices on the devices in reverse order, 66 TOL (0.097) for a discriminator
(the losses are batch means, so only the image pool sees the order; the generators agree).
"""

import pathlib
import subprocess
import sys
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import os
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
    import flax.linen
    import jax, jax.numpy as jnp, numpy as np, optax
    from jax.sharding import Mesh
    from configs import test
    from jaxfaces import losses, optim, rng
    from jaxfaces.methods import cyclegan
    from jaxfaces.training import sharding

    TOL = 8 * 32 * 32 * 3 * 2.0**-24  # N u: see the module docstring.
    calls = {"relu": 0, "leaky_relu": 0, "l1": 0}

    def relu(x):  # relu(x) = x step(x), the step smoothed.
        calls["relu"] += 1
        return x * jax.nn.sigmoid(2 * x)

    def leaky_relu(x, negative_slope=0.01):
        calls["leaky_relu"] += 1
        return negative_slope * x + (1 - negative_slope) * x * jax.nn.sigmoid(2 * x)

    def l1(x, y):  # Mean of sqrt(d^2 + 1e-6) - 1e-3: |d| with a rounded tip.
        calls["l1"] += 1
        d = x.astype(jnp.float32) - y.astype(jnp.float32)
        return jnp.mean(jnp.sqrt(jnp.square(d) + 1e-6) - 1e-3)

    def sgd_keeping_gradients(config):
        # Updates -lr g; the state is the step's gradient g, read back for the comparison.
        lr = config.optim.lr
        return optax.GradientTransformation(
            lambda params: jax.tree.map(jnp.zeros_like, params),
            lambda grads, state, params=None: (jax.tree.map(lambda g: -lr * g, grads), grads),
        )

    flax.linen.relu, flax.linen.leaky_relu, losses.l1 = relu, leaky_relu, l1
    optim.adam = sgd_keeping_gradients

    assert jax.device_count() == 8, jax.devices()
    config = test.get_config()
    config.data.batch_size = 8
    batches = [
        {k: np.random.default_rng([i, j]).uniform(-1, 1, (8, 32, 32, 3)).astype(np.float32)
         for j, k in enumerate("ab")}
        for i in range(3)
    ]
    NETS = ("g_a", "g_b", "d_a", "d_b")

    def compiled(devices):
        mesh = Mesh(np.array(devices), ("data",))
        rep = sharding.replicated(mesh)
        init = jax.jit(lambda: cyclegan.init_state(config, rng.key(0)), out_shardings=rep)
        step = jax.jit(cyclegan.make_train_step(config),
                       in_shardings=(rep, sharding.batch_sharded(mesh)),
                       out_shardings=(rep, rep), donate_argnums=0)

        def run(steps):
            state, losses_, grads = init(), [], []
            for b in steps:
                batch = sharding.global_batch(b, mesh)
                shards = batch["a"].addressable_shards
                assert len(shards) == len(devices), len(shards)
                assert all(s.data.shape[0] == 8 // len(devices) for s in shards)
                state, metrics = step(state, batch)
                losses_.append({k: float(v) for k, v in metrics.items() if k.startswith("loss/")})
                host = sharding.to_host(state)
                grads.append({n: host["opt_" + n[0]][n] for n in NETS})
            return sharding.to_host(state), losses_, grads
        return run

    def flat(tree):
        return np.concatenate([np.ravel(x) for x in jax.tree.leaves(tree)])

    def rel(a, b):
        return float(np.linalg.norm(flat(a) - flat(b)) / np.linalg.norm(flat(a)))

    one, eight = compiled(jax.devices()[:1]), compiled(jax.devices())
    s1, loss1, grad1 = one(batches)
    s8, loss8, grad8 = eight(batches)
    assert all(calls.values()), calls  # Every smoothed function is on the step's path.

    worst = max(abs(a[k] / b[k] - 1) for a, b in zip(loss1, loss8) for k in a)
    print("LOSS", worst / TOL)

    n_dis = config.model.discriminator.n_layers
    def feeds_norm(net, name):  # A conv bias followed by an instance norm: zero gradient.
        if not name.endswith("['bias']"):
            return False
        ends = ("conv_out",) if net.startswith("g") else ("conv_0", f"conv_{n_dis + 1}")
        return not any(f"['{e}']" in name for e in ends)

    live_worst, dead_worst = 0.0, 0.0
    for g1, g8 in zip(grad1, grad8):
        for net in NETS:
            scale = np.linalg.norm(flat(g1[net]))
            for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(g1[net]),
                                    jax.tree.leaves(g8[net])):
                name, gap = jax.tree_util.keystr(path), float(np.linalg.norm(a - b))
                if feeds_norm(net, name):  # Rounding noise, negligible against the net's.
                    big = max(np.linalg.norm(a), np.linalg.norm(b))
                    dead_worst = max(dead_worst, float(big / scale))
                else:
                    assert np.linalg.norm(a) > 0, (net, name)
                    live_worst = max(live_worst, gap / float(np.linalg.norm(a)))
    print("GRAD", live_worst / TOL, dead_worst / TOL)

    init = cyclegan.init_state(config, rng.key(0))["params"]
    update = 0.0
    for net in NETS:
        u1 = jax.tree.map(np.subtract, s1["params"][net], init[net])
        u8 = jax.tree.map(np.subtract, s8["params"][net], init[net])
        update = max(update, rel(u1, u8))
        for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(u1),
                                jax.tree.leaves(u8)):
            name = jax.tree_util.keystr(path)
            if not feeds_norm(net, name):
                assert np.abs(a).max() > 0 and np.abs(b).max() > 0, (net, name)  # Moved.
    print("UPDATE", update / TOL)

    translate = jax.jit(cyclegan.make_translate(config))
    probe = batches[0]["a"][:2]
    out = max(
        float(np.abs(np.asarray(translate(cyclegan.translator_variables(s1, d), probe))
                     - np.asarray(translate(cyclegan.translator_variables(s8, d), probe))).max())
        for d in ("AtoB", "BtoA")
    )
    print("OUTPUT", out / TOL)

    # Bugs, one step each through the compiled 8-device step: the wrong batch; every device
    # seeing the first device's slice (as a missing gradient reduction would); the slices
    # on the devices in reverse order (the losses are means: only the pool's order shows).
    bugs = {"next_batch": batches[1],
            "one_slice": {k: np.repeat(v[:1], 8, axis=0) for k, v in batches[0].items()},
            "reversed": {k: v[::-1] for k, v in batches[0].items()}}
    for bug, batch in bugs.items():
        _, _, grads = eight([batch])
        gaps = [rel(grad1[0][n], grads[0][n]) / TOL for n in NETS]
        print("BUG", bug, min(gaps), max(gaps))
    """
)


@pytest.mark.slow
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
    values = {}
    for line in r.stdout.splitlines():
        key, *rest = line.split() or [""]
        if key == "BUG":
            values[rest[0]] = [float(v) for v in rest[1:]]
        elif key in ("LOSS", "GRAD", "UPDATE", "OUTPUT"):
            values[key] = [float(v) for v in rest]
    print(values)  # Each value in units of TOL (the module docstring).
    assert values["LOSS"][0] < 1  # Every loss term of the 3 steps, relative.
    live, dead = values["GRAD"]
    assert live < 1  # Every live gradient tensor of the 3 steps, relative to its norm.
    assert dead < 1  # Biases before a norm: zero but for rounding, relative to their net.
    assert values["UPDATE"][0] < 1  # Each network's summed update, relative.
    assert values["OUTPUT"][0] < 1  # Both generators translate alike, in [-1, 1].
    # Each bug puts some network's gradient far outside TOL (measured: the docstring).
    assert values["next_batch"][1] > 100 and values["one_slice"][1] > 100, values
    assert values["reversed"][1] > 10, values
