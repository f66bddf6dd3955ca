"""The Celery app factory: broker settings that make priorities hold and nothing get lost.

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

from celery import Celery
from kombu import Exchange, Queue

from worker.core import keys
from worker.core.settings import Settings
from worker.queue import transport
from worker.queue.names import DELIVER_WEBHOOK


def create_celery(settings: Settings) -> Celery:
    """A configured Celery app, without tasks; nothing connects until a message is sent or a worker starts.

    Installs gemq's kombu transport in this process (``worker.queue.transport``): every process that
    talks to the broker builds its app here, so the patch is made where the process asks for it.
    """
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
        # Celery's consumer, closing its task channel itself after a lost broker connection (worker/queue/consumer.py).
        worker_consumer="worker.queue.consumer:Consumer",
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
    )
    return celery
