# Two commands: `make run` and `make test`. Both set up what they need first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test test-postgres lint typecheck system-deps bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/visio serve

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy visio_core caldav_plugin conference_backend visio_rooms ldap_sync visio_cli

system-deps:
	bash scripts/system-deps.sh

test: lint typecheck system-deps
	$(BIN)/python -m pytest -q

# The whole suite again with every database in PostgreSQL (a throwaway server,
# initdb + pg_ctl in a temporary folder on a free port; tests/support/postgres.py).
test-postgres: lint typecheck system-deps
	$(BIN)/python -m tests.support.postgres $(BIN)/python -m pytest -q

bench: $(VENV)/.installed-test
	$(BIN)/python bench/caldav_put.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
