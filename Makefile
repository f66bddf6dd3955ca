# gemq: `make run` starts everything on this machine; `make test` runs the whole suite.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
REDIS_HINT := redis-server is missing: install it with 'sudo apt-get install -y redis-server' (Debian/Ubuntu) or 'brew install redis' (macOS)
# The lock files are resolved by uv (only `make lock` needs it) from PyPI alone, whatever pip.conf or
# UV_* variables say, for every platform (environment markers) and with PyPI's hashes. Installs use pip.
UV_VERSION := 0.13.9
LOCK_INDEX := https://pypi.org/simple
UV_COMPILE = env -u UV_INDEX -u UV_INDEX_URL -u UV_DEFAULT_INDEX -u UV_EXTRA_INDEX_URL -u UV_FIND_LINKS \
	$(BIN)/uv pip compile --quiet --no-config --universal --python-version 3.11 --generate-hashes \
	--index-url $(LOCK_INDEX) --custom-compile-command 'make lock' pyproject.toml
# The Sentinel tests start sentinels as 'redis-sentinel <conf>' or 'redis-server <conf> --sentinel' (tests/sentinel.py).
SENTINEL_HINT := Redis Sentinel is missing: install it with 'sudo apt-get install -y redis-sentinel' (Debian/Ubuntu) or 'brew install redis' (macOS); the Sentinel tests are skipped without it

.PHONY: run test lint layers typecheck bench install lock clean

# The whole tree from the dev lock (hash-checked), then gemq itself without touching it.
$(BIN)/.installed: requirements-dev.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps -e .
	$(BIN)/pip check
	touch $@

install: $(BIN)/.installed

# After a change to pyproject.toml's dependencies: production set first, then dev constrained to it
# (same version of every shared package). uv keeps existing pins unless told otherwise
# (`make lock UPGRADE=--upgrade`, or UPGRADE='--upgrade-package google-genai').
lock: $(BIN)/uv
	$(UV_COMPILE) $(UPGRADE) -o requirements.lock
	$(UV_COMPILE) $(UPGRADE) --extra dev -c requirements.lock -o requirements-dev.lock

$(BIN)/uv: Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet uv==$(UV_VERSION)

run: install
	@bash scripts/run.sh

test: install
	@command -v redis-server >/dev/null 2>&1 || { echo "$(REDIS_HINT)"; exit 1; }
	@command -v redis-sentinel >/dev/null 2>&1 || redis-server --sentinel 2>&1 | grep -q Sentinel || echo "$(SENTINEL_HINT)"
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
