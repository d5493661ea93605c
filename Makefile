# Two commands do all set-up on a fresh machine: `make serve` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: serve test lint install install-test audit-suite schema bench model clean vendor-graphiql

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-install when the dependency list changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

# The GraphQL-over-HTTP audit suite (npm graphql-http, pinned by its package-lock.json) that
# tests/tradecert/test_graphql_http_audit.py runs against a real server; needs node and npm.
AUDIT_SUITE := tests/tradecert/graphql_http_audit
$(AUDIT_SUITE)/node_modules/.package-lock.json: $(AUDIT_SUITE)/package-lock.json
	cd $(AUDIT_SUITE) && npm ci --no-audit --no-fund --loglevel=error
audit-suite: $(AUDIT_SUITE)/node_modules/.package-lock.json

## make serve: install, migrate the embedded database, load demo data, serve GraphQL + GraphiQL
serve: install
	$(BIN)/tradecert serve --demo --host $(HOST) --port $(PORT)

## make test: install with test extras, lint (ruff, mypy), and run every test (PostgreSQL tests included),
## on every core (pytest-xdist; each test module on one worker); PYTEST_ARGS= runs it on one
PYTEST_ARGS ?= -n auto --dist loadfile --durations=15
test: install-test audit-suite lint
	$(BIN)/tradecert rules check
	$(BIN)/tradecert rules test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## make lint: ruff over the tree, mypy (strict; pyproject.toml) over the packages
lint: install-test
	$(BIN)/ruff check .
	$(BIN)/mypy rules resolvers persistence schema pages tradecert

## make schema: re-export schema/schema.graphql after a schema change
schema: install
	$(BIN)/tradecert schema export > schema/schema.graphql

## make bench: every benchmark, each against a baseline taken in the same run (docs/performance.md);
## needs wrk (over_http.py) and pgbench (submit.py) — `apt-get install wrk postgresql-client`
bench: install-test
	$(BIN)/python bench/driver.py
	$(BIN)/python bench/applications.py
	$(BIN)/python bench/fees.py
	$(BIN)/python bench/identity.py
	$(BIN)/python bench/submit.py
	$(BIN)/python bench/reconcile.py --database sqlite
	$(BIN)/python bench/reconcile.py --database postgresql
	$(BIN)/python bench/consume.py
	$(BIN)/python bench/bulk.py --database sqlite
	$(BIN)/python bench/bulk.py --database postgresql
	$(BIN)/python bench/over_http.py --json var/bench-http.json
	$(BIN)/python bench/memory.py --json var/bench-memory.json

## make model: the concurrent model test of the money use cases at its long size (~10 min, PostgreSQL)
model: install-test
	$(BIN)/python bench/model.py --seconds $(or $(MODEL_SECONDS),600)

## make vendor-graphiql: refresh GraphiQL, React and the explorer plugin (tradecert/graphiql/vendor/) from the
## npm registry at the versions pinned in tradecert/graphiql/vendor.py; rewrites the SHA-256 manifest (needs npm)
vendor-graphiql: install
	$(BIN)/python -m tradecert.graphiql.vendor

clean:
	rm -rf $(VENV) var/*.db var/*.db-*
