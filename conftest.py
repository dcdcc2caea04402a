"""Test-session setup: the repo root is importable (`configs`, `bench`), and compiled XLA
programs are cached on disk so that the runs of one session (and in-process resumes, whose
step functions are traced anew) compile each program once."""

import pathlib
import tempfile

import jax

jax.config.update(
    "jax_compilation_cache_dir", str(pathlib.Path(tempfile.gettempdir()) / "jaxfaces-test-xla")
)
