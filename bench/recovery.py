"""Recovery times under faults: a worker SIGKILLed mid-job, Redis restarted (SIGTERM and SIGKILL),
a message lost from the broker (the reaper).

Each scenario runs on a private stack (redis-server with AOF ``everysec``, the emulator, gunicorn,
Celery workers) and prints what it measured:

- ``kill``: N jobs whose calls hang are running in a worker; it is SIGKILLed and another worker
  starts at once.  Time from the kill until every job succeeded (kombu restores the unacknowledged
  messages once they are older than the visibility timeout, at its next 10 s sweep).
- ``redis``: Redis stops (SIGTERM, then in a second round SIGKILL) for ``--down`` seconds and starts
  again.  Time from the restart until the web accepts a job, and until a new job has succeeded
  (the worker's consumer reconnects with kombu's backoff: 2 s, 4 s, 6 s ... capped at 30 s).
- ``reaper``: a queued job's message is deleted from its queue.  Time from the job's submission
  until it succeeded (the reaper takes it for lost after visibility timeout + margin).

    .venv/bin/python bench/recovery.py --visibility 6 --jobs 50 --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import API_KEY, Stack, machine, stack, wait_until  # noqa: E402


def client(running: Stack) -> httpx.Client:
    """The API as the bench tenant."""
    assert running.web is not None
    return httpx.Client(base_url=running.web.url, timeout=10, trust_env=False,
                        headers={"Authorization": f"Bearer {API_KEY}"})


def submit(api: httpx.Client, prompt: str) -> str:
    """A new job's id."""
    response = api.post("/v1/jobs", json={"prompt": prompt})
    response.raise_for_status()
    return str(response.json()["id"])


def all_done(api: httpx.Client, ids: list[str]) -> bool:
    """True once every job succeeded."""
    return all(api.get(f"/v1/jobs/{i}").json()["status"] == "succeeded" for i in ids)


def kill_round(running: Stack, api: httpx.Client, jobs: int, index: int) -> float:
    """Seconds from SIGKILL of a worker running ``jobs`` hanging calls until they all succeeded."""
    assert running.emulator is not None
    marker = f"kill-{index}-{time.time_ns()}"
    running.emulator.fault(marker, "hang", hang_s=120, times=jobs)
    doomed = running.start_worker(f"doomed-{index}", concurrency=jobs)
    ids = [submit(api, f"{marker} {i}") for i in range(jobs)]
    wait_until(lambda: all(api.get(f"/v1/jobs/{i}").json()["status"] == "running" for i in ids), timeout=60)
    doomed.kill()
    killed = time.monotonic()
    survivor = running.start_worker(f"survivor-{index}", concurrency=jobs)
    wait_until(lambda: all_done(api, ids), timeout=120, interval=0.1)
    took = time.monotonic() - killed
    survivor.stop()
    return took


def redis_round(running: Stack, api: httpx.Client, how: str, down: float) -> dict[str, float]:
    """Seconds from Redis's restart until a job is accepted, and until a new job has succeeded."""
    assert running.redis is not None
    time.sleep(1.5)  # let everysec write what came before
    (running.redis.stop if how == "SIGTERM" else running.redis.kill)()
    time.sleep(down)
    running.redis.start()
    back = time.monotonic()
    job_id = wait_until(lambda: submit(api, f"after {how}"), timeout=60, interval=0.05)
    accepted = time.monotonic() - back
    wait_until(lambda: all_done(api, [job_id]), timeout=60, interval=0.05)
    return {"accepted_s": accepted, "succeeded_s": time.monotonic() - back}


def reaper_round(running: Stack, api: httpx.Client, threshold: float) -> float:
    """Seconds from submitting a job whose message is then deleted until it succeeded."""
    assert running.redis is not None
    # No worker takes low work here, so the message can be deleted before anyone consumes it.
    low = api.post("/v1/jobs", json={"prompt": "lost", "priority": "low"})
    low.raise_for_status()
    job_id = low.json()["id"]
    submitted = time.monotonic()
    running.redis.client().delete("gemq:broker:jobs-2-low")
    running.start_worker("low", concurrency=2)
    wait_until(lambda: all_done(api, [job_id]), timeout=threshold + 60, interval=0.1)
    return time.monotonic() - submitted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--visibility", type=int, default=6, help="GEMQ_VISIBILITY_TIMEOUT for the workers")
    parser.add_argument("--margin", type=float, default=3, help="GEMQ_REAPER_MARGIN for the workers")
    parser.add_argument("--jobs", type=int, default=50, help="jobs in flight when the worker is killed")
    parser.add_argument("--rounds", type=int, default=3, help="kill rounds")
    parser.add_argument("--down", type=float, default=2.0, help="seconds Redis stays down")
    args = parser.parse_args()
    env = {"GEMQ_VISIBILITY_TIMEOUT": str(args.visibility), "GEMQ_REAPER_MARGIN": str(args.margin),
           "GEMQ_REAPER_INTERVAL": "1"}
    results: dict[str, Any] = {"machine": machine(), "visibility_timeout": args.visibility}
    with stack() as running:
        running.start_base(env=env, appendonly=True)
        running.start_web()
        api = client(running)
        kills = [kill_round(running, api, args.jobs, i) for i in range(args.rounds)]
        results["kill_s"] = {"each": [round(k, 1) for k in kills], "median": round(statistics.median(kills), 1)}
        print("kill:", results["kill_s"], flush=True)
        running.start_worker("steady", concurrency=8)
        results["redis"] = {how: redis_round(running, api, how, args.down) for how in ("SIGTERM", "SIGKILL")}
        print("redis:", results["redis"], flush=True)
    with stack() as running:
        running.start_base(env=env)
        running.start_web()
        results["reaper_s"] = round(reaper_round(running, client(running), args.visibility + args.margin), 1)
        print("reaper:", results["reaper_s"], f"(threshold {args.visibility + args.margin} s)", flush=True)
    print(results)


if __name__ == "__main__":
    main()
