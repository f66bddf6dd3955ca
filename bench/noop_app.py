"""A bare Celery app with one no-op task: the raw-Celery baseline of bench/throughput.py.

Default Celery settings except the pool (threads, like gemq's worker) and ignored results.  The
task INCRs one Redis counter so the benchmark can see when the last one has run.
"""

from __future__ import annotations

import os

import redis
from celery import Celery

app = Celery("noop", broker=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), set_as_current=False)
app.conf.update(task_ignore_result=True, worker_pool="threads", worker_hijack_root_logger=False)
_client: redis.Redis | None = None


@app.task(name="bench.noop")
def noop() -> None:
    """Do nothing but count."""
    global _client
    if _client is None:
        _client = redis.Redis.from_url(app.conf.broker_url)
    _client.incr("bench:noop:done")
