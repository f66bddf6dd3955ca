"""The shared limiter against real Redis: each limit, settlement, pauses, leases and priorities."""

from __future__ import annotations

import time
import uuid
from datetime import datetime

import pytest
import redis
from helpers import CountingConnection, counting_client
from procs import RedisServer

from worker.core import keys
from worker.core.job import JobStatus, Priority
from worker.core.request import JobRequest
from worker.core.settings import ModelLimits, Settings
from worker.store.connect import connect
from worker.store.jobs import JobStore
from worker.store.limiter import PACIFIC, Limiter, estimate_tokens, pacific_day

NORMAL, LOW, HIGH = Priority.normal, Priority.low, Priority.high


@pytest.fixture
def model() -> str:
    """A model name no other test uses, so limiter state never collides."""
    return f"test-{uuid.uuid4().hex[:10]}"


def limiter_for(settings: Settings, model: str, **limits: int) -> Limiter:
    """A limiter with ``limits`` for ``model`` (and no reserve unless given)."""
    reserve = limits.pop("low_reserve", 0)
    configured = settings.replace(limits={model: ModelLimits(**limits)}, priority_reserve={"low": reserve / 100})
    return Limiter(connect(configured), configured)


def admit(limiter: Limiter, model: str, n: int, priority: Priority = NORMAL, cost: int = 1) -> list[bool]:
    """Ask for ``n`` calls from different jobs; which were admitted."""
    return [limiter.acquire(model, job_id=uuid.uuid4().hex, priority=priority, cost=cost).admitted for _ in range(n)]


def test_never_more_than_rpm_calls_in_the_window(settings: Settings, model: str) -> None:
    limiter = limiter_for(settings, model, rpm=5)
    assert admit(limiter, model, 7) == [True] * 5 + [False] * 2


def test_a_refused_call_is_told_to_wait_until_the_oldest_call_leaves_the_window(settings: Settings, model: str) -> None:
    limiter = limiter_for(settings, model, rpm=2)
    admit(limiter, model, 2)
    refused = limiter.acquire(model, job_id="late", priority=NORMAL, cost=1)
    assert not refused.admitted and refused.reason == "rpm"
    window = 60 + settings.limiter_window_margin
    assert window - 1 < refused.wait <= window


def test_waiters_are_told_successive_waits_not_all_the_same(settings: Settings, model: str) -> None:
    limiter = limiter_for(settings, model, rpm=3)
    for _ in range(3):
        admit(limiter, model, 1)
        time.sleep(0.05)
    waits = [limiter.acquire(model, job_id=f"w{i}", priority=NORMAL, cost=1).wait for i in range(3)]
    assert waits == sorted(waits) and waits[2] - waits[0] >= 0.08


def test_tokens_per_minute_are_charged_before_the_call(settings: Settings, model: str) -> None:
    limiter = limiter_for(settings, model, tpm=100)
    assert admit(limiter, model, 1, cost=60) == [True]
    refused = limiter.acquire(model, job_id="x", priority=NORMAL, cost=60)
    assert (refused.admitted, refused.reason) == (False, "tpm")


def test_settlement_replaces_the_estimate_with_the_counted_tokens(settings: Settings, model: str) -> None:
    limiter = limiter_for(settings, model, tpm=100)
    admission = limiter.acquire(model, job_id="a", priority=NORMAL, cost=60)
    limiter.release(model, admission, actual_tokens=20)
    assert int(limiter.redis.hget(keys.limiter(model, "state"), "tokens")) == 20
    assert admit(limiter, model, 1, cost=60) == [True], "the freed 40 tokens are usable at once"


def test_a_request_larger_than_the_token_limit_runs_when_the_window_is_empty(settings: Settings, model: str) -> None:
    limiter = limiter_for(settings, model, tpm=10)
    assert admit(limiter, model, 1, cost=50) == [True]


def test_the_day_quota_closes_the_model_until_pacific_midnight(settings: Settings, model: str) -> None:
    limiter = limiter_for(settings, model, rpd=2)
    assert admit(limiter, model, 2) == [True, True]
    refused = limiter.acquire(model, job_id="x", priority=HIGH, cost=1)
    assert refused.day_exhausted
    _, left = pacific_day()
    closed = next(r for r in limiter.usage() if r["model"] == model)["closed_for_day_s"]
    assert abs(closed - left) <= 2


def test_close_for_day_refuses_every_priority(settings: Settings, model: str) -> None:
    limiter = limiter_for(settings, model, rpm=100)
    limiter.close_for_day(model)
    assert limiter.acquire(model, job_id="x", priority=HIGH, cost=1).day_exhausted


