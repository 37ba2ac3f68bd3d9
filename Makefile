# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_RUN := $(VENV)/.installed-run
STAMP_TEST := $(VENV)/.installed-test
STAMP_BENCH := $(VENV)/.installed-bench

.PHONY: run test lint typecheck unit prometheus-tools browser-tools bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP_RUN): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(STAMP_TEST): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@ $(STAMP_RUN)

$(STAMP_BENCH): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test,bench]'
	touch $@ $(STAMP_TEST) $(STAMP_RUN)

run: $(STAMP_RUN)
	$(BIN)/hookline serve --dev

lint: $(STAMP_TEST)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP_TEST)
	$(BIN)/mypy src tests

unit: $(STAMP_TEST) prometheus-tools browser-tools
	$(BIN)/pytest

# promtool and prometheus test the shipped rules (deploy/prometheus): Debian's package has
# both. Its service is stopped after the install, so no Prometheus stays on port 9090 (in a
# container policy-rc.d keeps it from starting at all).
prometheus-tools:
	command -v promtool >/dev/null && command -v prometheus >/dev/null || \
		(apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus && \
		(service prometheus stop >/dev/null 2>&1 || true))

# The browser tests (tests/browser) drive Debian's Chromium through Playwright: there is no
# `playwright install` download, so the browser comes from the distribution like promtool.
browser-tools:
	command -v chromium >/dev/null || \
		(apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium)

test: lint typecheck unit

# Benchmarks: run on purpose (several minutes), never by `make test`. Needs nginx and h2load
# (installed from Debian when missing), the local Redis for the Celery baseline, and PostgreSQL.
bench: $(STAMP_BENCH)
	command -v nginx >/dev/null && command -v h2load >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq nginx nghttp2-client)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
