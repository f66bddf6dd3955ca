"""A worker SIGKILLed with jobs in flight: once a worker runs again, every one of them completes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from helpers import job_events, tag, tag_of
from procs import EmulatorProcess, WorkerProcess, wait_until
from stack import RESTORE_INTERVAL, VISIBILITY_TIMEOUT, Stack

#: Jobs in flight when the worker dies.
JOBS = 20
#: Seconds a worker takes to start and sweep (a loaded machine runs slower).
SLACK = 10


def test_jobs_in_flight_on_a_killed_worker_all_complete(
    stack: Stack, emu: EmulatorProcess, make_worker: Callable[..., WorkerProcess]
) -> None:
    # Given 20 jobs whose calls hang in a worker (the first 20 calls with this tag hang for a minute):
    # 10 submitted alone, 10 as the items of one batch
    marker = tag()
    emu.fault(marker, "hang", hang_s=60, times=JOBS)
    doomed = make_worker("doomed", env=stack.env, concurrency=JOBS)
    ids = [stack.api.submit(prompt=f"in flight {i} {marker}")["id"] for i in range(JOBS // 2)]
    batch = stack.api.post("/v1/batches", {"requests": [{"prompt": f"batched {i} {marker}"} for i in range(JOBS // 2)]})
    assert batch.status_code == 202, batch.get_json()
    batch_id = batch.get_json()["id"]
    ids += [json.loads(line)["id"] for line in
            stack.api.get(f"/v1/batches/{batch_id}/results").get_data(as_text=True).splitlines()]
    wait_until(lambda: all(stack.api.job(i)["status"] == "running" for i in ids), timeout=20, what="all running")
    # "running" is written just before the call: wait for every call to hang in the emulator
    wait_until(lambda: len(emu.requests(tag=tag_of(marker))) >= JOBS, timeout=20, what="every call to reach Gemini")

    # When the worker is SIGKILLed, and another worker starts
    doomed.kill()
    killed = time.monotonic()
    make_worker("after-kill", env=stack.env, concurrency=JOBS)

    # Then every job succeeds, within the visibility timeout plus one restore sweep (plus start-up)
    jobs = wait_until(lambda: (js := [stack.api.job(i) for i in ids]) and all(j["status"] == "succeeded" for j in js)
                      and js, timeout=VISIBILITY_TIMEOUT + RESTORE_INTERVAL + SLACK + 10, what="every job to succeed")
    recovery = time.monotonic() - killed
    print(f"\nrecovery after SIGKILL: {recovery:.1f} s for {JOBS} jobs (visibility timeout {VISIBILITY_TIMEOUT} s)")
    assert recovery <= VISIBILITY_TIMEOUT + RESTORE_INTERVAL + SLACK
    # Each job was started twice (the cut call, the redelivered one) and finished once
    assert all(j["attempts"] == 2 and j["result"]["text"] for j in jobs)
    for job_id in ids:
        events = [e for e in job_events(stack.redis, job_id) if e != "queued"]  # batch items have no queued event
        assert events == ["running", "running", "succeeded"], events
    assert len(emu.requests(tag=tag_of(marker))) == 2 * JOBS
    assert stack.redis.client().zcard("gemq:active") == 0
    # and the batch counted each item once
    shown = stack.api.get(f"/v1/batches/{batch_id}").get_json()
    assert (shown["status"], shown["done"], shown["counts"]["succeeded"]) == ("completed", JOBS // 2, JOBS // 2)
