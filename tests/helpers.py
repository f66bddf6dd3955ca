"""Helpers shared by tests: the API as a tenant, prompt tags, event inspection."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
from flask.testing import FlaskClient
from procs import RedisServer, WorkerProcess, wait_until

#: Tenants and their keys in tests.
TENANTS = {"acme": "key-acme", "globex": "key-globex"}
TERMINAL = {"succeeded", "failed", "cancelled"}


def tag() -> str:
    """A unique marker for a test's prompts (the emulator logs it as the call's tag)."""
    return f"[[tag:{uuid.uuid4().hex[:12]}]]"


def tag_of(marker: str) -> str:
    """The tag inside a ``tag()`` marker, as the emulator's request log records it."""
    return marker[len("[[tag:"):-2]


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


def job_events(redis_server: RedisServer, job_id: str) -> list[str]:
    """The statuses recorded in a job's event stream, in order."""
    entries = redis_server.client().xrange(f"gemq:job:{job_id}:events")
    return [json.loads(f["data"])["status"] for _, f in entries if f["event"] == "status"]


def sleep_until(deadline: float) -> None:
    """Sleep until a ``time.monotonic()`` deadline."""
    time.sleep(max(0.0, deadline - time.monotonic()))


@contextmanager
def webhooks_worker_for(base_env: dict[str, str], run_dir: Path, name: str,
                        env: dict[str, str]) -> Iterator[WorkerProcess]:
    """A worker consuming only the ``webhooks`` queue, with ``env`` on top of the session's."""
    process = WorkerProcess({**base_env, **env}, run_dir / f"worker-{name}.log", name=name, concurrency=4,
                            queues="webhooks").start()
    try:
        yield process
    finally:
        process.kill()


class CountingConnection(redis.Connection):
    """A real connection that counts the commands it sends (a pipeline is one send: one round trip)."""

    sent = 0

    def send_packed_command(self, command, check_health=True):  # type: ignore[no-untyped-def]
        CountingConnection.sent += 1
        return super().send_packed_command(command, check_health)


def counting_client(redis_server: RedisServer) -> redis.Redis:
    """A decoding client on ``redis_server`` whose connections count what they send."""
    pool = redis.ConnectionPool(port=redis_server.port, decode_responses=True, connection_class=CountingConnection)
    return redis.Redis(connection_pool=pool)
