"""Submit latency: ``POST /v1/jobs`` p50 and p99 with 16 concurrent clients through gunicorn.

The web runs as the Procfile runs it (gunicorn, gevent workers, one per core) on a private Redis.
16 clients (aiohttp coroutines, one connection each) send jobs in two ways:

- paced: together they offer a fixed rate (each client on its own schedule, latency measured from
  the scheduled send time, so a stall is not hidden), at several rates;
- closed loop: each client sends its next request as soon as the last answer arrives (the most the
  web can take, and the latency at that load).

A worker consuming the jobs runs too unless ``--no-worker``, as in production.  Goal: p99 <= 20 ms.

    .venv/bin/python bench/submit_latency.py [--clients 16] [--seconds 15] [--rates 100,200,400]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import API_KEY, machine, percentile, stack  # noqa: E402


async def run_clients(url: str, clients: int, seconds: float, rate: float | None) -> list[float]:
    """Latencies (ms) of ``clients`` coroutines over ``seconds``, paced at ``rate``/s in total or closed loop."""
    latencies: list[float] = []
    headers = {"Authorization": f"Bearer {API_KEY}"}
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(url, headers=headers, connector=connector) as session:
        start = time.perf_counter() + 0.1
        end = start + seconds

        async def client(index: int) -> None:
            interval = clients / rate if rate else 0.0
            due = start + (interval * index / clients)
            while (now := time.perf_counter()) < end:
                if rate:
                    await asyncio.sleep(max(0.0, due - now))
                sent_at = due if rate else time.perf_counter()
                async with session.post("/v1/jobs", json={"prompt": "latency"}) as response:
                    await response.read()
                    if response.status != 202:
                        raise RuntimeError(f"unexpected {response.status}")
                latencies.append((time.perf_counter() - sent_at) * 1000)
                due += interval

        await asyncio.gather(*(client(i) for i in range(clients)))
    return latencies


def summary(latencies: list[float], seconds: float) -> dict[str, float]:
    """Throughput and quantiles."""
    return {"submits_per_s": round(len(latencies) / seconds), "p50_ms": round(percentile(latencies, 50), 2),
            "p99_ms": round(percentile(latencies, 99), 2), "max_ms": round(max(latencies), 2)}


def main() -> None:
    """Paced runs at each rate, then a closed-loop run; JSON on stdout."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--rates", default="100,200,400")
    parser.add_argument("--no-worker", action="store_true")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with stack() as running:
        running.start_base(emulator=not args.no_worker)
        web = running.start_web()
        if not args.no_worker:
            running.start_worker("w", concurrency=32)
        asyncio.run(run_clients(web.url, args.clients, 2, None))  # warm-up
        for rate in (float(r) for r in args.rates.split(",")):
            results[f"paced_{rate:g}_per_s"] = summary(asyncio.run(run_clients(web.url, args.clients, args.seconds,
                                                                               rate)), args.seconds)
        results["closed_loop"] = summary(asyncio.run(run_clients(web.url, args.clients, args.seconds, None)),
                                         args.seconds)
    print(json.dumps({"results": results, "args": vars(args), "machine": machine()}, indent=2))


if __name__ == "__main__":
    main()
