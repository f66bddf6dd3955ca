"""Gemini misbehaving (503s, hangs past the timeout, errors mid-stream, malformed bodies): every job
ends ``succeeded`` within the retry policy or ``failed`` with a typed error once it is spent; none hangs."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import tag
from procs import EmulatorProcess, WorkerProcess, wait_until
from stack import Stack

#: The retry policy under test: 4 attempts, short backoff, 1.5 s per call.
POLICY_ENV = {"GEMQ_MAX_ATTEMPTS": "4", "GEMQ_RETRY_BASE_DELAY": "0.1", "GEMQ_RETRY_MAX_DELAY": "0.5",
              "GEMQ_GEMINI_TIMEOUT": "1.5"}
#: Jobs left to the random faults.
JOBS = 40
#: Each attempt ends within the call timeout (1.5 s) and waits at most 0.5 s before the next one.
WORST_JOB_S = 4 * (1.5 + 0.5)


@pytest.fixture
def bad_gemini(run_dir: Path) -> Iterator[EmulatorProcess]:
    """An emulator of its own, misbehaving on every call at the rates of the issue."""
    emulator = EmulatorProcess(run_dir / "emulator-faults.log", "--chunk-tokens", "4", "--seed", "8").start()
    emulator.configure(error_rate=0.3, hang_rate=0.05, hang_seconds=5, midstream_error_rate=0.1, malformed_rate=0.1)
    yield emulator
    emulator.stop()


def test_every_job_ends_typed_within_the_policy(
    stack: Stack, bad_gemini: EmulatorProcess, make_worker: Callable[..., WorkerProcess]
) -> None:
    # Given a worker on a misbehaving Gemini, and jobs whose every call fails (503) or hangs
    make_worker("faults", env={**stack.env, **POLICY_ENV, "GEMINI_BASE_URL": bad_gemini.url}, concurrency=24)
    unavailable, hanging = tag(), tag()
    bad_gemini.fault(unavailable, "status", status=503, times=100)
    bad_gemini.fault(hanging, "hang", hang_s=5, times=100)
    # When 40 ordinary jobs and the 2 hopeless ones are submitted
    started = time.monotonic()
    ids = [stack.api.submit(prompt=f"weather {i} {tag()}")["id"] for i in range(JOBS)]
    doomed = {stack.api.submit(prompt=f"never {unavailable}")["id"]: "upstream_error",
              stack.api.submit(prompt=f"hangs {hanging}")["id"]: "timeout"}
    # Then every job ends, none later than its worst case under the policy (plus queueing)
    jobs = wait_until(lambda: (js := [stack.api.job(i) for i in [*ids, *doomed]])
                      and all(j["status"] in {"succeeded", "failed"} for j in js) and js,
                      timeout=WORST_JOB_S * 3 + 20, what="every job to end")
    elapsed = time.monotonic() - started
    outcomes = Counter(j["status"] for j in jobs[:JOBS])
    print(f"\nmisbehaving Gemini: {dict(outcomes)} of {JOBS} in {elapsed:.1f} s; "
          f"calls: {dict(Counter(r['outcome'] for r in bad_gemini.requests()))}")
    for job in jobs:
        if job["status"] == "succeeded":
            assert job["result"]["text"] and job["result"]["finish_reason"] == "STOP" and 1 <= job["attempts"] <= 4
        else:  # the policy was spent: four attempts, a typed error
            assert job["attempts"] == 4 and job["error"]["type"] in {"upstream_error", "timeout"}, job
    assert {j["id"]: j["error"]["type"] for j in jobs[JOBS:]} == doomed
    assert outcomes["succeeded"] >= JOBS * 0.8
    # And every kind of fault really happened
    seen = {r["outcome"] for r in bad_gemini.requests()}
    assert {"error", "hang", "midstream_error", "malformed"} <= seen
    assert stack.redis.client().zcard("gemq:active") == 0
