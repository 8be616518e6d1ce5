# The two commands of the README, and the rest of the project's chores.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The demo needs plait alone; tests and lint need the test stack (Dask, Ray, mypy, ...):
# one stamp each, so `make demo` on a fresh clone installs a few small packages.
DEMO_STAMP := $(VENV)/.installed-demo
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test lint services bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

demo: $(DEMO_STAMP)
	$(BIN)/python examples/pi.py

lint: $(TEST_STAMP)
	$(BIN)/ruff check plait tests examples bench
	$(BIN)/mypy plait

services:
	.ci/services-up

test: $(TEST_STAMP) lint services
	$(BIN)/python -m pytest -q

bench: $(TEST_STAMP)
	$(BIN)/python -m pip install -q -e '.[test,bench]'
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) build *.egg-info
