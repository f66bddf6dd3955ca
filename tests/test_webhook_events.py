"""The delivery state of webhook events in Redis: created once, each attempt taken once, nothing lost.

Real Redis; the publisher is a fake passed in (these are unit tests of the state machine;
tests/test_webhooks.py runs the real workers).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable

import pytest
from procs import RedisServer

from worker.core import keys
from worker.core.clock import now_ms
from worker.core.errors import PublishFailed
from worker.core.job import Job, JobStatus
from worker.core.request import JobRequest
from worker.core.settings import Settings
from worker.store.jobs import JobStore
from worker.store.webhooks import FIRST_ATTEMPT_GRACE_S, Attempt, WebhookEvents, due_member
from worker.webhooks.delivery import AttemptResult, Deliverer


class FakePublisher:
    """Records the webhook attempts published, or fails them like a broker that is down."""

    def __init__(self, *, fail: bool = False) -> None:
        self.sent: list[tuple[str, int]] = []
        self.fail = fail

    def publish_job(self, job_id: str, priority: str, *, countdown: float | None = None) -> None:
        raise AssertionError("webhook events publish no jobs")

    def publish_jobs(self, jobs: Iterable[tuple[str, str]]) -> int:
        raise AssertionError("webhook events publish no jobs")

    def publish_webhook_attempt(self, event_id: str, attempt: int) -> None:
        if self.fail:
            raise PublishFailed("OSError: broker unreachable")
        self.sent.append((event_id, attempt))


@pytest.fixture
def publisher() -> FakePublisher:
    """The fake broker the events publish to."""
    return FakePublisher()


@pytest.fixture
def events(redis_server: RedisServer, settings: Settings, publisher: FakePublisher) -> WebhookEvents:
    """Webhook events on the session's Redis."""
    return WebhookEvents(redis_server.client(), settings, publisher)


def new_event(events: WebhookEvents, owner: str | None = None) -> str:
    """A fresh event with its first attempt published."""
    event_id = f"evt_test_{uuid.uuid4().hex}"
    assert events.enqueue_event(tenant="acme", url="http://127.0.0.1:9/", event_type="test.event",
                                data={"n": 1}, event_id=event_id, owner=owner)
    return event_id


def due_score(events: WebhookEvents, event_id: str, attempt: int) -> float | None:
    """When attempt ``attempt`` is due (ms), if it is in the due set."""
    return events.redis.zscore(keys.webhooks_due(), due_member(event_id, attempt))


def test_an_event_is_created_once_and_its_first_attempt_published(
    events: WebhookEvents, publisher: FakePublisher
) -> None:
    event_id = new_event(events)
    again = events.enqueue_event(tenant="acme", url="http://127.0.0.1:9/", event_type="test.event", data={"n": 2},
                                 event_id=event_id)
    assert again is False
    assert publisher.sent == [(event_id, 0)]
    stored = events.get(event_id)
    assert json.loads(stored["body"])["data"] == {"n": 1} and stored["state"] == "pending"
    assert due_score(events, event_id, 0) is None  # published: no longer waiting in the due set


def test_a_failed_publish_leaves_the_first_attempt_for_the_mover(
    events: WebhookEvents, publisher: FakePublisher
) -> None:
    publisher.fail = True
    event_id = new_event(events)
    score = due_score(events, event_id, 0)
    assert score is not None
    assert abs(score - (now_ms() + FIRST_ATTEMPT_GRACE_S * 1000)) < 5000


def test_an_attempt_is_taken_once_even_with_duplicate_messages(events: WebhookEvents) -> None:
    event_id = new_event(events)
    taken = events.begin(event_id, 0, lease_s=30)
    assert isinstance(taken, Attempt) and taken.url == "http://127.0.0.1:9/"
    assert events.begin(event_id, 0, lease_s=30) == "in flight"  # a duplicate while it runs
    assert events.record(taken, {"at": "t", "status_code": 500, "error": None, "duration_ms": 3}, "pending", 5)
    assert events.begin(event_id, 0, lease_s=30) == "stale"  # a duplicate after it ran
    assert not events.record(taken, {"at": "t", "status_code": 500, "error": None, "duration_ms": 3}, "pending", 5)
    assert isinstance(events.begin(event_id, 1, lease_s=30), Attempt)


def test_an_attempt_whose_worker_died_is_due_again_when_its_lease_ends(events: WebhookEvents) -> None:
    event_id = new_event(events)
    assert isinstance(events.begin(event_id, 0, lease_s=0.1), Attempt)
    assert due_score(events, event_id, 0) is not None  # parked while it runs
    time.sleep(0.15)
    members, _ = events.claim_due(lease_s=30, limit=1000)
    assert due_member(event_id, 0) in members  # the mover publishes it again
    assert isinstance(events.begin(event_id, 0, lease_s=30), Attempt)


