# gemq: `make run` starts everything on this machine; `make test` runs the whole suite.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
REDIS_HINT := redis-server is missing: install it with 'sudo apt-get install -y redis-server' (Debian/Ubuntu) or 'brew install redis' (macOS)

.PHONY: run test lint layers typecheck bench install clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

run: install
	@bash scripts/run.sh

test: install
	@command -v redis-server >/dev/null 2>&1 || { echo "$(REDIS_HINT)"; exit 1; }
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-logo
	$(BIN)/pytest -q -p no:cacheprovider

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy

# The import rules between worker's layers and the web (pyproject.toml, [tool.importlinter]).
layers: install
	$(BIN)/lint-imports --no-logo

clean:
	rm -rf run .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
