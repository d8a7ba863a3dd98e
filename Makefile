# Two commands for a newcomer: `make run` and `make test`. See README.md.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEV_ENV := DJANGO_DEBUG=true

.PHONY: run serve scale test test-fast test-browser test-loaded test-live-repeat lint css bench check-python clean lock wheels

check-python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else "Python 3.12+ is needed (Django 6.1); set PYTHON=python3.12 or see the README")'

# Installs come from the lock files: every dependency, direct and indirect, pinned with its
# hashes (`make lock` regenerates them from requirements*.txt).
$(BIN)/.runtime: requirements.lock | check-python
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q --require-hashes -r requirements.lock
	touch $@

$(BIN)/.dev: requirements-dev.lock $(BIN)/.runtime
	$(BIN)/pip install -q --require-hashes -r requirements-dev.lock
	touch $@

$(BIN)/.bench: requirements-bench.lock $(BIN)/.runtime
	$(BIN)/pip install -q --require-hashes -r requirements-bench.lock
	touch $@

frontend/node_modules/.installed: frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund
	touch $@

## Install and run the chat on SQLite with the in-memory layer: http://127.0.0.1:8000/
run: $(BIN)/.runtime
	$(DEV_ENV) $(BIN)/python manage.py migrate --noinput
	$(DEV_ENV) $(BIN)/python manage.py runserver $(ADDR)

## The same under daphne (set REDIS_URL and start several on different ports to scale out).
serve: $(BIN)/.runtime
	$(DEV_ENV) $(BIN)/python manage.py migrate --noinput
	$(DEV_ENV) $(BIN)/daphne -b 127.0.0.1 -p $${PORT:-8000} chatproject.asgi:application

## Scaled out on this machine: two daphne workers behind nginx on http://127.0.0.1:8080/
## (needs Redis and nginx; Ctrl-C stops all). Runs deploy/scale-local.sh, which says more.
scale: $(BIN)/.runtime
	BIN=$(BIN) deploy/scale-local.sh

## Install and run every test: lint, unit, consumer, cross-process (real Redis, real
## daphne), then the browser tests (headless Chromium) in their own pytest run.
test: lint test-fast test-browser

## mypy --strict with django-stubs on chat/ and chatproject/ (configured in pyproject.toml).
.PHONY: typecheck
typecheck: $(BIN)/.dev
	$(BIN)/mypy

lint: $(BIN)/.dev typecheck
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DJANGO_SETTINGS_MODULE=tests.settings $(BIN)/python manage.py makemigrations --check --dry-run

# Coverage of chat/ and chatproject/ with the floor in pyproject.toml ([tool.coverage.report]).
test-fast: $(BIN)/.dev
	$(BIN)/pytest -m "not browser" --cov --cov-report=term $(PYTEST_ARGS)

test-browser: $(BIN)/.dev frontend/node_modules/.installed
	DJANGO_ALLOW_ASYNC_UNSAFE=true $(BIN)/pytest -m browser tests/browser $(PYTEST_ARGS)

## The non-browser tests with both cores kept busy beside them: races a quiet machine hides
## show here (README, "Running the tests on a loaded machine").
test-loaded: $(BIN)/.dev
	@pids=""; for _ in 1 2; do timeout 1200 sh -c 'while :; do :; done' & pids="$$pids $$!"; done; \
	$(BIN)/pytest -m "not browser" $(PYTEST_ARGS); status=$$?; kill $$pids 2>/dev/null; exit $$status

## The live tests alone, LOOPS times in a row (default 3), stopping at the first failure.
LOOPS ?= 3
LIVE_TESTS = tests/test_*_live.py tests/test_cross_process.py tests/test_redis_outage.py \
	tests/test_recovery.py tests/test_daphne_server.py
test-live-repeat: $(BIN)/.dev
	@for i in $$(seq $(LOOPS)); do echo "== live tests, run $$i of $(LOOPS)"; \
	$(BIN)/pytest -q -m "not browser" $(LIVE_TESTS) $(PYTEST_ARGS) || exit 1; done

## Rebuild the committed Tailwind CSS (needs Node; the server does not).
css: frontend/node_modules/.installed
	cd frontend && npm run build

## Regenerate the lock files after changing requirements*.txt (uv, from requirements-dev.txt).
LOCK := --generate-hashes --universal --python-version 3.12 -q --custom-compile-command "make lock"
lock: $(BIN)/.dev
	$(BIN)/uv pip compile requirements.txt $(LOCK) -o requirements.lock
	$(BIN)/uv pip compile requirements-dev.txt -c requirements.lock $(LOCK) -o requirements-dev.lock
	$(BIN)/uv pip compile requirements-bench.txt -c requirements.lock $(LOCK) -o requirements-bench.lock

## A wheel cache for offline installs: `pip install --no-index --find-links wheels
## --require-hashes -r requirements-dev.lock` then needs no network.
wheels: $(BIN)/.runtime
	$(BIN)/pip download -q --require-hashes -r requirements-dev.lock -d wheels

## The benchmark (needs Redis; docs/performance.md): e.g. make bench BENCH_ARGS=--quick
bench: $(BIN)/.bench
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) frontend/node_modules test-artifacts

## The page's modules (static/chat/): ESLint and tsc --checkJs, and unit tests of the pure
## ones with Node's test runner (tests/js/). Part of `make lint` and `make test`.
.PHONY: lint-js test-js
lint: lint-js
test: test-js

lint-js: frontend/node_modules/.installed
	cd frontend && npm run --silent lint

test-js: frontend/node_modules/.installed
	cd frontend && npm run --silent test
