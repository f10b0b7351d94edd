# Two commands do all set-up on a fresh machine:
#   make demo   run the main job (preprocess -> train -> evaluate) on the bundled sample
#   make test   run the test suite (what CI runs)
# make test-fast runs the unit tier alone (no Ray, S3 or subprocesses), in seconds.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint install clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first: a bare requirement would pull a multi-GB CUDA build.
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) pipelines/demo.py

test: $(STAMP)
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not ray and not s3 and not slow and not cli"

lint: $(STAMP)
	$(VENV)/bin/ruff check hanet pipelines tests benchmarks scripts
	$(VENV)/bin/ruff format --check hanet pipelines tests benchmarks scripts

clean:
	rm -rf $(VENV) outputs
