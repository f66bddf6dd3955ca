"""A private gemq stack for benchmarks: redis-server, the emulator, gunicorn and Celery workers.

Reuses the test suite's process helpers (tests/procs.py) so benchmarks and tests start processes
the same way.  Every process gets a fresh port and a scratch directory; ``Stack`` stops them all.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from procs import EmulatorProcess, RedisServer, WebProcess, WorkerProcess, wait_until  # noqa: E402

#: The bench tenant's key.
API_KEY = "bench-key"


class Stack:
    """Processes of one benchmark run."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.redis: RedisServer | None = None
        self.emulator: EmulatorProcess | None = None
        self.web: WebProcess | None = None
        self.webs: list[WebProcess] = []
        self.workers: list[WorkerProcess] = []
        self.env: dict[str, str] = {}

    def start_base(self, *, emulator_args: tuple[str, ...] = (), env: dict[str, str] | None = None,
                   emulator: bool = True, appendonly: bool = False) -> None:
        """Redis (AOF ``everysec`` if ``appendonly``), the emulator (unless not wanted), and the environment."""
        self.redis = RedisServer(self.workdir / "redis", appendonly=appendonly).start()
        if emulator:
            self.emulator = EmulatorProcess(self.workdir / "emulator.log", *emulator_args).start()
        self.env = {k: v for k, v in os.environ.items() if k not in {"GEMINI_API_KEY", "GOOGLE_API_KEY"}}
        self.env.update(REDIS_URL=self.redis.url, GEMQ_API_KEYS=f"bench:{API_KEY}", GEMQ_WEBHOOK_SECRET="bench",
                        GEMQ_SUBMIT_LIMITS="", GEMQ_LOG_LEVEL="WARNING", NO_PROXY="127.0.0.1,localhost",
                        GEMQ_LIMITS="*:rpm=1000000,tpm=1000000000,rpd=100000000,concurrency=100000")
        if self.emulator:
            self.env["GEMINI_BASE_URL"] = self.emulator.url
        self.env.update(env or {})

    def start_web(self, workers: int = 2, env: dict[str, str] | None = None, app: str | None = None) -> WebProcess:
        """gunicorn with gevent workers serving gemq (or ``app``); the first one started is ``self.web``."""
        web = WebProcess({**self.env, **(env or {})}, self.workdir / f"web-{len(self.webs)}.log", workers=workers,
                         **({"app": app} if app else {}))
        self.webs.append(web.start())
        self.web = self.web or web
        return web

    def start_worker(self, name: str, *, concurrency: int | None, app: str = "worker.celery_app",
                     env: dict[str, str] | None = None, wait: bool = True, pool: str | None = "threads"
                     ) -> WorkerProcess:
        """A Celery worker process (``pool``/``concurrency`` None: the app's own defaults)."""
        # A bare Celery app (the baselines) consumes Celery's default queue, not gemq's job queues.
        queues = None if app == "worker.celery_app" else "celery"
        worker = WorkerProcess({**self.env, **(env or {})}, self.workdir / f"worker-{name}.log", name=name,
                               concurrency=concurrency, app=app, queues=queues, pool=pool)
        self.workers.append(worker.start(wait=wait))
        return worker

    def kill_workers(self) -> None:
        """Kill the workers started so far and forget them (the next measurement starts its own)."""
        for worker in self.workers:
            worker.kill()
        self.workers.clear()

    def stop(self) -> None:
        """Stop everything (workers first)."""
        self.kill_workers()
        for process in (*self.webs, self.emulator, self.redis):
            if process is not None:
                process.stop()


@contextmanager
def stack() -> Iterator[Stack]:
    """A Stack in a scratch directory, stopped on exit."""
    with tempfile.TemporaryDirectory(prefix="gemq-bench-") as tmp:
        running = Stack(Path(tmp))
        try:
            yield running
        finally:
            running.stop()


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    redis_version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2]
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "redis": redis_version,
            "platform": platform.platform(), "when": time.strftime("%Y-%m-%d %H:%M:%S")}


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


__all__ = ["API_KEY", "Stack", "machine", "percentile", "stack", "wait_until"]