def test_recording_an_attempt_unparks_it(events: WebhookEvents) -> None:
    event_id = new_event(events)
    taken = events.begin(event_id, 0, lease_s=30)
    assert isinstance(taken, Attempt)
    events.record(taken, {"at": "t", "status_code": 200, "error": None, "duration_ms": 1}, "delivered")
    assert due_score(events, event_id, 0) is None


def test_recording_an_attempt_schedules_the_next_in_the_same_step(events: WebhookEvents) -> None:
    event_id = new_event(events)
    taken = events.begin(event_id, 0, lease_s=30)
    assert isinstance(taken, Attempt)
    events.record(taken, {"at": "t", "status_code": 503, "error": None, "duration_ms": 1}, "pending", 300)
    score = due_score(events, event_id, 1)
    assert score is not None and abs(score - (now_ms() + 300_000)) < 5000


def test_a_finished_event_takes_no_more_attempts(events: WebhookEvents) -> None:
    event_id = new_event(events)
    taken = events.begin(event_id, 0, lease_s=30)
    assert isinstance(taken, Attempt)
    events.record(taken, {"at": "t", "status_code": 204, "error": None, "duration_ms": 1}, "delivered")
    assert events.begin(event_id, 1, lease_s=30) == "delivered"
    assert due_score(events, event_id, 1) is None


def test_the_job_shows_its_event_attempts_and_next_time(events: WebhookEvents, settings: Settings) -> None:
    store = JobStore(events.redis, settings)
    record = store.new_record("acme", JobRequest(prompt="p", webhook_url="http://127.0.0.1:9/"))
    store.save_new([record])
    store.transition(record, JobStatus.failed, allowed=("queued",), fields={"finished_ms": str(now_ms())})
    assert events.enqueue_job_event(record["id"])
    assert not events.enqueue_job_event(record["id"])
    taken = events.begin(f"evt_{record['id']}_failed", 0, lease_s=30)
    assert isinstance(taken, Attempt) and taken.owner == keys.job(record["id"])
    events.record(taken, {"at": "2026-01-01T00:00:00.000Z", "status_code": None, "error": "timeout",
                          "duration_ms": 15000}, "pending", 5)

    webhook = Job.from_record(store.get(record["id"]) or {}).webhook
    assert webhook is not None and webhook.state == "pending" and webhook.next_attempt_at
    assert [(a.status_code, a.error) for a in webhook.attempts] == [(None, "timeout")]
    assert webhook.event_id == f"evt_{record['id']}_failed"


def test_the_mover_claims_only_due_attempts_and_hides_them_while_it_publishes(events: WebhookEvents) -> None:
    events.redis.delete(keys.webhooks_due())
    now = now_ms()
    events.redis.zadd(keys.webhooks_due(), {"evt_a:1": now - 10, "evt_b:2": now + 60_000})
    assert events.claim_due(lease_s=0.2, limit=10)[0] == ["evt_a:1"]
    assert events.claim_due(lease_s=0.2, limit=10)[0] == []  # claimed: hidden from other movers
    time.sleep(0.25)
    members, until = events.claim_due(lease_s=0.2, limit=10)
    assert members == ["evt_a:1"]  # its mover died: due again
    events.publish(members, parked_until=until)
    assert events.redis.zrange(keys.webhooks_due(), 0, -1) == ["evt_b:2"]
    events.redis.delete(keys.webhooks_due())


def test_publishing_keeps_an_entry_a_worker_re_parked_meanwhile(events: WebhookEvents) -> None:
    events.redis.delete(keys.webhooks_due())
    events.redis.zadd(keys.webhooks_due(), {"evt_c:0": now_ms() - 10})
    members, until = events.claim_due(lease_s=60, limit=10)
    events.redis.zadd(keys.webhooks_due(), {"evt_c:0": until + 5})  # a worker took it before we unparked it
    events.publish(members, parked_until=until)
    assert events.redis.zscore(keys.webhooks_due(), "evt_c:0") == until + 5
    events.redis.delete(keys.webhooks_due())


@pytest.mark.parametrize(("index", "result", "expected"), [
    (0, AttemptResult(ok=True, status_code=200), ("delivered", None)),
    (0, AttemptResult(ok=False, status_code=500), ("pending", 5.0)),
    (2, AttemptResult(ok=False, error="timeout"), ("pending", 1800.0)),
    (6, AttemptResult(ok=False, status_code=500), ("failed", None)),
    (0, AttemptResult(ok=False, error="refused: loopback", refused=True), ("failed", None)),
])
def test_the_next_step_follows_the_schedule(index: int, result: AttemptResult, expected: tuple[str, float | None],
                                             events: WebhookEvents) -> None:
    deliverer = Deliverer(settings=Settings(), events=events)  # the default schedule: 5, 300, 1800, ...
    assert deliverer.next_step(index, result) == expected
