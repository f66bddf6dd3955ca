"""Batches: their states and the views the API shows (the batch, one line of its results).

A batch is a hash (``keys.batch``) holding its options, its counters by status and its token
sums, plus the list of its items (``keys.batch_items``, ``"{job id} {key}"`` in submission order).
Every item is an ordinary job with ``batch_id``; ``lua/transition.lua`` keeps the counters with
each status change and finishes the batch with the change that ends its last item, so nothing
ever scans the jobs to count them.  ``worker.store.batches`` reads and writes them.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from worker.core.clock import iso_ms
from worker.core.job import ErrorInfo, JobResult, Priority, Usage, WebhookDelivery

#: Counters kept on the batch hash, one per job status (``n_<status>``).
ITEM_STATUSES = ("queued", "running", "retrying", "succeeded", "failed", "cancelled")


class BatchStatus(StrEnum):
    """Where a batch is in its life."""

    #: No item has started yet.
    queued = "queued"
    #: Some items started or finished, not all.
    running = "running"
    #: Every item finished (succeeded, failed or cancelled one by one).
    completed = "completed"
    #: Every item finished after the client cancelled the batch (and that stopped at least one).
    cancelled = "cancelled"

    @property
    def finished(self) -> bool:
        """True once every item is terminal."""
        return self in (BatchStatus.completed, BatchStatus.cancelled)


class BatchCounts(BaseModel):
    """Items by status."""

    queued: int = 0
    running: int = 0
    retrying: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0


class Batch(BaseModel):
    """A batch as the API shows it."""

    id: str
    status: BatchStatus
    priority: Priority
    #: The model of items that name none.
    model: str
    created_at: str
    finished_at: str | None = None
    #: When the client asked to cancel the batch.
    cancel_requested_at: str | None = None
    total: int
    #: Items that reached a terminal status.
    done: int
    #: ``done / total``, from 0 to 1.
    progress: float
    counts: BatchCounts
    #: Tokens Gemini counted for the items that succeeded, summed as they finished (cached answers add none).
    usage: Usage
    metadata: dict[str, str] = Field(default_factory=dict)
    webhook_url: str | None = None
    #: The ``batch.completed`` event, once the batch finished (with a ``webhook_url``).
    webhook: WebhookDelivery | None = None

    @classmethod
    def from_record(cls, record: dict[str, str]) -> Batch:
        """Build the view from a stored batch hash."""
        counts = {status: max(0, int(record.get(f"n_{status}") or 0)) for status in ITEM_STATUSES}
        total = int(record["n_total"])
        done = int(record.get("n_done") or 0)
        return cls(
            id=record["id"],
            status=current_status(record, counts["queued"], total),
            priority=Priority(record["priority"]),
            model=record["model"],
            created_at=iso_ms(int(record["created_ms"])),
            finished_at=_iso_or_none(record.get("finished_ms")),
            cancel_requested_at=_iso_or_none(record.get("cancel_ms")),
            total=total,
            done=done,
            progress=round(done / total, 4) if total else 1.0,
            counts=BatchCounts(**counts),
            usage=Usage(prompt_tokens=int(record.get("tokens_prompt") or 0),
                        output_tokens=int(record.get("tokens_output") or 0),
                        total_tokens=int(record.get("tokens_total") or 0)),
            metadata=json.loads(record.get("metadata") or "{}"),
            webhook_url=record.get("webhook_url") or None,
            webhook=WebhookDelivery.from_record(record),
        )


class BatchResultLine(BaseModel):
    """One line of ``GET /v1/batches/<id>/results`` (JSONL, in submission order)."""

    #: Position in the submission, from 1 (the line number of a JSONL body without blank lines).
    index: int
    #: The line's ``key``, if it had one.
    key: str | None = None
    #: The item's job id (``GET /v1/jobs/<id>``).
    id: str
    #: The job's status, or ``expired`` if its record is gone.
    status: str
    result: JobResult | None = None
    error: ErrorInfo | None = None


def current_status(record: dict[str, str], queued: int, total: int) -> BatchStatus:
    """The batch's status: the stored one once finished, else from its counters."""
    stored = BatchStatus(record.get("status") or "queued")
    if stored.finished:
        return stored
    return BatchStatus.queued if queued >= total else BatchStatus.running


def result_line(index: int, job_id: str, key: str | None, fields: list[str | None]) -> dict[str, Any]:
    """A results line from an item's ``status``, ``result`` and ``error`` fields (``None`` when gone)."""
    status, result, error = fields
    return {
        "index": index, "key": key, "id": job_id, "status": status or "expired",
        "result": json.loads(result) if result else None,
        "error": json.loads(error) if error else None,
    }


def _iso_or_none(ms: str | None) -> str | None:
    return iso_ms(int(ms)) if ms else None
