# Two commands matter: `make demo` and `make test`. Both run `make setup` first when needed.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
NODE_BIN := node_modules/@foundry-rs
FORGE := $(NODE_BIN)/forge-linux-amd64/bin/forge
export PATH := $(CURDIR)/$(NODE_BIN)/forge-linux-amd64/bin:$(CURDIR)/$(NODE_BIN)/anvil-linux-amd64/bin:$(CURDIR)/$(NODE_BIN)/cast-linux-amd64/bin:$(PATH)
DATA ?= ../shared/data
FOUNDRY_PROFILE ?= default
export FOUNDRY_PROFILE

.PHONY: setup abi test test-py test-forge lint format demo bench backtest calibrate efficiency gas clean

setup: $(VENV)/.installed node_modules/.installed /usr/bin/chromium

# Debian's chromium and chromedriver for the dashboard's browser test
# (tests/keeper/web/test_dashboard_browser.py) and its screenshot (scripts/screenshot_dashboard.py);
# never a browser downloaded from elsewhere. Skipped once installed (we run as root on Debian, as
# CI does).
/usr/bin/chromium:
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# The ABIs the keeper and `pm` load (keeper/abi/*.json, committed): re-export after changing
# contracts/. tests/scripts/toolchain/test_abi.py fails while they are stale; the demo
# re-exports first (--quiet: a line only when a file changed).
abi: setup
	$(PY) -m scripts.toolchain.abi

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy risk_engine keeper scripts

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test-forge: setup
	$(FORGE) test

# Tests run in a random order (pytest-randomly) so that no test leans on another's leftovers;
# the seed is printed, and `make test-py SEED=N` replays an order. They run on one worker
# process per core (pytest-xdist; each worker starts its own Anvil nodes on free ports):
# `make test-py WORKERS=0` runs them in this one process.
ifndef SEED
SEED := $(shell echo $$RANDOM)
endif
WORKERS ?= auto
test-py: setup
	@echo "pytest random order: --randomly-seed=$(SEED) (replay with make test-py SEED=$(SEED))"
	$(VENV)/bin/pytest -q -p randomly --randomly-seed=$(SEED) -n $(WORKERS)

test: lint test-forge test-py

demo: setup
	@$(PY) -m scripts.toolchain.abi --quiet
	$(PY) -m scripts.demo

bench: setup
	$(PY) -m risk_engine.bench

backtest: setup
	$(PY) -m risk_engine.backtest --data $(DATA)

# cost-vs-coverage scan of the scan ranges and the APC buffer (docs/calibration.md)
calibrate: setup
	$(PY) -m risk_engine.backtest --data $(DATA) --calibrate --plots docs/img --report docs/calibration.md

efficiency: setup
	$(PY) -m risk_engine.efficiency --data $(DATA)

gas: setup
	$(FORGE) snapshot --match-path 'tests/contracts/gas/*'

clean:
	rm -rf out cache
