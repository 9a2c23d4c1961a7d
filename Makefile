# The one front door for people and CI. `make run` and `make test` do all the set-up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8080
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint typecheck bench bench-api bench-aggregation demo clean install postgres-check

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## run: install, migrate, seed the demo organization (prints its keys), serve on $(HOST):$(PORT)
run: $(STAMP)
	$(VENV)/bin/steelyard db upgrade
	$(VENV)/bin/steelyard demo
	$(VENV)/bin/steelyard serve --host $(HOST) --port $(PORT)

demo: $(STAMP)
	$(VENV)/bin/steelyard demo

## test: the whole suite (PostgreSQL half when STEELYARD_TEST_POSTGRES_URL is set)
test: $(STAMP) postgres-check lint typecheck
	$(VENV)/bin/pytest -q

test-fast: $(STAMP)
	$(VENV)/bin/pytest -q -x -m "not slow"

# When a PostgreSQL URL is given it must answer: CI fails instead of skipping those tests.
postgres-check: $(STAMP)
	@if [ -n "$$STEELYARD_TEST_POSTGRES_URL" ]; then \
	  $(PY) -c "import os, sqlalchemy as sa; e = sa.create_engine(os.environ['STEELYARD_TEST_POSTGRES_URL']); e.connect().close(); print('PostgreSQL reachable for tests')" \
	  || { echo "STEELYARD_TEST_POSTGRES_URL is set but PostgreSQL is unreachable" >&2; exit 1; }; \
	fi

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy

bench: bench-api bench-aggregation

bench-api: $(STAMP)
	$(PY) bench/api.py

bench-aggregation: $(STAMP)
	$(PY) bench/aggregation.py

clean:
	rm -rf $(VENV) .steelyard .pytest_cache .mypy_cache .ruff_cache
