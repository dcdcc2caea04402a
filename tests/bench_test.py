"""The benchmarks: flags, FLOP counts, tables, and the fair protocol run end to end on tiny
networks (each framework in its own process); the PyTorch reference step is the reference's."""

import json
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest

from bench import conv_layers, fair, flops, nst, results, train_step, translate, vgg_layout
from jaxfaces import rng as rngs
from jaxfaces.models import discriminators, fast_conv, generators


def test_cpu_and_device_defaults_and_errors():
    cpu = train_step.parse_args([])
    assert (cpu.size, cpu.batch, cpu.dtype, cpu.device) == ([64, 128], [1, 4], ["float32"], False)
    assert (cpu.rounds, cpu.warmup, cpu.min_time, cpu.max_iters) == (3, 1, 10.0, 10)
    dev = train_step.parse_args(["--device", "--batch", "8"])
    assert (dev.size, dev.batch, dev.dtype) == ([256], [8], ["float32", "bfloat16"])
    assert (dev.min_time, dev.max_iters) == (5.0, 30)
    for bad in (["--size", "30"], ["--dtype", "float16"], ["--rounds", "0"], ["--iters", "0"]):
        with pytest.raises(SystemExit):
            train_step.parse_args(bad)
    assert translate.parse_args([]).size == [64, 256]
    assert [train_step.config_name(j) for j in train_step.jobs(dev)] == [
        "256px batch8",
        "256px batch8 bfloat16",
    ]


def test_scan_blocks_flag_reaches_the_jax_config():
    # The JAX side runs the configuration's default (unrolled blocks) unless asked.
    for argv, scan in (([], False), (["--scan_blocks"], True)):
        config = train_step.jax_config(train_step.parse_args(argv), 64, 4)
        assert config.model.generator.scan_blocks is scan
        assert generators.make_generator(config.model.generator).scan_blocks is scan
        assert (config.data.size, config.data.batch_size) == (64, 4)


def test_flops_count_real_multiply_adds_only():
    x = jax.ShapeDtypeStruct((2, 10, 10, 4), jnp.float32)
    w = jax.ShapeDtypeStruct((3, 3, 4, 8), jnp.float32)
    with fast_conv.impl("xla"):
        conv = fast_conv.conv2d
        forward = 2 * (2 * 8 * 8) * 9 * 4 * 8
        assert flops.count(conv, x, w) == forward
        both = jax.grad(lambda x, w: conv(x, w).sum(), (0, 1))
        assert flops.count(both, x, w) == 3 * forward  # Input and kernel gradients.
        # Transposed: each input pixel meets each of the 9 taps, less those falling off
        # the output (the first row and column of tap 0): (5*5*9 - 2*5*3 + 1) * 4 * 8.
        xt = jax.ShapeDtypeStruct((1, 5, 5, 4), jnp.float32)
        assert flops.count(fast_conv.conv_transpose2x, xt, w) == 2 * (225 - 30 + 1) * 32
    assert flops.count(lambda a: a @ a, jnp.ones((3, 5, 5))) == 2 * 3 * 5 * 5 * 5


def test_train_step_report_table_spread_compile_and_ratio_lines_last():
    def run(samples, compile_s=None, **extra):
        return {"samples": samples, "warmup": [9.0], "compile_s": compile_s, **extra}

    entries = [
        {
            "job": {"size": 64, "batch": 1, "dtype": "float32"},
            "runs": {
                # Medians by round: jax 1.0, 2.0 (all four: 1.5); torch 2.0, 2.5 (2.25).
                "jax": [
                    run([1.0, 1.0], 30.0, xla_flops=130e9, lower_s=10.0, cache="written"),
                    run([2.0, 2.0], 2.0, lower_s=1.5, cache="hit"),
                ],
                "torch": [run([2.0, 2.0]), run([2.5, 2.5])],
            },
        },
        {
            "job": {"size": 256, "batch": 8, "dtype": "bfloat16"},
            "runs": {"torch": [run([0.5])]},
        },
    ]
    flops = {"64px batch1": 120e9, "256px batch8 bfloat16": 4e12}
    text = train_step.report(entries, flops, ceilings={"float32": 200e9, "bfloat16": 1e15})
    lines = text.splitlines()
    assert lines[0].startswith("| config | jax s/iter | torch s/iter | ratio (jax/torch) |")
    assert "jax compile s (cold) | jax compile s (cached) | jax MFU" in lines[0]
    # Ratios by round 0.5 and 0.8: median 0.65. GFLOP/s 120/1.5 = 80 and 120/2.25 = 53.3.
    assert lines[2] == (
        "| 64px batch1 | 1.500 (1.000-2.000) | 2.250 (2.000-2.500) | 0.65 (0.50-0.80) | 120.0 "
        "| 80.0 | 53.3 | 30.0 | 2.0 | 40.0% | 26.7% |"
    )
    assert lines[3] == (
        "| 256px batch8 bfloat16 | - | 0.500 | - | 4000.0 | - | 8000.0 | - | - | - | 0.8% |"
    )
    assert (
        "seconds 64px batch1 jax round 1: compile 30.0 (tracing and lowering 10.0; cache "
        "written); warm-up 9.000; timed 1.000 1.000; XLA cost_analysis 130.0 GFLOP/step"
    ) in lines
    assert (
        "seconds 64px batch1 jax round 2: compile 2.0 (tracing and lowering 1.5; cache hit); "
        "warm-up 9.000; timed 2.000 2.000"
    ) in lines
    assert "seconds 64px batch1 torch round 2: warm-up 9.000; timed 2.500 2.500" in lines
    assert lines[-1] == "RATIO train_step 64px batch1 jax/torch = 0.65"
    assert "MFU" not in train_step.report(entries, flops, None)


