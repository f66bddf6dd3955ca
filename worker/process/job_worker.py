"""The job worker's composition root: everything a process consuming the job queues uses, built once.

Built by ``worker.process.celery_worker`` when the worker starts (``worker_init``) and consumes a job
queue; its threads (the reaper) start once the worker is ready, and it flushes its metrics at shutdown.
Nothing here is built on import.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import redis

from worker.core.publisher import Publisher
from worker.core.settings import Settings
from worker.process.reaper import Reaper
from worker.run.gemini import GeminiClient
from worker.run.runner import JobRunner
from worker.run.step import JobStep
from worker.store.batches import BatchStore
from worker.store.cache import ResponseCache
from worker.store.cancels import CancelWatch
from worker.store.connect import connect
from worker.store.conversations import Conversations
from worker.store.jobs import JobStore
from worker.store.limiter import LeaseKeeper, Limiter
from worker.store.metrics import Accumulator, Metrics
from worker.store.webhooks import WebhookEvents

#: Redis connections beyond one per worker thread (the limiter's lease keeper, cancels, metrics, reaper).
SPARE_CONNECTIONS = 20


@dataclass(frozen=True)
class JobWorker:
    """Settings, Redis, stores, limiter and Gemini client shared by a job worker's threads."""

    settings: Settings
    redis: redis.Redis
    publisher: Publisher
    store: JobStore
    limiter: Limiter
    leases: LeaseKeeper
    gemini: GeminiClient
    runner: JobRunner
    webhooks: WebhookEvents
    batches: BatchStore
    metrics: Metrics
    #: What the ``run_job`` task calls.
    step: JobStep

    @classmethod
    def build(cls, settings: Settings, publisher: Publisher) -> JobWorker:
        """Wire the objects for ``settings``; nothing connects until it is used."""
        client = connect(settings, max_connections=settings.worker_concurrency + SPARE_CONNECTIONS)
        store = JobStore(client, settings)
        limiter = Limiter(client, settings)
        leases = LeaseKeeper(limiter)
        gemini = GeminiClient(settings)
        metrics = Metrics(Accumulator(client, interval=settings.metrics_flush_interval))
        conversations = Conversations(client, store, settings)
        runner = JobRunner(settings=settings, store=store, gemini=gemini, limiter=limiter, leases=leases,
                           cancels=CancelWatch(client), metrics=metrics, conversations=conversations,
                           cache=ResponseCache(client, settings))
        webhooks = WebhookEvents(client, settings, publisher)
        batches = BatchStore(client, settings, store, webhooks, publisher, metrics, conversations)
        step = JobStep(runner=runner, store=store, webhooks=webhooks, batches=batches, publisher=publisher)
        return cls(settings=settings, redis=client, publisher=publisher, store=store, limiter=limiter, leases=leases,
                   gemini=gemini, runner=runner, webhooks=webhooks, batches=batches, metrics=metrics, step=step)

    def start(self, name: str, stop: threading.Event) -> None:
        """Start the reaper thread (it re-publishes unfinished jobs whose message was lost) until ``stop``."""
        Reaper(self.redis, self.settings, self.publisher, name=name, stop=stop).start()

    def close(self) -> None:
        """At shutdown, after the last job: stop renewing leases, write the last interval's metrics."""
        self.leases.stop()
        self.metrics.sink.close()
