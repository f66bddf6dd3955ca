"""Per-tenant submission limits (``GEMQ_SUBMIT_LIMITS``), kept in Redis by the ``limits`` library.

The state lives in Redis, so a limit holds across gunicorn workers and machines.  Strategy: the
sliding window counter (``limits.strategies.SlidingWindowCounterRateLimiter``).  Like a fixed window
it costs one Lua call and two small counters per tenant and limit; unlike a fixed window it does
not let a client send twice the limit across a window boundary (50 at the end of one second and 50
at the start of the next); unlike the moving window it keeps no list of timestamps (1,000 entries
per tenant for ``1000/minute``).  Its count is an approximation (the previous window is weighted by
how much of it still overlaps), which is what ``Retry-After`` reports too.

These limits are about what a tenant may *submit*; Gemini's own limits are ``worker.store.limiter``'s.
"""

from __future__ import annotations

import math
import time

import redis
from limits import RateLimitItem, parse_many
from limits.storage import RedisStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from worker.core import keys
from worker.core.settings import Settings


class SubmitLimitExceeded(Exception):
    """A tenant went over one of its submission limits."""

    def __init__(self, limit: RateLimitItem, retry_after: int) -> None:
        super().__init__(f"submission limit of {limit} reached")
        self.limit = limit
        #: Whole seconds until a submission fits again (at least 1).
        self.retry_after = retry_after


class SubmitLimiter:
    """Counts each tenant's submissions against ``GEMQ_SUBMIT_LIMITS``."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        items = parse_many(settings.submit_limits) if settings.submit_limits else []
        #: Shortest window first: a burst is refused by the per-second limit before it eats the minute's.
        self.items: list[RateLimitItem] = sorted(items, key=lambda item: item.get_expiry())
        # The web's own connection pool: no second set of connections per process.
        storage = RedisStorage(settings.redis_url, connection_pool=client.connection_pool,
                               key_prefix=keys.SUBMIT_LIMIT_PREFIX)
        self.strategy = SlidingWindowCounterRateLimiter(storage)

    @property
    def enabled(self) -> bool:
        """False when no limit is configured (no Redis call at all)."""
        return bool(self.items)

    def hit(self, tenant: str, cost: int = 1) -> None:
        """Count ``cost`` submissions for ``tenant``, or raise :class:`SubmitLimitExceeded`.

        A refused hit counts nothing in the refusing window (earlier, shorter windows keep theirs).
        """
        for item in self.items:
            if not self.strategy.hit(item, tenant, cost=cost):
                reset_at = self.strategy.get_window_stats(item, tenant).reset_time
                raise SubmitLimitExceeded(item, max(1, math.ceil(reset_at - time.time())))
