"""Submit latency with and without the per-tenant submission limit, Idempotency-Key and a webhook_url.

Starts a private redis-server and two copies of the web under real gunicorn (the Procfile's config:
gevent, one worker per core), one with ``GEMQ_SUBMIT_LIMITS`` empty and one with two limits high
enough never to refuse.  Closed-loop client threads send ``POST /v1/jobs`` round-robin over the
four modes below (half to each server), so every mode sees the same background load (the machine
is shared), and the script prints p50 / p90 / p99 / max per mode.  Then it times the added pieces alone, in-process:
one ``SubmitLimiter.hit`` (two windows), one idempotency claim + completion, one SSRF check of an
IP literal.  No Celery worker runs: messages stay queued, which is what the submit path costs.

    .venv/bin/python bench/submit_latency.py --clients 4 --seconds 20
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
KEY = "bench-key"
LIMITS = "100000/second;10000000/minute"
#: Modes: (name, limited server, send an Idempotency-Key, webhook_url).  Each server gets half the
#: requests, so both carry the same load.
MODES = [
    ("no limit, no key", False, False, None),
    ("limit on (2 windows)", True, False, None),
    ("no limit + Idempotency-Key + webhook_url", False, True, "https://93.184.215.14/hook"),
    ("limit on + Idempotency-Key + webhook_url", True, True, "https://93.184.215.14/hook"),
]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: object, what: str, timeout: float = 30) -> None:
    """Poll ``check()`` until it is truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.1)
    raise SystemExit(f"{what} did not start")


@contextmanager
def process(args: list[str], env: dict[str, str], log: Path) -> Iterator[None]:
    """Run ``args`` in its own process group for the duration of the block."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


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


def gunicorn(stack: ExitStack, workdir: Path, redis_url: str, limits: str) -> str:
    """Start one web server; its URL."""
    port = free_port()
    env = {**os.environ, "REDIS_URL": redis_url, "GEMQ_API_KEYS": f"bench:{KEY}", "GEMQ_SUBMIT_LIMITS": limits,
           "GEMQ_WEBHOOK_SECRET": "bench", "GEMQ_LOG_LEVEL": "WARNING", "NO_PROXY": "127.0.0.1,localhost"}
    args = [str(BIN / "gunicorn"), "web:create_served_app()", "--config", "gunicorn.conf.py",
            "--bind", f"127.0.0.1:{port}"]
    stack.enter_context(process(args, env, workdir / f"web-{port}.log"))
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: httpx.get(f"{url}/healthz", trust_env=False).status_code == 200, "gunicorn")
    return url


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
    from worker.config import Settings
    from worker.redisconn import connect
    from worker.ssrf import check_url

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
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server is missing")
    workdir = Path(tempfile.mkdtemp(prefix="gemq-bench-"))
    redis_port = free_port()
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    redis_args = ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--dir",
                  str(workdir), "--appendonly", "no"]
    with ExitStack() as stack:
        stack.enter_context(process(redis_args, dict(os.environ), workdir / "redis.log"))
        wait_for(redis.Redis(port=redis_port).ping, "redis-server")
        urls = {False: gunicorn(stack, workdir, redis_url, ""), True: gunicorn(stack, workdir, redis_url, LIMITS)}
        drive(urls, args.clients, 2.0)  # warm-up: connections, Lua scripts loaded
        latencies = drive(urls, args.clients, args.seconds)
        print(f"POST /v1/jobs, {args.clients} closed-loop clients, {args.seconds:g} s, modes interleaved\n")
        print("| mode | submits/s | p50 ms | p90 ms | p99 ms | max ms |\n|---|---|---|---|---|---|")
        for name, *_ in MODES:
            print(row(name, latencies[name], args.seconds))
        print("\nThe added pieces alone (2,000 calls each, in-process)\n")
        print("| piece | p50 ms | p90 ms | p99 ms | max ms |\n|---|---|---|---|---|")
        print("\n".join(pieces(redis_url)))
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
