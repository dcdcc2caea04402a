# The two commands of the README: `make demo` (the main job) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
WORKDIR ?= runs/demo

.PHONY: demo test lint bench clean

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed requirements-test.txt
	$(PY) -m pip install -q -r requirements-test.txt
	touch $@

# Writes the built-in procedural faces to data/faces, trains the demo CycleGAN on the CPU,
# then writes translated test sheets both ways to $(WORKDIR)/samples and prints the scores.
demo: $(VENV)/.installed
	$(PY) train.py --config=configs/demo.py --workdir=$(WORKDIR)

# The whole suite, slow end-to-end runs included (the notebooks too, run top to bottom in
# their tiny setting); lint first. The report tests render pages in headless Chromium:
# installed here on Debian (as root) when missing.
test: $(VENV)/.installed-test
	command -v chromium >/dev/null || ! command -v apt-get >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq chromium >/dev/null)
	$(MAKE) lint
	$(PY) -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder --durations=25

# ruff (Python files and notebooks), and notebooks stored without outputs.
lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .
	$(PY) tests/check_notebooks.py notebooks

bench: $(VENV)/.installed-test
	$(PY) bench/train_step.py

clean:
	rm -rf $(WORKDIR) data/faces
