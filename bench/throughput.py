"""Throughput: gemq jobs/s end to end, divided by raw Celery no-op tasks/s through the same Redis.

gemq: N jobs submitted over HTTP (gunicorn, C client threads) -> worker -> emulator at zero latency
-> result stored; the rate is N / (last finished_ms - first created_ms), read from the job records.
Raw Celery: N no-op tasks published as fast as one client can; the rate is N / (last done - first
publish).  Two baselines, same Redis, same run: Celery out of the box (one worker, prefork pool,
concurrency = cores) -- the "raw Celery" the goal refers to -- and a worker set up like gemq's
(threads pool, same concurrency and process count).  Goal: ratio >= 0.5.

Then the bare pipeline (bench/bare_app.py), the parts the issue prescribes with no gemq code: the
same gunicorn, a Flask route publishing by task name, the same worker shape streaming the prompt
through google-genai from the same emulator and storing the text; once without the Gemini call
(HTTP + Celery alone).  Its ratio to raw Celery is the most any implementation on that stack can
reach here; ``gemq_vs_bare`` is gemq's share of it.

    .venv/bin/python bench/throughput.py [--jobs 3000] [--clients 16] [--workers 1] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from pathlib import Path

import aiohttp
import psutil
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import API_KEY, Stack, machine, stack, wait_until  # noqa: E402


def submit_all(url: str, jobs: int, clients: int, priority: str = "normal") -> list[str]:
    """Submit ``jobs`` jobs over ``clients`` concurrent connections (aiohttp: a cheap load generator)."""
    return asyncio.run(_submit_all(url, jobs, clients, priority))


async def _submit_all(url: str, jobs: int, clients: int, priority: str) -> list[str]:
    ids: list[str] = []
    todo = iter(range(jobs))
    headers = {"Authorization": f"Bearer {API_KEY}"}
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(url, headers=headers, connector=connector) as session:

        async def client() -> None:
            for n in todo:
                body = {"prompt": f"throughput {n}", "priority": priority}
                async with session.post("/v1/jobs", json=body) as response:
                    response.raise_for_status()
                    ids.append((await response.json())["id"])

        await asyncio.gather(*(client() for _ in range(clients)))
    return ids


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of processes and their children so far."""
    total = 0.0
    for pid in pids:
        for proc in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def own_cpu() -> float:
    """This process's CPU seconds (the load generator)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def gemq_rate(running: Stack, jobs: int, clients: int) -> dict[str, object]:
    """Jobs/s end to end, from the records' own timestamps, and each process's CPU per job."""
    assert running.web and running.redis and running.emulator
    groups = {"web": [running.web.proc.pid], "workers": [w.proc.pid for w in running.workers],
              "emulator": [running.emulator.proc.pid], "redis": [running.redis.proc.pid]}
    before = {name: cpu_seconds(pids) for name, pids in groups.items()}
    before["load_generator"] = own_cpu()
    ids = submit_all(running.web.url, jobs, clients)
    client = running.redis.client()

    def finished() -> bool:
        pipe = client.pipeline(transaction=False)
        for job_id in ids:
            pipe.hget(f"gemq:job:{job_id}", "status")
        return all(s == "succeeded" for s in pipe.execute())

    wait_until(finished, timeout=600, interval=0.5, what="every job to succeed")
    pipe = client.pipeline(transaction=False)
    for job_id in ids:
        pipe.hmget(f"gemq:job:{job_id}", "created_ms", "finished_ms")
    times = [(int(c), int(f)) for c, f in pipe.execute()]
    span = (max(f for _, f in times) - min(c for c, _ in times)) / 1000
    after = {name: cpu_seconds(pids) for name, pids in groups.items()}
    after["load_generator"] = own_cpu()
    cpu_ms = {name: round((after[name] - before[name]) * 1000 / jobs, 2) for name in after}
    return {"jobs": jobs, "seconds": round(span, 3), "jobs_per_s": round(jobs / span, 1), "cpu_ms_per_job": cpu_ms}


def start_baseline_workers(running: Stack, app: str, name: str, env: dict[str, str], workers: int,
                           concurrency: int | None, pool: str | None = "threads") -> redis.Redis:
    """Start a baseline app's workers on ``env["REDIS_URL"]`` and wait until they consume; a client on that Redis."""
    for i in range(workers):
        running.start_worker(f"{name}-{i}", concurrency=concurrency, app=app, env=env, wait=False, pool=pool)
    client = redis.Redis.from_url(env["REDIS_URL"])
    wait_until(lambda: len(client.keys("_kombu.binding.*")) > 0, timeout=30, what=f"the {app} worker")
    time.sleep(2)  # let every worker connect
    return client


