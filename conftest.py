"""Test-session setup: the repo root is importable (`configs`, `bench`), and compiled XLA
programs are cached on disk so that the runs of one session (and in-process resumes, whose
step functions are traced anew) compile each program once."""

import pathlib
import tempfile

import jax

jax.config.update(
    "jax_compilation_cache_dir", str(pathlib.Path(tempfile.gettempdir()) / "jaxfaces-test-xla")
)


def pytest_collection_modifyitems(items):
    """Files with the longest runs first: the demo's, then those with other `slow` tests,
    then the rest, each file kept whole and in order. With `pytest -n 2 --dist loadfile
    --no-loadscope-reorder` (`make test`; by default xdist puts the files with the most
    tests first) files go to the workers in this order, so the demo's minutes overlap
    everything else instead of running alone at the end."""

    def rank(item):
        if item.nodeid.startswith("tests/demo_test.py"):
            return 0
        return 1 if item.get_closest_marker("slow") else 2

    file_rank = {}
    for item in items:
        path = item.nodeid.split("::")[0]
        file_rank[path] = min(file_rank.get(path, 2), rank(item))
    items.sort(key=lambda item: file_rank[item.nodeid.split("::")[0]])  # Stable.
