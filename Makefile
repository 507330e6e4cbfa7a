# MimiVibe backend: every target creates the virtualenv (and node_modules) when missing.
#   make journey          start the local stack, run a user journey, stop
#   make test             ruff, mypy and pytest (what CI runs)
#   make dev              run the local stack in the foreground (Ctrl-C stops it)
#   make migrate          apply migrations (DATABASE_URL, else the running local stack)
#   make migrate-status   list applied / pending migrations
#   make bench            run the benchmarks
#   make lint             ruff and mypy only
#   make urls             print the running stack's URLs as shell variables
#   make seed             load supabase/seed.sql (demo users) into the running local stack
#   make lock             regenerate requirements.lock (hashed, for the Lambda runtime)
#   make artifact         build .build/mimivibe.zip (functions, shared, requirements.lock)
#   make package          artifact + `serverless package` (offline, no AWS account needed)
#   make deploy           artifact + `serverless deploy` (real AWS credentials; STAGE=dev)

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
STAGE ?= dev

# The Lambda runtime the artifact targets (serverless.yml: python3.12, x86_64).
LAMBDA_PYTHON := 3.12
LAMBDA_PLATFORM := manylinux2014_x86_64
LOCK := requirements.lock
BUILD := .build
ARTIFACT := $(BUILD)/mimivibe.zip

# `serverless package` reads no AWS account; dummy credentials and a region keep the SDK quiet.
SLS_ENV := SLS_TELEMETRY_DISABLED=1 SLS_NOTIFICATIONS_MODE=off \
	AWS_ACCESS_KEY_ID=$${AWS_ACCESS_KEY_ID:-AKIAIOSFODNN7EXAMPLE} \
	AWS_SECRET_ACCESS_KEY=$${AWS_SECRET_ACCESS_KEY:-offline-packaging-only} \
	AWS_REGION=$${AWS_REGION:-ap-southeast-1}

.PHONY: journey test dev urls seed migrate migrate-status bench lint pytest venv lock artifact package deploy clean

journey: $(STAMP)
	$(PY) -m devstack.journey

test: lint pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy .

pytest: $(STAMP) node_modules/.package-lock.json
	$(VENV)/bin/pytest $(PYTEST_ARGS)

dev: $(STAMP)
	$(PY) -m devstack up $(if $(VERBOSE),--verbose)

urls: $(STAMP)
	@$(PY) -m devstack urls

seed: $(STAMP)
	$(PY) -m ops.seed

migrate: $(STAMP)
	$(PY) -m ops.migrate up

migrate-status: $(STAMP)
	$(PY) -m ops.migrate status

# Every module of benchmarks/ is one benchmark, run as `python -m benchmarks.<name>`.
bench: $(STAMP)
	@set -e; for f in benchmarks/[!_]*.py; do \
		echo "== $$(basename $$f .py)"; $(PY) -m benchmarks.$$(basename $$f .py) $(BENCH_ARGS); \
	done

venv: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

# Progress stays visible: the first install downloads about 600 MB of wheels.
$(STAMP): $(PY) requirements.txt requirements-dev.txt
	@echo "Installing the development dependencies into $(VENV) (first time: a minute or two)"
	$(PY) -m pip install --progress-bar on --upgrade pip
	$(PY) -m pip install --progress-bar on -r requirements-dev.txt
	touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

# requirements.lock: every package of the artifact pinned with its hashes, resolved for the
# Lambda runtime from requirements.txt (uv keeps the pins that still satisfy it).
lock: $(STAMP)
	$(PY) -m ops.lock write

artifact: $(STAMP)
	$(PY) -m ops.lock check --offline
	rm -rf $(BUILD)/artifact $(ARTIFACT)
	mkdir -p $(BUILD)/artifact
	$(PY) -m pip install --quiet --no-compile --disable-pip-version-check \
		--target $(BUILD)/artifact --implementation cp --python-version $(LAMBDA_PYTHON) \
		--platform $(LAMBDA_PLATFORM) --only-binary=:all: --no-deps --require-hashes -r $(LOCK)
	cp -R functions shared $(BUILD)/artifact/
	find $(BUILD)/artifact -name __pycache__ -type d -prune -exec rm -rf {} +
	cd $(BUILD)/artifact && $(CURDIR)/$(PY) -m zipfile -c ../mimivibe.zip *

package: artifact node_modules/.package-lock.json
	$(SLS_ENV) node_modules/.bin/serverless package --stage $(STAGE)

deploy: artifact node_modules/.package-lock.json
	SLS_TELEMETRY_DISABLED=1 node_modules/.bin/serverless deploy --stage $(STAGE)

clean:
	rm -rf $(BUILD) .serverless
