"""The Celery side of the worker processes: the app of ``celery -A worker.celery_app``, its tasks, and
the signal handlers that build, start and stop the composition roots.

Start-up, in order:

1. ``celery -A worker.celery_app`` imports that module, which calls :func:`worker_app` once: logging,
   the app (``worker.queue.app.create_celery``), the tasks (``worker.process.tasks``) and the signal
   handlers of one :class:`WorkerNode`, all connected here, explicitly.  Flower and ``celery inspect``
   stop there.
2. ``worker_init`` (Celery has read ``--queues``): the node builds the job worker's root
   (``JobWorker``) if it consumes a job queue and the webhook worker's (``WebhookWorker``) if it
   consumes ``webhooks``; a worker started without ``--queues`` consumes both and builds both.
3. ``worker_ready``: the emulator notice, a warning for each unknown ``GEMQ_*`` variable, the
   heartbeat for ``/readyz``, and each root's threads (the webhook mover; the reaper).
4. ``worker_shutdown`` (after the last task): the threads stop, the roots flush their metrics.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import redis
import structlog
from celery import Celery
from celery.signals import setup_logging, worker_init, worker_ready, worker_shutdown

from worker.core import keys
from worker.core.logs import configure_logging
from worker.core.settings import Settings, load_or_exit, unknown_variables
from worker.process.tasks import register_tasks
from worker.queue.app import create_celery
from worker.queue.publisher import CeleryPublisher
from worker.store.connect import connect

if TYPE_CHECKING:
    from worker.process.job_worker import JobWorker
    from worker.process.webhook_worker import WebhookWorker

log = structlog.get_logger("gemq.worker")

#: Seconds between heartbeats.
HEARTBEAT_S = 5.0


def worker_app(settings: Settings | None = None) -> Celery:
    """gemq's Celery app for the worker, webhooks and Flower processes: tasks registered, handlers connected."""
    settings = settings or load_or_exit()  # every celery command (worker, flower) loads the app first
    # JSON from the start: Celery warns (running as root, ...) before its setup_logging signal fires.
    configure_logging(level=settings.log_level, json=settings.log_json, process="celery")
    celery = create_celery(settings)
    node = WorkerNode(settings, celery)
    register_tasks(celery, run_job=node.run_job, deliver_webhook=node.deliver_webhook)
    node.connect_signals()
    return celery


class WorkerNode:
    """One ``celery worker`` process: builds the roots for the queues it consumes, starts and stops them."""

    def __init__(self, settings: Settings, celery: Celery) -> None:
        self.settings = settings
        self.celery = celery
        self.publisher = CeleryPublisher(celery)
        self.jobs: JobWorker | None = None
        self.webhooks: WebhookWorker | None = None
        self.stop = threading.Event()

    def connect_signals(self) -> None:
        """Connect this node's handlers to Celery's signals (strong references: they live as long as the app)."""
        setup_logging.connect(self._setup_logging, weak=False)
        worker_init.connect(self._init, weak=False)
        worker_ready.connect(self._ready, weak=False)
        worker_shutdown.connect(self._shutdown, weak=False)

    # -- what the tasks call -------------------------------------------------------------------

    def run_job(self, job_id: str) -> None:
        """The ``run_job`` task's work."""
        if self.jobs is None:
            raise RuntimeError("this worker does not consume the job queues")
        self.jobs.step(job_id)

    def deliver_webhook(self, event_id: str, attempt: int) -> None:
        """The ``deliver_webhook`` task's work."""
        if self.webhooks is None:
            raise RuntimeError("this worker does not consume the webhooks queue")
        self.webhooks.deliverer.deliver(event_id, attempt)

    # -- signal handlers -----------------------------------------------------------------------

    def _setup_logging(self, **_: Any) -> None:
        configure_logging(level=self.settings.log_level, json=self.settings.log_json, process="worker")

    def _init(self, sender: Any = None, **_: Any) -> None:
        """Build the roots for the queues this worker consumes (Celery has read ``--queues`` by now)."""
        if getattr(sender, "app", None) is not self.celery:
            return
        consumed = set(sender.app.amqp.queues.consume_from)
        # Imported here, once the kind is known: the job worker's root loads the Gemini SDK (about a second),
        # which Flower and a webhooks-only worker never need.
        if consumed & set(keys.JOB_QUEUES.values()):
            from worker.process.job_worker import JobWorker

            self.jobs = JobWorker.build(self.settings, self.publisher)
        if keys.WEBHOOK_QUEUE in consumed:
            from worker.process.webhook_worker import WebhookWorker

            self.webhooks = WebhookWorker.build(self.settings, self.publisher)

    def _ready(self, sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is not self.celery:
            return
        if self.settings.using_emulator:
            log.warning(
                "gemini.emulator",
                message="GEMINI_API_KEY is unset: calls go to the local Gemini EMULATOR, not Google",
                base_url=self.settings.gemini_endpoint,
            )
        for variable, nearest in unknown_variables().items():
            log.warning("config.unknown_variable", variable=variable, did_you_mean=nearest)
        name = getattr(sender, "hostname", None) or socket.gethostname()
        threading.Thread(target=heartbeat, args=(self.settings, name, self.stop), name="gemq-heartbeat",
                         daemon=True).start()
        if self.webhooks is not None:
            self.webhooks.start(self.stop)
        if self.jobs is not None:
            self.jobs.start(name, self.stop)

    def _shutdown(self, sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is not self.celery:
            return
        self.stop.set()
        for root in (self.jobs, self.webhooks):
            if root is not None:
                root.close()


def heartbeat(settings: Settings, name: str, stop: threading.Event) -> None:
    """Record ``name`` in ``keys.workers()`` every ``HEARTBEAT_S`` until ``stop``; then remove it."""
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
        if stop.wait(HEARTBEAT_S):
            client.zrem(keys.workers(), name)
            return
