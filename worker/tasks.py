"""Celery tasks: thin wrappers that handle the broker's side of a job (re-queue, acks) only."""

from __future__ import annotations

from celery import Task, shared_task

from worker.delivery import get_deliverer
from worker.queue.names import DELIVER_WEBHOOK, RUN_JOB
from worker.runtime import get_runtime


@shared_task(name=RUN_JOB, bind=True, ignore_result=True, acks_late=True)
def run_job(self: Task, job_id: str) -> None:
    """Run one step of a job; re-publish it (same priority) when it must wait; queue webhooks when it ends."""
    runtime = get_runtime()
    outcome = runtime.runner.run(job_id)
    record = outcome.record
    if record is None:
        return
    if outcome.requeue_in is not None:
        # A long wait is activity, not silence: the reaper must not take the job for lost meanwhile.
        runtime.store.touch(job_id, due_in=outcome.requeue_in)
        runtime.publisher.publish_job(job_id, record["priority"], countdown=outcome.requeue_in)
        return
    if record.get("webhook_url"):
        # Also when this run did not finish the job: a message redelivered after a worker died between
        # finishing the job and queueing its webhook, or a cancel seen mid-call.  Creating the event is
        # idempotent, so this never sends one twice.
        runtime.webhooks.enqueue_job_event(job_id)
    if record.get("batch_id") and (outcome.batch_completed or outcome.finished is None):
        # The same for the batch's one event, which the run that ended the last item queues: when this
        # run ended nothing, the batch may have finished without it (that worker died right after).
        runtime.batches.finished(record["batch_id"], just_completed=outcome.batch_completed)


@shared_task(name=DELIVER_WEBHOOK, ignore_result=True, acks_late=True)
def deliver_webhook(event_id: str, attempt: int = 0) -> None:
    """Make one attempt of a webhook event; the next, if any, is scheduled in Redis, not here."""
    get_deliverer().deliver(event_id, attempt)
