"""Which running jobs were cancelled, known to the worker without a Redis round trip per chunk.

The web publishes a cancelled job's id on ``keys.cancels_channel()``; each worker process keeps one
subscriber thread that records ids of jobs it is running, so the streaming loop checks a local set
at every chunk.  Pub/sub drops messages while a connection is down, so this is only the fast path:
the runner also reads the job's status from Redis whenever it writes partial text (at most every
``stream_flush_interval``), and the final transition refuses to overwrite a cancelled job.
"""

from __future__ import annotations

import threading
import time

import redis
import structlog

from worker.core import keys

log = structlog.get_logger("gemq.cancels")


class CancelWatch:
    """Tracks cancellations of the jobs this process is running."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self._running: set[str] = set()
        self._cancelled: set[str] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def watch(self, job_id: str) -> None:
        """Start tracking a job this process runs (starts the listener on first use)."""
        with self._lock:
            self._running.add(job_id)
            if self._thread is None:
                self._thread = threading.Thread(target=self._listen, name="gemq-cancels", daemon=True)
                self._thread.start()

    def forget(self, job_id: str) -> None:
        """Stop tracking a job (its run ended)."""
        with self._lock:
            self._running.discard(job_id)
            self._cancelled.discard(job_id)

    def cancelled(self, job_id: str) -> bool:
        """True if a cancel for the job arrived while this process ran it."""
        return job_id in self._cancelled

    def _listen(self) -> None:
        while True:
            try:
                pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(keys.cancels_channel())
                while True:
                    # A short poll, not listen(): the client's socket timeout would break a long read.
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None:
                        self._record(str(message["data"]))
            except redis.RedisError as exc:
                log.info("cancels.reconnect", error_type=type(exc).__name__)
                time.sleep(1.0)  # Redis is away; the status checks at each flush cover the gap

    def _record(self, job_id: str) -> None:
        with self._lock:
            if job_id in self._running:
                self._cancelled.add(job_id)


def announce_cancel(client: redis.Redis, job_id: str) -> None:
    """Tell every worker process that ``job_id`` was cancelled."""
    client.publish(keys.cancels_channel(), job_id)
