"""What follows one run of a job (``worker.run.step.JobStep``), without a broker: fakes passed in.

The whole path (a real worker taking real messages) is covered by tests/test_pipeline.py,
tests/test_webhooks.py and tests/test_batches.py; these are the rules of the follow-up alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from worker.run.runner import JobRunner, Outcome
from worker.run.step import JobStep
from worker.store.batches import BatchStore
from worker.store.jobs import JobStore
from worker.store.webhooks import WebhookEvents


class Recorder:
    """Every collaborator at once: records the calls JobStep makes."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome
        self.calls: list[tuple[Any, ...]] = []

    def run(self, job_id: str) -> Outcome:
        return self.outcome

    def touch(self, job_id: str, *, due_in: float = 0.0) -> None:
        self.calls.append(("touch", job_id, due_in))

    def publish_job(self, job_id: str, priority: str, *, countdown: float | None = None) -> None:
        self.calls.append(("publish_job", job_id, priority, countdown))

    def publish_jobs(self, jobs: Iterable[tuple[str, str]]) -> int:
        raise AssertionError("a step publishes one job")

    def publish_webhook_attempt(self, event_id: str, attempt: int) -> None:
        raise AssertionError("a step creates events, the events publish their attempts")

    def enqueue_job_event(self, job_id: str) -> bool:
        self.calls.append(("enqueue_job_event", job_id))
        return True

    def finished(self, batch_id: str, *, just_completed: bool) -> None:
        self.calls.append(("finished", batch_id, just_completed))


def step_for(outcome: Outcome) -> tuple[JobStep, Recorder]:
    """A JobStep whose runner returns ``outcome``, and what it called."""
    fake = Recorder(outcome)
    step = JobStep(runner=cast(JobRunner, fake), store=cast(JobStore, fake), webhooks=cast(WebhookEvents, fake),
                   batches=cast(BatchStore, fake), publisher=fake)
    return step, fake


def test_a_wait_touches_the_job_and_republishes_it_with_its_priority_and_countdown() -> None:
    step, fake = step_for(Outcome(requeue_in=2.5, record={"priority": "high", "webhook_url": "http://x/"}))
    step("j1")
    assert fake.calls == [("touch", "j1", 2.5), ("publish_job", "j1", "high", 2.5)]


def test_a_finished_job_with_a_webhook_gets_its_event_and_nothing_is_republished() -> None:
    step, fake = step_for(Outcome(finished="succeeded", record={"priority": "normal", "webhook_url": "http://x/"}))
    step("j2")
    assert fake.calls == [("enqueue_job_event", "j2")]


def test_the_run_that_ends_a_batch_finishes_it() -> None:
    step, fake = step_for(Outcome(finished="failed", batch_completed=True, record={"priority": "low", "batch_id": "b"}))
    step("j3")
    assert fake.calls == [("finished", "b", True)]


def test_a_run_that_ended_nothing_still_makes_sure_of_the_batch_event() -> None:
    # A redelivered message of an item already finished (its worker may have died before the event).
    step, fake = step_for(Outcome(record={"priority": "low", "batch_id": "b", "webhook_url": "http://x/"}))
    step("j4")
    assert fake.calls == [("enqueue_job_event", "j4"), ("finished", "b", False)]


def test_an_item_finished_without_ending_its_batch_leaves_the_batch_alone() -> None:
    step, fake = step_for(Outcome(finished="succeeded", record={"priority": "low", "batch_id": "b"}))
    step("j5")
    assert fake.calls == []


def test_a_job_that_is_gone_calls_nothing() -> None:
    step, fake = step_for(Outcome(record=None))
    step("j6")
    assert fake.calls == []