def bare_rate(running: Stack, jobs: int, clients: int, workers: int, concurrency: int, web_workers: int, *,
              db: int, gemini: bool = True) -> dict[str, object]:
    """Jobs/s through the bare pipeline (bench/bare_app.py): same gunicorn, Celery, SDK and emulator, no gemq.

    Without ``gemini`` the task stores the prompt instead of calling Gemini: HTTP and Celery alone.
    """
    assert running.redis and running.emulator
    url = running.redis.url.replace("/0", f"/{db}")
    env = {"REDIS_URL": url, "PYTHONPATH": str(Path(__file__).resolve().parent), "BARE_TASK": "" if gemini else "noop"}
    web = running.start_web(workers=web_workers, env=env, app="bare_app:create_web()")
    client = start_baseline_workers(running, "bare_app", f"bare{db}", env, workers, concurrency)
    from bare_app import DONE_KEY

    groups = {"web": [web.proc.pid], "workers": [w.proc.pid for w in running.workers]}
    before = {name: cpu_seconds(pids) for name, pids in groups.items()}
    start = time.monotonic()
    submit_all(web.url, jobs, clients)
    wait_until(lambda: int(client.get(DONE_KEY) or 0) >= jobs, timeout=600, interval=0.05, what="every bare job")
    span = time.monotonic() - start
    cpu_ms = {name: round((cpu_seconds(pids) - before[name]) * 1000 / jobs, 2) for name, pids in groups.items()}
    web.stop()
    running.kill_workers()
    return {"jobs": jobs, "seconds": round(span, 3), "jobs_per_s": round(jobs / span, 1), "cpu_ms_per_job": cpu_ms}


def celery_rate(running: Stack, tasks: int, workers: int, concurrency: int | None, db: int,
                pool: str | None) -> dict[str, float]:
    """Raw Celery no-op tasks/s through the same Redis (its own database), with ``pool`` or Celery's default."""
    assert running.redis
    url = running.redis.url.replace("/0", f"/{db}")
    env = {"REDIS_URL": url, "PYTHONPATH": str(Path(__file__).resolve().parent), "BENCH_POOL": pool or ""}
    client = start_baseline_workers(running, "noop_app", f"noop{db}", env, workers, concurrency, pool=pool)
    from noop_app import DONE_KEY, make_app

    app = make_app(url)

    start = time.monotonic()
    with app.producer_or_acquire() as producer:
        for _ in range(tasks):
            app.send_task("bench.noop", producer=producer)
    wait_until(lambda: int(client.get(DONE_KEY) or 0) >= tasks, timeout=600, interval=0.05,
               what="every no-op task to run")
    span = time.monotonic() - start
    return {"tasks": tasks, "seconds": round(span, 3), "tasks_per_s": round(tasks / span, 1)}


def main() -> None:
    """Run both measurements in one stack and print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--web-workers", type=int, default=2)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    with stack() as running:
        running.start_base(env={"GEMQ_WORKER_CONCURRENCY": str(args.concurrency)})
        running.start_web(workers=args.web_workers)
        for i in range(args.workers):
            running.start_worker(f"gemq{i}", concurrency=args.concurrency)
        gemq = gemq_rate(running, args.jobs, args.clients)
        running.kill_workers()
        raw = celery_rate(running, args.jobs, 1, None, 1, None)
        running.kill_workers()
        raw_threads = celery_rate(running, args.jobs, args.workers, args.concurrency, 2, "threads")
        running.kill_workers()
        bare_http = bare_rate(running, args.jobs, args.clients, args.workers, args.concurrency, args.web_workers,
                              db=3, gemini=False)
        bare = bare_rate(running, args.jobs, args.clients, args.workers, args.concurrency, args.web_workers, db=4)
    rate = float(gemq["jobs_per_s"])
    bare_jobs_per_s = float(bare["jobs_per_s"])
    result = {"gemq": gemq, "raw_celery_defaults": raw, "ratio": round(rate / raw["tasks_per_s"], 3),
              "raw_celery_threads_like_gemq": raw_threads,
              "ratio_vs_threads": round(rate / raw_threads["tasks_per_s"], 3),
              "bare_http_celery": bare_http,
              "bare_http_celery_ratio": round(float(bare_http["jobs_per_s"]) / raw["tasks_per_s"], 3),
              "bare_pipeline": bare, "bare_ratio": round(bare_jobs_per_s / raw["tasks_per_s"], 3),
              "gemq_vs_bare": round(rate / bare_jobs_per_s, 3),
              "args": vars(args), "machine": machine()}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
