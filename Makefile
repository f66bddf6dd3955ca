# gemq: `make run` starts everything on this machine; `make test` runs the whole suite.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
REDIS_HINT := redis-server is missing: install it with 'sudo apt-get install -y redis-server' (Debian/Ubuntu) or 'brew install redis' (macOS)
# The Sentinel tests start sentinels as 'redis-sentinel <conf>' or 'redis-server <conf> --sentinel' (tests/sentinel.py).
SENTINEL_HINT := Redis Sentinel is missing: install it with 'sudo apt-get install -y redis-sentinel' (Debian/Ubuntu) or 'brew install redis' (macOS); the Sentinel tests are skipped without it

.PHONY: run test lint typecheck bench install clean

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
	@command -v redis-sentinel >/dev/null 2>&1 || redis-server --sentinel 2>&1 | grep -q Sentinel || echo "$(SENTINEL_HINT)"
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest -q -p no:cacheprovider

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy

clean:
	rm -rf run .pytest_cache .mypy_cache .ruff_cache