def test_fair_alternation_order():
    assert fair.round_order(["jax", "torch"], 0) == ["jax", "torch"]
    assert fair.round_order(["jax", "torch"], 1) == ["torch", "jax"]
    assert fair.round_order(["torch"], 1) == ["torch"]
    order = [(j, r, n) for j, r, n in fair.schedule(["a", "b"], ["jax", "torch"], 3)]
    assert order[:6] == [("a", 0, "jax"), ("a", 0, "torch"), ("a", 1, "torch"),
                         ("a", 1, "jax"), ("a", 2, "jax"), ("a", 2, "torch")]  # fmt: skip
    assert len(order) == 12 and order[6] == ("b", 0, "jax")


def test_fair_statistics_on_hand_made_samples():
    # Round medians 1.0, 3.0, 2.0; all seven samples sorted: 1 1 2 2 3 3 9 -> median 2.
    s = fair.summary([[1.0, 1.0, 9.0], [3.0, 3.0], [2.0, 2.0]])
    assert s == {"median": 2.0, "lo": 1.0, "hi": 3.0}
    assert fair.summary([[], []]) is None
    # Per-round ratios 1/2, 3/2 and 2/8: median 0.5, spread 0.25-1.5.
    r = fair.ratio([[1.0], [3.0], [2.0]], [[2.0], [2.0], [8.0]])
    assert r == {"median": 0.5, "lo": 0.25, "hi": 1.5}
    assert fair.ratio([[1.0]], [[]]) is None
    assert fair.compile_summary([40.0, 3.0, 5.0, 4.0]) == {
        "cold": 40.0,
        "cached": {"median": 4.0, "lo": 3.0, "hi": 5.0},
    }
    assert fair.compile_summary([40.0]) == {"cold": 40.0, "cached": None}
    assert fair.cell(r, 2) == "0.50 (0.25-1.50)"
    assert fair.cell({"median": 1.0, "lo": 1.0001, "hi": 0.9999}, 2) == "1.00"
    assert fair.cell(None) == "-"
    assert fair.parse_result('noise\nFAIR-RESULT {"a": 1}\nFAIR-RESULT {"a": 2}\n') == {"a": 2}
    assert fair.parse_result("nothing") is None


def test_fair_parent_drops_a_skipped_framework_and_shares_one_fresh_cache(tmp_path):
    """run_rounds with a stand-in worker script: torch answers `skipped` (as without CUDA in
    --device mode), JAX results carry the cache folder they were given."""
    script = tmp_path / "worker.py"
    script.write_text(
        "import json, sys\n"
        "a = dict(x.split('=', 1) for x in sys.argv[1:] if '=' in x)\n"
        "out = {'skipped': 'no CUDA'} if a['--worker'] == 'torch' else "
        "{'samples': [1.0], 'cache': a.get('--compile_cache', ''), 'flag': '--x=1' in sys.argv}\n"
        "print('FAIR-RESULT ' + json.dumps(out))\n"
    )
    entries, notes = fair.run_rounds(script, [{"size": 8}], ["jax", "torch"], 2, ["--x=1"], str)
    assert notes == ["torch: no CUDA"]
    (jax_runs,) = entries[0]["runs"].values()  # seq: place in the schedule.
    assert [(r["round"], r["seq"], r["flag"]) for r in jax_runs] == [(1, 0, True), (2, 3, True)]
    cache = jax_runs[0]["cache"]
    assert cache and jax_runs[1]["cache"] == cache and not pathlib.Path(cache).exists()
    with pytest.raises(fair.WorkerError, match="printed no result"):
        fair.run_worker([sys.executable, "-c", "print('hello')"])
    with pytest.raises(fair.WorkerError, match="exited with status 3"):
        fair.run_worker([sys.executable, "-c", "import sys; sys.exit(3)"])


def test_translate_and_nst_reports():
    def runs(jax_rounds, torch_rounds):
        return {
            "jax": [{"samples": s, "warmup": [], "compile_s": c} for s, c in jax_rounds],
            "torch": [{"samples": s, "warmup": [], "compile_s": None} for s in torch_rounds],
        }

    entry = {"job": {"size": 64, "batch": 2}, "runs": runs([([0.5], 5.0)], [[1.0]])}
    lines = translate.report([entry]).splitlines()
    assert lines[2] == "| 64px batch2 | 0.500 | 1.000 | 4.00 | 2.00 | 0.50 | 5.0 | - |"
    assert lines[-1] == "RATIO translate 64px batch2 jax/torch = 0.50"
    # nst: iterations of 4 steps; per step jax 0.25 and 0.5 s, torch 1.0 s both rounds.
    entry = {"job": {"size": 32, "batch": 1},
             "runs": runs([([1.0], 30.0), ([2.0], 1.5)], [[4.0], [4.0]])}  # fmt: skip
    lines = nst.report([entry], steps=4).splitlines()
    assert lines[2] == (
        "| 32px batch1 | 0.375 (0.250-0.500) | 1.000 | 0.38 (0.25-0.50) | 2.67 | 30.0 | 1.5 |"
    )
    assert lines[-1] == "RATIO nst 32px batch1 jax/torch = 0.38"


