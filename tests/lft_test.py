"""Latent Features Transfer with explicitly random VGG19 weights, on the built-in pairs.

A shallow layer set (content conv2_1; style conv1_1, conv2_1) keeps the compiled programs
small; the feature translator's thesis layers are covered by feature_translator_test.py.
"""

import csv
import math
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from configs import lft as lft_config
from jaxfaces import data as data_lib
from jaxfaces import inference, losses, metrics, optim
from jaxfaces.data import feature_store, synthetic
from jaxfaces.methods import get_method, lft
from jaxfaces.training import loop

ROOT = pathlib.Path(__file__).resolve().parents[1]
THESIS = ROOT.parent / "shared" / "data" / "thesis_faces"
BATCH = 4


def small_config(root: pathlib.Path | str, **overrides) -> ml_collections.ConfigDict:
    config = lft_config.get_config()
    config.vgg.weights = "random"
    config.data.root = str(root)
    config.data.synthetic.size = 32
    config.data.synthetic.num_train = 16
    config.data.synthetic.num_test = 4
    config.data.load_size = config.data.size = 32
    config.data.batch_size = BATCH
    config.model.translator.variant = "dense"
    config.model.translator.output_norm = "affine"
    config.lft.content_layer = "conv2_1"
    config.lft.style_layers = ("conv1_1", "conv2_1")
    config.lft.style_layer_weights = (0.5, 1.0)
    config.lft.synthesis.steps = 20
    config.lft.synthesis.lr = 4.0
    config.optim.lr = 0.05
    config.train.num_steps = 40
    config.train.decay_steps = 10
    for key, value in overrides.items():
        section = config
        *parents, leaf = key.split(".")
        for p in parents:
            section = section[p]
        section[leaf] = value
    return config


@pytest.fixture(scope="module")
def pairs_root(tmp_path_factory) -> pathlib.Path:
    root = tmp_path_factory.mktemp("lft_data")
    return synthetic.write_dataset(root, size=32, num_train=16, num_test=4, seed=0, paired=True)


@pytest.fixture(scope="module")
def trained(pairs_root):
    """A state trained 40 steps on the 16 pairs; the losses of all pairs before and after."""
    config = small_config(pairs_root)
    state = lft.load_frozen(config, lft.init_state(config, jax.random.key(0)))
    store = lft.build_feature_store(config, state["frozen"]["vgg"])
    step = jax.jit(lft.make_train_step(config))
    everything = {k: jnp.asarray(v) for k, v in store.arrays.items()}

    def full_loss(state):
        return sum(
            float(
                lft.feature_losses(
                    config,
                    _translate_features(config, state, d, everything),
                    {k: everything[f"{DST[d]}/{k}"] for k in lft.layers(config)},
                )["total"]
            )
            for d in lft.DOMAINS
        )

    before = full_loss(state)
    batches = store.batches(seed=0, batch_size=BATCH)
    history = []
    for _ in range(config.train.num_steps):
        state, m = step(state, next(batches))
        history.append(float(m["loss/AtoB_total"]) + float(m["loss/BtoA_total"]))
    return {
        "config": config,
        "state": state,
        "store": store,
        "step": step,
        "before": before,
        "after": full_loss(state),
        "history": history,
    }


DST = {"AtoB": "b", "BtoA": "a"}


def _translate_features(config, state, direction, arrays):
    src = lft.DOMAINS[direction][0]
    z = {k: arrays[f"{src}/{k}"] for k in lft.layers(config)}
    return lft.translator(config).apply({"params": state["params"][direction]}, z)


# --------------------------------------------------------------------------- data


