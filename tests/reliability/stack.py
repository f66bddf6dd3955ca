"""A private gemq stack for fault tests: its own redis-server (AOF on), workers' environment and API.

Fault tests stop, kill and restart their Redis without disturbing the session's other tests.
Workers get a short visibility timeout so kombu's redelivery and the reaper act within seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from helpers import Api
from procs import RedisServer

from worker.core.settings import Settings

#: Seconds before kombu redelivers an unacknowledged message in these tests (3600 in production).
VISIBILITY_TIMEOUT = 6
#: kombu's restore sweep period (``unacked_restore_interval`` in worker/queue/app.py).
RESTORE_INTERVAL = 10


@dataclass
class Stack:
    """A private Redis, the environment for workers on it, and the API (Flask test client) on it."""

    redis: RedisServer
    env: dict[str, str]
    api: Api

    def settings(self) -> Settings:
        """The settings the stack's processes use."""
        return Settings.from_env(self.env)
