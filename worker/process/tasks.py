"""gemq's two Celery tasks, registered on an app by :func:`register_tasks` (never on import).

Thin: each hands its arguments to a plain callable its composition root passes in
(``JobWorker.step``, ``WebhookWorker.deliverer.deliver``) and leaves the broker's side (late
acknowledgement, no result) to Celery.  Waiting, retries and follow-ups are in those callables.
"""

from __future__ import annotations

from collections.abc import Callable

from celery import Celery

from worker.queue.names import DELIVER_WEBHOOK, RUN_JOB


def register_tasks(celery: Celery, *, run_job: Callable[[str], object],
                   deliver_webhook: Callable[[str, int], object]) -> None:
    """Register ``gemq.run_job`` and ``gemq.deliver_webhook`` on ``celery``, calling the given callables."""

    @celery.task(name=RUN_JOB, ignore_result=True, acks_late=True)
    def _run_job(job_id: str) -> None:
        """Run one step of a job (``worker.run.step.JobStep``): a call, a wait, a retry or its end."""
        run_job(job_id)

    @celery.task(name=DELIVER_WEBHOOK, ignore_result=True, acks_late=True)
    def _deliver_webhook(event_id: str, attempt: int = 0) -> None:
        """Make one attempt of a webhook event; the next, if any, is scheduled in Redis, not here."""
        deliver_webhook(event_id, attempt)
