"""A bare Celery app with one no-op task: the raw-Celery baseline of bench/throughput.py.

Celery's defaults and ignored results; ``BENCH_POOL=threads`` switches to the threads pool (gemq's
worker's) for a second baseline.  The task INCRs one Redis counter so the benchmark can see when
the last one has run.
"""

from __future__ import annotations

import os

import redis
from celery import Celery

#: The counter the no-op task increments.
DONE_KEY = "bench:noop:done"


def make_app(url: str) -> Celery:
    """The baseline app on broker ``url`` (the benchmark publishes through its own instance)."""
    celery = Celery("noop", broker=url, set_as_current=False)
    celery.conf.update(task_ignore_result=True, worker_hijack_root_logger=False)
    if os.environ.get("BENCH_POOL") == "threads":
        celery.conf.update(worker_pool="threads")
    return celery


app = make_app(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
_client: redis.Redis | None = None


@app.task(name="bench.noop")
def noop() -> None:
    """Do nothing but count."""
    global _client
    if _client is None:
        _client = redis.Redis.from_url(app.conf.broker_url)
    _client.incr(DONE_KEY)
