"""The worker process's long-lived objects, built once on first use (never at import)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import redis

from worker.core.publisher import Publisher
from worker.core.settings import Settings
from worker.gemini import GeminiClient
from worker.runner import JobRunner
from worker.store.batches import BatchStore
from worker.store.cache import ResponseCache
from worker.store.cancels import CancelWatch
from worker.store.connect import connect
from worker.store.conversations import Conversations
from worker.store.jobs import JobStore
from worker.store.limiter import LeaseKeeper, Limiter
from worker.store.metrics import Accumulator, Metrics
from worker.store.webhooks import WebhookEvents


@dataclass(frozen=True)
class Runtime:
    """Settings, Redis, store, limiter and Gemini client shared by a worker's threads."""

    settings: Settings
    redis: redis.Redis
    store: JobStore
    limiter: Limiter
    gemini: GeminiClient
    runner: JobRunner
    webhooks: WebhookEvents
    batches: BatchStore
    metrics: Metrics
    publisher: Publisher

    @classmethod
    def build(cls, settings: Settings, publisher: Publisher) -> Runtime:
        """Wire the objects for ``settings``."""
        client = connect(settings, max_connections=settings.worker_concurrency + 20)
        store = JobStore(client, settings)
        limiter = Limiter(client, settings)
        gemini = GeminiClient(settings)
        metrics = Metrics(Accumulator(client, interval=settings.metrics_flush_interval))
        conversations = Conversations(client, store, settings)
        runner = JobRunner(settings=settings, store=store, gemini=gemini, limiter=limiter, leases=LeaseKeeper(limiter),
                           cancels=CancelWatch(client), metrics=metrics, conversations=conversations,
                           cache=ResponseCache(client, settings))
        webhooks = WebhookEvents(client, settings, publisher)
        return cls(settings, client, store, limiter, gemini, runner, webhooks,
                   BatchStore(client, settings, store, webhooks, publisher, metrics, conversations), metrics, publisher)


_lock = threading.Lock()
_runtime: Runtime | None = None


def current_runtime() -> Runtime | None:
    """This process's runtime if one was built (shutdown hooks must not build one)."""
    return _runtime


def get_runtime() -> Runtime:
    """This process's runtime, built from the environment on first use."""
    global _runtime
    with _lock:
        if _runtime is None:
            import worker.celery_app
            from worker.queue.publisher import CeleryPublisher

            _runtime = Runtime.build(Settings.from_env(), CeleryPublisher(worker.celery_app.app))
        return _runtime
