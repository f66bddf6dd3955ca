"""What a web process shares between requests: settings, Redis, the job store, the Celery publisher."""

from __future__ import annotations

from dataclasses import dataclass

import redis
from celery import Celery
from flask import current_app

from web.feed import EventFeed
from worker.config import Settings
from worker.conversations import Conversations
from worker.limiter import Limiter
from worker.store import JobStore


@dataclass(frozen=True)
class WebContext:
    """Long-lived objects of one web process."""

    settings: Settings
    redis: redis.Redis
    store: JobStore
    limiter: Limiter
    celery: Celery
    conversations: Conversations
    events: EventFeed


def ctx() -> WebContext:
    """The current app's context."""
    context: WebContext = current_app.extensions["gemq"]
    return context
