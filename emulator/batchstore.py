"""Batch jobs: their timeline, their Operation body, and the book of every job of the project.

A job's state follows a timeline fixed at create and moved by the admin API, evaluated lazily
whenever a job is read (nothing runs in the background, so a test that reads a job sees exactly
what the clock says):

    create ── pending_s ──> RUNNING ── running_s ──> SUCCEEDED | FAILED | EXPIRED (per outcome)
      └──────────────────────── expire_s (48 h) ─────────────────────> EXPIRED (if not done by then)

While RUNNING, lines complete evenly over `running_s`, in input order (so `batchStats` moves);
each is answered when it completes. A stalled job stays RUNNING, answers nothing and expires at
`expire_s`. Cancel ends it CANCELLED at once. Only SUCCEEDED has results: inline in input order, or
`files/batch-<id>` (JSONL, `key` and `response`/`error` per line) for a file input.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from emulator.filestore import FileStore
from emulator.resources import rfc3339
from emulator.wire import DEFAULT_MESSAGES

if TYPE_CHECKING:
    from emulator.batchlines import Line

Outcome = Literal["succeed", "stall", "expire", "fail"]
#: Answers one line when it completes: `{"response": ...}` or `{"error": ...}`.
LineRunner = Callable[["Batch", "Line"], dict[str, Any]]
#: `@type` of the Operation's metadata and response, as in every live capture (python-genai#1323).
BATCH_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch"
OUTPUT_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput"
#: Length of a batch id (36 lowercase alphanumerics in every real example).
BATCH_ID_LENGTH = 36
#: MIME type of a results file.
RESULTS_MIME = "application/jsonl"


class BatchState(StrEnum):
    """`metadata.state` on the wire (the SDK shows JOB_STATE_*)."""

    PENDING = "BATCH_STATE_PENDING"  #: queued
    RUNNING = "BATCH_STATE_RUNNING"  #: lines are being answered
    SUCCEEDED = "BATCH_STATE_SUCCEEDED"  #: done, with results (lines may have failed one by one)
    FAILED = "BATCH_STATE_FAILED"  #: done, no results
    CANCELLED = "BATCH_STATE_CANCELLED"  #: cancelled by the client, no results
    EXPIRED = "BATCH_STATE_EXPIRED"  #: not done within expire_s (48 h), no results


TERMINAL = frozenset({BatchState.SUCCEEDED, BatchState.FAILED, BatchState.CANCELLED, BatchState.EXPIRED})
#: The Operation `error` of each ending without results (google.rpc.Status; shapes not confirmed live).
ENDING_ERRORS: dict[BatchState, dict[str, Any]] = {
    BatchState.FAILED: {"code": 13, "message": DEFAULT_MESSAGES[500]},
    BatchState.CANCELLED: {"code": 1, "message": "The batch was cancelled."},
    BatchState.EXPIRED: {"code": 4, "message": "The batch expired before it completed."},
}


@dataclass
class Timeline:
    """When a job starts running, how its lines progress, and when it expires (unix seconds)."""

    run_at: float
    progress_from: float
    progress_until: float
    expire_at: float
    progress_base: int = 0


@dataclass
class Batch:
    """One batch job."""

    id: str
    model: str
    lines: list[Line]
    outcome: Outcome
    create_time: float
    timeline: Timeline
    key_fingerprint: str | None = None
    display_name: str | None = None
    input_file: str | None = None
    priority: int = 0
    seq: int = 0
    state: BatchState = BatchState.PENDING
    update_time: float = 0.0
    end_time: float | None = None
    done: int = 0
    output: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        """`batches/<id>`."""
        return f"batches/{self.id}"

    @property
    def terminal(self) -> bool:
        """True once the job has ended."""
        return self.state in TERMINAL

    def advance(self, now: float, runner: LineRunner, files: FileStore) -> None:
        """Apply every event of the timeline up to ``now``."""
        if self.terminal:
            return
        tl = self.timeline
        horizon = min(now, tl.expire_at)
        if self.state is BatchState.PENDING and horizon >= tl.run_at:
            self._set(BatchState.RUNNING, tl.run_at)
        if self.state is BatchState.RUNNING:
            self._complete_until(horizon, runner)
            if self.outcome != "stall" and horizon >= tl.progress_until:
                self._end(tl.progress_until, runner, files)
        if not self.terminal and now >= tl.expire_at:
            self._end_without_results(BatchState.EXPIRED, tl.expire_at)

    def _due(self, t: float) -> int:
        """Lines complete at ``t`` (only a job that will succeed answers lines)."""
        tl, total = self.timeline, len(self.lines)
        if self.outcome != "succeed" or t < tl.progress_from:
            return tl.progress_base
        if t >= tl.progress_until:
            return total
        share = (t - tl.progress_from) / (tl.progress_until - tl.progress_from)
        return min(total, tl.progress_base + math.floor(share * (total - tl.progress_base)))

    def _completed_at(self, count: int) -> float:
        tl, total = self.timeline, len(self.lines)
        if total <= tl.progress_base:
            return tl.progress_from
        share = (count - tl.progress_base) / (total - tl.progress_base)
        return tl.progress_from + share * (tl.progress_until - tl.progress_from)

    def _complete_until(self, t: float, runner: LineRunner) -> None:
        due = self._due(t)
        if due <= self.done:
            return
        for line in self.lines[self.done : due]:
            line.result = runner(self, line)
        self.done = due
        self.update_time = max(self.update_time, self._completed_at(due))

    def _end(self, t: float, runner: LineRunner, files: FileStore) -> None:
        if self.outcome != "succeed":
            self._end_without_results(BatchState.FAILED if self.outcome == "fail" else BatchState.EXPIRED, t)
            return
        for line in self.lines[self.done :]:
            line.result = runner(self, line)
        self.done = len(self.lines)
        self.output = self._results(files, t)
        self._set(BatchState.SUCCEEDED, t)
        self.end_time = t

    def _end_without_results(self, state: BatchState, t: float) -> None:
        self._set(state, t)
        self.end_time = t

    def _set(self, state: BatchState, t: float) -> None:
        self.state = state
        self.update_time = max(self.update_time, t)

    def _results(self, files: FileStore, t: float) -> dict[str, Any]:
        if self.input_file is None:
            entries = [{**({"metadata": line.metadata} if line.metadata is not None else {}), **(line.result or {})}
                       for line in self.lines]
            return {"inlinedResponses": {"inlinedResponses": entries}}
        rows = [{**(line.result or {}), **({"key": line.key} if line.key is not None else {})} for line in self.lines]
        data = "".join(json.dumps(row) + "\n" for row in rows).encode()
        stored = files.add_generated(f"batch-{self.id}", data, RESULTS_MIME, t)
        return {"responsesFile": stored.name}

    # Forced transitions (admin API and cancel); each first catches up with the clock.

    def cancel(self, now: float, runner: LineRunner, files: FileStore) -> None:
        """End CANCELLED now, without results (a no-op on an ended job)."""
        self.advance(now, runner, files)
        if not self.terminal:
            self._end_without_results(BatchState.CANCELLED, now)

    def force(self, action: str, now: float, runner: LineRunner, files: FileStore, running_s: float) -> None:
        """Apply an admin action: advance, finish, stall, resume, fail or expire (see the README)."""
        self.advance(now, runner, files)
        if self.terminal:
            return
        tl = self.timeline
        if action in ("fail", "expire"):
            self._end_without_results(BatchState.FAILED if action == "fail" else BatchState.EXPIRED, now)
            return
        if action == "stall":
            self.outcome = "stall"
            self._rebase(now, math.inf)
            return
        if action == "resume" or (action in ("advance", "finish") and self.outcome == "stall"):
            self.outcome = "succeed"
            left = (len(self.lines) - self.done) / max(1, len(self.lines))
            start = max(now, tl.run_at)
            self._rebase(start, start + running_s * left)
        if action == "advance" and self.state is BatchState.PENDING:
            tl.run_at = now
            self._rebase(now, now + running_s)
        elif action in ("advance", "finish"):
            tl.run_at = min(tl.run_at, now)
            self._rebase(now, now)
        self.advance(now, runner, files)

    def _rebase(self, start: float, until: float) -> None:
        tl = self.timeline
        tl.progress_base, tl.progress_from, tl.progress_until = self.done, start, until

    def stats(self) -> dict[str, str]:
        """`batchStats`: int64 counts as strings, zero counts left out (as in live captures)."""
        failed = sum(1 for line in self.lines[: self.done] if line.result and "error" in line.result)
        counts = {
            "requestCount": len(self.lines),
            "successfulRequestCount": self.done - failed,
            "failedRequestCount": failed,
            "pendingRequestCount": len(self.lines) - self.done,
        }
        return {name: str(value) for name, value in counts.items() if value}

    def operation(self, *, with_inline_results: bool = True) -> dict[str, Any]:
        """The Operation the API answers for this job (`batches.list` leaves inline results out)."""
        meta: dict[str, Any] = {"@type": BATCH_TYPE, "model": f"models/{self.model}"}
        if self.display_name:
            meta["displayName"] = self.display_name
        if self.input_file:
            meta["inputConfig"] = {"fileName": self.input_file}
        output = self.output if self.output and (with_inline_results or "responsesFile" in self.output) else None
        if output:
            meta["output"] = output
        meta["createTime"] = rfc3339(self.create_time)
        if self.end_time is not None:
            meta["endTime"] = rfc3339(self.end_time)
        meta.update(updateTime=rfc3339(self.update_time), batchStats=self.stats(), state=self.state.value,
                    name=self.name)
        if self.priority:
            meta["priority"] = str(self.priority)
        op: dict[str, Any] = {"name": self.name, "metadata": meta}
        if self.terminal:
            op["done"] = True
        if output:
            op["response"] = {"@type": OUTPUT_TYPE, **output}
        elif self.state in ENDING_ERRORS:
            op["error"] = ENDING_ERRORS[self.state]
        return op


class BatchBook:
    """Every batch job of the emulated project (and the file store its results go to)."""

    def __init__(self, files: FileStore) -> None:
        self.files = files
        self._batches: dict[str, Batch] = {}
        self._seq = 0

    def add(self, batch: Batch) -> Batch:
        """Record a new job."""
        self._seq += 1
        batch.seq = self._seq
        self._batches[batch.id] = batch
        return batch

    def get(self, batch_id: str) -> Batch | None:
        """The job ``batch_id`` as last brought up to date (None when unknown or deleted)."""
        return self._batches.get(batch_id)

    def all(self, now: float, runner: LineRunner) -> list[Batch]:
        """Every job, brought up to ``now``, oldest first."""
        for batch in self._batches.values():
            batch.advance(now, runner, self.files)
        return list(self._batches.values())

    def active(self, now: float, runner: LineRunner) -> list[Batch]:
        """Jobs still PENDING or RUNNING: what the concurrency and enqueued-token caps count."""
        return [batch for batch in self.all(now, runner) if not batch.terminal]

    def delete(self, batch_id: str) -> bool:
        """Forget a job (it stops where it is); False when unknown."""
        return self._batches.pop(batch_id, None) is not None

    def clear(self) -> None:
        """Forget every job."""
        self._batches.clear()
