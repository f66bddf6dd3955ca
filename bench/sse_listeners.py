"""Benchmark: many Server-Sent Events listeners on real gunicorn while clients keep submitting.

    .venv/bin/python bench/sse_listeners.py [--listeners 200] [--submits 400] [--clients 4]

Starts a private redis-server, the emulator (slow streaming: ``--tokens-per-second``,
``--output-tokens``, ``--chunk-tokens``) and gunicorn as the Procfile runs it (gevent, 2 workers), then measures
``POST /v1/jobs`` latency in four phases, the same number of submits each:

1. ``baseline``: no listeners, no worker.
2. ``idle_listeners``: the listeners are connected to queued jobs (no worker yet): heartbeats only.
3. ``worker_streaming_unlistened`` (the control): a Celery worker (threads = listeners) streams as
   many jobs nobody listens to, so its CPU load is there but no frame is sent.
4. ``worker_streaming_to_listeners``: the worker streams the listened jobs, so every listener
   receives a delta about every 250 ms while the submits are measured.

Phases 3 and 4 differ only by the frames pushed to the listeners.  Streamed jobs are ``high`` and
measured submits ``low``, so the worker runs the streamed jobs first.  Each phase also reports the
cores the gunicorn processes used (``web_cores``) and their memory.
The listeners run in their own process (asyncio + aiohttp); at the end each must have received
``done`` and deltas that add up to the final text.  Prints a JSON summary (``--out`` writes it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from procs import EmulatorProcess, RedisServer, WebProcess, WorkerProcess, wait_until  # noqa: E402

API_KEY = "bench-key"
HEADERS = {"Authorization": f"Bearer {API_KEY}"}
#: What the listener process counts.
COUNTERS = ("connected", "refused", "failed", "frames", "deltas", "done", "mismatched")


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def measure_submits(url: str, total: int, clients: int) -> dict[str, float]:
    """Submit ``total`` low-priority jobs from ``clients`` threads; latency in ms."""
    latencies: list[float] = []
    lock = threading.Lock()
    errors = 0

    def client(count: int) -> None:
        nonlocal errors
        with httpx.Client(base_url=url, headers=HEADERS, timeout=30, trust_env=False) as http:
            for i in range(count):
                started = time.perf_counter()
                response = http.post("/v1/jobs", json={"prompt": f"measure {i}", "priority": "low"})
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    latencies.append(elapsed)
                    errors += response.status_code != 202

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(total // clients,)) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    return {"n": len(latencies), "errors": errors, "p50_ms": round(percentile(latencies, 50), 1),
            "p99_ms": round(percentile(latencies, 99), 1), "max_ms": round(max(latencies), 1),
            "per_s": round(len(latencies) / wall, 1)}


def listen(url: str, job_ids: list[str], stats: Any) -> None:
    """Listener process: one SSE connection per job, until each sends ``done``."""
    asyncio.run(_listen_all(url, job_ids, stats))


async def _listen_all(url: str, job_ids: list[str], stats: Any) -> None:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=HEADERS) as session:
        outcomes = await asyncio.gather(*(_listen_one(session, url, job_id, stats) for job_id in job_ids),
                                        return_exceptions=True)
    with stats["lock"]:
        stats["failed"].value += sum(isinstance(o, BaseException) for o in outcomes)


async def _listen_one(session: Any, url: str, job_id: str, stats: Any) -> None:
    text: list[str] = []
    event = ""
    async with session.get(f"{url}/v1/jobs/{job_id}/events") as response:
        with stats["lock"]:
            stats["connected" if response.status == 200 else "refused"].value += 1
        if response.status != 200:
            return
        async for raw in response.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
                with stats["lock"]:
                    stats["frames"].value += 1
                if event == "delta":
                    text.append(data["text"])
                    with stats["lock"]:
                        stats["deltas"].value += 1
                elif event == "done":
                    ok = data["status"] == "succeeded" and "".join(text) == data["result"]["text"]
                    with stats["lock"]:
                        stats["done"].value += 1
                        stats["mismatched"].value += not ok
                    return


def web_usage(web: WebProcess) -> tuple[float, float]:
    """CPU seconds used so far and resident memory (MiB) of gunicorn's processes, master and workers."""
    import psutil

    assert web.proc is not None
    master = psutil.Process(web.proc.pid)
    processes = [master, *master.children()]
    cpu = sum(p.cpu_times().user + p.cpu_times().system for p in processes)
    return cpu, round(sum(p.memory_info().rss for p in processes) / 2**20, 1)


def phase(web: WebProcess, args: argparse.Namespace, stats: Any = None) -> dict[str, Any]:
    """Measure submits, and what the web process spent meanwhile (cores busy, memory, deltas sent)."""
    cpu_before, _ = web_usage(web)
    deltas_before = stats["deltas"].value if stats else 0
    started = time.perf_counter()
    figures = measure_submits(web.url, args.submits, args.clients)
    wall = time.perf_counter() - started
    cpu_after, rss = web_usage(web)
    figures.update(web_cores=round((cpu_after - cpu_before) / wall, 2), web_rss_mb=rss)
    if stats:
        figures["deltas_per_s"] = round((stats["deltas"].value - deltas_before) / wall, 1)
    return figures


