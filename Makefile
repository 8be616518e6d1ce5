# The two commands of the README, and the rest of the project's chores.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint docs services bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test,docs]'
	touch $@

demo: $(STAMP)
	$(BIN)/python examples/pi.py

lint: $(STAMP)
	$(BIN)/ruff check plait tests examples bench
	$(BIN)/mypy plait

# The documentation site in build/site, strict: a broken link or API reference fails it.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

services:
	.ci/services-up

test: $(STAMP) lint docs services
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[test,bench]'
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) build *.egg-info
