# The two commands of the README, and the rest of the project's chores.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The demo needs plait alone; tests and lint need the test stack (Dask, Ray, mypy, ...):
# one stamp each, so `make demo` on a fresh clone installs a few small packages.
DEMO_STAMP := $(VENV)/.installed-demo
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test lint docs services bench clean

# pip -qq: errors only. At -q, a newcomer's first screen is pip's warnings about the machine's
# package index configuration and setuptools' notice on editable installs, none of them plait's.
PIP := $(BIN)/python -m pip install -qq

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(PIP) --upgrade pip

$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	$(PIP) -e .
	touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(PIP) -e '.[test,docs]'
	touch $@

demo: $(DEMO_STAMP)
	$(BIN)/python examples/pi.py

lint: $(TEST_STAMP)
	$(BIN)/ruff check plait tests examples bench
	$(BIN)/ruff format --check plait tests examples bench
	$(BIN)/mypy plait

# The documentation site in build/site, strict: a broken link or API reference fails it.
docs: $(TEST_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

services:
	.ci/services-up

test: $(TEST_STAMP) lint docs services
	$(BIN)/python -m pytest -q

bench: $(TEST_STAMP)
	$(PIP) -e '.[test,bench]'
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) build *.egg-info
