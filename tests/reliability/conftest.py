"""Fixtures for the fault tests: a private stack per test (see ``stack.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import Api
from procs import RedisServer
from stack import VISIBILITY_TIMEOUT, Stack

from web import create_app
from worker.core.settings import Settings


@pytest.fixture
def stack(base_env: dict[str, str], tmp_path: Path) -> Iterator[Stack]:
    """A private redis-server (AOF, ``appendfsync everysec``) and the API on it; killed when the test ends."""
    server = RedisServer(tmp_path / "redis", appendonly=True).start()
    env = {**base_env, "REDIS_URL": server.url, "GEMQ_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT)}
    app = create_app(Settings.from_env(env))
    yield Stack(server, env, Api(app.test_client()))
    app.extensions["gemq"].metrics.sink.close()
    server.kill()
