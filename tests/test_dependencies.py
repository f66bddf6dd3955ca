"""Every third-party module gemq imports is declared, and the lock files pin what pyproject.toml declares.

Production code (the packages the image installs and the config files its processes load) may import
only ``[project].dependencies``, which ``requirements.lock`` pins; tests, benchmarks and ``make run``'s
scripts may also import the ``dev`` extra, which ``requirements-dev.lock`` pins. Imports are read from
the source, function-local ones included, and mapped to distributions through the installed metadata.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterator
from functools import cache
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: What the production image runs: its packages, gunicorn's config and Flower's (see the Dockerfile).
PRODUCTION = ("worker", "web", "emulator", "cli", "gunicorn.conf.py", "deploy/flowerconfig.py")
#: What only a developer's machine runs: the suite, the benchmarks, ``make run``'s helpers.
DEVELOPMENT = ("tests", "bench", "scripts")
PROD_LOCK = ROOT / "requirements.lock"
DEV_LOCK = ROOT / "requirements-dev.lock"

_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(?:==\s*([^\s;]+))?")
_LOCKED = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def canonical(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(group: str | None = None) -> dict[str, str | None]:
    """pyproject.toml's dependencies (``group=None``) or one extra: name -> pinned version (None if unpinned)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = project["dependencies"] if group is None else project["optional-dependencies"][group]
    found = (_REQUIREMENT.match(line) for line in lines)
    return {canonical(m[1]): m[2] for m in found if m}


def lock_entries(path: Path) -> list[str]:
    """The requirement blocks of a lock file: a ``name==version`` line with its hashes and annotations."""
    blocks: list[str] = []
    for line in path.read_text().splitlines():
        if _LOCKED.match(line):
            blocks.append(line)
        elif blocks and line.startswith(" "):
            blocks[-1] += "\n" + line
    return blocks


def locked(path: Path) -> dict[str, str]:
    """A lock file's pins: name -> version."""
    return {canonical(m[1]): m[2] for block in lock_entries(path) if (m := _LOCKED.match(block))}


def python_files(*places: str) -> Iterator[Path]:
    """The Python files of these folders and files (relative to the repository root)."""
    for place in places:
        path = ROOT / place
        yield from sorted(path.rglob("*.py")) if path.is_dir() else [path]


def local_names(*places: str) -> set[str]:
    """Names that resolve to this repository: its packages, and the modules and packages that tests,
    benchmarks and scripts import by bare name (their folders are on ``sys.path``, e.g. ``tests/faultproxy/``);
    production code imports only packages."""
    names = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    return names | {path.parent.name if path.name == "__init__.py" else path.stem
                    for path in python_files(*(p for p in places if p in DEVELOPMENT))}


def imported_modules(path: Path) -> Iterator[str]:
    """Every absolute import in a file, as a dotted name (``from a import b`` gives ``a.b``)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


@cache
def _top_level_owners() -> dict[str, list[str]]:
    return metadata.packages_distributions()


def distributions_of(module: str) -> set[str]:
    """The installed distributions that provide ``module`` (for a namespace like ``google``, the one shipping it)."""
    owners = _top_level_owners().get(module.split(".")[0], [])
    if len(owners) <= 1:
        return {canonical(name) for name in owners}
    parts = module.split(".")
    for depth in range(len(parts), 1, -1):
        prefix = "/".join(parts[:depth])
        shipping = {
            canonical(name)
            for name in owners
            if any(str(f).startswith(prefix + "/") or str(f) == prefix + ".py" for f in metadata.files(name) or [])
        }
        if shipping:
            return shipping
    return {canonical(name) for name in owners}


def third_party_imports(*places: str) -> dict[str, set[str]]:
    """Distribution -> files importing it, for every import that is neither the stdlib nor this repository."""
    local, found = local_names(*places), {}
    for path in python_files(*places):
        for module in imported_modules(path):
            top = module.split(".")[0]
            if top in sys.stdlib_module_names or top in local:
                continue
            for dist in distributions_of(module) or {f"<not installed: {top}>"}:
                found.setdefault(dist, set()).add(str(path.relative_to(ROOT)))
    return found


def test_production_code_imports_only_production_dependencies() -> None:
    allowed = set(declared())
    used = third_party_imports(*PRODUCTION)
    missing = {dist: sorted(files) for dist, files in used.items() if dist not in allowed}
    assert not missing, f"imported by production code but not in [project].dependencies: {missing}"


def test_development_code_imports_only_declared_dependencies() -> None:
    allowed = set(declared()) | set(declared("dev"))
    used = third_party_imports(*DEVELOPMENT)
    missing = {dist: sorted(files) for dist, files in used.items() if dist not in allowed}
    assert not missing, f"imported by tests, benchmarks or scripts but not declared: {missing}"


def test_each_lock_pins_its_declared_dependencies_at_the_declared_versions() -> None:
    for path, wanted in ((PROD_LOCK, declared()), (DEV_LOCK, declared() | declared("dev"))):
        pins = locked(path)
        wrong = {name: (version, pins.get(name)) for name, version in wanted.items() if
                 name not in pins or (version is not None and pins[name] != version)}
        assert not wrong, f"{path.name} is stale (name: (declared, locked)); run `make lock`: {wrong}"


def test_locks_name_no_dependency_that_pyproject_dropped() -> None:
    for path, wanted in ((PROD_LOCK, declared()), (DEV_LOCK, declared() | declared("dev"))):
        direct = {canonical(block.split("==")[0]) for block in lock_entries(path) if "gemq (pyproject.toml)" in block}
        assert direct <= set(wanted), f"{path.name} still names {direct - set(wanted)}; run `make lock`"


def test_production_lock_carries_no_development_package() -> None:
    dev_only = set(declared("dev")) - set(declared())
    assert not dev_only & set(locked(PROD_LOCK))


def test_dev_lock_has_the_production_lock_s_versions() -> None:
    prod, dev = locked(PROD_LOCK), locked(DEV_LOCK)
    differ = {name: (version, dev.get(name)) for name, version in prod.items() if dev.get(name) != version}
    assert not differ


def test_every_locked_requirement_carries_hashes() -> None:
    for path in (PROD_LOCK, DEV_LOCK):
        unhashed = [block.split()[0] for block in lock_entries(path) if "--hash=sha256:" not in block]
        assert not unhashed, f"{path.name}: {unhashed}"


def test_the_suite_runs_on_the_locked_versions() -> None:
    # Entries with an environment marker may not apply here; the others must be what is installed.
    unconditional = {
        canonical(m[1]): m[2] for block in lock_entries(DEV_LOCK) if (m := _LOCKED.match(block)) and ";" not in
        block.splitlines()[0]
    }
    drift = {}
    for name, version in unconditional.items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            drift[name] = (version, installed)
    assert not drift, f"installed packages differ from requirements-dev.lock (locked, installed): {drift}"
