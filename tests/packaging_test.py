"""`pip install .` builds a wheel of the jaxfaces package with the pinned requirements."""

import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_wheel_holds_every_module_and_the_pinned_requirements(tmp_path):
    pytest.importorskip("setuptools", reason="the build backend (pyproject.toml)")
    src = tmp_path / "src"  # A copy: building in the checkout would leave build/ there.
    shutil.copytree(
        ROOT / "jaxfaces", src / "jaxfaces", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("pyproject.toml", "requirements.txt", "README.md"):
        shutil.copy(ROOT / name, src / name)
    args = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    r = subprocess.run(
        [*args, "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("jaxfaces-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        metadata = next(z.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "jaxfaces").rglob("*.py")}
    assert modules <= names, sorted(modules - names)
    assert "jaxfaces/notebook.py" in names and "jaxfaces/training/loop.py" in names
    assert not [n for n in names if n.startswith(("configs/", "tests/", "bench/"))]
    pins = [
        line.split("#")[0].strip()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.split("#")[0].strip()
    ]
    for pin in pins:
        assert f"Requires-Dist: {pin}" in metadata, pin
    assert "jax==" in metadata and "Requires-Python: >=3.11" in metadata
