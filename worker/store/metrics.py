"""Prometheus metrics summed over every gemq process on every machine, kept in Redis.

Workers and web processes run on many machines, so no one process can answer a scrape for all of
them.  Each process adds its increments to an in-memory :class:`Accumulator`, which a background
thread flushes every ``GEMQ_METRICS_FLUSH_INTERVAL`` seconds as one pipeline of ``HINCRBY`` /
``HINCRBYFLOAT`` into two shared hashes (``keys.metrics("counters")``, ``keys.metrics("hist")``).
Redis adds them up; ``GET /metrics`` on any web process renders the totals (``web.metrics``).
Recording never touches the network on the job's or the request's path; a process that dies
loses at most one interval of increments.

Field names in the hashes are JSON: ``[name, {label: value}]`` for counters and
``[name, {label: value}, bucket]`` for histograms, where ``bucket`` is an upper bound (``"0.5"``,
``"+Inf"``; counts per bucket, not cumulative) or ``"sum"``.  Gauges are not stored: queue
depths and calls in flight are read live from the broker lists and the limiter's leases at scrape.
"""

from __future__ import annotations

import atexit
import functools
import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis
import structlog

from worker.core import keys
from worker.core.errors import GemqError

log = structlog.get_logger("gemq.metrics")


@dataclass(frozen=True)
class MetricSpec:
    """One metric: its Prometheus name (without ``_total``), kind, help text, labels and buckets."""

    name: str
    kind: str
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()


#: Bucket bounds, in seconds.
WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
RUN_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
ADMISSION_BUCKETS = (0.005, 0.05, 0.25, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)

JOBS = MetricSpec("gemq_jobs", "counter", "Jobs that reached a terminal status.", ("status", "priority", "model"))
SUBMITTED = MetricSpec("gemq_jobs_submitted", "counter", "Jobs accepted by POST /v1/jobs and POST /v1/batches.",
                       ("priority", "model"))
TOKENS = MetricSpec("gemq_tokens", "counter", "Tokens Gemini counted for successful jobs.", ("model", "kind"))
UPSTREAM_ERRORS = MetricSpec("gemq_upstream_errors", "counter",
                             "Failed Gemini calls, by HTTP status or error type.", ("model", "code"))
WEBHOOKS = MetricSpec("gemq_webhook_deliveries", "counter", "Webhook delivery attempts by outcome.", ("outcome",))
QUEUE_WAIT = MetricSpec("gemq_job_queue_wait_seconds", "histogram",
                        "Seconds from submission to the start of the job's first Gemini call.", ("priority",),
                        WAIT_BUCKETS)
RUN = MetricSpec("gemq_job_run_seconds", "histogram",
                 "Seconds from a job's first call to its end, retries included.", ("model", "status"), RUN_BUCKETS)
TTFT = MetricSpec("gemq_time_to_first_token_seconds", "histogram",
                  "Seconds from the Gemini call to its first streamed token (successful jobs).", ("model",),
                  TTFT_BUCKETS)
ADMISSION = MetricSpec("gemq_limiter_wait_seconds", "histogram",
                       "Seconds a call waited for the shared limiter's admission, requeues included.", ("model",),
                       ADMISSION_BUCKETS)

#: Every stored metric (gauges are computed at scrape by ``web.metrics``).
STORED: tuple[MetricSpec, ...] = (JOBS, SUBMITTED, TOKENS, UPSTREAM_ERRORS, WEBHOOKS, QUEUE_WAIT, RUN, TTFT,
                                  ADMISSION)
#: Distinct model label values one process records before it files further models under ``other``:
#: model names come from clients, and every name costs a series in Redis and in Prometheus.
MAX_MODEL_LABELS = 32
#: Webhook outcomes are code-chosen words: ``delivered`` (2xx), ``failed`` (another attempt is scheduled),
#: ``exhausted`` (the last attempt failed), ``refused`` (private target); anything else is filed as ``other``.
WEBHOOK_OUTCOME = re.compile(r"[a-z_]{1,32}")


def counter_field(name: str, labels: Mapping[str, str]) -> str:
    """The hash field of one counter series."""
    return _field(name, tuple(labels.items()), None)


def hist_field(name: str, labels: Mapping[str, str], bucket: str) -> str:
    """The hash field of one histogram bucket (or ``"sum"``)."""
    return _field(name, tuple(labels.items()), bucket)


@functools.lru_cache(maxsize=8192)
def _field(name: str, labels: tuple[tuple[str, str], ...], bucket: str | None) -> str:
    # Cached: series are few and recur, and json.dumps is most of what recording costs.
    parts: list[object] = [name, dict(labels)] if bucket is None else [name, dict(labels), bucket]
    return json.dumps(parts, sort_keys=True, separators=(",", ":"))


def bucket_of(value: float, buckets: tuple[float, ...]) -> str:
    """The smallest bound holding ``value`` (as Prometheus writes it), or ``+Inf``."""
    for bound in buckets:
        if value <= bound:
            return repr(float(bound))
    return "+Inf"


