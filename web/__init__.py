"""The front door: a Flask app that validates, stores and enqueues jobs (``create_app``).

The web never imports the Gemini SDK: it publishes Celery messages by task name.
"""

from __future__ import annotations

import structlog
from flask import Flask

from web import auth, batches, conversations, errors, events, health, jobs, limits, metrics, openapi, webhooks
from web.context import WebContext
from web.feed import EventFeed, ListenerSlots
from web.idempotency import Idempotency
from web.submit_limits import SubmitLimiter
from worker.core.logs import configure_logging
from worker.core.settings import Settings, unknown_variables
from worker.queue.app import create_celery
from worker.queue.publisher import CeleryPublisher
from worker.store.batches import BatchStore
from worker.store.connect import connect
from worker.store.conversations import Conversations
from worker.store.jobs import JobStore
from worker.store.limiter import Limiter
from worker.store.metrics import Accumulator, Metrics
from worker.store.webhooks import WebhookEvents

log = structlog.get_logger("gemq.web")

#: Redis connections one web process uses for requests; a greenlet finding all busy waits for one.
WEB_REDIS_CONNECTIONS = 100
#: Seconds a request waits for a free Redis connection before it is answered 503.
POOL_WAIT_S = 5.0


def create_app(settings: Settings | None = None) -> Flask:
    """Build the web app for ``settings`` (default: from the environment); connects lazily."""
    settings = settings or Settings.from_env()
    app = Flask("gemq")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    client = connect(settings, max_connections=WEB_REDIS_CONNECTIONS, pool_wait=POOL_WAIT_S)
    store = JobStore(client, settings)
    publisher = CeleryPublisher(create_celery(settings))
    webhook_events = WebhookEvents(client, settings, publisher)
    recorder = Metrics(Accumulator(client, interval=settings.metrics_flush_interval))
    conversation_lines = Conversations(client, store, settings)
    app.extensions["gemq"] = WebContext(
        settings=settings,
        redis=client,
        store=store,
        limiter=Limiter(client, settings),
        publisher=publisher,
        webhooks=webhook_events,
        submit_limits=SubmitLimiter(client, settings),
        idempotency=Idempotency(client),
        batches=BatchStore(client, settings, store, webhook_events, publisher, recorder, conversation_lines),
        metrics=recorder,
        metrics_registry=metrics.registry_for(client),
        conversations=conversation_lines,
        events=_event_feed(settings),
    )
    app.before_request(auth.authenticate)
    errors.register_error_handlers(app)
    for blueprint in (health.bp, jobs.bp, batches.bp, limits.bp, webhooks.bp, metrics.bp, events.bp,
                      conversations.bp):
        app.register_blueprint(blueprint)
    openapi.register(app)
    return app


def _event_feed(settings: Settings) -> EventFeed:
    """The SSE reader, with its own Redis pool: listeners block there, never in the requests' pool."""
    listeners = connect(settings, max_connections=settings.sse_max_listeners + 10,
                        socket_timeout=settings.sse_heartbeat + 10, pool_wait=POOL_WAIT_S)
    return EventFeed(settings=settings, redis=listeners, store=JobStore(listeners, settings),
                     slots=ListenerSlots(settings.sse_max_listeners))


def create_served_app() -> Flask:
    """The app gunicorn serves: logging configured, the dev settings and unknown variables announced."""
    settings = Settings.from_env()
    configure_logging(level=settings.log_level, json=settings.log_json, process="web")
    for name, nearest in unknown_variables().items():
        log.warning("config.unknown_variable", variable=name, did_you_mean=nearest)
    if settings.dev_api_key:
        log.warning("dev.api_key", message="GEMQ_API_KEYS is unset: the development API key is accepted")
    if settings.dev_webhook_secret:
        log.warning("dev.webhook_secret",
                    message="GEMQ_WEBHOOK_SECRET is unset: webhook signing secrets derive from a development secret")
    return create_app(settings)
