"""Checks that notebooks are stored without outputs: `python tests/check_notebooks.py [PATH ...]`.

Each PATH is a notebook or a folder of them (default: notebooks/). A code cell with outputs
or an execution count fails the check (exit status 1, one line per cell): clear them
(Jupyter: Edit > Clear outputs of all cells; Colab: Edit > Clear all outputs) before
committing. The Makefile's lint step runs it.
"""

import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def problems(path: pathlib.Path) -> list[str]:
    """One line per code cell of the notebook at `path` that holds outputs or a count."""
    cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    found = []
    for i, cell in enumerate(cells):
        if cell.get("cell_type") != "code":
            continue
        if cell.get("outputs"):
            found.append(f"{path}: cell {i} has {len(cell['outputs'])} output(s)")
        if cell.get("execution_count") is not None:
            found.append(f"{path}: cell {i} has execution count {cell['execution_count']}")
    return found


def notebooks(paths: list[str]) -> list[pathlib.Path]:
    """The notebooks named by `paths` (files, or folders searched for *.ipynb)."""
    found = []
    for p in map(pathlib.Path, paths):
        found += sorted(p.rglob("*.ipynb")) if p.is_dir() else [p]
    return found


def main(argv: list[str]) -> int:
    files = notebooks(argv or [str(ROOT / "notebooks")])
    lines = [line for path in files for line in problems(path)]
    for line in lines:
        print(line)
    if lines:
        print("Store notebooks without outputs: clear all outputs, then save.")
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
