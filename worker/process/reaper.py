"""The reaper: the backstop that keeps an unfinished job from being left with nothing to move it.

A worker killed mid-job is kombu's business: its unacknowledged message comes back after the
visibility timeout.  But a message can still vanish (Redis restarted from an AOF that lost its
last second, an operator flushing a queue, a bug), leaving a job ``queued``, ``running`` or
``retrying`` forever.  Every unfinished job is in ``gemq:active`` scored by its last activity
(``lua/transition.lua``, ``JobStore.save_new``, ``JobStore.touch``).  A pass looks at the jobs
idle for longer than the visibility timeout plus ``GEMQ_REAPER_MARGIN``, so kombu's own restore
always comes first, and re-publishes those whose message is nowhere in the broker.

A job idle that long may only be waiting behind a deep backlog: its message is still in a queue
list (or held by a worker as a countdown).  Those are found by reading the job queues and kombu's
unacknowledged hash, and every job found there is marked alive again, so behind a backlog the
broker is read about once per threshold, not on every pass.  The read goes unacked, queues,
unacked again: a message moving between the two places (consumed, or restored by kombu) is seen
in one of them.  Re-publishing is safe even when a message did exist after all: the runner
accepts ``running -> running``, the state machine refuses a second finalisation and the limiter
counts every call.

One pass at a time across all workers: a pass starts only with ``gemq:reaper:lock``, which expires
after the interval and is not released, so all the workers together make about one pass per interval.
"""

from __future__ import annotations

import threading

import redis
import structlog

from worker.core import keys
from worker.core.publisher import Publisher
from worker.core.settings import Settings
from worker.queue.messages import SCAN_CHUNK, job_ids_in_broker
from worker.store.scripts import load_script

log = structlog.get_logger("gemq.reaper")

#: Most idle jobs examined per pass (the next pass takes the rest).
PASS_LIMIT = 1000


class Reaper:
    """Re-publishes unfinished jobs nothing has moved for longer than the threshold."""

    def __init__(self, client: redis.Redis, settings: Settings, publisher: Publisher, *, name: str,
                 stop: threading.Event | None = None) -> None:
        self.redis = client
        self.settings = settings
        self.publisher = publisher
        self.name = name
        self.stop = stop or threading.Event()
        self.interval = max(0.1, settings.reaper_interval)
        #: Seconds of silence after which a job counts as idle.
        self.threshold = settings.visibility_timeout + settings.reaper_margin
        self._claim = load_script(client, "reap")

    def run_once(self) -> list[str]:
        """One pass, if no other worker made one within the interval; returns the ids re-published."""
        if not self.redis.set(keys.reaper_lock(), self.name, nx=True, px=int(self.interval * 1000)):
            return []
        now = self._now_ms()
        cutoff = now - int(self.threshold * 1000)
        idle = self.redis.zrangebyscore(keys.active(), "-inf", cutoff, start=0, num=PASS_LIMIT)
        if not idle:
            return []
        in_broker = job_ids_in_broker(self.redis)
        self._mark_alive(in_broker, now)
        lost = [job_id for job_id in idle if job_id not in in_broker]
        reply = self._claim(keys=[keys.active(), *map(keys.job, lost)], args=[cutoff, now, *lost]) if lost else []
        republished = []
        for job_id, status, priority in zip(reply[0::3], reply[1::3], reply[2::3], strict=True):
            self.publisher.publish_job(job_id, priority)
            republished.append(job_id)
            log.warning("job.reaped", job_id=job_id, status=status, priority=priority, idle_s=self.threshold)
        return republished

    def _mark_alive(self, job_ids: set[str], now: int) -> None:
        """Score every job found in the broker as active now (not only the idle ones).

        Behind a backlog older than the threshold, jobs would otherwise cross it one pass after another
        and each pass would read the whole broker again; this way it is read about once per threshold.
        """
        ids = list(job_ids)
        for start in range(0, len(ids), SCAN_CHUNK):
            # XX: ids of finished jobs (a stale duplicate message) must not come back into the index.
            self.redis.zadd(keys.active(), dict.fromkeys(ids[start:start + SCAN_CHUNK], now), xx=True)

    def run(self) -> None:
        """A pass every interval until ``stop`` is set; Redis errors wait for the next pass."""
        while not self.stop.wait(self.interval):
            try:
                self.run_once()
            except redis.RedisError as exc:
                log.warning("reaper.error", error_type=type(exc).__name__)
            except Exception:  # noqa: BLE001 - a bug must not end the backstop thread for good
                log.exception("reaper.failed")

    def start(self) -> threading.Thread:
        """Run in a daemon thread."""
        thread = threading.Thread(target=self.run, name="gemq-reaper", daemon=True)
        thread.start()
        return thread

    def _now_ms(self) -> int:
        """Redis's clock, the one ``transition.lua`` scores with."""
        seconds, micros = self.redis.time()
        return int(seconds) * 1000 + int(micros) // 1000
