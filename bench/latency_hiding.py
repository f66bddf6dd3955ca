"""Latency hiding: with Gemini taking 2 s per call, one worker process at concurrency 200 should
finish close to 200 / 2 s = 100 jobs/s.  Goal: achieved / (concurrency / seconds per call) >= 0.9
(Celery reaches about 0.72 in published runs).

The emulator answers every call after ``--call-seconds`` (time to first token; the text follows at
once).  Jobs are queued first; the rate is measured over a steady window from the records'
``finished_ms`` (the first and last seconds, while the pool fills and drains, are left out).

    .venv/bin/python bench/latency_hiding.py [--concurrency 200] [--call-seconds 2] [--jobs 4000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import machine, stack, wait_until  # noqa: E402
from throughput import submit_all  # noqa: E402


def main() -> None:
    """Queue the jobs, start one worker, measure its steady rate; JSON on stdout."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--call-seconds", type=float, default=2.0)
    parser.add_argument("--jobs", type=int, default=4000)
    args = parser.parse_args()
    with stack() as running:
        running.start_base(emulator_args=("--ttft-ms", str(int(args.call_seconds * 1000))),
                           env={"GEMQ_WORKER_CONCURRENCY": str(args.concurrency)})
        web = running.start_web()
        ids = submit_all(web.url, args.jobs, 16)
        assert running.redis
        client = running.redis.client()
        started = time.time()
        running.start_worker("w", concurrency=args.concurrency)

        def finished() -> list[tuple[int, int]]:
            pipe = client.pipeline(transaction=False)
            for job_id in ids:
                pipe.hmget(f"gemq:job:{job_id}", "started_ms", "finished_ms")
            done = [(int(s), int(f)) for s, f in pipe.execute() if f]
            return done if len(done) == len(ids) else []

        runs = wait_until(finished, timeout=600, interval=1.0, what="every job to finish")
    done = sorted(f for _, f in runs)
    first, last = done[0], done[-1]
    # Steady window: leave out the first call's worth of time and the last 10% of jobs (the drain).
    lo, hi = first + int(args.call_seconds * 1000), done[int(len(done) * 0.9)]
    steady = [t for t in done if lo <= t <= hi]
    rate = len(steady) / ((hi - lo) / 1000)
    ideal = args.concurrency / args.call_seconds
    # How long each job's call took in the worker (started_ms -> finished_ms), against the emulator's delay.
    calls = sorted(f - s for s, f in runs if lo <= f <= hi)
    print(json.dumps({"jobs_per_s": round(rate, 1), "ideal_jobs_per_s": ideal, "ratio": round(rate / ideal, 3),
                      "whole_run_jobs_per_s": round(len(done) / ((last - started * 1000) / 1000), 1),
                      "call_ms": {"p50": calls[len(calls) // 2], "p90": calls[int(len(calls) * 0.9)]},
                      "args": vars(args), "machine": machine()}, indent=2))


if __name__ == "__main__":
    main()
