"""What metrics cost: recording per job, a /metrics scrape, and submit latency with metrics on.

    .venv/bin/python bench/metrics_overhead.py [--requests 3000] [--clients 16] [--root DIR]

Starts its own redis-server and the Procfile's gunicorn (no worker: submitted jobs just queue).
``--root`` serves the web from another checkout (gunicorn imports the app from its working
directory), e.g. one without metrics, for an A/B of submit latency on the same machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from web import create_app  # noqa: E402
from worker.core.settings import Settings  # noqa: E402
from worker.store.metrics import Accumulator, Metrics  # noqa: E402

MODELS = ("gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.5-flash-lite", "gemini-2.0-flash")


def free_port() -> int:
    """A port nobody listens on."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def record_cost(jobs: int) -> float:
    """Microseconds of recording for one job's life (start, admission, finish), buffered in memory."""
    metrics = Metrics(Accumulator())
    record = {"created_ms": "0", "started_ms": "1000", "finished_ms": "5000", "priority": "normal"}
    result = {"usage": {"prompt_tokens": 10, "output_tokens": 200}, "time_to_first_token_ms": 300}
    started = time.perf_counter()
    for i in range(jobs):
        record["model"] = MODELS[i % 4]
        metrics.call_started(record, 1000)
        metrics.admitted(record["model"], 0.0)
        metrics.job_finished(record, "succeeded", result)
    return (time.perf_counter() - started) / jobs * 1e6


def scrape_cost(url: str, scrapes: int) -> tuple[float, int]:
    """Milliseconds per GET /metrics with every label combination populated, and the series count."""
    client = redis.Redis.from_url(url, decode_responses=True)
    metrics = Metrics(Accumulator(client))
    for model in MODELS:
        for priority in ("high", "normal", "low"):
            record = {"created_ms": "0", "started_ms": "1000", "finished_ms": "5000", "priority": priority,
                      "model": model}
            for status in ("succeeded", "failed", "cancelled"):
                metrics.job_finished(record, status, {"usage": {"prompt_tokens": 1, "output_tokens": 1},
                                                      "time_to_first_token_ms": 10})
            metrics.call_started(record, 1000)
            metrics.job_submitted(priority, model)
        metrics.admitted(model, 1.0)
    metrics.sink.close()
    app = create_app(Settings(redis_url=url)).test_client()
    body = app.get("/metrics").get_data(as_text=True)
    series = sum(1 for line in body.splitlines() if line and not line.startswith("#"))
    started = time.perf_counter()
    for _ in range(scrapes):
        app.get("/metrics")
    return (time.perf_counter() - started) / scrapes * 1000, series


def submit_latency(env: dict[str, str], port: int, requests: int, clients: int) -> list[float]:
    """Latencies (ms) of POST /v1/jobs from ``clients`` threads through gunicorn."""
    key = env["GEMQ_API_KEYS"].split(":", 1)[1]
    latencies: list[float] = []
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=10,
                          headers={"Authorization": f"Bearer {key}"}) as http:
            mine = []
            for i in range(requests // clients):
                started = time.perf_counter()
                response = http.post("/v1/jobs", json={"prompt": f"bench {i}", "priority": "low"})
                mine.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 202, response.text
            with lock:
                latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies


def main() -> None:
    """Run the three measurements and print them."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout whose web is served")
    args = parser.parse_args()
    print(f"recording, per job (3 calls, in memory): {record_cost(50_000):.1f} us")
    workdir = Path(tempfile.mkdtemp(prefix="gemq-bench-"))
    redis_port, web_port = free_port(), free_port()
    server = subprocess.Popen(["redis-server", "--port", str(redis_port), "--save", "", "--dir", str(workdir)],
                              stdout=subprocess.DEVNULL)
    env = {**os.environ, "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0", "WEB_PORT": str(web_port),
           "GEMQ_API_KEYS": "bench:bench-key", "GEMQ_SUBMIT_LIMITS": "", "GEMQ_LOG_LEVEL": "WARNING",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    web = None
    try:
        time.sleep(0.3)
        per_scrape, series = scrape_cost(env["REDIS_URL"], 200)
        print(f"GET /metrics with {series} samples: {per_scrape:.2f} ms per scrape")
        command = (args.root / "Procfile").read_text().split("web:", 1)[1].splitlines()[0]
        web = subprocess.Popen(["/bin/sh", "-c", f"exec {command}"], cwd=args.root, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        http = httpx.Client(base_url=f"http://127.0.0.1:{web_port}", trust_env=False)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if http.get("/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        submit_latency(env, web_port, 200, args.clients)  # warm-up
        latencies = sorted(submit_latency(env, web_port, args.requests, args.clients))
        p50 = statistics.median(latencies)
        p99 = latencies[int(len(latencies) * 0.99) - 1]
        print(f"POST /v1/jobs ({args.root}), {args.clients} clients, {len(latencies)} requests: "
              f"p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    finally:
        if web is not None:
            os.killpg(web.pid, 15)
            web.wait(timeout=20)
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
