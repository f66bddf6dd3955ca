"""One ``run_job`` message's worth of work: run the job a step, then do what its outcome asks.

Plain code with its collaborators passed in (the broker through a Publisher), so the Celery task
(``worker.process.tasks``) only hands it the job id and it is tested without a broker.
"""

from __future__ import annotations

from worker.core.publisher import Publisher
from worker.run.runner import JobRunner, Outcome
from worker.store.batches import BatchStore
from worker.store.jobs import JobStore
from worker.store.webhooks import WebhookEvents


class JobStep:
    """Runs a job one step; re-publishes it (same priority) when it must wait; queues webhooks when it ends."""

    def __init__(self, *, runner: JobRunner, store: JobStore, webhooks: WebhookEvents, batches: BatchStore,
                 publisher: Publisher) -> None:
        self.runner = runner
        self.store = store
        self.webhooks = webhooks
        self.batches = batches
        self.publisher = publisher

    def __call__(self, job_id: str) -> Outcome:
        """Take the job one step further, and follow up on the outcome."""
        outcome = self.runner.run(job_id)
        record = outcome.record
        if record is None:
            return outcome
        if outcome.requeue_in is not None:
            # A long wait is activity, not silence: the reaper must not take the job for lost meanwhile.
            self.store.touch(job_id, due_in=outcome.requeue_in)
            self.publisher.publish_job(job_id, record["priority"], countdown=outcome.requeue_in)
            return outcome
        if record.get("webhook_url"):
            # Also when this run did not finish the job: a message redelivered after a worker died between
            # finishing the job and queueing its webhook, or a cancel seen mid-call.  Creating the event is
            # idempotent, so this never sends one twice.
            self.webhooks.enqueue_job_event(job_id)
        if record.get("batch_id") and (outcome.batch_completed or outcome.finished is None):
            # The same for the batch's one event, which the run that ended the last item queues: when this
            # run ended nothing, the batch may have finished without it (that worker died right after).
            self.batches.finished(record["batch_id"], just_completed=outcome.batch_completed)
        return outcome
