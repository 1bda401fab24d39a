# Local development and CI entry points. Everything runs from the repo root.
#   make run     start the local Google Cloud stack (emulators, SMTP sink, gateway on :8080)
#   make test    lint, then the whole pytest suite against a fresh stack on free ports
#   make bench   the benchmarks (python -m bench)
#   make lint | fmt | policy | wipe | clean

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP_STAMP := $(VENV)/.requirements.stamp
NPM_STAMP := node_modules/.package.stamp
NPM_INPUTS := package.json $(wildcard package-lock.json)

.PHONY: help preflight setup tools run test bench lint fmt policy wipe clean cli

help:
	@sed -n 's/^#   //p' $(MAKEFILE_LIST)

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11 with venv (Debian: apt-get install python3 python3-venv)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

# Reinstall only when a requirements file changed (the stamp lives in the venv).
$(PIP_STAMP): requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

# Reinstall only when package.json / package-lock.json changed (the stamp lives in node_modules).
# --ignore-scripts: the only install scripts are re2 (optional for firebase-tools, used by Hosting
# only; it would compile C++ for minutes because its prebuilt binary cannot be downloaded here)
# and protobufjs's version notice.
$(NPM_STAMP): $(NPM_INPUTS) | preflight
	@command -v npm >/dev/null || { echo "npm not found: install Node.js 20+ with npm for the Firebase Auth emulator (Debian: apt-get install nodejs npm)"; exit 1; }
	@if [ -f package-lock.json ]; then npm ci --ignore-scripts --no-audit --no-fund --loglevel=error; else npm install --ignore-scripts --no-audit --no-fund --loglevel=error; fi
	@touch $@

# System tools (gcloud + emulators, java, node, npm), checked with the system Python before anything
# is installed; a missing one stops with one line saying what to install.
preflight:
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11 with venv (Debian: apt-get install python3 python3-venv)"; exit 1; }
	@$(PYTHON) -m devstack check-tools --system >/dev/null

setup: preflight $(PIP_STAMP) $(NPM_STAMP)

tools: $(PIP_STAMP)
	@$(BIN)/python -m devstack check-tools

run: setup tools
	$(BIN)/python -m devstack run

lint: $(PIP_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: $(PIP_STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: setup lint tools
	$(BIN)/pytest -q

bench: setup tools
	@[ -d bench ] || { echo "bench/ not found: the benchmark package (python -m bench) has not been written yet"; exit 1; }
	$(BIN)/python -m bench

policy: $(PIP_STAMP)
	$(BIN)/python -m devstack policy-ids

wipe: $(PIP_STAMP)
	$(BIN)/python -m devstack wipe

# Operator commands against the running make run stack: make cli ARGS="scheduler list"
cli: $(PIP_STAMP)
	$(BIN)/python -m shared.cli --local $(ARGS)

# Run state of make run (pid files, logs, mail, emulator data); keeps .local/secrets.env and the venv.
clean:
	@if [ -d .local/run ] && ls .local/run/*.pid >/dev/null 2>&1 && [ -x $(BIN)/python ]; then \
		$(BIN)/python -c "from pathlib import Path; from devstack.procs import reap_stale; reap_stale(Path('.local/run'))"; fi
	rm -rf .local/run .local/logs .local/mail .local/firebase .local/pubsub-data .local/stack.json .local/gateway.log
	rm -rf .pytest_cache .ruff_cache
