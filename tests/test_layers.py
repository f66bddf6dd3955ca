"""The layer rules (docs/architecture.md, "Layers"): what lint-imports cannot say, and proof that it bites.

``make test`` runs ``lint-imports`` with the contracts in pyproject.toml.  Here: the rules that are
about calls rather than imports (only ``worker.run`` makes a google-genai client, no module builds
its attributes on access), that importing the worker's modules starts nothing, and that each kind of
violation really breaks a contract (on a copy of the tree with one bad import added).
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
#: Project code (the emulator, tests and benchmarks make their own clients on purpose).
PROJECT = ("worker", "web", "cli", "scripts")
#: Where a google-genai client may be created.
CLIENT_OWNER = ROOT / "worker" / "run"


def python_files(*packages: str) -> list[Path]:
    """Every ``.py`` file under the given top-level folders."""
    return sorted(path for package in packages for path in (ROOT / package).rglob("*.py"))


def aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> the dotted name it was imported as, from every import in the module (any depth)."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
                else:
                    head = alias.name.split(".")[0]
                    names[head] = head
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def dotted(node: ast.expr, names: dict[str, str]) -> str | None:
    """The imported dotted name an expression like ``genai.Client`` stands for, if it is one."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in names:
        return None
    return ".".join([names[node.id], *reversed(parts)])


def genai_clients(path: Path) -> list[int]:
    """Lines of ``path`` that call google-genai's ``Client``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names = aliases(tree)
    return [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Call)
            and dotted(node.func, names) in ("google.genai.Client", "google.genai.client.Client")]


def test_only_the_gemini_client_module_creates_a_genai_client() -> None:
    found = {str(path.relative_to(ROOT)): lines for path in python_files(*PROJECT) if (lines := genai_clients(path))}
    assert found and all(Path(ROOT, path).is_relative_to(CLIENT_OWNER) for path in found), found


def test_the_client_finder_sees_every_spelling(tmp_path: Path) -> None:
    spellings = ["from google import genai\ngenai.Client(api_key='k')\n",
                 "import google.genai as g\ng.Client()\n",
                 "def f():\n    from google.genai import Client\n    return Client()\n",
                 "import google.genai\ngoogle.genai.Client()\n"]
    for n, source in enumerate(spellings):
        path = tmp_path / f"m{n}.py"
        path.write_text(source)
        assert genai_clients(path), source


def test_no_worker_module_builds_attributes_on_access() -> None:
    offenders = [str(path.relative_to(ROOT)) for path in python_files("worker", "web")
                 if any(isinstance(node, ast.FunctionDef) and node.name == "__getattr__"
                        for node in ast.parse(path.read_text()).body)]
    assert offenders == []


IMPORT_EVERYTHING = """
import importlib, logging, pkgutil, sys, threading
import celery.signals as signals
from kombu import transport
import worker, web
before = dict(transport.TRANSPORT_ALIASES)
modules = [m.name for package in (worker, web) for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
skipped = {"worker.celery_app"}  # the entry point: it builds the app when imported, on purpose
for name in sorted(set(modules) - skipped):
    importlib.import_module(name)
assert "worker.celery_app" not in sys.modules
assert threading.active_count() == 1, threading.enumerate()
connected = {name: len(getattr(signals, name).receivers or ())
             for name in ("setup_logging", "worker_init", "worker_ready", "worker_shutdown", "worker_process_init")}
assert not any(connected.values()), connected
assert transport.TRANSPORT_ALIASES == before, "the kombu transport was installed on import"
assert not logging.getLogger().handlers, "logging was configured on import"
print(len(modules))
"""


def test_importing_every_module_starts_nothing() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GEMQ_", "REDIS_URL", "GEMINI_"))}
    done = subprocess.run([sys.executable, "-c", IMPORT_EVERYTHING], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 40  # the modules of worker and web were all found


#: One bad import per rule, each added to a copy of the tree: (file, line to append, contract it breaks).
VIOLATIONS = {
    "store imports Celery": ("worker/store/cache.py", "def _f():\n    import celery  # noqa\n", "Celery or kombu"),
    "core imports a store": ("worker/core/keys.py", "from worker.store import jobs  # noqa\n", "worker is layered"),
    "run imports webhooks": ("worker/run/stream.py", "import worker.webhooks.delivery  # noqa\n", "worker is layered"),
    "store modules cycle": ("worker/store/scripts.py", "def _f():\n    from worker.store import jobs  # noqa\n",
                            "no import cycles"),
    "web imports the runner": ("web/health.py", "from worker.run import runner  # noqa\n", "the web uses"),
    "the core does I/O": ("worker/core/clock.py", "import redis  # noqa\n", "the core does no I/O"),
    "worker imports Flask": ("worker/run/step.py", "import flask  # noqa\n", "never imports the web"),
    "SDK outside run": ("worker/process/flower.py", "from google.genai import types  # noqa\n", "google-genai"),
}


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """worker/ and web/ with pyproject.toml, copied where a test may break them."""
    copy = tmp_path_factory.mktemp("layers")
    for package in ("worker", "web"):
        shutil.copytree(ROOT / package, copy / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy)
    return copy


def contract_names() -> list[str]:
    """The names of the contracts in pyproject.toml."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return [contract["name"] for contract in config["tool"]["importlinter"]["contracts"]]


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on ``tree`` (its worker and web come first on the path)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([str(LINT_IMPORTS), "--config", "pyproject.toml", "--no-cache"], cwd=tree, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_copy_keeps_every_contract(tree_copy: Path) -> None:
    done = lint_imports(tree_copy)
    assert done.returncode == 0, done.stdout


@pytest.mark.parametrize("rule", list(VIOLATIONS))
def test_a_violation_breaks_its_contract(tree_copy: Path, rule: str) -> None:
    file, line, contract = VIOLATIONS[rule]
    path = tree_copy / file
    original = path.read_text()
    path.write_text(original + line)
    try:
        done = lint_imports(tree_copy)
    finally:
        path.write_text(original)
    [name] = [name for name in contract_names() if contract in name]
    report = " ".join(done.stdout.split())  # lint-imports wraps long contract names
    assert done.returncode != 0 and f"{name} BROKEN" in report, done.stdout
