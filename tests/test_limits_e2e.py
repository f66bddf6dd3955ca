"""Limits that hold across real worker processes, against an emulator that enforces the same quota.

Each scenario uses its own Redis database (its own broker queues and limiter state) and its own
workers.  The saturation scenario crosses a real 60 s window, so it runs once (module fixture,
about a minute) and several tests read its outcome.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from helpers import Api, tag, tag_of
from procs import EmulatorProcess, RedisServer, WorkerProcess, wait_until

from web import create_app
from worker.core import keys
from worker.core.settings import Settings

MODEL = "gemini-2.5-flash"
RPM = 10


@dataclass
class Isolated:
    """An API, a Redis client and worker environment on a database of their own."""

    api: Api
    redis: redis.Redis
    env: dict[str, str]


def isolated(settings: Settings, redis_server: RedisServer, db: int, env: dict[str, str]) -> Isolated:
    """A fresh database ``db`` with an API configured like workers started with ``env``."""
    url = redis_server.url.rsplit("/", 1)[0] + f"/{db}"
    client = redis.Redis(port=redis_server.port, db=db, decode_responses=True)
    client.flushdb()
    full_env = {"REDIS_URL": url, **env}
    configured = Settings.from_env({"REDIS_URL": url, "GEMQ_API_KEYS": "acme:key-acme,globex:key-globex", **env})
    return Isolated(Api(create_app(configured).test_client()), client, full_env)


def calls(emu: EmulatorProcess, marker: str) -> list[dict[str, Any]]:
    """The emulator's log entries for one tagged prompt."""
    return emu.requests(tag=tag_of(marker))


# -- saturation: two workers, one limit, the emulator enforcing the same quota ----------------


@dataclass
class Saturation:
    """What happened when 12 low then 2 high jobs met a 10 RPM limit."""

    lows: list[dict[str, Any]]
    highs: list[dict[str, Any]]
    log: list[dict[str, Any]]
    tags: dict[str, str]


@pytest.fixture(scope="module")
def saturation(settings: Settings, redis_server: RedisServer, run_dir: Path) -> Iterator[Saturation]:
    """Run the scenario once: a quota emulator, two worker processes, 12 low jobs, then 2 high."""
    quota = EmulatorProcess(run_dir / "emulator-quota.log", "--rpm", str(RPM)).start()
    env = {"GEMINI_BASE_URL": quota.url, "GEMQ_LIMITS": f"{MODEL}:rpm={RPM}", "GEMQ_PRIORITY_RESERVE": "low=0.1",
           "NO_PROXY": "127.0.0.1,localhost", "GEMQ_API_KEYS": "acme:key-acme"}
    iso = isolated(settings, redis_server, 8, env)
    import os

    base = {k: v for k, v in os.environ.items() if k not in {"GEMINI_API_KEY", "GOOGLE_API_KEY"}}
    workers = [WorkerProcess({**base, **iso.env}, run_dir / f"worker-sat{i}.log", name=f"sat{i}", concurrency=8)
               .start() for i in range(2)]
    try:
        tags = {}
        lows = []
        for i in range(12):
            tags[f"low{i}"] = tag()
            lows.append(iso.api.submit(prompt=f"low {i} {tags[f'low{i}']}", priority="low")["id"])
        wait_until(lambda: len(quota.requests()) >= 9, timeout=20, what="the low jobs to fill the window")
        highs = []
        for i in range(2):
            tags[f"high{i}"] = tag()
            highs.append(iso.api.submit(prompt=f"high {i} {tags[f'high{i}']}", priority="high")["id"])
        finished = [iso.api.wait(j, timeout=150) for j in lows + highs]
        yield Saturation(finished[:12], finished[12:], quota.requests(), tags)
    finally:
        for worker in workers:
            worker.kill()
        quota.stop()


def test_two_workers_under_one_limit_get_no_429(saturation: Saturation) -> None:
    assert [c["status"] for c in saturation.log].count(429) == 0
    assert all(j["status"] == "succeeded" for j in saturation.lows + saturation.highs)


def test_no_60s_window_holds_more_than_the_limit(saturation: Saturation) -> None:
    stamps = sorted(c["ts"] for c in saturation.log)
    assert len(stamps) == 14
    assert max(sum(1 for t in stamps if start <= t < start + 60) for start in stamps) <= RPM


def test_waiting_for_capacity_is_not_an_attempt(saturation: Saturation) -> None:
    assert all(j["attempts"] == 1 for j in saturation.lows + saturation.highs)


def test_high_work_is_admitted_at_once_from_the_reserve(saturation: Saturation) -> None:
    at = {c["tag"]: c["ts"] for c in saturation.log}
    first_high = min(at[tag_of(saturation.tags[f"high{i}"])] for i in range(2))
    late_lows = sorted(at[tag_of(saturation.tags[f"low{i}"])] for i in range(12))[9:]
    # The low jobs filled their 90% of the window; the high one used the reserve, a window earlier.
    assert first_high < min(late_lows) - 30


