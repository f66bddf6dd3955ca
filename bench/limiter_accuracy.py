"""Limiter accuracy: 600 RPM, 2 worker processes, 1,500 jobs, 2 minutes, against an emulator that
enforces the same 600 RPM quota.  Then, in the same run, Celery's own ``rate_limit="600/m"`` with
the same 2 workers for comparison.

Figures: the most calls in any 60 s window (goal <= 600), use = calls in the first 120 s / 1,200
(goal >= 97%), and the emulator's 429s (goal 0).

    .venv/bin/python bench/limiter_accuracy.py [--rpm 600] [--jobs 1500] [--seconds 120]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from harness import Stack, machine, stack  # noqa: E402
from throughput import submit_all  # noqa: E402

MODEL = "gemini-2.5-flash"


def window_figures(log: list[dict[str, Any]], rpm: int, seconds: float) -> dict[str, Any]:
    """Most calls in any 60 s window, use over ``seconds``, and 429s, from the emulator's log."""
    calls = sorted(c["ts"] for c in log if c["status"] != 429)
    refused = sum(1 for c in log if c["status"] == 429)
    start = min(c["ts"] for c in log) if log else 0.0
    busiest = max((sum(1 for t in calls[i:] if t < s + 60) for i, s in enumerate(calls)), default=0)
    in_period = sum(1 for t in calls if t < start + seconds)
    return {"calls": len(calls), "emulator_429s": refused, "max_calls_in_any_60s": busiest,
            "use_of_limit": round(in_period / (rpm * seconds / 60), 4)}


def run_gemq(running: Stack, args: argparse.Namespace) -> dict[str, Any]:
    """gemq's limiter with two workers."""
    assert running.web and running.emulator
    for i in range(2):
        running.start_worker(f"gemq{i}", concurrency=50)
    started = time.monotonic()
    submit_all(running.web.url, args.jobs, 16)
    time.sleep(max(0.0, args.seconds + 5 - (time.monotonic() - started)))
    log = running.emulator.requests(model=MODEL)
    running.kill_workers()
    return window_figures(log, args.rpm, args.seconds)


def run_celery(running: Stack, args: argparse.Namespace) -> dict[str, Any]:
    """Celery's per-worker rate_limit with two workers, on a fresh quota."""
    assert running.emulator and running.redis
    running.emulator.reset()
    url = running.redis.url.replace("/0", "/1")
    env = {"REDIS_URL": url, "PYTHONPATH": str(BENCH), "BENCH_RATE_LIMIT": f"{args.rpm}/m"}
    for i in range(2):
        running.start_worker(f"celery{i}", concurrency=50, app="celery_ratelimit_app", env=env, wait=False)
    time.sleep(3)
    os.environ["REDIS_URL"] = url  # the app module reads its broker URL when first imported
    from celery_ratelimit_app import app, call_gemini

    started = time.monotonic()
    with app.producer_or_acquire() as producer:
        for n in range(args.jobs):
            call_gemini.apply_async(args=[f"celery {n}"], producer=producer)
    time.sleep(max(0.0, args.seconds + 5 - (time.monotonic() - started)))
    return window_figures(running.emulator.requests(model=MODEL), args.rpm, args.seconds)


def main() -> None:
    """Both runs in one stack; JSON on stdout."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rpm", type=int, default=600)
    parser.add_argument("--jobs", type=int, default=1500)
    parser.add_argument("--seconds", type=float, default=120)
    args = parser.parse_args()
    with stack() as running:
        running.start_base(emulator_args=("--rpm", str(args.rpm)),
                           env={"GEMQ_LIMITS": f"{MODEL}:rpm={args.rpm}", "GEMQ_WORKER_CONCURRENCY": "50"})
        running.start_web()
        gemq = run_gemq(running, args)
        celery = run_celery(running, args)
    print(json.dumps({"gemq": gemq, "celery_rate_limit": celery, "args": vars(args), "machine": machine()}, indent=2))


if __name__ == "__main__":
    main()
