"""What gemq's domain needs from the broker, and nothing more: :class:`Publisher`.

The stores (``worker.store``), the runner's follow-up (``worker.run.step``), the reaper and the web
publish through this protocol; ``worker.queue.publisher.CeleryPublisher`` implements it on Celery and
kombu, and each process's composition root passes that one in.  So no domain module imports Celery or
its kombu patches, and unit tests pass a fake.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol


class Publisher(Protocol):
    """Sends gemq's two kinds of message: a job's next step, and a webhook delivery attempt."""

    def publish_job(self, job_id: str, priority: str, *, countdown: float | None = None) -> None:
        """Publish a job's message on its priority's queue, due in ``countdown`` seconds if given.

        Raises whatever the broker raised (the web answers 503 to a broker it cannot reach).
        """
        ...

    def publish_jobs(self, jobs: Iterable[tuple[str, str]]) -> int:
        """Publish many ``(job id, priority)`` messages at once; returns how many.

        An error means the delivery of some is uncertain: the caller treats the whole publication as failed.
        """
        ...

    def publish_webhook_attempt(self, event_id: str, attempt: int) -> None:
        """Publish attempt ``attempt`` of a webhook event; :class:`~worker.core.errors.PublishFailed` if not taken."""
        ...