def quiet_cores(web: WebProcess, seconds: float = 5.0) -> float:
    """Cores gunicorn uses over ``seconds`` with no submits (what listeners alone cost)."""
    before, _ = web_usage(web)
    time.sleep(seconds)
    after, _ = web_usage(web)
    return round((after - before) / seconds, 3)


def submit_batch(url: str, count: int, label: str) -> list[str]:
    """Submit ``count`` high-priority jobs; their ids."""
    with httpx.Client(base_url=url, headers=HEADERS, timeout=30, trust_env=False) as http:
        return [http.post("/v1/jobs", json={"prompt": f"{label} {i}", "priority": "high"}).json()["id"]
                for i in range(count)]


def start_listeners(url: str, job_ids: list[str]) -> tuple[Any, dict[str, Any]]:
    """The listener process and its shared counters, once every listener got an answer."""
    ctx = mp.get_context("spawn")
    stats: dict[str, Any] = {name: ctx.Value("i", 0, lock=False) for name in COUNTERS}
    stats["lock"] = ctx.Lock()
    listener = ctx.Process(target=listen, args=(url, job_ids, stats), daemon=True)
    listener.start()
    wait_until(lambda: stats["connected"].value + stats["refused"].value == len(job_ids), timeout=60,
               what="listeners to connect")
    return listener, stats


def running(url: str, job_ids: list[str]) -> bool:
    """True when the first and last of the jobs are running."""
    with httpx.Client(base_url=url, headers=HEADERS, timeout=10, trust_env=False) as http:
        return all(http.get(f"/v1/jobs/{i}").json()["status"] == "running" for i in (job_ids[0], job_ids[-1]))


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """All phases; returns the summary."""
    redis_server = RedisServer(workdir / "redis").start()
    knobs = {"--tokens-per-second": args.tokens_per_second, "--output-tokens": args.output_tokens,
             "--chunk-tokens": args.chunk_tokens}
    emulator = EmulatorProcess(workdir / "emulator.log", *(str(x) for kv in knobs.items() for x in kv)).start()
    env = {k: v for k, v in os.environ.items() if k not in {"GEMINI_API_KEY", "GOOGLE_API_KEY"}}
    env.update(REDIS_URL=redis_server.url, GEMINI_BASE_URL=emulator.url, GEMQ_API_KEYS=f"bench:{API_KEY}",
               GEMQ_SUBMIT_LIMITS="", GEMQ_LOG_LEVEL="WARNING", NO_PROXY="127.0.0.1,localhost",
               GEMQ_LIMITS="*:rpm=1000000,tpm=1000000000,rpd=100000000,concurrency=100000")
    web = WebProcess(env, workdir / "web.log", workers=2).start()
    worker: WorkerProcess | None = None
    listener: Any = None
    summary: dict[str, Any] = {}
    try:
        measure_submits(web.url, 40, args.clients)  # warm-up: connections, imports, scripts
        summary["baseline"] = phase(web, args)
        # Unlistened jobs first (the control), then the listened ones: the worker runs them in that order.
        control_ids = submit_batch(web.url, args.listeners, "control")
        listened_ids = submit_batch(web.url, args.listeners, "listened")
        listener, stats = start_listeners(web.url, listened_ids)
        summary["idle_listeners"] = phase(web, args, stats)
        summary["idle_listeners"]["web_cores_without_submits"] = quiet_cores(web)
        worker = WorkerProcess(env, workdir / "worker.log", name="bench", concurrency=args.listeners).start()
        wait_until(lambda: running(web.url, control_ids), timeout=60, what="the control jobs to run")
        summary["worker_streaming_unlistened"] = phase(web, args, stats)
        summary["worker_streaming_unlistened"]["web_cores_without_submits"] = quiet_cores(web)
        wait_until(lambda: stats["deltas"].value >= 2 * args.listeners, timeout=args.output_tokens
                   / args.tokens_per_second + 120, interval=0.5, what="deltas to reach the listeners")
        summary["worker_streaming_to_listeners"] = phase(web, args, stats)
        summary["worker_streaming_to_listeners"]["web_cores_without_submits"] = quiet_cores(web)
        ended = ("done", "refused", "failed")
        wait_until(lambda: sum(stats[n].value for n in ended) == args.listeners, interval=0.5,
                   timeout=args.output_tokens / args.tokens_per_second + 120, what="every listener to end")
        return summary
    finally:
        if listener is not None:
            summary["listeners"] = {name: stats[name].value for name in COUNTERS}
            print(json.dumps(summary), file=sys.stderr)
            if listener.is_alive():
                listener.terminate()
        if worker is not None:
            worker.kill()
        web.stop()
        emulator.stop()
        redis_server.stop()


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2]
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "redis": version,
            "when": time.strftime("%Y-%m-%d %H:%M:%S")}


def main() -> None:
    """Parse arguments, run, print the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listeners", type=int, default=200)
    parser.add_argument("--submits", type=int, default=400, help="submits measured per phase")
    parser.add_argument("--clients", type=int, default=4, help="concurrent submitting clients")
    parser.add_argument("--tokens-per-second", type=float, default=16.0)
    parser.add_argument("--output-tokens", type=int, default=800)
    parser.add_argument("--chunk-tokens", type=int, default=4, help="words per streamed chunk (a chunk per 250 ms)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gemq-bench-sse-") as tmp:
        summary = {"machine": machine(), "args": {k: str(v) for k, v in vars(args).items()},
                   **run(args, Path(tmp))}
    text = json.dumps(summary, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
