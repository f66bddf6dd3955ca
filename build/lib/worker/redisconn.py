"""Redis connections for gemq's own data (the broker's connections are kombu's)."""

from __future__ import annotations

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from worker.config import Settings

#: Seconds to wait for Redis to accept a connection or answer a command.
SOCKET_TIMEOUT = 5.0


def connect(settings: Settings, *, max_connections: int | None = None) -> redis.Redis:
    """A client for ``settings.redis_url`` that decodes replies to ``str`` and retries briefly."""
    return redis.Redis.from_url(
        settings.redis_url,
        decode_responses=True,
        socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=SOCKET_TIMEOUT,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=3),
        # Not TimeoutError: a command that timed out may have run, and our scripts are not all idempotent.
        retry_on_error=[redis.ConnectionError],
        max_connections=max_connections,
    )