def test_paired_builtin_data_pairs_the_training_scenes(tmp_path, pairs_root):
    unpaired = synthetic.write_dataset(tmp_path / "u", size=32, num_train=16, num_test=4)
    for split in ("trainA", "testA", "truthAtoB", "testB", "truthBtoA"):
        for name in ("000000.png", "000003.png"):  # The unpaired layout is unchanged.
            assert (unpaired / split / name).read_bytes() == (
                pairs_root / split / name
            ).read_bytes()
    # trainB: the paintings of the trainA scenes, drawn again here independently.
    rng = np.random.default_rng(np.random.SeedSequence(0).spawn(4)[0])
    paintings = synthetic.render_painting(synthetic.sample_scenes(rng, 16), 32)
    for i in (0, 7, 15):
        np.testing.assert_array_equal(
            data_lib.read_image(pairs_root / "trainB" / f"{i:06d}.png"), paintings[i]
        )
    assert not np.array_equal(data_lib.read_image(unpaired / "trainB" / "000000.png"), paintings[0])
    a, b, names = feature_store.training_pairs(small_config(pairs_root).data)
    assert a.shape == b.shape == (16, 32, 32, 3) and names[0] == "000000.png"
    # ensure_dataset rewrites an unpaired data set when pairs are asked for.
    synthetic.ensure_dataset(tmp_path / "u", size=32, num_train=16, num_test=4, paired=True)
    assert (tmp_path / "u" / "trainB" / "000000.png").read_bytes() == (
        pairs_root / "trainB" / "000000.png"
    ).read_bytes()


def test_feature_store_computes_once_caches_on_disk_and_streams_like_the_pipeline(tmp_path):
    calls = []
    specs = {"x": ((2,), np.dtype(np.float32)), "a/f": ((3, 1), np.dtype(np.float32))}

    def compute(start, stop):
        calls.append((start, stop))
        rows = np.arange(start, stop, dtype=np.float32)
        return {"x": np.stack([rows, -rows], 1), "a/f": np.repeat(rows[:, None, None], 3, 1)}

    memory = feature_store.FeatureStore.build(10, specs, compute, chunk=4)
    assert calls == [(0, 4), (4, 8), (8, 10)] and not memory.on_disk
    np.testing.assert_array_equal(memory.arrays["x"][:, 1], -np.arange(10))
    calls.clear()
    disk = feature_store.FeatureStore.build(10, specs, compute, 4, tmp_path, {"v": 1})
    assert disk.on_disk and isinstance(disk.arrays["a/f"], np.memmap) and len(calls) == 3
    assert (tmp_path / "a__f.npy").is_file() and (tmp_path / "fingerprint.json").is_file()
    calls.clear()
    again = feature_store.FeatureStore.build(10, specs, compute, 4, tmp_path, {"v": 1})
    assert calls == [] and again.on_disk  # Reused: nothing computed.
    np.testing.assert_array_equal(again.arrays["a/f"], memory.arrays["a/f"])
    feature_store.FeatureStore.build(10, specs, compute, 4, tmp_path, {"v": 2})
    assert len(calls) == 3  # Another fingerprint: computed again.

    # Batches: every row once per epoch, a pure function of (seed, step).
    stream = memory.batches(seed=3, batch_size=5)
    first = [next(stream) for _ in range(4)]
    rows = [b["x"][:, 0].astype(int) for b in first]
    assert sorted(np.concatenate(rows[:2])) == list(range(10))
    assert sorted(np.concatenate(rows[2:])) == list(range(10))
    assert not np.array_equal(np.concatenate(rows[:2]), np.concatenate(rows[2:]))
    resumed = next(memory.batches(seed=3, batch_size=5, start_step=2))
    np.testing.assert_array_equal(resumed["x"], first[2]["x"])
    # Two processes' slices make up the whole batch.
    halves = [
        next(memory.batches(seed=3, batch_size=4, start_step=1, process_index=p, process_count=2))
        for p in (0, 1)
    ]
    whole = next(memory.batches(seed=3, batch_size=4, start_step=1))
    np.testing.assert_array_equal(np.concatenate([h["x"] for h in halves]), whole["x"])


# --------------------------------------------------------------------------- training


