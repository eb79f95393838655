# The two commands of the README: `make dev` and `make test`. Both install what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
FLASK := APP_ENV=development $(VENV)/bin/flask --app wsgi
STAMP := $(VENV)/.installed
# pytest-xdist workers for `make test` (each with its own database, Redis and ports);
# PYTEST_WORKERS=0 runs in one process.
PYTEST_WORKERS ?= 2
# Test processes keep their bytecode even under PYTHONDONTWRITEBYTECODE: without it every
# pytest worker re-rewrites the asserts of every test module (~8 s of CPU each) and every
# worker, gunicorn and CLI process a test starts compiles the app again.
# PYTEST_ARGS: more pytest options, e.g. `make test PYTEST_ARGS=--durations=30`.
PYTEST_ARGS ?=
PYTEST := env -u PYTHONDONTWRITEBYTECODE $(PY) -m pytest -q -p no:cacheprovider \
	-n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

.PHONY: dev test test-sqlite test-postgresql install lint format bench clean

## install: the virtualenv with runtime and test dependencies (re-run when requirements change)
install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11+ is needed (found $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	@touch $@

## dev: migrate, seed the demo shop, run web + worker + WeChat stand-in (Ctrl-C stops all)
dev: install
	$(FLASK) db upgrade
	$(FLASK) seed-demo
	$(PY) scripts/dev.py

## test: the whole suite on SQLite and the tests marked `postgresql` again on PostgreSQL, both
## at once (each run's output is shown when it ends; `make test-sqlite test-postgresql` runs
## them one after the other); 2 pytest-xdist workers each: PYTEST_WORKERS=0 for one process.
## The PostgreSQL run repeats only what can depend on the engine: money, orders, stock, the
## ledger, locks and concurrency, once-only guarantees, SQL the engines read differently,
## values past PostgreSQL's column types, backups (docs/testing.md; when unsure, mark it).
test: install
	$(MAKE) --no-print-directory -j2 --output-sync=target test-sqlite test-postgresql

test-sqlite: install
	TEST_DB=sqlite $(PYTEST)

test-postgresql: install
	TEST_DB=postgresql $(PYTEST) -m "not browser"

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install
	$(PY) bench/pages.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-artifacts