def test_conv_layers_are_the_reference_networks_layers():
    """bench/conv_layers.py's list, weighted by count, has exactly the reference generator's
    and PatchGAN's multiply-adds (counted on the networks themselves)."""
    size = 32
    x = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
    layers = conv_layers.layers(size)
    assert [layer["count"] for layer in layers if layer["name"] == "G res 3x3"] == [18]
    for prefix, net in (
        ("G", generators.ResnetGenerator(ngf=64, n_blocks=9)),
        ("D", discriminators.PatchGAN(ndf=64, n_layers=3)),
    ):
        with fast_conv.impl("xla"):
            params = jax.eval_shape(lambda net=net: net.init(rngs.key(0), jnp.zeros(x.shape)))
            counted = flops.count(lambda p, x, net=net: net.apply(p, x), params, x)
        listed = sum(
            conv_layers.macs(layer) * layer["count"]
            for layer in layers
            if layer["name"][0] == prefix
        )
        assert counted == 2 * listed


def test_conv_layers_table_from_rounds():
    # Two rounds of hand-made times: each cell is the median of all calls with the min-max
    # of the per-round medians; the ratio and the count-weighted totals are per round.
    args = conv_layers.parse_args(["--size", "32", "--pass", "fwd", "--only", "D out", "G res"])
    assert [layer["name"] for layer in conv_layers.selected(args)] == ["G res 3x3", "D out"]

    def times(res_s, out_s, columns):
        return {"times": {f"{n}|fwd|{c}": v for n, v in (("G res 3x3", res_s), ("D out", out_s))
                          for c in columns}}  # fmt: skip

    jax_cols = ("auto", "xla")
    runs = {
        "jax": [times([0.001, 0.003], [0.010], jax_cols), times([0.002], [0.020], jax_cols)],
        "torch": [times([0.004], [0.010], ("torch",)), times([0.004], [0.010], ("torch",))],
    }  # fmt: skip
    lines = conv_layers.report(args, {"runs": runs}).splitlines()
    assert lines[0] == "| layer | pass | count | jax auto ms | jax xla ms | torch ms | auto/torch |"
    # G res: all calls 1, 3, 2 ms -> median 2; round medians 2 and 2; ratios 2/4, 2/4.
    assert lines[2] == "| G res 3x3 | fwd | 18 | 2.0 | 2.0 | 4.0 | 0.50 |"
    # D out: rounds 10 and 20 ms -> median 15 (10-20); ratios 1 and 2 -> 1.50 (1.00-2.00).
    assert (
        lines[3]
        == "| D out | fwd | 1 | 15.0 (10.0-20.0) | 15.0 (10.0-20.0) | 10.0 | 1.50 (1.00-2.00) |"
    )
    # Totals per round: auto 18*2+10 = 46, 18*2+20 = 56; torch 18*4+10 = 82 in both.
    assert (
        lines[4]
        == "| **total x count** | fwd |  | 51 (46-56) | 51 (46-56) | 82 | 0.62 (0.56-0.68) |"
    )
    with pytest.raises(SystemExit):
        conv_layers.parse_args(["--size", "24"])


@pytest.mark.slow
def test_conv_layers_run_through_the_fair_processes(tmp_path):
    pytest.importorskip("torch")
    argv = ["--size", "32", "--batch", "1", "--only", "D out", "--impl", "auto", "--iters", "2"]
    argv += ["--rounds", "2", "--warmup", "0", "--json", str(tmp_path / "raw.json")]
    proc = run_parent("conv_layers", argv, bench_env())
    out = proc.stdout.splitlines()
    assert out[-1] == "PARENT IMPORTED []"
    assert out[-7] == "| layer | pass | count | jax auto ms | torch ms | auto/torch |"
    assert [line.split(" | ")[:2] for line in out[-5:-1]] == [
        ["| D out", "fwd"], ["| **total x count**", "fwd"],
        ["| D out", "grad"], ["| **total x count**", "grad"],
    ]  # fmt: skip
    runs = json.loads((tmp_path / "raw.json").read_text())["entries"][0]["runs"]
    for name, column in (("jax", "auto"), ("torch", "torch")):
        assert [sorted(r["times"]) for r in runs[name]] == [
            [f"D out|fwd|{column}", f"D out|grad|{column}"]
        ] * 2
        assert all(len(v) == 2 and min(v) > 0 for r in runs[name] for v in r["times"].values())
        assert all(r["env"]["frameworks"] == [name] for r in runs[name])


def _faces(root, names, extra=()):
    for sub in ("photo", "portrait"):
        (root / sub).mkdir(parents=True)
        for name in names:
            (root / sub / name).write_bytes(b"x")
    for sub, name in extra:
        (root / sub / name).write_bytes(b"x")
    return root


