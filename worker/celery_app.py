"""The Celery application: broker settings that make priorities hold and nothing get lost.

Facts this configuration is built on (kombu 5.7 / Celery 5.7 sources):

- One queue per priority, read in sorted-name order (``queue_order_strategy="sorted"``): kombu's
  Redis transport BRPOPs the queues' lists in that order, so a high job is always taken before a
  normal one.  Separate queues (rather than message priorities inside one queue) also make each
  priority's backlog visible on Flower's broker page, and no message silently defaults to "highest".
- A worker reserves only what it runs: ``worker_prefetch_multiplier=1`` and
  ``worker_disable_prefetch`` (Redis only: no fetch while ``reserved >= pool size``).  Countdown
  (ETA) messages are "scheduled", not "reserved", so jobs parked waiting for capacity never block
  fresh high-priority messages.
- ``task_acks_late``: a message is acknowledged after the job's code returns; if the worker dies,
  kombu puts the message back after ``visibility_timeout`` (``GEMQ_VISIBILITY_TIMEOUT``), which
  must exceed the longest job and the longest countdown gemq uses.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from celery import Celery
from kombu import Exchange, Queue
from kombu.utils.uuid import uuid

from worker import keys, transport
from worker.config import Settings, load_or_exit
from worker.logs import configure_logging

#: Task names: the web publishes by name and never imports the worker's code.
RUN_JOB = "gemq.run_job"
DELIVER_WEBHOOK = "gemq.deliver_webhook"
#: Messages per pipelined round trip when many jobs are published at once (a batch).
PUBLISH_CHUNK = 1000


def create_celery(settings: Settings) -> Celery:
    """A configured Celery app; nothing connects until a message is sent or a worker starts."""
    transport.install()  # redis:// through kombu's transport, minus a client object per command
    celery = Celery("gemq", set_as_current=False)
    celery.conf.update(
        broker_url=settings.redis_url,
        broker_transport_options={
            "global_keyprefix": keys.BROKER_PREFIX,
            "queue_order_strategy": "sorted",
            "priority_steps": [0],
            "visibility_timeout": settings.visibility_timeout,
            # Look for abandoned messages every 10 s rather than every ~100 s (kombu's default).
            "unacked_restore_interval": 10,
            "unacked_restore_throttle": 1,
            "socket_timeout": 10,
            "socket_connect_timeout": 5,
            "health_check_interval": 10,
        },
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        broker_channel_error_retry=True,
        # Each queue gets its own exchange and routing key, so the bindings the worker declares (and
        # Flower shows) are each queue's own. With Celery's defaults every queue is bound to the default
        # queue's exchange and key; publishing by queue name still reached the right list, but a
        # message routed by exchange and key would have been copied into every queue.
        task_queues=[Queue(name, Exchange(name, type="direct"), routing_key=name)
                     for name in (*keys.JOB_QUEUES.values(), keys.WEBHOOK_QUEUE)],
        task_default_queue=keys.JOB_QUEUES["normal"],
        task_routes={DELIVER_WEBHOOK: {"queue": keys.WEBHOOK_QUEUE}},
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        result_backend=None,
        task_acks_late=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        worker_disable_prefetch=True,
        worker_pool="threads",
        worker_concurrency=settings.worker_concurrency,
        # Task events cost a worker about a tenth of its CPU per job; they are off until a dashboard
        # asks: Flower broadcasts `enable_events` every few seconds while it runs (flower/events.py,
        # on_enable_events), which reaches workers started after it too. Publishers send no
        # "task-sent" events: that would add a PUBLISH to every submit.
        worker_send_task_events=False,
        task_send_sent_event=False,
        # Celery's consumer, closing its task channel itself after a broker connection loss (see worker/broker.py).
        worker_consumer="worker.broker:Consumer",
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        include=["worker.tasks"],
    )
    return celery


def job_queue(priority: str) -> str:
    """The queue for a job of ``priority``."""
    return keys.JOB_QUEUES[priority]


def publish_job(celery: Celery, job_id: str, priority: str, *, countdown: float | None = None) -> None:
    """Publish a job's message by task name on its priority's queue (kombu retries a lost connection)."""
    with celery.producer_or_acquire() as producer:
        _send(celery, producer, job_id, priority, countdown=countdown, retry=True)


def publish_jobs(celery: Celery, jobs: Iterable[tuple[str, str]], *, chunk: int = PUBLISH_CHUNK) -> int:
    """Publish many ``(job id, priority)`` messages, pipelined: one Redis round trip per ``chunk`` messages.

    kombu 5.7's ``Producer.batch`` buffers the Redis transport's LPUSHes in a non-transactional
    pipeline and flushes every ``chunk`` commands (and at the end); an error while flushing means
    that chunk's delivery is uncertain, so the caller treats the whole publication as failed.
    The messages (``_send``, also used for single jobs) are the ones ``send_task`` makes, built with
    the two calls it makes (``create_task_message``, ``send_task_message``) minus what one message
    per job does not need:
    a result object and a router lookup per message, a queue declaration per message (kombu copies
    and binds the entity each time; queues are routed by name through the default exchange), the
    ``saferepr`` of the arguments (the repr is this one id), and a retry wrapper around each buffered
    write (nothing is sent before the flush).  Together those were three quarters of the time.
    """
    count = 0
    with celery.producer_or_acquire() as producer, producer.batch(max_size=chunk):
        for job_id, priority in jobs:
            _send(celery, producer, job_id, priority, retry=False)
            count += 1
    return count


def _send(celery: Celery, producer: Any, job_id: str, priority: str, *, countdown: float | None = None,
          retry: bool) -> None:
    """One ``gemq.run_job`` message, built as ``send_task`` builds it, without its per-message extras."""
    message = celery.amqp.create_task_message(uuid(), RUN_JOB, [job_id], {}, countdown=countdown or None,
                                              argsrepr=f"['{job_id}']", kwargsrepr="{}")
    celery.amqp.send_task_message(producer, RUN_JOB, message, queue=job_queue(priority), declare=[], retry=retry)


_app: Celery | None = None


def __getattr__(name: str) -> Celery:
    """``celery -A worker.celery_app`` looks up ``app``: build it on first use, not at import."""
    global _app
    if name not in ("app", "celery"):
        raise AttributeError(name)
    if _app is None:
        import worker.lifecycle  # noqa: F401 - connects the worker's signal handlers
        settings = load_or_exit()  # every celery command (worker, flower) loads the app first
        # JSON from the start: Celery warns (running as root, ...) before its setup_logging signal fires.
        configure_logging(level=settings.log_level, json=settings.log_json, process="celery")
        _app = create_celery(settings)
    return _app
