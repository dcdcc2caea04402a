"""The main job learns: the demo CycleGAN beats the identity baseline well, both ways."""

import json
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_demo_translations_are_well_under_the_identity_baseline(tmp_path):
    workdir = tmp_path / "demo"
    r = subprocess.run(
        [
            sys.executable,
            "train.py",
            "--config=configs/demo.py",
            f"--workdir={workdir}",
            f"--config.data.root={tmp_path / 'faces'}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "ETA" in r.stdout and "ratio" in r.stdout
    metrics = json.loads((workdir / "samples" / "metrics.json").read_text())
    for direction in ("AtoB", "BtoA"):
        m = metrics[direction]
        assert m["identity_l1"] > 0.25, m  # The built-in data's baseline is a big change ...
        # ... which the demo recovers well under: 0.42-0.44x measured (seeds 0-2), the
        # reference-shaped ResNet demo before it 0.55x; the margin is for other CPUs.
        assert m["ratio"] < 0.5, (direction, m)
        assert (workdir / "samples" / f"{direction}.png").is_file()