def test_feature_mse_against_numpy():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(2, 3, 4, 5)), rng.normal(size=(2, 3, 4, 5))
    want = ((x - y) ** 2).reshape(2, -1).mean(1)
    np.testing.assert_allclose(losses.feature_mse(x, y), want, rtol=1e-6)


def test_training_loss_falls_on_16_builtin_pairs(trained):
    config = trained["config"]
    store = trained["store"]
    assert len(store) == 16 and not store.on_disk
    assert store.arrays["a/conv1_1"].shape == (16, 32, 32, 64)
    assert store.arrays["b/conv2_1"].shape == (16, 16, 16, 128)
    # The loss over all 16 pairs, both directions, at least halves.
    assert trained["after"] < 0.5 * trained["before"], (trained["before"], trained["after"])
    h = trained["history"]
    assert np.mean(h[-10:]) < 0.5 * np.mean(h[:5])
    assert int(trained["state"]["step"]) == config.train.num_steps


def test_synthesis_lowers_the_feature_loss_from_each_init(trained, pairs_root):
    config, state = trained["config"], trained["state"]
    x = np.stack(
        [
            data_lib.to_float(data_lib.read_image(p))
            for p in data_lib.list_images(pairs_root / "testA")
        ]
    )
    variables = lft.translator_variables(state, "AtoB")
    target = jax.jit(lambda v, x: lft.translated_targets(config, v, x))(variables, x)
    synth = jax.jit(lambda p, t, i: lft.synthesise(config, p, t, i))
    results = {}
    for kind in ("content", "noise", "mean"):
        config.lft.synthesis.init = kind
        init = lft.initial_images(config, variables, jnp.asarray(x))
        images, history = synth(variables["vgg"], target, init)
        total = np.asarray(history["total"])
        assert total.shape == (4, config.lft.synthesis.steps + 1)
        assert np.all(total[:, -1] < 0.7 * total[:, 0]), (kind, total[:, [0, -1]])
        assert images.shape == x.shape and -1 <= float(images.min()) <= float(images.max()) <= 1
        results[kind] = np.asarray(init)
    config.lft.synthesis.init = "content"
    np.testing.assert_array_equal(results["content"], x)
    np.testing.assert_allclose(results["mean"][0], state["frozen"]["mean_b"], atol=1e-6)
    assert results["noise"].std() > 0.5  # Uniform on [-1, 1]: std 0.577.


@pytest.mark.skipif(not (THESIS / "photo").is_dir(), reason="thesis data not present")
def test_thesis_photo_portrait_pairs_load_and_train(trained):
    config = small_config(
        "", **{"data.root": "", "data.a": str(THESIS / "photo"), "data.b": str(THESIS / "portrait")}
    )
    a, b, names = feature_store.training_pairs(config.data)
    assert len(a) == len(b) == len(names) == len(list((THESIS / "photo").glob("*.jpg")))
    assert a.shape[1:] == (32, 32, 3) and names[:2] == ["000.jpg", "001.jpg"]
    store = lft.build_feature_store(config, trained["state"]["frozen"]["vgg"])
    assert len(store) == len(a) and store.arrays["b/conv1_1"].shape[1:] == (32, 32, 64)
    params = trained["state"]["params"]  # The module's step does not donate its state.
    opt = optim.adam(config).init(params)  # Fresh: the schedule restarts at lr 0.05.
    state = {**trained["state"], "step": jnp.zeros((), jnp.int32), "opt": opt}
    batches = store.batches(seed=0, batch_size=BATCH)
    for _ in range(3):  # The module's compiled step: the same shapes.
        state, m = trained["step"](state, next(batches))
        assert all(np.isfinite(float(v)) for v in m.values())
    moved = jax.tree.map(
        lambda x, y: float(np.abs(np.asarray(x) - np.asarray(y)).max()),
        state["params"],
        trained["state"]["params"],
    )
    assert min(jax.tree.leaves(moved)) > 0  # Every parameter was updated.
    assert int(state["step"]) == 3


