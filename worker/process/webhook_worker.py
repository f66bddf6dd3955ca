"""The webhook worker's composition root: what a process consuming the ``webhooks`` queue uses.

Built by ``worker.process.celery_worker`` when the worker starts and consumes ``webhooks``: the event
state, the deliverer the ``deliver_webhook`` task calls, and the mover thread started once the worker
is ready.  It never loads the Gemini SDK.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import redis

from worker.core.publisher import Publisher
from worker.core.settings import Settings
from worker.store.connect import connect
from worker.store.metrics import Accumulator, Metrics
from worker.store.webhooks import WebhookEvents
from worker.webhooks.delivery import Deliverer
from worker.webhooks.mover import DueMover

#: Redis connections beyond one per worker thread (the mover, metrics).
SPARE_CONNECTIONS = 20


@dataclass(frozen=True)
class WebhookWorker:
    """Settings, Redis, webhook events and the deliverer shared by a webhook worker's threads."""

    settings: Settings
    redis: redis.Redis
    events: WebhookEvents
    metrics: Metrics
    #: What the ``deliver_webhook`` task calls.
    deliverer: Deliverer

    @classmethod
    def build(cls, settings: Settings, publisher: Publisher) -> WebhookWorker:
        """Wire the objects for ``settings``; nothing connects until it is used."""
        client = connect(settings, max_connections=settings.worker_concurrency + SPARE_CONNECTIONS)
        events = WebhookEvents(client, settings, publisher)
        metrics = Metrics(Accumulator(client, interval=settings.metrics_flush_interval))
        return cls(settings=settings, redis=client, events=events, metrics=metrics,
                   deliverer=Deliverer(settings=settings, events=events, metrics=metrics))

    def start(self, stop: threading.Event) -> None:
        """Start the mover thread (it publishes due attempts; docs/architecture.md, Webhooks) until ``stop``."""
        DueMover(self.events, stop=stop).start()

    def close(self) -> None:
        """At shutdown: write the last interval's metrics."""
        self.metrics.sink.close()
