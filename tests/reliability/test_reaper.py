"""The reaper: a job whose message vanished from the broker is re-published and completes; a job
whose message still waits in a queue is left alone; the active index keeps unfinished jobs only."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from helpers import job_events, tag, tag_of
from procs import EmulatorProcess, WorkerProcess, wait_until
from stack import Stack

from worker.core import keys
from worker.queue.app import create_celery
from worker.queue.publisher import CeleryPublisher

#: Idle for 2 + 1 s means lost, unless the broker still holds the job's message; a pass every 0.5 s.
REAPER_ENV = {"GEMQ_VISIBILITY_TIMEOUT": "2", "GEMQ_REAPER_MARGIN": "1", "GEMQ_REAPER_INTERVAL": "0.5"}
#: The worker takes high and normal work, so a low job's message stays in its queue.
NOT_LOW = f"{keys.JOB_QUEUES['high']},{keys.JOB_QUEUES['normal']}"


def test_lost_messages_are_republished_and_waiting_ones_left_alone(
    stack: Stack, emu: EmulatorProcess, make_worker: Callable[..., WorkerProcess]
) -> None:
    api = stack.api
    client = stack.redis.client()
    # Given, with no worker running: a queued job whose message is deleted from its queue,
    marker = tag()
    lost = api.submit(prompt=f"lost {marker}")["id"]
    client.delete(keys.broker_queue(keys.JOB_QUEUES["normal"]))
    # a job left `running` by a worker whose message is gone too,
    stranded = api.submit(prompt=f"stranded {tag()}", priority="high")["id"]
    client.delete(keys.broker_queue(keys.JOB_QUEUES["high"]))
    client.hset(keys.job(stranded), "status", "running")
    # a low job whose message waits in its queue (no worker takes low work), and an index entry with no job
    waiting = api.submit(prompt=f"waiting {tag()}", priority="low")["id"]
    client.zadd(keys.active(), {"no-such-job": 1})
    created = client.zscore(keys.active(), waiting)

    # When a worker with a reaper runs
    worker = make_worker("reaper", env={**stack.env, **REAPER_ENV}, concurrency=4, queues=NOT_LOW)
    ready = time.monotonic()

    # Then the lost and the stranded jobs are re-published and succeed
    assert api.wait(lost, timeout=20)["status"] == "succeeded"
    assert api.wait(stranded, timeout=10)["status"] == "succeeded"
    print(f"\nreaper: lost job done {time.monotonic() - ready:.1f} s after the worker was ready (threshold 3 s)")
    assert job_events(stack.redis, lost) == ["queued", "running", "succeeded"]
    reaped = [line for line in worker.logfile.read_text().splitlines() if "job.reaped" in line]
    assert len(reaped) == 2 and any(lost in line for line in reaped) and any(stranded in line for line in reaped)
    # while the waiting job was found in its queue: marked alive, not published twice
    assert client.llen(keys.broker_queue(keys.JOB_QUEUES["low"])) == 1
    assert client.zscore(keys.active(), waiting) > created
    assert api.job(waiting)["status"] == "queued"
    # and the index holds the unfinished job only
    wait_until(lambda: set(client.zrange(keys.active(), 0, -1)) == {waiting}, timeout=5, what="the index to settle")
    api.post(f"/v1/jobs/{waiting}/cancel")
    assert client.zcard(keys.active()) == 0

    # A duplicate message for a finished job changes nothing: the result was written once
    CeleryPublisher(create_celery(stack.settings())).publish_job(lost, "normal")
    wait_until(lambda: client.llen(keys.broker_queue(keys.JOB_QUEUES["normal"])) == 0, timeout=5, what="the queue")
    time.sleep(0.5)
    assert job_events(stack.redis, lost) == ["queued", "running", "succeeded"]
    assert len(emu.requests(tag=tag_of(marker))) == 1


def test_jobs_waiting_for_capacity_longer_than_the_threshold_are_not_reaped(
    stack: Stack, emu: EmulatorProcess, make_worker: Callable[..., WorkerProcess]
) -> None:
    # Given one call at a time on a model (each takes 1.5 s), every wait re-queued with a countdown
    env = {**stack.env, **REAPER_ENV, "GEMQ_LIMITS": "gemini-2.5-pro:concurrency=1", "GEMQ_ADMISSION_SLEEP_MAX": "0"}
    api = stack.api
    worker = make_worker("capacity", env=env, concurrency=8)
    marker = tag()
    emu.fault(marker, "hang", hang_s=1.5, times=4)
    # When 4 jobs wait their turn (the last one about 4.5 s, longer than the reaper's 3 s)
    ids = [api.submit(prompt=f"paced {i} {marker}", model="gemini-2.5-pro")["id"] for i in range(4)]
    jobs = [api.wait(job_id, timeout=30) for job_id in ids]
    # Then each ran once: the reaper never took a waiting job for a lost one
    assert [j["status"] for j in jobs] == ["succeeded"] * 4
    assert max(stamp(j["started_at"]) - stamp(j["created_at"]) for j in jobs) > 3.0
    assert "job.reaped" not in worker.logfile.read_text()
    assert len(emu.requests(tag=tag_of(marker))) == 4
    for job_id in ids:
        assert job_events(stack.redis, job_id) == ["queued", "running", "succeeded"]


def stamp(iso: str) -> float:
    """Seconds since the epoch of an API timestamp."""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
