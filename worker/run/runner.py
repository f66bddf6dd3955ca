"""One run of a job: admission, the streamed Gemini call, retries and the final state.

Plain code with its collaborators passed in, so it runs and is tested without a broker;
``worker.run.step.JobStep`` turns an :class:`Outcome` into a re-queue, a webhook or a batch's end.

A run never sleeps long: a wait longer than ``admission_sleep_max`` (capacity or a retry's backoff)
ends the run with ``Outcome.requeue_in`` and the task re-publishes the job with that countdown,
keeping its priority.  Waiting for capacity leaves the job's status and attempts as they were.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from worker.core.clock import now_ms
from worker.core.errors import GemqError, JobCancelled, PermanentError, QuotaExhausted, RateLimited, RetryableError
from worker.core.job import NON_TERMINAL, JobStatus, Priority
from worker.core.settings import Settings
from worker.run.gemini import GeminiClient, Generation
from worker.store.cache import ResponseCache
from worker.store.cancels import CancelWatch
from worker.store.conversations import TURN_POLL_S, Conversations
from worker.store.jobs import JobStore
from worker.store.limiter import Admission, LeaseKeeper, Limiter, estimate_tokens
from worker.store.metrics import Accumulator, Metrics
from worker.store.scripts import OneTrip
from worker.run.stream import StreamWriter

log = structlog.get_logger("gemq.runner")

#: Statuses from which a worker may start a call (``running`` again after a worker died mid-call).
STARTABLE = ("queued", "retrying", "running")


@dataclass(frozen=True)
class Outcome:
    """What the task does after a run."""

    #: Re-publish the job with this countdown (seconds).
    requeue_in: float | None = None
    #: The terminal status this run wrote, if it wrote one.
    finished: str | None = None
    #: True when this run finished the last item of the job's batch.
    batch_completed: bool = False
    #: The job's record as this run last saw it.
    record: dict[str, str] | None = None


class JobRunner:
    """Runs jobs against Gemini under the shared limits."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: JobStore,
        gemini: GeminiClient,
        limiter: Limiter,
        leases: LeaseKeeper | None = None,
        cancels: CancelWatch | None = None,
        metrics: Metrics | None = None,
        conversations: Conversations | None = None,
        cache: ResponseCache | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.store = store
        self.gemini = gemini
        self.limiter = limiter
        self.leases = leases
        self.cancels = cancels
        self.metrics = metrics or Metrics(Accumulator())
        self.conversations = conversations
        self.cache = cache
        self.sleep = sleep
        self.jitter = jitter

    def run(self, job_id: str) -> Outcome:
        """Take the job one step further: a call, a wait, a retry or its end."""
        record = self.store.get(job_id)
        if record is None or record["status"] not in NON_TERMINAL:
            if record is not None and self.conversations:
                self.conversations.settle(record)  # cancelled while queued, or its worker died after the end
            return Outcome(record=record)
        request = self._prepare(record)
        if isinstance(request, Outcome):
            return request
        model = current_model(record, request)
        admission = self._admit(record, model, request)
        if not isinstance(admission, Admission):
            return admission
        if self.leases:
            self.leases.hold(model, admission.call_id)
        if self.cancels:
            self.cancels.watch(job_id)
        call = Call(model, admission)
        try:
            return self._call(record, request, call)
        finally:
            if self.cancels:
                self.cancels.forget(job_id)
            if self.leases:
                self.leases.drop(model, admission.call_id)
            if not call.released:
                self.limiter.release(model, admission, call.prompt_tokens)

    def _prepare(self, record: dict[str, str]) -> dict[str, Any] | Outcome:
        """The request to send, or an Outcome when the run ends before a call (cache hit, conversation line)."""
        request: dict[str, Any] = json.loads(record["request"])
        if self.cache and (cached := self.cache.get(record)) is not None:
            return self._finish(record, JobStatus.succeeded, result=cached)
        if self.conversations:
            prepared = self.conversations.prepare(record, request)
            if prepared is None:
                return Outcome(requeue_in=TURN_POLL_S, record=record)  # not its turn: no attempt is counted
            request = prepared
        return request

    def _admit(self, record: dict[str, str], model: str, request: dict[str, Any]) -> Admission | Outcome:
        """Admission for one call; an Outcome when the run ends here instead.

        Short waits are slept in this thread, but no more than ``admission_sleep_max`` in all: a job
        that must wait longer goes back to the broker with a countdown and frees the thread.
        """
        priority = Priority(record["priority"])
        cost = estimate_tokens(request)
        slept = 0.0
        asked_ms = now_ms()
        while True:
            admission = self.limiter.acquire(model, job_id=record["id"], priority=priority, cost=cost)
            if admission.admitted:
                # A wait that spanned re-queues started when the first of them was refused.
                self.metrics.admitted(model, (now_ms() - int(record.get("wait_since_ms") or asked_ms)) / 1000)
                return admission
            if admission.day_exhausted:
                error = QuotaExhausted(f"the daily request quota of {model} is spent until midnight Pacific time",
                                       quota_id="GenerateRequestsPerDayPerProjectPerModel")
                return self._next_model_or_fail(record, request, model, error)
            if slept + admission.wait > self.settings.admission_sleep_max:
                if not record.get("wait_since_ms"):
                    self.store.set_fields(record["id"], {"wait_since_ms": str(asked_ms)})
                return Outcome(requeue_in=self._countdown(admission.wait), record=record)
            self.sleep(admission.wait)
            slept += admission.wait
            if self.store.status(record["id"]) not in NON_TERMINAL:
                return Outcome(record=record)

    def _call(self, record: dict[str, str], request: dict[str, Any], call: Call) -> Outcome:
        model = call.model
        attempts = int(record.get("attempts") or 0) + 1
        fields = {"attempts": str(attempts), "model_attempts": str(int(record.get("model_attempts") or 0) + 1),
                  "partial_text": ""}  # each attempt streams the answer from its start
        if not record.get("started_ms"):
            fields["started_ms"] = str(now_ms())
        if record.get("wait_since_ms"):
            fields["wait_since_ms"] = ""
        if not self.store.transition(record, JobStatus.running, allowed=STARTABLE, fields=fields).moved:
            return Outcome(record=record)  # cancelled while it waited
        if "started_ms" in fields:
            self.metrics.call_started(record, int(fields["started_ms"]))
        record.update(fields, status="running")
        writer = StreamWriter(self.store, record["id"], self.settings.stream_flush_interval, self.cancels)
        bound = log.bind(job_id=record["id"], tenant=record.get("tenant"), model=model, priority=record["priority"],
                         attempt=attempts)
        try:
            generation = self.gemini.generate(model, request, on_delta=writer)
        except JobCancelled:
            bound.info("job.cancelled_while_running")
            if self.conversations:
                self.conversations.settle(record)
            return Outcome(record=record)
        except RetryableError as exc:
            bound.info("job.attempt_failed", error_type=type(exc).__name__, status_code=exc.status_code)
            self.metrics.upstream_error(model, exc)
            return self._retry(record, request, model, exc)
        except QuotaExhausted as exc:
            self.metrics.upstream_error(model, exc)
            self.limiter.close_for_day(model)
            return self._next_model_or_fail(record, request, model, exc)
        except PermanentError as exc:
            bound.info("job.attempt_failed", error_type=type(exc).__name__, status_code=exc.status_code)
            self.metrics.upstream_error(model, exc)
            return self._finish(record, JobStatus.failed, error=exc.as_dict())
        call.prompt_tokens = generation.prompt_tokens
        return self._succeed(record, call, generation, writer.take_pending())

    def _succeed(self, record: dict[str, str], call: Call, generation: Generation, pending: str) -> Outcome:
        """Finish the job; the call's slot and token settlement go in the same round trip."""
        def release(trip: OneTrip) -> None:
            self.limiter.release(call.model, call.admission, call.prompt_tokens, trip=trip)

        outcome = self._finish(record, JobStatus.succeeded, result=generation.as_result(call.model), delta=pending,
                               also=release)
        call.released = True
        return outcome

    def _retry(self, record: dict[str, str], request: dict[str, Any], model: str, exc: RetryableError) -> Outcome:
        """Schedule the next attempt, or move on when the retry budget is spent."""
        delay = exc.retry_after if exc.retry_after is not None else self._backoff(int(record["model_attempts"]))
        if isinstance(exc, RateLimited):
            self.limiter.pause(model, delay)  # every worker holds off, not just this one
        elapsed = (now_ms() - int(record["started_ms"])) / 1000
        spent = int(record["model_attempts"]) >= self.settings.max_attempts
        if spent or elapsed + delay > self.settings.retry_max_total:
            return self._next_model_or_fail(record, request, model, exc)
        fields = {"last_error": json.dumps(exc.as_dict()), "next_attempt_ms": str(now_ms() + int(delay * 1000))}
        if not self.store.transition(record, JobStatus.retrying, allowed=("running",), fields=fields).moved:
            return Outcome(record=record)
        return Outcome(requeue_in=self._countdown(delay), record=record)

    def _next_model_or_fail(
        self, record: dict[str, str], request: dict[str, Any], model: str, exc: GemqError
    ) -> Outcome:
        """Move to the next fallback model, or fail the job with ``exc``."""
        index = int(record.get("model_index") or 0) + 1
        fallbacks = request.get("fallback_models") or []
        if index > len(fallbacks):
            return self._finish(record, JobStatus.failed, error=exc.as_dict())
        fields = {"model_index": str(index), "model_attempts": "0", "last_error": json.dumps(exc.as_dict())}
        allowed = ("running", "queued", "retrying")
        if not self.store.transition(record, JobStatus.retrying, allowed=allowed, fields=fields).moved:
            return Outcome(record=record)
        log.info("job.fallback", job_id=record["id"], from_model=model, to_model=fallbacks[index - 1])
        return Outcome(requeue_in=0.0, record=record)

    def _finish(
        self, record: dict[str, str], status: JobStatus, *, result: dict[str, Any] | None = None,
        error: dict[str, str] | None = None, delta: str = "", also: Callable[[OneTrip], None] | None = None,
    ) -> Outcome:
        fields = {"finished_ms": str(now_ms())}
        if result is not None:
            fields["result"] = json.dumps(result)
        if error is not None:
            fields["error"] = json.dumps(error)
        moved = self.store.transition(record, status, allowed=NON_TERMINAL, fields=fields, delta=delta, also=also)
        if not moved.moved:
            return Outcome(record=record)
        record.update(fields, status=status.value)
        # A cached answer spent no Gemini tokens: count the job, not its (original) usage.
        self.metrics.job_finished(record, status.value, None if (result or {}).get("cached") else result)
        if self.conversations:
            self.conversations.settle(record)
        if self.cache and result is not None:
            self.cache.put(record, result)
        log.info("job.finished", job_id=record["id"], tenant=record.get("tenant"), status=status.value,
                 model=record["model"], priority=record["priority"], attempts=int(record.get("attempts") or 0),
                 error_type=(error or {}).get("type"), cached=bool((result or {}).get("cached")), **durations(record))
        return Outcome(finished=status.value, batch_completed=moved.batch_completed, record=record)

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter: uniform in [0, min(max, base * 2**attempt)]."""
        ceiling = min(self.settings.retry_max_delay, self.settings.retry_base_delay * 2 ** max(0, attempt - 1))
        return self.jitter() * ceiling

    def _countdown(self, wait: float) -> float:
        """A countdown safely below the visibility timeout (a longer wait is re-asked on waking)."""
        return max(0.0, min(wait, self.settings.visibility_timeout / 2, self.settings.retry_max_delay))


@dataclass
class Call:
    """One admitted call to a model, and what Gemini counted of its input (to settle the charge)."""

    model: str
    admission: Admission
    prompt_tokens: int = 0
    #: True once the slot was given back with the job's final transition.
    released: bool = False


def current_model(record: dict[str, str], request: dict[str, Any]) -> str:
    """The model this job calls now: its own, or a fallback after the budget ran out."""
    index = int(record.get("model_index") or 0)
    return record["model"] if index == 0 else request["fallback_models"][index - 1]


def durations(record: dict[str, str]) -> dict[str, int]:
    """A finished job's timings in ms, for its log line: queued (to first call) and run (first call to end)."""
    created, started, finished = (int(record.get(f) or 0) for f in ("created_ms", "started_ms", "finished_ms"))
    out = {}
    if started:
        out["queued_ms"] = started - created
        if finished:
            out["run_ms"] = finished - started
    elif finished:
        out["queued_ms"] = finished - created
    return out