# --------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_train_resume_then_translate_cli_writes_truth_metrics(tmp_path):
    root, workdir, out = tmp_path / "data", tmp_path / "run", tmp_path / "out"
    config = small_config(
        root,
        **{
            "data.synthetic.enabled": True,
            "model.translator.variant": "conv",
            "train.num_steps": 4,
            "train.decay_steps": 2,
            "train.log_every": 2,
            "train.log_images_every": 100,
            "train.ckpt_every": 2,
            "lft.synthesis.steps": 10,
        },
    )
    assert get_method("lft") is lft.METHOD
    first = loop.train(config, workdir, stop_after=2)
    assert first["stopped"] and first["step"] == 2
    assert (root / "manifest.json").is_file() and "paired" in (root / "manifest.json").read_text()
    result = loop.train(config, workdir)  # Resumes from step 2.
    assert result["step"] == 4 and not result["stopped"]
    assert set(result["state"]["params"]) == {"AtoB", "BtoA"}
    assert float(np.abs(result["state"]["frozen"]["vgg"]["conv1_1"]["kernel"]).sum()) > 0
    for direction in ("AtoB", "BtoA"):
        m = result["eval"][direction]
        assert {"l1", "psnr", "ssim", "identity_l1"} <= set(m)
    assert (workdir / "samples" / "AtoB" / "000000.png").is_file()

    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=str(workdir / "xla_cache"))
    cmd = [
        sys.executable,
        str(ROOT / "translate.py"),
        f"--ckpt={workdir}",
        "--direction=AtoB",
        f"--input={root / 'testA'}",
        f"--output={out}",
        f"--truth={root / 'truthAtoB'}",
    ]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = [f"{i:06d}.png" for i in range(4)]
    assert sorted(p.name for p in out.glob("*.png")) == names
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["image"] for r in rows] == [*names, "mean"]
    for row in rows[:-1]:
        fake = data_lib.read_image(out / row["image"]).astype(np.float64) / 127.5 - 1
        truth = (
            data_lib.read_image(root / "truthAtoB" / row["image"]).astype(np.float64) / 127.5 - 1
        )
        assert math.isclose(float(row["l1"]), np.abs(fake - truth).mean(), rel_tol=1e-4)
        psnr = 10 * math.log10(4 / np.mean((fake - truth) ** 2))
        assert math.isclose(float(row["psnr"]), psnr, rel_tol=1e-4)
        ssim = float(metrics.ssim(fake[None].astype(np.float32), truth[None].astype(np.float32))[0])
        assert math.isclose(float(row["ssim"]), ssim, rel_tol=1e-4, abs_tol=1e-5)
    for k in ("l1", "psnr", "ssim"):
        mean = np.mean([float(r[k]) for r in rows[:-1]])
        assert math.isclose(float(rows[-1][k]), mean, rel_tol=1e-4, abs_tol=1e-6)
    assert "mean" in proc.stdout and "PSNR" in proc.stdout


def test_missing_truth_and_unpaired_data_are_errors(tmp_path, pairs_root):
    with pytest.raises(ValueError, match="lacks the true translations of 1 of 2"):
        inference.match_truth(
            [pairs_root / "testA" / "000000.png", tmp_path / "other.png"], pairs_root / "truthAtoB"
        )
    found = inference.match_truth([tmp_path / "000001.jpg"], pairs_root / "truthAtoB")
    assert found[tmp_path / "000001.jpg"].name == "000001.png"  # Matched by stem.
    with pytest.raises(ValueError, match="config.data.paired=True"):
        lft.init_state(small_config(pairs_root, **{"data.paired": False}), jax.random.key(0))
    with pytest.raises(ValueError, match="config.lft.directions"):
        lft.init_state(small_config(pairs_root, **{"lft.directions": "AtoA"}), jax.random.key(0))
