"""The Celery implementation of :class:`~worker.core.publisher.Publisher`.

Messages are the ones ``send_task`` makes, built with the two calls it makes
(``create_task_message``, ``send_task_message``) minus what one message per job does not need: a
result object and a router lookup per message, a queue declaration per message (kombu copies and
binds the entity each time; queues are routed by name through the default exchange), the
``saferepr`` of the arguments (the repr is this one id), and a retry wrapper around each buffered
write (nothing is sent before the flush).  Together those were three quarters of the time.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import redis
from celery import Celery
from kombu.exceptions import KombuError
from kombu.utils.uuid import uuid

from worker.core.errors import PublishFailed
from worker.queue.names import DELIVER_WEBHOOK, RUN_JOB, job_queue

#: Messages per pipelined round trip when many jobs are published at once (a batch).
PUBLISH_CHUNK = 1000


class CeleryPublisher:
    """Publishes gemq's messages through ``celery`` (built by ``worker.queue.app.create_celery``)."""

    def __init__(self, celery: Celery) -> None:
        self.celery = celery

    def publish_job(self, job_id: str, priority: str, *, countdown: float | None = None) -> None:
        """Publish a job's message by task name on its priority's queue (kombu retries a lost connection)."""
        with self.celery.producer_or_acquire() as producer:
            self._send(producer, job_id, priority, countdown=countdown, retry=True)

    def publish_jobs(self, jobs: Iterable[tuple[str, str]], *, chunk: int = PUBLISH_CHUNK) -> int:
        """Publish many ``(job id, priority)`` messages, pipelined: one Redis round trip per ``chunk`` messages.

        kombu 5.7's ``Producer.batch`` buffers the Redis transport's LPUSHes in a non-transactional
        pipeline and flushes every ``chunk`` commands (and at the end); an error while flushing means
        that chunk's delivery is uncertain, so the caller treats the whole publication as failed.
        """
        count = 0
        with self.celery.producer_or_acquire() as producer, producer.batch(max_size=chunk):
            for job_id, priority in jobs:
                self._send(producer, job_id, priority, retry=False)
                count += 1
        return count

    def publish_webhook_attempt(self, event_id: str, attempt: int) -> None:
        """Publish one ``gemq.deliver_webhook`` message (routed to the ``webhooks`` queue)."""
        try:
            self.celery.send_task(DELIVER_WEBHOOK, args=[event_id, attempt])
        except (KombuError, redis.RedisError, OSError) as exc:
            raise PublishFailed(f"{type(exc).__name__}: {exc}") from exc

    def _send(self, producer: Any, job_id: str, priority: str, *, countdown: float | None = None,
              retry: bool) -> None:
        """One ``gemq.run_job`` message, built as ``send_task`` builds it, without its per-message extras."""
        amqp = self.celery.amqp
        message = amqp.create_task_message(uuid(), RUN_JOB, [job_id], {}, countdown=countdown or None,
                                           argsrepr=f"['{job_id}']", kwargsrepr="{}")
        amqp.send_task_message(producer, RUN_JOB, message, queue=job_queue(priority), declare=[], retry=retry)