def test_concurrency_slots_are_leases_given_back_on_release(settings: Settings, model: str) -> None:
    limiter = limiter_for(settings, model, concurrency=1)
    first = limiter.acquire(model, job_id="a", priority=NORMAL, cost=1)
    assert first.admitted
    assert limiter.acquire(model, job_id="b", priority=NORMAL, cost=1).reason == "concurrency"
    limiter.release(model, first)
    assert limiter.acquire(model, job_id="b", priority=NORMAL, cost=1).admitted


def test_a_lease_nobody_renews_lapses(settings: Settings, model: str) -> None:
    limiter = limiter_for(settings.replace(limiter_lease=0.3), model, concurrency=1)
    assert limiter.acquire(model, job_id="dead-worker", priority=NORMAL, cost=1).admitted
    assert not limiter.acquire(model, job_id="b", priority=NORMAL, cost=1).admitted
    time.sleep(0.4)
    assert limiter.acquire(model, job_id="b", priority=NORMAL, cost=1).admitted


def test_renewal_keeps_a_lease_alive(settings: Settings, model: str) -> None:
    limiter = limiter_for(settings.replace(limiter_lease=0.3), model, concurrency=1)
    held = limiter.acquire(model, job_id="a", priority=NORMAL, cost=1)
    for _ in range(3):
        time.sleep(0.15)
        limiter.renew([(model, held.call_id)])
    assert not limiter.acquire(model, job_id="b", priority=NORMAL, cost=1).admitted


def test_a_pause_holds_every_caller_and_is_never_shortened(settings: Settings, model: str) -> None:
    limiter = limiter_for(settings, model, rpm=100)
    limiter.pause(model, 5)
    limiter.pause(model, 1)
    refused = limiter.acquire(model, job_id="x", priority=HIGH, cost=1)
    assert (refused.admitted, refused.reason) == (False, "paused")
    assert 4 < refused.wait <= 5


def test_low_work_leaves_the_reserve_free_for_high_work(settings: Settings, model: str) -> None:
    limiter = limiter_for(settings, model, rpm=10, low_reserve=20)
    assert admit(limiter, model, 10, priority=LOW) == [True] * 8 + [False] * 2
    assert admit(limiter, model, 3, priority=HIGH) == [True, True, False]


def test_a_waiting_high_job_is_served_before_a_low_one_that_asks_first(settings: Settings, model: str) -> None:
    limiter = limiter_for(settings, model, concurrency=1)
    holder = limiter.acquire(model, job_id="holder", priority=LOW, cost=1)
    assert not limiter.acquire(model, job_id="low", priority=LOW, cost=1).admitted
    assert not limiter.acquire(model, job_id="high", priority=HIGH, cost=1).admitted
    limiter.release(model, holder)
    assert not limiter.acquire(model, job_id="low", priority=LOW, cost=1).admitted, "high waits ahead"
    assert limiter.acquire(model, job_id="high", priority=HIGH, cost=1).admitted
    assert not limiter.acquire(model, job_id="low", priority=LOW, cost=1).admitted, "the slot is taken again"


def test_waiting_is_first_come_first_served_within_a_priority(settings: Settings, model: str) -> None:
    limiter = limiter_for(settings, model, concurrency=1)
    holder = limiter.acquire(model, job_id="holder", priority=NORMAL, cost=1)
    for job in ("first", "second"):
        limiter.acquire(model, job_id=job, priority=NORMAL, cost=1)
    limiter.release(model, holder)
    assert not limiter.acquire(model, job_id="second", priority=NORMAL, cost=1).admitted
    assert limiter.acquire(model, job_id="first", priority=NORMAL, cost=1).admitted


def test_a_waiter_that_never_returns_stops_blocking_after_its_grace(settings: Settings, model: str) -> None:
    limiter = limiter_for(settings, model, concurrency=1)
    holder = limiter.acquire(model, job_id="holder", priority=NORMAL, cost=1)
    limiter.acquire(model, job_id="vanished", priority=HIGH, cost=1)
    limiter.release(model, holder)
    client = limiter.redis
    client.zadd(keys.limiter(model, "waitexp"), {"vanished": 0})  # its entry lapses, as after the grace
    assert limiter.acquire(model, job_id="next", priority=LOW, cost=1).admitted


def test_usage_reports_limits_and_use(settings: Settings, model: str) -> None:
    limiter = limiter_for(settings, model, rpm=10, tpm=1000, rpd=100, concurrency=4)
    admitted = limiter.acquire(model, job_id="a", priority=NORMAL, cost=7)
    limiter.acquire(model, job_id="b", priority=NORMAL, cost=7)
    row = next(r for r in limiter.usage() if r["model"] == model)
    assert row["limits"] == {"rpm": 10, "tpm": 1000, "rpd": 100, "concurrency": 4}
    assert row["use"] == {"requests_in_window": 2, "tokens_in_window": 14, "requests_today": 2, "in_flight": 2,
                          "waiting": 0}
    limiter.release(model, admitted)