def test_results_split_is_the_last_40_by_name_and_only_links(tmp_path):
    names = [f"{i:03d}.jpg" for i in range(45)]
    data = _faces(tmp_path / "faces", names[::-1])
    assert results.pair_names(data) == names
    train, test = results.split_names(names)
    assert (train, test) == (names[:5], names[5:])
    out = tmp_path / "work" / "data"
    results.build_split(data, out, train, test)
    folders = {p.name: sorted(q.name for q in p.iterdir()) for p in out.iterdir()}
    assert folders == {
        "trainA": names[:5], "trainB": names[:5], "testA": names[5:], "testB": names[5:],
        "truthAtoB": names[5:], "truthBtoA": names[5:],
    }  # fmt: skip
    assert (out / "testA" / "044.jpg").readlink() == data.resolve() / "photo" / "044.jpg"
    assert (out / "truthAtoB" / "044.jpg").readlink() == data.resolve() / "portrait" / "044.jpg"
    assert (out / "truthBtoA" / "005.jpg").readlink() == data.resolve() / "photo" / "005.jpg"
    # A smaller test split later: the first pairs of the same 40; stale links go.
    results.build_split(data, out, train, results.split_names(names, 2)[1])
    assert sorted(p.name for p in (out / "testB").iterdir()) == ["005.jpg", "006.jpg"]
    # Anything the script did not make stays, and is an error.
    (out / "testA" / "mine.txt").write_text("keep")
    with pytest.raises(results.InputError, match="mine.txt is not a link this script made"):
        results.build_split(data, out, train, test)
    assert (out / "testA" / "mine.txt").read_text() == "keep"


def test_results_data_errors_are_one_line(tmp_path, capsys):
    with pytest.raises(results.InputError, match=r"no folder .*nowhere/photo"):
        results.pair_names(tmp_path / "nowhere")
    names = [f"{i:03d}.jpg" for i in range(41)]
    data = _faces(tmp_path / "odd", names, extra=[("photo", "999.jpg")])
    with pytest.raises(results.InputError, match=r"1 images .* no pair .*\['999.jpg'\]"):
        results.pair_names(data)
    few = _faces(tmp_path / "few", names[:40])
    with pytest.raises(results.InputError, match="40 pairs .* need more than 40"):
        results.pair_names(few)
    status = results.cli(["--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r.md")])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("error: --data: no folder") and err.count("\n") == 1
    assert not (tmp_path / "r.md").exists()


def test_results_step_time_from_the_loops_lines():
    lines = [
        "Training pix2pix for 31 steps on 1 cpu device(s) in /w",
        "First step (with compilation) took 1m05s",
        "step 11/31 | G_L1=1.000 g_total=2.000 | 2.00 steps/s | ETA 10s",
        "step 31/31 | G_L1=0.500 g_total=1.000 | 4.00 steps/s | ETA 0s",
    ]
    # Steps 2-11 at 2/s (5 s), 12-31 at 4/s (5 s).
    assert results.step_time(lines) == (30, 10.0, 65)
    assert [results.parse_duration(t) for t in ("7s", "1m05s", "1h02m")] == [7, 65, 3720]
    with pytest.raises(ValueError, match="no progress line"):
        results.step_time(lines[:2])
    assert results.steps_for_budget(300, 0.5) == 600
    assert results.steps_for_budget(1, 10.0) == 2


def test_results_commands_and_section():
    data = results.ROOT / "runs" / "results" / "data"
    cal = results.calibration_command("configs/lft_thesis64.py", data.parent / "c", data, 10, [])
    assert cal[:4] == ["python", "train.py", "--config=configs/lft_thesis64.py",
                       "--workdir=runs/results/c"]  # fmt: skip
    assert "--config.data.a=runs/results/data/trainA" in cal and "--config.data.root=" in cal
    assert "--config.train.num_steps=11" in cal and "--config.train.log_every=11" in cal
    run = results.train_command("c.py", data.parent / "r", data, 500, ["--config.vgg.weights=x"])
    assert "--config.data.root=runs/results/data" in run and run[-1] == "--config.vgg.weights=x"
    assert "--config.train.num_steps=500" in run and "--config.train.log_every=50" in run
    first = results.replace_section("", "TABLE 1")
    assert first.startswith(results.DOC_HEAD) and "TABLE 1" in first
    other = first + "\n## another data set\n"
    second = results.replace_section(other, "TABLE 2")
    assert "TABLE 1" not in second and "TABLE 2" in second and second.endswith("another data set\n")
    assert results.replace_section("# Mine\n", "T").startswith("# Mine\n\n" + results.BEGIN)
    with pytest.raises(results.InputError, match="without the other"):
        results.replace_section(results.BEGIN + "\n", "T")


def test_results_table_rows():
    m = {"l1": 0.25, "ratio": 0.5, "psnr": 17.0, "ssim": 0.4}
    row = {"label": "pix2pix", "metrics": {"AtoB": m}, "steps": 600, "train_s": 300.0,
           "wall_s": 390.0, "command": "python train.py --config=c.py"}  # fmt: skip
    meta = {"data": "../d", "train": 220, "test": 40, "minutes": 5.0, "date": "D",
            "machine": "M", "command": "python bench/results.py"}  # fmt: skip
    ident = {"l1": 0.5, "ratio": 1.0, "psnr": 12.0, "ssim": 0.2}
    lines = results.markdown_table([row], {"AtoB": ident, "BtoA": ident}, meta).splitlines()
    assert "| identity (input as output) | 0.5000 (1.00x) | 12.00 | 0.200 | 0.5000 (1.00x)" in (
        "\n".join(lines)
    )
    assert "| pix2pix | 0.2500 (0.50x) | 17.00 | 0.400 | - | - | - | 600 | 5.0 min | 6.5 min |" in (
        lines
    )
    assert "- pix2pix: `python train.py --config=c.py`" in lines
    assert not any(line.startswith("Off the budget") for line in lines)  # 5.0 min for 5.
    slow = {**row, "label": "CycleGAN", "train_s": 361.0}  # Over 6 min: off by more than 1/5.
    fast = {**row, "label": "LFT", "train_s": 241.0}  # Within a fifth.
    text = results.markdown_table([row, slow, fast], {"AtoB": ident, "BtoA": ident}, meta)
    assert "changed its speed): CycleGAN 6.0 min for a budget of 5 min." in text
    assert "LFT 4.0" not in text


