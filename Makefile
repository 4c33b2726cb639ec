# authgate: two set-up commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test test-fast lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@

## run: the gateway on the embedded demo default (SQLite, file users, a sample app)
run: $(VENV)/.installed
	$(BIN)/authgate demo

## test: install what the tests need (apt as root, pip) and run the whole suite
test: $(VENV)/.installed
	./scripts/install-system-deps.sh
	$(BIN)/ruff check authgate tests
	$(BIN)/mypy
	$(BIN)/pytest -q

## test-fast: unit, web and contract tests only (no nginx, Samba, Chromium)
test-fast: $(VENV)/.installed
	$(BIN)/pytest -q -m "not integration"

lint: $(VENV)/.installed
	$(BIN)/ruff check authgate tests
	$(BIN)/mypy
	$(BIN)/lint-imports setup.cfg

clean:
	rm -rf $(VENV) instance .pytest_cache
