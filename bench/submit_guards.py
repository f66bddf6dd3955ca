"""What the submission guards cost: submit latency with and without the per-tenant submission limit,
Idempotency-Key and a webhook_url.

Starts a private redis-server and two copies of the web under real gunicorn (the Procfile's config:
gevent, one worker per core), one with ``GEMQ_SUBMIT_LIMITS`` empty and one with two limits high
enough never to refuse.  Closed-loop client threads send ``POST /v1/jobs`` round-robin over the
four modes below (half to each server), so every mode sees the same background load (the machine
is shared), and the script prints p50 / p90 / p99 / max per mode.  Then it times the added pieces alone, in-process:
one ``SubmitLimiter.hit`` (two windows), one idempotency claim + completion, one SSRF check of an
IP literal.  No Celery worker runs: messages stay queued, which is what the submit path costs.

    .venv/bin/python bench/submit_guards.py --clients 4 --seconds 20
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import API_KEY as KEY  # noqa: E402
from harness import stack  # noqa: E402

LIMITS = "100000/second;10000000/minute"
#: Modes: (name, limited server, send an Idempotency-Key, webhook_url).  Each server gets half the
#: requests, so both carry the same load.
MODES = [
    ("no limit, no key", False, False, None),
    ("limit on (2 windows)", True, False, None),
    ("no limit + Idempotency-Key + webhook_url", False, True, "https://93.184.215.14/hook"),
    ("limit on + Idempotency-Key + webhook_url", True, True, "https://93.184.215.14/hook"),
]


def drive(urls: dict[bool, str], clients: int, seconds: float) -> dict[str, list[float]]:
    """Closed-loop clients cycling through the modes; returns each mode's latencies in ms."""
    latencies: dict[str, list[float]] = {name: [] for name, *_ in MODES}
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(offset: int) -> None:
        https = {limited: httpx.Client(base_url=url, timeout=10, trust_env=False) for limited, url in urls.items()}
        mine: dict[str, list[float]] = {name: [] for name, *_ in MODES}
        turn = offset
        while time.monotonic() < stop:
            name, limited, idempotent, webhook = MODES[turn % len(MODES)]
            turn += 1
            headers = {"Authorization": f"Bearer {KEY}"}
            if idempotent:
                headers["Idempotency-Key"] = str(uuid.uuid4())
            body = {"prompt": "bench", **({"webhook_url": webhook} if webhook else {})}
            started = time.perf_counter()
            response = https[limited].post("/v1/jobs", json=body, headers=headers)
            mine[name].append((time.perf_counter() - started) * 1000)
            if response.status_code != 202:
                raise SystemExit(f"unexpected {response.status_code}: {response.text}")
        with lock:
            for name, values in mine.items():
                latencies[name].extend(values)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies


def row(name: str, values: list[float], seconds: float | None = None) -> str:
    """One Markdown table row of quantiles (ms)."""
    values = sorted(values)
    q = statistics.quantiles(values, n=100)
    rate = f" {len(values) / seconds:,.0f} |" if seconds else ""
    return f"| {name} |{rate} {q[49]:.2f} | {q[89]:.2f} | {q[98]:.2f} | {values[-1]:.2f} |"


def time_calls(call: Callable[[], object], n: int = 2000) -> list[float]:
    """Latency of ``n`` calls in ms."""
    out = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        out.append((time.perf_counter() - started) * 1000)
    return out


def pieces(redis_url: str) -> list[str]:
    """The added pieces alone, in this process, against the same Redis."""
    from web.idempotency import Idempotency, fingerprint
    from web.submit_limits import SubmitLimiter
    from worker.core.settings import Settings
    from worker.store.connect import connect
    from worker.webhooks.ssrf import check_url

    settings = Settings(redis_url=redis_url, submit_limits=LIMITS)
    client = connect(settings)
    limiter, idem = SubmitLimiter(client, settings), Idempotency(client)
    body = {"prompt": "bench"}
    return [
        row("SubmitLimiter.hit (2 windows)", time_calls(lambda: limiter.hit("pieces"))),
        row("Idempotency claim + complete", time_calls(
            lambda: idem.run("pieces", str(uuid.uuid4()), fingerprint("POST /v1/jobs", body), lambda: "id"))),
        row("SSRF check of an IP literal", time_calls(
            lambda: check_url("https://93.184.215.14/hook", allow_private=False))),
        row("redis PING (one round trip)", time_calls(client.ping)),
    ]


def main() -> None:
    """Measure and print Markdown tables."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    with stack() as running:
        running.start_base(emulator=False)
        assert running.redis
        urls = {False: running.start_web(env={"GEMQ_SUBMIT_LIMITS": ""}).url,
                True: running.start_web(env={"GEMQ_SUBMIT_LIMITS": LIMITS}).url}
        drive(urls, args.clients, 2.0)  # warm-up: connections, Lua scripts loaded
        latencies = drive(urls, args.clients, args.seconds)
        print(f"POST /v1/jobs, {args.clients} closed-loop clients, {args.seconds:g} s, modes interleaved\n")
        print("| mode | submits/s | p50 ms | p90 ms | p99 ms | max ms |\n|---|---|---|---|---|---|")
        for name, *_ in MODES:
            print(row(name, latencies[name], args.seconds))
        print("\nThe added pieces alone (2,000 calls each, in-process)\n")
        print("| piece | p50 ms | p90 ms | p99 ms | max ms |\n|---|---|---|---|---|")
        print("\n".join(pieces(running.redis.url)))


if __name__ == "__main__":
    main()