def test_under_saturation_the_next_slot_goes_to_high_work(
    settings: Settings, redis_server: RedisServer, emu: EmulatorProcess, make_worker: Callable[..., WorkerProcess]
) -> None:
    # Given a model with one concurrency slot, slow calls, and eight low jobs waiting for it
    iso = isolated(settings, redis_server, 7, {"GEMINI_BASE_URL": emu.url, "GEMQ_LIMITS": f"{MODEL}:concurrency=1"})
    make_worker("slot", env=iso.env, concurrency=16)
    markers = [tag() for _ in range(9)]
    for marker in markers:
        emu.fault(marker, "hang", hang_s=0.4)
    lows = [iso.api.submit(prompt=f"low {m}", priority="low")["id"] for m in markers[:8]]
    # (any of them: which low job wins the slot first is a race between the worker's threads)
    wait_until(lambda: any(iso.api.job(j)["status"] == "running" for j in lows), timeout=20, what="a low job to run")
    # When a high job arrives
    high = iso.api.submit(prompt=f"high {markers[8]}", priority="high")["id"]
    for job_id in [*lows, high]:
        assert iso.api.wait(job_id, timeout=30)["status"] == "succeeded"
    # Then it takes the next free slot (FIFO would make it the ninth call)
    order = [c["tag"] for c in sorted(emu.requests(), key=lambda c: c["ts"]) if c["tag"] in map(tag_of, markers)]
    assert order.index(tag_of(markers[8])) <= 2, order


# -- coordinated backoff, day quota, fallback, leases, settlement ------------------------------


def test_retry_info_pauses_the_model_for_every_worker(
    settings: Settings, redis_server: RedisServer, emu: EmulatorProcess, make_worker: Callable[..., WorkerProcess]
) -> None:
    # Given two workers and a first job whose call gets a 429 asking for 3 s
    iso = isolated(settings, redis_server, 9, {"GEMINI_BASE_URL": emu.url})
    for i in range(2):
        make_worker(f"pause{i}", env=iso.env, concurrency=4)
    first = tag()
    emu.fault(first, "quota_rpm", retry_delay_s=3)
    job = iso.api.submit(prompt=f"first {first}")
    refused = wait_until(lambda: [c for c in calls(emu, first) if c["status"] == 429], timeout=15, what="the 429")[0]
    # When more jobs arrive during the pause
    others = [tag() for _ in range(3)]
    ids = [iso.api.submit(prompt=f"other {m}")["id"] for m in others]
    # Then no call reaches the model before the delay has passed, on either worker
    for job_id in [job["id"], *ids]:
        assert iso.api.wait(job_id, timeout=30)["status"] == "succeeded"
    later = [c["ts"] for m in [first, *others] for c in calls(emu, m) if c["status"] == 200]
    assert len(later) == 4 and min(later) >= refused["ts"] + 3 - 0.05
    assert iso.api.job(job["id"])["attempts"] == 2


def test_the_day_quota_fails_fast_and_closes_the_model(
    settings: Settings, redis_server: RedisServer, emu: EmulatorProcess, make_worker: Callable[..., WorkerProcess]
) -> None:
    iso = isolated(settings, redis_server, 10, {"GEMINI_BASE_URL": emu.url})
    make_worker("day", env=iso.env, concurrency=2)
    marker = tag()
    emu.fault(marker, "quota_rpd")
    failed = iso.api.wait(iso.api.submit(prompt=f"daily {marker}")["id"])
    assert (failed["status"], failed["error"]["type"]) == ("failed", "quota_exhausted")
    assert "PerDay" in failed["error"]["message"] and failed["attempts"] == 1
    # A later job for the same model fails at once, without calling Gemini
    after = tag()
    second = iso.api.wait(iso.api.submit(prompt=f"after {after}")["id"])
    assert second["error"]["type"] == "quota_exhausted" and second["attempts"] == 0
    assert calls(emu, after) == []
    assert int(iso.redis.hget(keys.limiter(MODEL, "state"), "closed_until")) > time.time() * 1000


def test_fallback_model_answers_when_the_primary_stays_unavailable(
    settings: Settings, redis_server: RedisServer, emu: EmulatorProcess, make_worker: Callable[..., WorkerProcess]
) -> None:
    iso = isolated(settings, redis_server, 11, {"GEMINI_BASE_URL": emu.url, "GEMQ_MAX_ATTEMPTS": "2",
                                                "GEMQ_RETRY_BASE_DELAY": "0.1"})
    make_worker("fallback", env=iso.env, concurrency=2)
    marker = tag()
    emu.fault(marker, "status", status=503, times=2)
    job = iso.api.wait(iso.api.submit(prompt=f"fallback {marker}", model="gemini-2.5-pro",
                                      fallback_models=["gemini-2.5-flash-lite"])["id"])
    assert job["status"] == "succeeded"
    assert (job["model"], job["result"]["model"]) == ("gemini-2.5-pro", "gemini-2.5-flash-lite")
    assert [c["model"] for c in calls(emu, marker)] == ["gemini-2.5-pro", "gemini-2.5-pro", "gemini-2.5-flash-lite"]
    assert job["attempts"] == 3


