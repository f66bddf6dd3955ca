"""A job's events as Server-Sent Events, read from its Redis Stream (``keys.job_events``).

The worker appends a ``status`` entry for every change and a ``delta`` entry for streamed text
(``lua/transition.lua``, ``lua/partial.lua``); this module turns them into SSE frames whose ``id``
is the stream entry id, so a client that reconnects with ``Last-Event-ID`` resumes right after the
last frame it saw.  After the terminal status comes one ``done`` frame (id ``done``) holding the
whole job, and the stream ends.  Everything is in Redis, so any web process can serve any job.

A stream is bounded: it blocks in Redis for at most ``GEMQ_SSE_HEARTBEAT`` seconds at a time and
sends a comment after each quiet wait (a dead client is noticed at the next write), ends after
``GEMQ_SSE_MAX_DURATION`` (the client reconnects), and ends when the job disappears.  The blocking
reads use a client of their own, sized for ``GEMQ_SSE_MAX_LISTENERS``, so listeners never take
the connections that submissions need; a process holding that many listeners refuses more (503).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import redis

from worker.core import keys
from worker.core.job import TERMINAL, Job
from worker.core.settings import Settings
from worker.store.jobs import JobStore

#: Entries read per round trip.
READ_COUNT = 200
#: Reconnection delay the client is told to use (``retry:``), in milliseconds.
RECONNECT_MS = 1000
#: ``Last-Event-ID`` values we accept: a stream entry id, or ``done`` (the stream was complete).
EVENT_ID = re.compile(r"^(\d{1,20}-\d{1,20}|done)$")
DONE_ID = "done"
TERMINAL_VALUES = frozenset(s.value for s in TERMINAL)


def frame(data: str, *, event: str, event_id: str | None = None) -> str:
    """One SSE frame (``data`` is one line of JSON)."""
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {event}\ndata: {data}\n\n"


class ListenerSlots:
    """A count of open streams with a ceiling; ``threading.Lock`` is gevent's own under gunicorn's patching."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Reserve a slot; False when all are taken."""
        with self._lock:
            if self.open >= self.limit:
                return False
            self.open += 1
            return True

    def give_back(self) -> None:
        """Free a slot."""
        with self._lock:
            self.open -= 1


@dataclass(frozen=True)
class EventFeed:
    """Serves job event streams; one per web process."""

    settings: Settings
    #: Client for the blocking reads only (its own pool and a socket timeout above the block time).
    redis: redis.Redis
    store: JobStore
    slots: ListenerSlots

    def stream(self, job_id: str, last_id: str) -> Iterator[str]:
        """SSE frames from just after ``last_id`` to the end of the job."""
        try:
            yield f"retry: {RECONNECT_MS}\n\n"
            yield from self._frames(job_id, last_id)
        except redis.RedisError:
            error = {"error": {"type": "unavailable", "message": "the job store is unreachable; reconnect shortly"}}
            yield frame(json.dumps(error), event="error")

    def _frames(self, job_id: str, last_id: str) -> Iterator[str]:
        deadline = time.monotonic() + self.settings.sse_max_duration
        heartbeat_ms = max(1, int(self.settings.sse_heartbeat * 1000))
        block: int | None = None  # the first read never waits: a finished job's stream ends at once
        while True:
            replies = self.redis.xread({keys.job_events(job_id): last_id}, count=READ_COUNT, block=block)
            entries = replies[0][1] if replies else []
            for entry_id, fields in entries:
                last_id = entry_id
                yield frame(fields["data"], event=fields["event"], event_id=entry_id)
                if fields["event"] == "status" and json.loads(fields["data"])["status"] in TERMINAL_VALUES:
                    yield self._final(job_id)
                    return
            if entries:
                block = heartbeat_ms
                continue
            # A quiet wait: the job may have ended before this stream's position (reconnect) or vanished.
            status = self.store.status(job_id)
            if status is None or status in TERMINAL_VALUES:
                yield self._final(job_id)
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            if block is not None:
                yield ": heartbeat\n\n"
            block = max(1, min(heartbeat_ms, int(remaining * 1000)))

    def _final(self, job_id: str) -> str:
        """The ``done`` frame with the whole job, or an ``error`` frame when the job is gone."""
        record = self.store.get(job_id)
        if record is None:
            error = {"error": {"type": "not_found", "message": "the job no longer exists"}}
            return frame(json.dumps(error), event="error")
        return frame(Job.from_record(record).model_dump_json(), event="done", event_id=DONE_ID)