def counted(settings: Settings, model: str, redis_server: RedisServer) -> tuple[redis.Redis, Settings]:
    """A client whose connections count what they send, and settings with room to spare for ``model``."""
    configured = settings.replace(limits={model: ModelLimits(rpm=1000, tpm=10**6, rpd=10**6, concurrency=100)})
    return counting_client(redis_server), configured


def test_admission_is_one_round_trip(settings: Settings, model: str, redis_server: RedisServer) -> None:
    client, configured = counted(settings, model, redis_server)
    limiter = Limiter(client, configured)
    admit(limiter, model, 2)  # loads the script and remembers the model
    CountingConnection.sent = 0
    assert admit(limiter, model, 1) == [True]
    assert CountingConnection.sent == 1


def test_release_with_settlement_is_one_round_trip(settings: Settings, model: str, redis_server: RedisServer) -> None:
    client, configured = counted(settings, model, redis_server)
    limiter = Limiter(client, configured)
    admit(limiter, model, 1)
    admission = limiter.acquire(model, job_id="a", priority=NORMAL, cost=60)
    CountingConnection.sent = 0
    limiter.release(model, admission, actual_tokens=20)
    assert CountingConnection.sent == 1, "no SCRIPT EXISTS before the pipeline"


def test_release_settles_after_redis_lost_its_scripts(settings: Settings, model: str) -> None:
    limiter = limiter_for(settings, model, tpm=100, concurrency=1)
    admission = limiter.acquire(model, job_id="a", priority=NORMAL, cost=60)
    limiter.redis.script_flush()
    limiter.release(model, admission, actual_tokens=20)
    assert int(limiter.redis.hget(keys.limiter(model, "state"), "tokens")) == 20
    assert limiter.redis.zcard(keys.limiter(model, "leases")) == 0


def test_a_job_ends_and_gives_back_its_slot_in_one_round_trip(settings: Settings, model: str,
                                                               redis_server: RedisServer) -> None:
    client, configured = counted(settings, model, redis_server)
    limiter, store = Limiter(client, configured), JobStore(client, configured)
    limiter.release(model, limiter.acquire(model, job_id="warm", priority=NORMAL, cost=60), actual_tokens=9)
    record = store.new_record("acme", JobRequest(prompt="one trip"))
    store.save_new([record])
    admission = limiter.acquire(model, job_id=record["id"], priority=NORMAL, cost=60)
    store.transition(record, JobStatus.running, allowed=("queued",))
    CountingConnection.sent = 0
    moved = store.transition(record, JobStatus.succeeded, allowed=("running",), fields={"finished_ms": "1"},
                             also=lambda trip: limiter.release(model, admission, 20, trip=trip))
    assert moved.moved and CountingConnection.sent == 1
    assert store.status(record["id"]) == "succeeded"
    assert int(client.hget(keys.limiter(model, "state"), "tokens")) == 9 + 20
    assert client.zcard(keys.limiter(model, "leases")) == 0


def test_one_trip_sends_a_script_again_when_redis_lost_it(settings: Settings, model: str) -> None:
    client = connect(settings)
    limiter, store = limiter_for(settings, model, tpm=1000), JobStore(client, settings)
    record = store.new_record("acme", JobRequest(prompt="lost scripts"))
    store.save_new([record])
    admission = limiter.acquire(model, job_id=record["id"], priority=NORMAL, cost=60)
    client.script_flush()
    moved = store.transition(record, JobStatus.cancelled, allowed=("queued",),
                             also=lambda trip: limiter.release(model, admission, 20, trip=trip))
    assert moved.moved and store.status(record["id"]) == "cancelled"
    assert int(client.hget(keys.limiter(model, "state"), "tokens")) == 20
    assert client.zcard(keys.limiter(model, "leases")) == 0


def test_pacific_day_resets_at_local_midnight_across_daylight_saving() -> None:
    assert pacific_day(datetime(2026, 3, 8, 23, 0, tzinfo=PACIFIC)) == ("2026-03-08", 3600)
    # 1 November 2026: clocks go back at 02:00, so that day lasts 25 hours.
    assert pacific_day(datetime(2026, 11, 1, 0, 30, tzinfo=PACIFIC))[1] == 25 * 3600 - 1800


def test_estimate_counts_about_four_characters_per_token() -> None:
    assert estimate_tokens({"contents": [{"role": "user", "parts": [{"text": "x" * 400}]}]}) == 104
    assert estimate_tokens({"contents": [], "system_instruction": "abcd"}) == 1
