"""Redis restarted (AOF, ``appendfsync everysec``), cleanly and by SIGKILL: finished and queued jobs
survive, the web answers 503 while it is down and recovers by itself, workers reconnect and go on."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from helpers import tag
from procs import EmulatorProcess, WorkerProcess, wait_until
from stack import Stack

from worker.core import keys

#: Seconds to let ``appendfsync everysec`` write what came before (Redis fsyncs once a second).
FSYNC_S = 1.5
#: The one worker consumes high and normal work only, so low jobs stay queued across the restarts.
NOT_LOW = f"{keys.JOB_QUEUES['high']},{keys.JOB_QUEUES['normal']}"


def snapshot(stack: Stack, ids: list[str]) -> list[dict[str, Any]]:
    """The jobs as the API shows them."""
    return [stack.api.job(job_id) for job_id in ids]


def down_then_back(stack: Stack, stop: Callable[[], None]) -> float:
    """Stop Redis with ``stop``, check the web answers 503 meanwhile, start it again; seconds down."""
    stop()
    stopped = time.monotonic()
    submit = stack.api.post("/v1/jobs", {"prompt": "while down"})
    read = stack.api.get("/v1/jobs?limit=1")
    assert (submit.status_code, read.status_code) == (503, 503), (submit.get_json(), read.get_json())
    assert submit.get_json()["error"]["type"] == "unavailable" and submit.headers["Retry-After"] == "1"
    assert stack.api.client.get("/readyz").status_code == 503
    stack.redis.start()
    return time.monotonic() - stopped


def test_jobs_survive_redis_restarts_and_everything_reconnects(
    stack: Stack, emu: EmulatorProcess, make_worker: Callable[..., WorkerProcess]
) -> None:
    # Given finished jobs, and queued low jobs no worker takes yet
    make_worker("restart", env=stack.env, concurrency=8, queues=NOT_LOW)
    finished = [stack.api.submit(prompt=f"done {i} {tag()}")["id"] for i in range(5)]
    before = [stack.api.wait(job_id) for job_id in finished]
    queued = [stack.api.submit(prompt=f"waits {i} {tag()}", priority="low")["id"] for i in range(5)]
    # and a job in flight across the restarts (its calls hang 3 s)
    slow = tag()
    emu.fault(slow, "hang", hang_s=3, times=2)
    in_flight = stack.api.submit(prompt=f"in flight {slow}")["id"]
    stack.api.wait(in_flight, statuses={"running"})
    time.sleep(FSYNC_S)

    for how, stop in (("SIGTERM", stack.redis.stop), ("SIGKILL", stack.redis.kill)):
        # When Redis goes down and comes back
        down_for = down_then_back(stack, stop)
        # Then what was acknowledged more than a second before is all there
        assert snapshot(stack, finished) == before, how
        assert {j["status"] for j in snapshot(stack, queued)} == {"queued"}, how
        assert stack.redis.client().llen(keys.broker_queue(keys.JOB_QUEUES["low"])) == len(queued), how
        # and the web and the worker recover by themselves: a new job is accepted and runs
        started = time.monotonic()
        fresh = stack.api.submit(prompt=f"after {how} {tag()}")
        assert stack.api.wait(fresh["id"], timeout=30)["status"] == "succeeded", how
        print(f"\nRedis {how}: down {down_for:.2f} s; a new job succeeded {time.monotonic() - started:.1f} s after")
        time.sleep(FSYNC_S)

    # The job in flight during the restarts finishes too, once
    assert stack.api.wait(in_flight, timeout=30)["status"] == "succeeded"
    # And the queued jobs run once a worker takes low work
    make_worker("low", env=stack.env, concurrency=5)
    assert {stack.api.wait(job_id, timeout=30)["status"] for job_id in queued} == {"succeeded"}
    wait_until(lambda: stack.redis.client().zcard(keys.active()) == 0, timeout=5, what="the active index to empty")
