"""Real processes for tests: a private redis-server, the Gemini emulator and Celery workers.

Every wait is a bounded loop (``wait_until``) so a broken process fails the test instead of hanging it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx
import redis

from emulator.config import DEFAULT_MODELS
from worker.core import keys

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
T = TypeVar("T")
#: Queues a test worker consumes unless told otherwise: the job queues, like the Procfile's ``worker``
#: (webhook deliveries go to workers started with ``queues="webhooks"``).
JOB_QUEUES = ",".join(keys.JOB_QUEUES.values())
#: gemq's own tests and benchmarks still name models that Gemini has shut down (gemini-2.5-flash, the
#: default model until issue 15 moves it): the emulator serves them too until then. Delete with that move.
LEGACY_MODEL_ARGS = ("--models", ",".join([*DEFAULT_MODELS, "gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.0-flash"]),
                     "--shutdown-models", "")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.05, what: str = "it") -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - the thing polled may not be up yet
            last_error = exc
        time.sleep(interval)
    raise TimeoutError(f"waited {timeout}s for {what}" + (f" (last error: {last_error!r})" if last_error else ""))


class RedisServer:
    """A private redis-server the test owns: it can stop, kill and restart it, with AOF if asked."""

    def __init__(self, workdir: Path, *, appendonly: bool = False, args: Sequence[str] = ()) -> None:
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is missing: sudo apt-get install -y redis-server")
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.appendonly = appendonly
        self.args = tuple(args)  # more options, e.g. ("--replicaof", "127.0.0.1", "6379")
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://`` URL of database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start (or start again, same port and data)."""
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir),
                "--save", "", "--appendonly", "yes" if self.appendonly else "no", "--appendfsync", "everysec",
                "--maxmemory-policy", "noeviction", "--logfile", str(self.workdir / "redis.log"), *self.args]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: self.client().ping(), timeout=10, what="redis-server")
        return self

    def client(self) -> redis.Redis:
        """A client that decodes replies."""
        return redis.Redis(port=self.port, decode_responses=True, socket_timeout=5)

    def stop(self) -> None:
        """Stop cleanly (AOF flushed)."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def kill(self) -> None:
        """Kill at once, as a crash would."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


class EmulatorProcess:
    """The Gemini emulator in its own process, with helpers for its admin API."""

    def __init__(self, logfile: Path, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.logfile = logfile
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(base_url=self.url, timeout=10, trust_env=False)

    def start(self) -> EmulatorProcess:
        """Start and wait for its health check."""
        with open(self.logfile, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "emulator", "--port", str(self.port),
                                          *LEGACY_MODEL_ARGS, *self.args],
                                         cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        wait_until(lambda: self.http.get("/_emulator/healthz").status_code == 200, timeout=15, what="the emulator")
        return self

    def stop(self) -> None:
        """Stop the process."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def reset(self) -> None:
        """Startup config back, request log, quota windows and scripted faults cleared."""
        self.http.post("/_emulator/reset").raise_for_status()

    def configure(self, **knobs: Any) -> None:
        """Change knobs at runtime."""
        self.http.patch("/_emulator/config", json=knobs).raise_for_status()

    def fault(self, match: str, kind: str, **options: Any) -> None:
        """Script a fault for the next calls whose prompt contains ``match``."""
        rule = {"match": match, "kind": kind, **options}
        self.http.post("/_emulator/faults", json={"faults": [rule]}).raise_for_status()

    def requests(self, **filters: Any) -> list[dict[str, Any]]:
        """The request log (optionally filtered by tag, model, since)."""
        response = self.http.get("/_emulator/requests", params=filters)
        response.raise_for_status()
        return list(response.json())


class WorkerProcess:
    """A real Celery worker (``celery -A worker.celery_app worker``) in its own process group."""

    def __init__(self, env: Mapping[str, str], logfile: Path, *, name: str, concurrency: int | None = 8,
                 queues: str | None = None, app: str = "worker.celery_app", pool: str | None = "threads") -> None:
        self.env = dict(env)
        self.app = app
        self.pool = pool
        self.logfile = logfile
        self.name = name
        self.concurrency = concurrency
        self.queues = queues or JOB_QUEUES
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait: bool = True) -> WorkerProcess:
        """Start; with ``wait``, return once it sent its first heartbeat."""
        args = [str(BIN / "celery"), "-A", self.app, "worker", "--hostname", f"{self.name}@%h", "--loglevel", "INFO",
                "--without-mingle", "--without-gossip", "--queues", self.queues]
        # None leaves the choice to the app's configuration (Celery's own defaults for a bare app).
        args += ["--pool", self.pool] if self.pool else []
        args += ["--concurrency", str(self.concurrency)] if self.concurrency else []
        with open(self.logfile, "ab") as log:
            self.proc = subprocess.Popen(args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        if wait and self.app == "worker.celery_app":
            client = redis.Redis.from_url(self.env["REDIS_URL"], decode_responses=True)
            host = socket.gethostname()
            wait_until(lambda: client.zscore("gemq:workers", f"{self.name}@{host}") is not None, timeout=30,
                       what=f"worker {self.name} to start")
        return self

    def stop(self, timeout: float = 20) -> None:
        """Warm shutdown (SIGTERM), then kill if it does not stop in time."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        """SIGKILL the whole process group, as a crash or an OOM kill would."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


class WebProcess:
    """The web app under real gunicorn (gevent workers), as the Procfile runs it."""

    def __init__(self, env: Mapping[str, str], logfile: Path, *, workers: int = 2,
                 app: str = "web:create_served_app()") -> None:
        self.env = dict(env)
        self.app = app
        self.logfile = logfile
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WebProcess:
        """Start and wait for /healthz."""
        args = [str(BIN / "gunicorn"), self.app, "--config", "gunicorn.conf.py",
                "--bind", f"127.0.0.1:{self.port}", "--workers", str(self.workers)]
        with open(self.logfile, "ab") as log:
            self.proc = subprocess.Popen(args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        http = httpx.Client(base_url=self.url, timeout=5, trust_env=False)
        wait_until(lambda: http.get("/healthz").status_code == 200, timeout=30, what="gunicorn")
        return self

    def stop(self) -> None:
        """Graceful stop, then kill."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
