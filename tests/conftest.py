"""Shared fixtures: a private redis-server, the emulator, a real Celery worker and the web app.

Session-scoped processes are shared; tests keep apart by tagging their prompts (``tag()``), so
emulator faults and request-log lookups only ever match their own calls.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from procs import EmulatorProcess, RedisServer, WorkerProcess, wait_until

from web import create_app
from worker.config import Settings

#: Tenants and their keys in tests.
TENANTS = {"acme": "key-acme", "globex": "key-globex"}
TERMINAL = {"succeeded", "failed", "cancelled"}


def tag() -> str:
    """A unique marker for a test's prompts (the emulator logs it as the call's tag)."""
    return f"[[tag:{uuid.uuid4().hex[:12]}]]"


def tag_of(marker: str) -> str:
    """The tag inside a ``tag()`` marker, as the emulator's request log records it."""
    return marker[len("[[tag:"):-2]


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
    """The Gemini emulator for the session (no quota, no faults unless a test scripts them)."""
    emulator = EmulatorProcess(run_dir / "emulator.log").start()
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


@pytest.fixture(scope="session")
def app(settings: Settings):  # type: ignore[no-untyped-def]
    """The web app, wired to the session's Redis."""
    return create_app(settings)


class Api:
    """The HTTP API through Flask's test client, as one tenant."""

    def __init__(self, client: FlaskClient, tenant: str = "acme") -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {TENANTS[tenant]}"}

    def as_tenant(self, tenant: str) -> Api:
        """The same client, as another tenant."""
        return Api(self.client, tenant)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        """POST JSON (or raw ``data=``) with the tenant's key."""
        headers = {**self.headers, **kwargs.pop("headers", {})}
        if body is not None:
            kwargs["json"] = body
        return self.client.post(path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        """GET with the tenant's key."""
        return self.client.get(path, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)

    def submit(self, **body: Any) -> dict[str, Any]:
        """Submit a job and return it (asserting 202)."""
        response = self.post("/v1/jobs", body)
        assert response.status_code == 202, response.get_json()
        return dict(response.get_json())

    def job(self, job_id: str) -> dict[str, Any]:
        """The job as GET returns it."""
        response = self.get(f"/v1/jobs/{job_id}")
        assert response.status_code == 200, response.get_json()
        return dict(response.get_json())

    def wait(self, job_id: str, timeout: float = 20, statuses: set[str] = TERMINAL) -> dict[str, Any]:
        """Poll until the job reaches one of ``statuses``."""
        return wait_until(lambda: (j := self.job(job_id))["status"] in statuses and j, timeout=timeout,
                          what=f"job {job_id} to reach {sorted(statuses)}")


@pytest.fixture
def api(app) -> Api:  # type: ignore[no-untyped-def]
    """The API as tenant ``acme``."""
    return Api(app.test_client())


def job_events(redis_server: RedisServer, job_id: str) -> list[str]:
    """The statuses recorded in a job's event stream, in order."""
    import json

    entries = redis_server.client().xrange(f"gemq:job:{job_id}:events")
    return [json.loads(f["data"])["status"] for _, f in entries if f["event"] == "status"]


def sleep_until(deadline: float) -> None:
    """Sleep until a ``time.monotonic()`` deadline."""
    time.sleep(max(0.0, deadline - time.monotonic()))
