"""Container health checks: ``python -m worker.healthcheck (worker | URL)``; exit 0 when healthy.

- ``worker``: this host's Celery worker sent a heartbeat to Redis recently (``keys.workers``), so
  it is alive and can reach the broker;
- a URL (web ``/healthz``, Flower ``/healthcheck``): it answers 2xx.

Small on purpose: Docker runs it every few seconds in every container.
"""

from __future__ import annotations

import socket
import sys
import time
import urllib.request
from collections.abc import Sequence

from worker.core import keys
from worker.core.settings import Settings
from worker.store.connect import connect

#: A heartbeat older than this (s) means the worker is stuck or cut off (it beats every 5 s).
FRESH_S = 30


def worker_alive(settings: Settings, host: str) -> bool:
    """True when a worker named ``*@host`` sent a heartbeat in the last ``FRESH_S`` seconds."""
    client = connect(settings)
    fresh = int((time.time() - FRESH_S) * 1000)
    names = client.zrangebyscore(keys.workers(), fresh, "+inf")
    return any(name.rpartition("@")[2] == host for name in names)


def url_ok(url: str) -> bool:
    """True when ``url`` answers 2xx within 3 s."""
    # Loopback only in containers; no proxy from the environment may capture it.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=3) as response:
        return 200 <= int(response.status) < 300


def main(argv: Sequence[str] | None = None) -> int:
    """Check what ``argv[0]`` names; 0 when healthy, 1 otherwise."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m worker.healthcheck (worker | URL)", file=sys.stderr)
        return 2
    try:
        healthy = worker_alive(Settings.from_env(), socket.gethostname()) if args[0] == "worker" else url_ok(args[0])
    except Exception as exc:  # noqa: BLE001 - any failure is "unhealthy", said in one line
        print(f"unhealthy: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0 if healthy else 1
