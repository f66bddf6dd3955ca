"""Priority under saturation: a 300 RPM limit, 2,000 low jobs queued, then 20 high jobs.

Each high job's wait is the time from its submit (client clock) to its call reaching the emulator
(the emulator's log).  Goal: p99 <= 2 x (60 / rpm) s + 1 s = 1.4 s at 300 RPM.  Under FIFO the
high jobs would wait behind the low backlog: (2,000 - the first window's calls) / 300 per minute.

    .venv/bin/python bench/limiter_priority.py [--rpm 300] [--low 2000] [--high 20] [--waves 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from harness import API_KEY, machine, percentile, stack, wait_until  # noqa: E402
from throughput import submit_all  # noqa: E402

MODEL = "gemini-2.5-flash"


def high_wave(url: str, emulator: Any, wave: int, count: int) -> dict[str, Any]:
    """Submit ``count`` high jobs one after another; their waits from submit to call."""
    submitted: dict[str, float] = {}
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {API_KEY}"}, trust_env=False) as http:
        for i in range(count):
            tag = f"w{wave}h{i}"
            submitted[tag] = time.time()
            http.post("/v1/jobs", json={"prompt": f"urgent [[tag:{tag}]]", "priority": "high"}).raise_for_status()

    def called() -> dict[str, float]:
        seen = {c["tag"]: c["ts"] for c in emulator.requests(since=min(submitted.values()) - 1) if c["tag"]}
        return seen if all(t in seen for t in submitted) else {}

    at = wait_until(called, timeout=120, interval=0.2, what="every high job to be called")
    waits = [at[t] - submitted[t] for t in submitted]
    return {"wave": wave, "p50_s": round(percentile(waits, 50), 3), "p99_s": round(percentile(waits, 99), 3),
            "max_s": round(max(waits), 3)}


def main() -> None:
    """Fill the window with low jobs, then send waves of high ones; JSON on stdout."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rpm", type=int, default=300)
    parser.add_argument("--low", type=int, default=2000)
    parser.add_argument("--high", type=int, default=20)
    parser.add_argument("--waves", type=int, default=2)
    args = parser.parse_args()
    with stack() as running:
        running.start_base(emulator_args=("--rpm", str(args.rpm)), env={"GEMQ_LIMITS": f"{MODEL}:rpm={args.rpm}"})
        running.start_web()
        for i in range(2):
            running.start_worker(f"w{i}", concurrency=50)
        assert running.web and running.emulator
        started = time.monotonic()
        submit_all(running.web.url, args.low, 16, priority="low")
        waves = []
        for wave in range(args.waves):
            # The first wave lands mid-way through the first window, the next ones mid-way through later ones.
            time.sleep(max(0.0, started + 15 + 60 * wave - time.monotonic()))
            waves.append(high_wave(running.web.url, running.emulator, wave, args.high))
        log = running.emulator.requests(model=MODEL)
    goal = 2 * 60 / args.rpm + 1
    result = {"waves": waves, "goal_p99_s": goal, "emulator_429s": sum(1 for c in log if c["status"] == 429),
              "fifo_wait_estimate_s": round((args.low - args.rpm) / args.rpm * 60), "args": vars(args),
              "machine": machine()}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
