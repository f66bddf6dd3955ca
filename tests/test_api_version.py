"""A job reaches Gemini on the API version gemq's settings name (``GEMINI_API_VERSION``).

google-genai 3.x sends ``/v1/...`` unless told otherwise; gemq pins ``v1beta`` by default
(docs/dependencies.md says why). The emulator serves both and its request log records which one a
call used.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import Api, tag, tag_of
from procs import EmulatorProcess, RedisServer, WorkerProcess

from web import create_app
from worker.core.settings import Settings


def api_versions_called(emu: EmulatorProcess, api: Api) -> list[str]:
    """Run one job to success and return the API version of each Gemini call it made."""
    marker = tag()
    job = api.wait(api.submit(prompt=f"which path {marker}")["id"])
    assert job["status"] == "succeeded", job
    return [call["api_version"] for call in emu.requests(tag=tag_of(marker))]


@pytest.mark.usefixtures("worker")
def test_by_default_a_job_calls_v1beta(api: Api, emu: EmulatorProcess, base_env: dict[str, str]) -> None:
    assert "GEMINI_API_VERSION" not in base_env
    assert api_versions_called(emu, api) == ["v1beta"]


def test_gemini_api_version_v1_makes_the_job_call_v1(
    base_env: dict[str, str], run_dir: Path, emu: EmulatorProcess
) -> None:
    # Given a stack of its own (Redis, worker, web app) told to use v1, so the session's worker stays out
    redis_server = RedisServer(run_dir / "redis-api-v1").start()
    env = {**base_env, "REDIS_URL": redis_server.url, "GEMINI_API_VERSION": "v1"}
    worker = WorkerProcess(env, run_dir / "worker-api-v1.log", name="api-v1", concurrency=2).start()
    try:
        api = Api(create_app(Settings.from_env(env)).test_client())
        # When a job runs, then its Gemini call went to /v1
        assert api_versions_called(emu, api) == ["v1"]
    finally:
        worker.stop()
        redis_server.stop()
