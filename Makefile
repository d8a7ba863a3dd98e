# Two commands for a newcomer: `make run` and `make test`. See README.md.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEV_ENV := DJANGO_DEBUG=true

.PHONY: run serve test test-fast test-browser lint css bench check-python clean

check-python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else "Python 3.12+ is needed (Django 6.1); set PYTHON=python3.12 or see the README")'

$(BIN)/.runtime: requirements.txt | check-python
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(BIN)/.dev: requirements.txt requirements-dev.txt $(BIN)/.runtime
	$(BIN)/pip install -q -r requirements-dev.txt
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

## Install and run every test: lint, unit, consumer, cross-process (real Redis, real
## daphne), then the browser tests (headless Chromium) in their own pytest run.
test: lint test-fast test-browser

lint: $(BIN)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test-fast: $(BIN)/.dev
	$(BIN)/pytest -m "not browser" $(PYTEST_ARGS)

test-browser: $(BIN)/.dev frontend/node_modules/.installed
	DJANGO_ALLOW_ASYNC_UNSAFE=true $(BIN)/pytest -m browser tests/browser $(PYTEST_ARGS)

## Rebuild the committed Tailwind CSS (needs Node; the server does not).
css: frontend/node_modules/.installed
	cd frontend && npm run build

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
