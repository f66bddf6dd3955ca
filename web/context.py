"""What a web process shares between requests: settings, Redis, the job store, the publisher,
webhook events, submission limits, idempotency keys and batches."""

from __future__ import annotations

from dataclasses import dataclass

import redis
from flask import current_app
from prometheus_client import CollectorRegistry

from web.feed import EventFeed
from web.idempotency import Idempotency
from web.submit_limits import SubmitLimiter
from worker.core.publisher import Publisher
from worker.core.settings import Settings
from worker.store.batches import BatchStore
from worker.store.conversations import Conversations
from worker.store.jobs import JobStore
from worker.store.limiter import Limiter
from worker.store.metrics import Metrics
from worker.store.webhooks import WebhookEvents


@dataclass(frozen=True)
class WebContext:
    """Long-lived objects of one web process."""

    settings: Settings
    redis: redis.Redis
    store: JobStore
    limiter: Limiter
    publisher: Publisher
    conversations: Conversations
    events: EventFeed
    webhooks: WebhookEvents
    submit_limits: SubmitLimiter
    idempotency: Idempotency
    batches: BatchStore
    #: This process's metric increments (flushed to Redis) and the registry ``/metrics`` renders.
    metrics: Metrics
    metrics_registry: CollectorRegistry


def ctx() -> WebContext:
    """The current app's context."""
    context: WebContext = current_app.extensions["gemq"]
    return context