def test_results_table_from_a_saved_run(tmp_path, capsys):
    """--table_from rewrites the section from a run's results.json; the rest stays."""
    import json

    m = {"l1": 0.25, "ratio": 0.5, "psnr": 17.0, "ssim": 0.4}
    measured = {
        "meta": {"data": "../d", "train": 220, "test": 40, "minutes": 4.0, "date": "D",
                 "machine": "M", "command": "python bench/results.py"},
        "identity": {"AtoB": m, "BtoA": m},
        "rows": [{"label": "pix2pix", "metrics": {"AtoB": m}, "steps": 9, "train_s": 240.0,
                  "wall_s": 300.0, "command": "python train.py"}],
    }  # fmt: skip
    saved = tmp_path / "results.json"
    saved.write_text(json.dumps(measured))
    out = tmp_path / "RESULTS.md"
    out.write_text("# Mine\n\nkept\n")
    assert results.cli(["--table_from", str(saved), "--out", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("# Mine\n\nkept\n\n" + results.BEGIN)
    assert "| pix2pix | 0.2500 (0.50x) | 17.00 | 0.400 | - | - | - | 9 | 4.0 min | 5.0 min |" in (
        text
    )
    assert results.cli(["--table_from", str(tmp_path / "none.json"), "--out", str(out)]) == 2
    assert capsys.readouterr().err == f"error: --table_from: no file {tmp_path / 'none.json'}\n"
    assert out.read_text() == text


def test_results_identity_row_is_input_against_truth(tmp_path):
    """Two test pairs of flat images: 64 vs 192 grey, and 100 vs 100 (identical)."""
    import numpy as np

    from jaxfaces.data import preprocess

    root = tmp_path / "data"
    for name, photo, portrait in (("a.png", 64, 192), ("b.png", 100, 100)):
        for folder, value in (("testA", photo), ("truthBtoA", photo), ("testB", portrait),
                              ("truthAtoB", portrait)):  # fmt: skip
            preprocess.save_image(root / folder / name, np.full((16, 16, 3), value, np.uint8))
    x, y = 64 / 127.5 - 1, 192 / 127.5 - 1
    luminance = (2 * x * y + 4e-4) / (x * x + y * y + 4e-4)  # SSIM of flat images (C1 = 4e-4).
    expected = {
        "l1": (y - x) / 2,
        "ratio": 1.0,
        "psnr": (10 * np.log10(4 / (y - x) ** 2) + 100.0) / 2,  # Identical: the 100 dB cap.
        "ssim": (luminance + 1) / 2,
    }
    got = results.identity_metrics(root)
    assert set(got) == {"AtoB", "BtoA"}
    for direction in got:
        assert got[direction] == pytest.approx(expected, rel=1e-5, abs=1e-6)


# The fair benchmarks end to end (tiny networks; the processes are real).

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = ["--size", "32", "--batch", "1", "--ngf", "8", "--n_blocks", "1", "--iters", "1"]


def run_parent(module: str, argv: list[str], env: dict) -> subprocess.CompletedProcess:
    """Runs a benchmark's parent in a fresh Python; its last line lists the frameworks that
    the parent itself imported."""
    code = (
        f"import sys\nfrom bench import {module}\n{module}.main({argv!r})\n"
        "print('PARENT IMPORTED', sorted(m for m in ('jax', 'torch') if m in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def bench_env() -> dict:
    """The test's environment without any OpenMP wait policy, plus one harmless OpenMP
    variable (its default value) that the workers must find as the parent had it."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["OMP_DISPLAY_ENV"] = "FALSE"
    return env


@pytest.mark.slow
def test_train_step_processes_alternate_with_the_parents_environment(tmp_path):
    torch = pytest.importorskip("torch")
    env = bench_env()
    raw = tmp_path / "raw.json"
    argv = TINY + ["--ndf", "8", "--rounds", "2", "--warmup", "1", "--ceiling_size", "128"]
    proc = run_parent("train_step", argv + ["--json", str(raw)], env)
    out = proc.stdout.splitlines()
    assert out[-1] == "PARENT IMPORTED []"
    assert out[-2].startswith("RATIO train_step 32px batch1 jax/torch = ")
    assert any(line.startswith("| 32px batch1 | ") for line in out)
    assert any(line.startswith("matmul ceiling (float32 jnp.dot, a JAX process): ") for line in out)
    saved = json.loads(raw.read_text())
    assert saved["info"]["flops"]["32px batch1"] > 0
    runs = saved["entries"][0]["runs"]
    by_seq = sorted((r["seq"], r["round"], name) for name in runs for r in runs[name])
    assert [(rnd, name) for _, rnd, name in by_seq] == [
        (1, "jax"), (1, "torch"), (2, "torch"), (2, "jax")
    ]  # fmt: skip
    expected = {k: v for k, v in env.items() if k.startswith(fair.ENV_PREFIXES)}
    fresh = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    for name in ("jax", "torch"):
        for r in runs[name]:
            assert r["env"]["vars"] == expected and "OMP_WAIT_POLICY" not in r["env"]["vars"]
            assert r["env"]["frameworks"] == [name]  # It imported its own framework only.
            assert len(r["samples"]) == 1 and len(r["warmup"]) == 1
    assert all(r["compile_s"] > r["lower_s"] > 0 for r in runs["jax"])
    assert runs["jax"][0]["cache"] in ("written", "not written")  # A fresh cache: cold.
    assert all(r["env"]["threads"] == int(fresh.stdout) for r in runs["torch"])
    assert torch.__version__ == runs["torch"][0]["env"]["version"]


@pytest.mark.slow
def test_translate_and_nst_run_through_the_same_processes(tmp_path):
    pytest.importorskip("torch")
    env = bench_env()
    proc = run_parent("translate", TINY + ["--rounds", "1", "--warmup", "0"], env)
    out = proc.stdout.splitlines()
    assert out[-1] == "PARENT IMPORTED []"
    assert out[-2].startswith("RATIO translate 32px batch1 jax/torch = ")
    # Style transfer: the PyTorch side only here (the JAX loop's compile is nst_test's).
    argv = ["--size", "32", "--batch", "1", "--steps", "1", "--iters", "1", "--rounds", "1"]
    raw = tmp_path / "nst.json"
    proc = run_parent("nst", argv + ["--framework=torch", "--json", str(raw)], env)
    assert proc.stdout.splitlines()[-1] == "PARENT IMPORTED []"
    (result,) = json.loads(raw.read_text())["entries"][0]["runs"]["torch"]
    assert len(result["samples"]) == 1 and result["env"]["vars"].get("OMP_DISPLAY_ENV") == "FALSE"
    assert result["env"]["frameworks"] == ["torch"]


def test_nst_torch_side_has_the_jax_sides_settings_and_weights():
    from jaxfaces.convert import vgg19 as convert
    from jaxfaces.methods import nst as nst_method
    from jaxfaces.models import vgg

    defaults = nst_method.Settings()
    assert nst.SETTINGS == {k: getattr(defaults, k) for k in nst.SETTINGS}
    assert (vgg_layout.BLOCKS, vgg_layout.IMAGENET_MEAN, vgg_layout.IMAGENET_STD) == (
        vgg.BLOCKS,
        vgg.IMAGENET_MEAN,
        vgg.IMAGENET_STD,
    )
    assert [vgg_layout.torchvision_index(n) for n in vgg.CONV_LAYERS] == [
        vgg.torchvision_index(n) for n in vgg.CONV_LAYERS
    ]
    sd = nst.vgg_state_dict(0)
    params = convert.params_from_state_dict(sd)
    assert params["conv2_1"]["kernel"].shape == (3, 3, 64, 128)
    bound = 1 / (64 * 9) ** 0.5  # conv2_1: PyTorch's default init range for 64 x 3 x 3 inputs.
    assert 0.9 * bound < abs(sd["features.5.weight"]).max() <= bound


def test_nst_method_flag_and_jobs():
    assert nst.parse_args([]).method == ["nst"]  # The default run is the NST benchmark alone.
    args = nst.parse_args(["--method", "lft", "nst", "--size", "32", "--batch", "1", "2"])
    assert args.method == ["nst", "lft"]
    assert [nst.label(j) for j in nst.jobs(args)] == [
        "32px batch1", "32px batch2", "lft 32px batch1", "lft 32px batch2"
    ]  # fmt: skip
    with pytest.raises(SystemExit):
        nst.parse_args(["--method", "cyclegan"])


def test_lft_torch_side_reads_the_synthesis_settings_of_configs_lft():
    """`nst.lft_settings` (the PyTorch process's reading, without jax) is
    `lft.synthesis_settings` field by field: for configs/lft.py, and for a config with every
    field changed."""
    from configs import lft as lft_config
    from jaxfaces.methods import lft

    config = lft_config.get_config()
    s = lft.synthesis_settings(config)
    assert nst.lft_settings() == {k: getattr(s, k) for k in nst.SETTINGS}
    assert set(nst.lft_settings()) == set(nst.SETTINGS)
    # Not read by the PyTorch loop: the steps (--steps) and the L-BFGS memory (Adam only).
    assert set(s._fields) - set(nst.SETTINGS) == {"steps", "lbfgs_memory"}
    assert s.optimizer == "adam"
    c, syn = config.lft, config.lft.synthesis
    c.content_layer, c.style_layers, c.style_layer_weights = "conv4_2", ("conv2_1",), (2,)
    syn.content_weight, syn.style_weight, syn.tv_weight = 3, 1e5, 0.5
    syn.optimizer, syn.lr, config.vgg.pool = "lbfgs", 0.5, "max"
    changed = lft.synthesis_settings(config)
    assert nst.lft_settings(config) == {k: getattr(changed, k) for k in nst.SETTINGS}
    assert all(nst.lft_settings(config)[k] != v for k, v in nst.lft_settings().items())


def test_lft_report_rows_and_ratio_lines():
    def runs(jax_samples, torch_samples):
        return {
            "jax": [{"samples": jax_samples, "warmup": [], "compile_s": 20.0}],
            "torch": [{"samples": torch_samples, "warmup": [], "compile_s": None}],
        }

    # Iterations of 2 steps: per step jax 0.5 s, torch 1.0 s (nst) and 0.25 s (lft).
    lft_entry = {"job": {"method": "lft", "size": 32, "batch": 2}, "runs": runs([1.0], [0.5])}
    lines = nst.report([lft_entry], steps=2).splitlines()
    assert lines[0].startswith("| config | jax s/step | torch s/step | ratio (jax/torch) |")
    assert lines[2] == "| 32px batch2 | 0.500 | 0.250 | 2.00 | 4.00 | 20.0 | - |"
    assert "seconds lft 32px batch2 jax round 1: compile 20.0; timed 1.000" in lines
    assert lines[-1] == "RATIO lft 32px batch2 jax/torch = 2.00"
    # Both methods: one titled table each, the RATIO lines together, last.
    nst_entry = {"job": {"method": "nst", "size": 32, "batch": 2}, "runs": runs([1.0], [2.0])}
    lines = nst.report([lft_entry, nst_entry], steps=2).splitlines()
    assert lines[:2] == ["Neural style transfer:", ""]
    assert lines[4] == "| 32px batch2 | 0.500 | 1.000 | 0.50 | 4.00 | 20.0 | - |"
    assert "seconds 32px batch2 torch round 1: timed 2.000" in lines
    assert lines[lines.index("LFT synthesis:") + 4].startswith("| 32px batch2 | 0.500 | 0.250 |")
    assert lines[-3:] == [
        "",
        "RATIO nst 32px batch2 jax/torch = 0.50",
        "RATIO lft 32px batch2 jax/torch = 2.00",
    ]


def test_lft_torch_loop_is_jaxfaces_synthesis():
    """One Adam step of the LFT synthesis with configs/lft.py's settings (thesis layers), the
    benchmark's own inputs and targets, in both frameworks (JAX: what the benchmark's worker
    compiles): every loss part before and after the step agrees to rtol 1e-4 (with random
    weights the parts are small, e.g. style ~1e-10, but float32 is relative), the images to
    1e-3 (a few pixels start within 2 grey levels of 0 or 255: the clipping runs too)."""
    torch = pytest.importorskip("torch")
    import numpy as np

    from jaxfaces.convert import vgg19 as convert
    from jaxfaces.methods import nst as nst_method

    args = nst.parse_args(["--method", "lft", "--size", "16", "--batch", "2", "--steps", "1"])
    (job,) = nst.jobs(args)
    params = convert.params_from_state_dict(nst.vgg_state_dict(args.seed))
    fn, arrays, s = nst.jax_lft_work(args, job, params)
    assert fn is nst_method.optimise and s.steps == 1
    images, history = fn(*arrays, s)
    net = nst.torch_vgg(args.seed, s.pool)
    run = nst.torch_lft_runner(net, *nst.lft_images(args, job), nst.lft_settings())
    with torch.no_grad():
        start = nst.torch_nchw(nst.lft_images(args, job)[0])
    t_images, t_history = run(args.steps)
    assert set(t_history) == set(history) == {"total", "content", "style", "tv"}
    for part, values in history.items():
        assert t_history[part].shape == values.shape == (2, 2)
        np.testing.assert_allclose(t_history[part].numpy(), values, rtol=1e-4, err_msg=part)
    got = t_images.numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(got, np.asarray(images), atol=1e-3)
    assert float((t_images - start).abs().max()) > 1e-2  # The step moved the images.


# bench/torch_cyclegan.py is the reference (junyanz/pytorch-CycleGAN-and-pix2pix,
# models/networks.py and models/cycle_gan_model.py), layer by layer and step by step.
# Forward parity with jaxfaces' networks and the parameter counts are in convert_test.py.


def reference_generator_layers(ngf: int, n_blocks: int) -> list[tuple]:
    """The reference `ResnetGenerator(3, 3, ngf, InstanceNorm2d, n_blocks=n_blocks)` (no
    dropout, reflect padding, transposed convolutions), one tuple per module in order:
    ("pad", p) | ("conv", in, out, k, stride, pad, bias) | ("convT", in, out, k, stride, pad,
    output_pad, bias) | ("in", channels) (no affine, no running stats) | ("relu",) | ...;
    residual blocks are ("res", [their layers])."""
    norm = lambda c: ("in", c)  # noqa: E731
    layers = [("pad", 3), ("conv", 3, ngf, 7, 1, 0, True), norm(ngf), ("relu",)]
    for i in range(2):
        c = ngf * 2**i
        layers += [("conv", c, 2 * c, 3, 2, 1, True), norm(2 * c), ("relu",)]
    d = 4 * ngf
    block = [("pad", 1), ("conv", d, d, 3, 1, 0, True), norm(d), ("relu",)]
    block += [("pad", 1), ("conv", d, d, 3, 1, 0, True), norm(d)]
    layers += [("res", block)] * n_blocks
    for i in range(2):
        c = ngf * 2 ** (2 - i)
        layers += [("convT", c, c // 2, 3, 2, 1, 1, True), norm(c // 2), ("relu",)]
    return layers + [("pad", 3), ("conv", ngf, 3, 7, 1, 0, True), ("tanh",)]


def reference_patchgan_layers(ndf: int) -> list[tuple]:
    """The reference `NLayerDiscriminator(3, ndf, n_layers=3, InstanceNorm2d)`."""
    layers = [("conv", 3, ndf, 4, 2, 1, True), ("lrelu", 0.2)]
    for cin, cout, stride in ((1, 2, 2), (2, 4, 2), (4, 8, 1)):
        layers += [("conv", ndf * cin, ndf * cout, 4, stride, 1, True), ("in", ndf * cout)]
        layers.append(("lrelu", 0.2))
    return layers + [("conv", ndf * 8, 1, 4, 1, 1, True)]


def describe(module) -> tuple:
    """A torch module as the tuples above."""
    nn = pytest.importorskip("torch").nn
    if isinstance(module, nn.ReflectionPad2d):
        assert len(set(module.padding)) == 1
        return ("pad", module.padding[0])
    if isinstance(module, nn.ConvTranspose2d):
        (k, _), (s, _), (p, _), (op, _) = (
            module.kernel_size, module.stride, module.padding, module.output_padding
        )  # fmt: skip
        return (
            "convT",
            module.in_channels,
            module.out_channels,
            k,
            s,
            p,
            op,
            module.bias is not None,
        )
    if isinstance(module, nn.Conv2d):
        (k, _), (s, _), (p, _) = module.kernel_size, module.stride, module.padding
        return ("conv", module.in_channels, module.out_channels, k, s, p, module.bias is not None)
    if isinstance(module, nn.InstanceNorm2d):
        assert not module.affine and not module.track_running_stats
        return ("in", module.num_features)
    if isinstance(module, nn.LeakyReLU):
        return ("lrelu", module.negative_slope)
    if type(module).__name__ == "ResnetBlock":
        return ("res", [describe(m) for m in module.conv_block])
    return ({nn.ReLU: "relu", nn.Tanh: "tanh"}[type(module)],)


def test_torch_networks_are_the_references_layer_by_layer():
    torch = pytest.importorskip("torch")
    from bench import torch_cyclegan

    torch.manual_seed(0)
    g = torch_cyclegan.ResnetGenerator(3, 3, 64, "instance", 9, False)
    assert [describe(m) for m in g.model] == reference_generator_layers(64, 9)
    d = torch_cyclegan.NLayerDiscriminator(3, 64, 3, "instance")
    assert [describe(m) for m in d.model] == reference_patchgan_layers(64)
    # Model-zoo keys: the last generator convolution is model.26, the last PatchGAN one model.11.
    assert g.state_dict()["model.26.weight"].shape == (3, 64, 7, 7)
    assert g.state_dict()["model.19.weight"].shape == (256, 128, 3, 3)  # ConvTranspose2d.
    assert d.state_dict()["model.11.weight"].shape == (1, 512, 4, 4)
    # init_type normal, gain 0.02: weights N(0, 0.02), biases 0.
    w = g.model[10].conv_block[1].weight.detach()
    assert abs(float(w.std()) - 0.02) < 0.001 and float(g.model[1].bias.detach().abs().max()) == 0.0


def test_torch_step_is_the_references_optimize_parameters():
    """One ReferenceCycleGAN.train_step against the reference's order, recomputed by hand:
    G losses on the networks before the step, one Adam step of both G on their sum with D
    frozen (D gets no gradient from it), then D on real images and the pooled fakes of the
    same forward pass (the pools return the first fakes as they are), one Adam step."""
    torch = pytest.importorskip("torch")
    import copy

    from bench import torch_cyclegan

    model = torch_cyclegan.ReferenceCycleGAN(ngf=4, n_blocks=1, ndf=4, seed=0)
    before = {k: copy.deepcopy(getattr(model, k)) for k in ("g_a", "g_b", "d_a", "d_b")}
    gen = torch.Generator().manual_seed(1)
    a, b = (torch.rand((1, 3, 32, 32), generator=gen) * 2 - 1 for _ in range(2))
    got = model.train_step(a, b)

    g_a, g_b, d_a, d_b = (before[k] for k in ("g_a", "g_b", "d_a", "d_b"))
    mse, l1 = torch.nn.functional.mse_loss, torch.nn.functional.l1_loss
    fake_b, fake_a = g_a(a), g_b(b)
    terms = {
        "g_a": mse(d_a(fake_b), torch.ones_like(d_a(fake_b))),
        "g_b": mse(d_b(fake_a), torch.ones_like(d_b(fake_a))),
        "cycle_a": 10 * l1(g_b(fake_b), a),
        "cycle_b": 10 * l1(g_a(fake_a), b),
        "idt_a": 10 * 0.5 * l1(g_a(b), b),
        "idt_b": 10 * 0.5 * l1(g_b(a), a),
    }
    g_params = [*g_a.parameters(), *g_b.parameters()]
    g_grads = torch.autograd.grad(sum(terms.values()), g_params)

    def d_loss(d, real, fake):
        p_real, p_fake = d(real), d(fake.detach())
        return 0.5 * (mse(p_real, torch.ones_like(p_real)) + mse(p_fake, torch.zeros_like(p_fake)))

    terms["d_a"], terms["d_b"] = d_loss(d_a, b, fake_b), d_loss(d_b, a, fake_a)
    d_params = [*d_a.parameters(), *d_b.parameters()]
    d_grads = torch.autograd.grad(terms["d_a"] + terms["d_b"], d_params)
    assert got == pytest.approx({k: v.detach().item() for k, v in terms.items()}, rel=1e-5)

    def adam_first_step(p, grad):  # lr 2e-4, betas (0.5, 0.999), eps 1e-8, bias-corrected.
        return p - 2e-4 * grad / (grad.abs() + 1e-8)

    after_g = [*model.g_a.parameters(), *model.g_b.parameters()]
    after_d = [*model.d_a.parameters(), *model.d_b.parameters()]
    pairs = [*zip(after_g, g_params, g_grads, strict=True)]
    pairs += zip(after_d, d_params, d_grads, strict=True)
    for new, old, grad in pairs:
        torch.testing.assert_close(new, adam_first_step(old.detach(), grad), rtol=0, atol=1e-7)
