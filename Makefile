# The one front door for people and CI. `make run` and `make test` do all the set-up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8080
# Serving needs only the package; the test and lint tools come with `make test`. One stamp each,
# so switching between the two reinstalls nothing, and `.[dev]` (a superset) marks both.
RUNTIME_STAMP := $(VENV)/.installed-runtime
DEV_STAMP := $(VENV)/.installed-dev
# The labeling app: Node and npm at build time only. `npm ci` runs when the lock is newer than
# what it installed; `vite build` when a source is newer than the build.
NPM ?= npm
FRONTEND := frontend
WEB_DIST := src/steelyard/web_dist
NODE_STAMP := $(FRONTEND)/node_modules/.package-lock.json
UI_SOURCES := $(shell find $(FRONTEND)/src -type f 2>/dev/null) \
  $(addprefix $(FRONTEND)/,index.html vite.config.ts tsconfig.json package.json)
# Browser tests drive Debian's Chromium (Playwright's own browser download does not work here).
CHROMIUM := /usr/bin/chromium

.PHONY: run test test-postgres test-fast lint typecheck bench bench-api bench-aggregation demo clean install install-dev postgres-check ui ui-test chromium bench-ui

$(PY):
	@printf '\n==> %s\n' "Creating the virtual environment $(VENV) with $(PYTHON)"
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

$(RUNTIME_STAMP): pyproject.toml | $(PY)
	@printf '\n==> %s\n' "Installing Steelyard and what it needs to serve (the first time takes a few minutes)"
	$(PIP) install -e .
	@touch $@

$(DEV_STAMP): pyproject.toml | $(PY)
	@printf '\n==> %s\n' "Installing Steelyard with the test, lint and type-check tools (.[dev])"
	$(PIP) install -e '.[dev]'
	@touch $@ $(RUNTIME_STAMP)

$(NODE_STAMP): $(FRONTEND)/package-lock.json
	@command -v $(NPM) >/dev/null || { echo "Building the labeling app needs Node 20+ and npm" >&2; exit 1; }
	@printf '\n==> %s\n' "Installing the labeling app's build tools (npm ci)"
	cd $(FRONTEND) && $(NPM) ci --no-audit --no-fund
	@touch $@

$(WEB_DIST)/index.html: $(UI_SOURCES) $(NODE_STAMP)
	@printf '\n==> %s\n' "Building the labeling app into $(WEB_DIST)"
	cd $(FRONTEND) && $(NPM) run build
	@touch $@

## ui: build the labeling app when its sources are newer than the build
ui: $(WEB_DIST)/index.html

## ui-test: the front end's logic tests (Vitest)
ui-test: $(NODE_STAMP)
	cd $(FRONTEND) && $(NPM) test

## chromium: Debian's Chromium for the browser tests, installed when missing
chromium:
	@if [ ! -x $(CHROMIUM) ]; then \
	  printf '\n==> %s\n' "Installing Debian's chromium for the browser tests"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update && $$SUDO apt-get install -y chromium; \
	fi

install: $(RUNTIME_STAMP)

install-dev: $(DEV_STAMP)

## run: install, migrate, seed the demo organization (prints its keys), serve on $(HOST):$(PORT)
run: $(RUNTIME_STAMP) ui
	@printf '\n==> %s\n' "Migrating the database"
	$(VENV)/bin/steelyard db upgrade
	@printf '\n==> %s\n' "Seeding the demo organization"
	$(VENV)/bin/steelyard demo --host $(HOST) --port $(PORT)
	@printf '\n==> %s\n' "Serving on http://$(HOST):$(PORT) (Ctrl+C stops)"
	$(VENV)/bin/steelyard serve --host $(HOST) --port $(PORT)

demo: $(RUNTIME_STAMP)
	$(VENV)/bin/steelyard demo --host $(HOST) --port $(PORT)

## test: the whole suite (PostgreSQL half too when STEELYARD_TEST_POSTGRES_URL is set)
test: $(DEV_STAMP) postgres-check lint typecheck ui chromium ui-test
	@printf '\n==> %s\n' "Running the tests"
	$(VENV)/bin/pytest -q

## test-postgres: only the PostgreSQL half; STEELYARD_TEST_POSTGRES_URL must be set and answer
test-postgres: $(DEV_STAMP) postgres-check ui chromium
	@test -n "$$STEELYARD_TEST_POSTGRES_URL" \
	  || { echo "test-postgres needs STEELYARD_TEST_POSTGRES_URL" >&2; exit 1; }
	$(VENV)/bin/pytest -q -m postgres

test-fast: $(DEV_STAMP) ui chromium
	$(VENV)/bin/pytest -q -x -m "not slow"

# When a PostgreSQL URL is given it must answer: CI fails instead of skipping those tests.
postgres-check: $(DEV_STAMP)
	@if [ -n "$$STEELYARD_TEST_POSTGRES_URL" ]; then \
	  out=$$($(PY) -c "import os, sqlalchemy as sa; e = sa.create_engine(os.environ['STEELYARD_TEST_POSTGRES_URL']); e.connect().close(); print('PostgreSQL reachable for tests')" 2>&1) \
	  && echo "$$out" \
	  || { echo "$$out" | tail -n 3 >&2; echo "STEELYARD_TEST_POSTGRES_URL is set but PostgreSQL is unreachable" >&2; exit 1; }; \
	fi

# lint-imports: the layers of docs/DESIGN.md §2 ([tool.importlinter] in pyproject.toml).
lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/lint-imports --no-cache --no-logo

typecheck: $(DEV_STAMP)
	$(VENV)/bin/mypy

bench: bench-api bench-aggregation

bench-api: $(DEV_STAMP)
	$(PY) bench/api.py

bench-aggregation: $(DEV_STAMP)
	$(PY) bench/aggregation.py

## bench-ui: the labeling app in Chromium: submit to next task drawn, first load, JS shipped
bench-ui: $(DEV_STAMP) ui chromium
	$(PY) bench/ui.py

clean:
	rm -rf $(VENV) .steelyard .pytest_cache .mypy_cache .ruff_cache $(WEB_DIST) $(FRONTEND)/node_modules
