"""Celery tasks: thin wrappers that handle the broker's side of a job (re-queue, acks) only."""

from __future__ import annotations

from celery import Task, shared_task

from worker.celery_app import RUN_JOB, publish_job
from worker.runtime import get_runtime


@shared_task(name=RUN_JOB, bind=True, ignore_result=True, acks_late=True)
def run_job(self: Task, job_id: str) -> None:
    """Run one step of a job; re-publish it (same priority) when it must wait."""
    outcome = get_runtime().runner.run(job_id)
    if outcome.requeue_in is not None and outcome.record is not None:
        publish_job(self.app, job_id, outcome.record["priority"], countdown=outcome.requeue_in)