def test_a_day_closed_model_falls_back_at_once(
    settings: Settings, redis_server: RedisServer, emu: EmulatorProcess, make_worker: Callable[..., WorkerProcess]
) -> None:
    iso = isolated(settings, redis_server, 12, {"GEMINI_BASE_URL": emu.url})
    make_worker("dayfallback", env=iso.env, concurrency=2)
    iso.redis.hset(keys.limiter("gemini-2.5-pro", "state"), "closed_until", int(time.time() * 1000) + 600_000)
    marker = tag()
    job = iso.api.wait(iso.api.submit(prompt=f"closed {marker}", model="gemini-2.5-pro",
                                      fallback_models=["gemini-2.5-flash"])["id"])
    assert (job["status"], job["result"]["model"]) == ("succeeded", "gemini-2.5-flash")
    assert [c["model"] for c in calls(emu, marker)] == ["gemini-2.5-flash"]


def test_a_killed_workers_concurrency_slot_comes_back(
    settings: Settings, redis_server: RedisServer, emu: EmulatorProcess, make_worker: Callable[..., WorkerProcess]
) -> None:
    # Given one concurrency slot held by a job on a worker that is then killed
    iso = isolated(settings, redis_server, 13, {"GEMINI_BASE_URL": emu.url, "GEMQ_LIMITS": f"{MODEL}:concurrency=1",
                                                "GEMQ_LIMITER_LEASE": "2", "GEMQ_VISIBILITY_TIMEOUT": "8"})
    doomed = make_worker("doomed", env=iso.env, concurrency=2)
    stuck = tag()
    emu.fault(stuck, "hang", hang_s=20)
    held = iso.api.submit(prompt=f"stuck {stuck}")
    iso.api.wait(held["id"], statuses={"running"})
    doomed.kill()
    # When another worker runs a new job
    make_worker("rescuer", env=iso.env, concurrency=2)
    started = time.monotonic()
    fresh = iso.api.wait(iso.api.submit(prompt=f"fresh {tag()}")["id"], timeout=20)
    # Then the slot came back once its lease lapsed, long before the stuck call would have ended
    assert fresh["status"] == "succeeded"
    assert time.monotonic() - started < 10
    # And the killed worker's job itself is redelivered and finishes
    assert iso.api.wait(held["id"], timeout=40)["status"] == "succeeded"


def test_the_token_charge_is_settled_to_what_gemini_counted(
    settings: Settings, redis_server: RedisServer, emu: EmulatorProcess, make_worker: Callable[..., WorkerProcess]
) -> None:
    iso = isolated(settings, redis_server, 14, {"GEMINI_BASE_URL": emu.url, "GEMQ_LIMITS": f"{MODEL}:tpm=100000"})
    make_worker("tokens", env=iso.env, concurrency=2)
    prompt = "count these words please, all of them, carefully " * 20 + tag()
    job = iso.api.wait(iso.api.submit(prompt=prompt)["id"])
    counted = job["result"]["usage"]["prompt_tokens"]
    estimate = len(prompt) // 4
    assert counted != estimate, "the emulator counts differently from the estimate"
    # Settlement rides on the slot's release, just after the job's final transition.
    wait_until(lambda: int(iso.redis.hget(keys.limiter(MODEL, "state"), "tokens")) == counted, timeout=5,
               what="the charge to be settled")


def test_limits_endpoint_shows_limits_and_use(
    settings: Settings, redis_server: RedisServer, emu: EmulatorProcess, make_worker: Callable[..., WorkerProcess]
) -> None:
    iso = isolated(settings, redis_server, 15, {"GEMINI_BASE_URL": emu.url,
                                                "GEMQ_LIMITS": f"{MODEL}:rpm=50,tpm=90000,rpd=1000,concurrency=5"})
    make_worker("usage", env=iso.env, concurrency=2)
    iso.api.wait(iso.api.submit(prompt=f"use {tag()}")["id"])

    def row() -> dict[str, Any]:
        return next(m for m in iso.api.get("/v1/limits").get_json()["models"] if m["model"] == MODEL)

    assert row()["limits"] == {"rpm": 50, "tpm": 90000, "rpd": 1000, "concurrency": 5}
    assert row()["use"]["requests_in_window"] == 1 and row()["use"]["requests_today"] == 1
    # The worker gives the slot back just after it finishes the job.
    wait_until(lambda: row()["use"]["in_flight"] == 0, timeout=5, what="the slot to be released")
