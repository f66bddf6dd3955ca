"""Worker process hooks: JSON logging, a heartbeat for ``/readyz``, loud notice of the emulator (and of
unknown ``GEMQ_*`` variables), the reaper in workers that consume job queues, and the webhook mover in
workers that consume ``webhooks``."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import redis
import structlog
from celery.signals import setup_logging, worker_ready, worker_shutdown

from worker import keys
from worker.config import Settings, unknown_variables
from worker.logs import configure_logging
from worker.redisconn import connect

log = structlog.get_logger("gemq.worker")

#: Seconds between heartbeats.
HEARTBEAT_S = 5.0

_stop = threading.Event()


@setup_logging.connect
def _logging(**_: Any) -> None:
    settings = Settings.from_env()
    configure_logging(level=settings.log_level, json=settings.log_json, process="worker")


@worker_ready.connect
def _ready(sender: Any = None, **_: Any) -> None:
    settings = Settings.from_env()
    if settings.using_emulator:
        log.warning(
            "gemini.emulator",
            message="GEMINI_API_KEY is unset: calls go to the local Gemini EMULATOR, not Google",
            base_url=settings.gemini_endpoint,
        )
    for variable, nearest in unknown_variables().items():
        log.warning("config.unknown_variable", variable=variable, did_you_mean=nearest)
    name = getattr(sender, "hostname", None) or socket.gethostname()
    threading.Thread(target=_heartbeat, args=(settings, name), name="gemq-heartbeat", daemon=True).start()
    app = getattr(sender, "app", None)
    consumed = set(app.amqp.queues.consume_from) if app is not None else set()
    if keys.WEBHOOK_QUEUE in consumed:
        _start_webhook_mover(app)
    if consumed & set(keys.JOB_QUEUES.values()):
        # Build the Redis pools and the Gemini client now, not during the first job (~0.3 s).
        from worker.runtime import get_runtime

        get_runtime()
        _start_reaper(app, name)


def _start_reaper(app: Any, name: str) -> None:
    """Re-publish unfinished jobs whose message was lost (a thread; see ``worker.reaper``)."""
    from worker.reaper import Reaper
    from worker.runtime import get_runtime

    runtime = get_runtime()
    Reaper(runtime.redis, runtime.settings, app, name=name, stop=_stop).start()


def _start_webhook_mover(app: Any) -> None:
    """Publish due webhook attempts from this process (a thread; see docs/architecture.md, Webhooks)."""
    from worker.delivery import DueMover
    from worker.runtime import get_runtime

    DueMover(get_runtime().webhooks, app, stop=_stop).start()


@worker_shutdown.connect
def _shutdown(**_: Any) -> None:
    _stop.set()
    from worker.runtime import current_runtime  # not at import: flower loads this module too, without the SDK

    runtime = current_runtime()
    if runtime is not None:
        runtime.metrics.sink.close()  # the last interval's increments


def _heartbeat(settings: Settings, name: str) -> None:
    client = connect(settings)
    while True:
        try:
            now = int(time.time() * 1000)
            pipe = client.pipeline(transaction=False)
            pipe.zadd(keys.workers(), {name: now})
            pipe.zremrangebyscore(keys.workers(), "-inf", now - 86_400_000)
            pipe.execute()
        except redis.RedisError:
            pass  # Redis is restarting; the next beat tries again
        if _stop.wait(HEARTBEAT_S):
            client.zrem(keys.workers(), name)
            return
