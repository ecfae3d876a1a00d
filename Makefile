# make run: a development server on a fresh clone.  make test: the whole suite.
# make test-fast: the edit-test loop (see below). make test-ts: the TypeScript SDK alone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BIND ?= 127.0.0.1:8000
DATABASE := var/triport.sqlite3
DEV_TOKEN_FILE := var/dev-admin-token
# The Python client is its own distribution, triport-sdk; a change to its
# packaging or its version (triport/_version.py) reinstalls it.
SDK := sdk/python
SDK_PACKAGING := $(SDK)/setup.cfg $(SDK)/pyproject.toml $(SDK)/triport/_version.py
# The TypeScript client, @triport/sdk: npm ci from its lock file, built again
# only when a source or a build setting changed.
TS := sdk/typescript
TS_BUILD_INPUTS := $(wildcard $(TS)/src/*.ts) $(TS)/tsconfig.json $(TS)/tsconfig.cjs.json $(TS)/scripts/build.mjs

.PHONY: run check test test-fast test-ts bench clean

# One stamp per set of extras: a second `make test` installs nothing.
$(VENV)/.run-stamp: setup.cfg pyproject.toml $(SDK_PACKAGING)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e . -e ./$(SDK)
	touch $@

$(VENV)/.test-stamp: setup.cfg pyproject.toml $(SDK_PACKAGING)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]' -e ./$(SDK)
	touch $@

$(VENV)/.bench-stamp: setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	touch $@

$(TS)/node_modules/.ci-stamp: $(TS)/package.json $(TS)/package-lock.json
	cd $(TS) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(TS)/dist/.build-stamp: $(TS)/node_modules/.ci-stamp $(TS_BUILD_INPUTS)
	cd $(TS) && npm run --silent build
	touch $@

$(DEV_TOKEN_FILE):
	mkdir -p var
	$(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(24))' > $@

run: $(VENV)/.run-stamp $(DEV_TOKEN_FILE)
	@if [ ! -f $(DATABASE) ]; then \
		TRIPORT_DATABASE=$(DATABASE) $(BIN)/triport-payouts init-db && \
		TRIPORT_DATABASE=$(DATABASE) $(BIN)/triport-payouts seed-demo --payouts 20 --users 3 > var/demo-payouts.txt && \
		echo "created $(DATABASE) with demo data (payout ids in var/demo-payouts.txt)"; \
	fi
	@TOKEN="$${TRIPORT_ADMIN_TOKEN-$$(cat $(DEV_TOKEN_FILE))}"; \
	if [ -n "$${TRIPORT_ADMIN_TOKEN+set}" ]; then echo "admin token: from TRIPORT_ADMIN_TOKEN"; \
	else echo "development admin token: $$TOKEN"; fi; \
	echo "try:"; \
	echo "  curl -s -X POST -H 'X-Admin-Token: $$TOKEN' http://$(BIND)/v1/admin/referrals/payouts/$$(head -n 1 var/demo-payouts.txt 2>/dev/null || echo 00000000-0000-0000-0000-000000000000)/failed -d '{\"reason\": \"wallet rejected the transfer\"}'"; \
	echo; \
	TRIPORT_DATABASE=$(DATABASE) TRIPORT_ADMIN_TOKEN="$$TOKEN" exec $(BIN)/triport-payouts serve --bind $(BIND) --workers 2

# Lint (with complexity checks) and types, configured in pyproject.toml.
check: $(VENV)/.test-stamp
	$(BIN)/ruff check triport_payouts $(SDK)/triport
	$(BIN)/mypy
	$(BIN)/mypy $(SDK)/triport

# Three workers on two cores: the suite waits on servers and databases more
# than it computes (measured: 4m03 with three, no faster with four).
# The serial tests (one stops the shared PostgreSQL) run alone, after the rest;
# then the TypeScript SDK's suites (~20 s), which start servers from $(VENV).
test: check
	$(BIN)/python -m pytest -n 3 -m 'not slow and not serial'
	$(BIN)/python -m pytest -m serial
	$(MAKE) test-ts

# node:test suites of @triport/sdk against live gunicorns (SQLite and PostgreSQL)
# and its packed tarball in a scratch project; needs Node.js 20.10+ (the SDK itself, 18+) and npm.
test-ts: $(VENV)/.test-stamp $(TS)/dist/.build-stamp
	cd $(TS) && TRIPORT_VENV=$(abspath $(VENV)) node --test --test-concurrency=3 test/

# The edit-test loop, about 45 s (two workers): the suite without live servers (marker live), long
# hypothesis runs (fuzz) and PostgreSQL, whose fresh schema per test costs ~40 ms
# (~40 s for its half). FAST_ARGS replaces the last part: FAST_ARGS= for both
# backends, FAST_ARGS='-k postgres' for the PostgreSQL half, FAST_ARGS=tests/test_x.py.
FAST_ARGS ?= -k 'not postgres'
test-fast: $(VENV)/.test-stamp
	$(BIN)/python -m pytest -n 2 -m 'not live and not fuzz and not slow' $(FAST_ARGS)

# Not part of `make test`: about 35 minutes (PostgreSQL scenarios included, on the local server);
# needs wrk (apt-get install wrk).
# BENCH_ARGS=--quick for a smoke run of about 4 minutes (under var/bench/quick/).
bench: $(VENV)/.bench-stamp
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var build *.egg-info $(SDK)/build $(SDK)/*.egg-info $(TS)/node_modules $(TS)/dist