class Accumulator:
    """Metric increments buffered in memory and flushed to Redis by a daemon thread.

    Without a client it only buffers (unit tests read :meth:`snapshot`).
    """

    def __init__(self, client: redis.Redis | None = None, *, interval: float = 1.0) -> None:
        self.client = client
        self.interval = max(0.05, interval)
        #: (hash part, field, is a float) -> amount; sums need HINCRBYFLOAT, counts HINCRBY.
        self._pending: dict[tuple[str, str, bool], float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: True while flushes fail, so an outage is logged when it starts and ends, not every second.
        self._failing = False

    def add(self, part: str, field: str, amount: float, *, exact: bool = True) -> None:
        """Add ``amount`` to ``field`` of the ``part`` hash (``counters`` or ``hist``); integers when ``exact``."""
        with self._lock:
            key = (part, field, not exact)
            self._pending[key] = self._pending.get(key, 0) + amount
            if self._thread is None and self.client is not None:
                self._start()

    def snapshot(self) -> dict[tuple[str, str], float]:
        """What is buffered now (not yet flushed), by ``(part, field)``."""
        with self._lock:
            return {(part, field): amount for (part, field, _), amount in self._pending.items()}

    def flush(self) -> None:
        """Write what is buffered in one pipeline; on a Redis error keep it for the next flush."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending or self.client is None:
            return
        pipe = self.client.pipeline(transaction=False)
        for (part, field, is_float), amount in pending.items():
            if is_float:
                pipe.hincrbyfloat(keys.metrics(part), field, amount)
            else:
                pipe.hincrby(keys.metrics(part), field, int(amount))
        try:
            pipe.execute()
        except redis.RedisError as exc:
            if not self._failing:
                log.warning("metrics.flush_failed", error_type=type(exc).__name__, pending=len(pending))
            self._failing = True
            with self._lock:
                for key, amount in pending.items():
                    self._pending[key] = self._pending.get(key, 0) + amount
            return
        if self._failing:
            log.info("metrics.flush_recovered", pending=len(pending))
            self._failing = False

    def close(self) -> None:
        """Stop the flusher and write what is left."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self.flush()

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="gemq-metrics", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()


class Metrics:
    """What gemq records, in its own terms; the values go to an :class:`Accumulator`."""

    def __init__(self, sink: Accumulator) -> None:
        self.sink = sink
        self._models: set[str] = set()
        self._lock = threading.Lock()

    def job_submitted(self, priority: str, model: str, count: int = 1) -> None:
        """The web accepted a job (or ``count`` jobs of a batch)."""
        self._count(SUBMITTED, count, priority=priority, model=self._model(model))

    def call_started(self, record: Mapping[str, str], now_ms: int) -> None:
        """A job's first Gemini call starts: observe its queue wait."""
        waited = max(0.0, (now_ms - int(record["created_ms"])) / 1000)
        self._observe(QUEUE_WAIT, waited, priority=record["priority"])

    def admitted(self, model: str, waited: float) -> None:
        """The limiter admitted a call after ``waited`` seconds (0 when at once)."""
        self._observe(ADMISSION, max(0.0, waited), model=self._model(model))

    def upstream_error(self, model: str, exc: GemqError) -> None:
        """A Gemini call failed: by HTTP status when there was one, else by error type."""
        code = str(exc.status_code) if exc.status_code else exc.error_type
        self._count(UPSTREAM_ERRORS, model=self._model(model), code=code)

    def job_finished(self, record: Mapping[str, str], status: str, result: Mapping[str, Any] | None = None) -> None:
        """A job reached a terminal status: count it, time it, add up its tokens."""
        model = self._model(str((result or {}).get("model") or record["model"]))
        self._count(JOBS, status=status, priority=record["priority"], model=model)
        if record.get("started_ms") and record.get("finished_ms"):
            seconds = (int(record["finished_ms"]) - int(record["started_ms"])) / 1000
            self._observe(RUN, max(0.0, seconds), model=model, status=status)
        if result is None:
            return
        usage = result.get("usage") or {}
        self._count(TOKENS, int(usage.get("prompt_tokens") or 0), model=model, kind="input")
        self._count(TOKENS, int(usage.get("output_tokens") or 0), model=model, kind="output")
        if result.get("time_to_first_token_ms") is not None:
            self._observe(TTFT, int(result["time_to_first_token_ms"]) / 1000, model=model)

    def webhook_delivery(self, outcome: str) -> None:
        """One webhook delivery attempt ended with ``outcome`` (see ``WEBHOOK_OUTCOME``)."""
        self._count(WEBHOOKS, outcome=outcome if WEBHOOK_OUTCOME.fullmatch(outcome) else "other")

    def _count(self, spec: MetricSpec, amount: float = 1, **labels: str) -> None:
        if amount:
            self.sink.add("counters", counter_field(spec.name, labels), amount)

    def _observe(self, spec: MetricSpec, value: float, **labels: str) -> None:
        self.sink.add("hist", hist_field(spec.name, labels, bucket_of(value, spec.buckets)), 1)
        self.sink.add("hist", hist_field(spec.name, labels, "sum"), value, exact=False)

    def _model(self, model: str) -> str:
        with self._lock:
            if model in self._models:
                return model
            if len(self._models) < MAX_MODEL_LABELS:
                self._models.add(model)
                return model
        return "other"

