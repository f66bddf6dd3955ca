"""Shared fixtures: a private redis-server, the emulator, a real Celery worker and the web app.

Session-scoped processes are shared; tests keep apart by tagging their prompts (``tag()``), so
emulator faults and request-log lookups only ever match their own calls.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from faultproxy import FaultProxy
from helpers import TENANTS, Api
from procs import EmulatorProcess, RedisServer, WebProcess, WorkerProcess
from sentinel import SentinelCluster, SentinelUnavailable, sentinel_command

from web import create_app
from worker.core.settings import Settings


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the session's processes keep data and logs."""
    return tmp_path_factory.mktemp("run")


@pytest.fixture(scope="session")
def redis_server(run_dir: Path) -> Iterator[RedisServer]:
    """A private redis-server for the session."""
    server = RedisServer(run_dir / "redis").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def emu(run_dir: Path) -> Iterator[EmulatorProcess]:
    """The Gemini emulator for the session (no quota, no faults unless a test scripts them).

    Small chunks (4 words) so every answer streams in several pieces.
    """
    emulator = EmulatorProcess(run_dir / "emulator.log", "--chunk-tokens", "4").start()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def base_env(redis_server: RedisServer, emu: EmulatorProcess) -> dict[str, str]:
    """Environment for gemq processes started by tests."""
    env = {k: v for k, v in os.environ.items() if k not in {"GEMINI_API_KEY", "GOOGLE_API_KEY"}}
    env.update(
        REDIS_URL=redis_server.url,
        GEMINI_BASE_URL=emu.url,
        GEMQ_API_KEYS=",".join(f"{t}:{k}" for t, k in TENANTS.items()),
        GEMQ_WEBHOOK_SECRET="test-master-secret",
        GEMQ_WEBHOOK_ALLOW_PRIVATE="1",
        GEMQ_GEMINI_TIMEOUT="10",
        GEMQ_RETRY_BASE_DELAY="0.2",
        GEMQ_RETRY_MAX_DELAY="2",
        GEMQ_SUBMIT_LIMITS="",
        NO_PROXY="127.0.0.1,localhost",
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture(scope="session")
def settings(base_env: dict[str, str]) -> Settings:
    """Settings as the session's processes see them."""
    return Settings.from_env(base_env)


@pytest.fixture(scope="session")
def worker(base_env: dict[str, str], run_dir: Path) -> Iterator[WorkerProcess]:
    """A real Celery worker for the session."""
    process = WorkerProcess(base_env, run_dir / "worker.log", name="session", concurrency=16).start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def web_server(base_env: dict[str, str], run_dir: Path) -> Iterator[WebProcess]:
    """The web app under real gunicorn for the session."""
    process = WebProcess(base_env, run_dir / "web.log").start()
    yield process
    process.stop()


@pytest.fixture
def make_worker(base_env: dict[str, str], run_dir: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start extra workers with their own settings; they stop when the test ends."""
    started: list[WorkerProcess] = []

    def start(name: str, *, env: dict[str, str] | None = None, wait: bool = True, **options: Any) -> WorkerProcess:
        process = WorkerProcess({**base_env, **(env or {})}, run_dir / f"worker-{name}.log", name=name, **options)
        started.append(process.start(wait=wait))
        return process

    yield start
    for process in started:
        process.kill()


@pytest.fixture
def make_proxy() -> Iterator[Callable[[RedisServer], FaultProxy]]:
    """Start fault-injecting proxies (``tests/faultproxy/``) in front of a Redis; they stop when the test ends."""
    started: list[FaultProxy] = []

    def start(server: RedisServer) -> FaultProxy:
        started.append(FaultProxy(server.port).start())
        return started[-1]

    yield start
    for proxy in started:
        proxy.stop()


@pytest.fixture
def make_sentinel(tmp_path: Path) -> Iterator[Callable[..., SentinelCluster]]:
    """Start Sentinel deployments (``tests/sentinel.py``; options as ``SentinelCluster``'s), killed when the test
    ends; the test is skipped, with the install command, where no binary runs as a sentinel."""
    started: list[SentinelCluster] = []

    def start(**options: Any) -> SentinelCluster:
        try:
            sentinel_command()
        except SentinelUnavailable as exc:
            pytest.skip(str(exc))
        started.append(SentinelCluster(tmp_path / f"sentinel-{len(started)}", **options))
        return started[-1].start()

    yield start
    for cluster in started:
        cluster.stop()


@pytest.fixture(scope="session")
def app(settings: Settings):  # type: ignore[no-untyped-def]
    """The web app, wired to the session's Redis."""
    return create_app(settings)


@pytest.fixture
def api(app) -> Api:  # type: ignore[no-untyped-def]
    """The API as tenant ``acme``."""
    return Api(app.test_client())
