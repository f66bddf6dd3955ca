"""Redis connections for gemq's own data (the broker's connections are kombu's)."""

from __future__ import annotations

from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from worker.core.settings import Settings

#: Seconds to wait for Redis to accept a connection or answer a command.
SOCKET_TIMEOUT = 5.0


def connect(
    settings: Settings, *, max_connections: int | None = None, socket_timeout: float = SOCKET_TIMEOUT,
    pool_wait: float | None = None,
) -> redis.Redis:
    """A client for ``settings.redis_url`` that decodes replies to ``str`` and retries briefly.

    ``socket_timeout`` must exceed the longest ``BLOCK`` a caller asks for (event streams).  With
    ``pool_wait``, a caller that finds all ``max_connections`` in use waits up to that many seconds
    for one (``BlockingConnectionPool``) instead of failing at once (redis-py's default pool raises
    ``MaxConnectionsError``): a gevent web process runs hundreds of requests at once on one pool.
    """
    options: dict[str, Any] = dict(
        decode_responses=True,
        socket_timeout=socket_timeout,
        socket_connect_timeout=SOCKET_TIMEOUT,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=3),
        # Not TimeoutError: a command that timed out may have run, and our scripts are not all idempotent.
        retry_on_error=[redis.ConnectionError],
    )
    if pool_wait is None:
        return redis.Redis.from_url(settings.redis_url, max_connections=max_connections, **options)
    pool = redis.BlockingConnectionPool.from_url(
        settings.redis_url, max_connections=max_connections or 100, timeout=pool_wait, **options
    )
    return redis.Redis(connection_pool=pool)
