# authgate: two set-up commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test test-fast lint bench clean

# Prerequisite on a bare Debian 12 (as root): apt-get install -y make python3-venv
VENV_HELP := "cannot make a virtual environment with $(PYTHON). On Debian or Ubuntu, as root: apt-get install -y make python3-venv (then run make again)"

# The venv counts as made only once its pip runs (the stamp). A failed attempt (for example
# python3-venv missing: the folder is half made, without pip) is removed at once, so the
# next run starts clean instead of failing on a missing .venv/bin/pip. A working venv made
# before the stamp existed is kept.
$(VENV)/.venv-ok:
	@if [ -x $(BIN)/python ] && $(BIN)/python -m pip --version >/dev/null 2>&1; then \
	  echo "$(VENV): keeping the working virtual environment"; \
	else \
	  rm -rf $(VENV); \
	  $(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); echo $(VENV_HELP) >&2; exit 1; }; \
	  $(BIN)/python -m pip install -q --upgrade pip || { rm -rf $(VENV); exit 1; }; \
	fi
	touch $@

$(VENV)/.installed: setup.cfg pyproject.toml | $(VENV)/.venv-ok
	$(BIN)/python -m pip install -q -e '.[test]'
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
