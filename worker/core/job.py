"""The job: its states, its priorities and the view a client gets back (``GET /v1/jobs/<id>``).

The request a client sends is in ``worker.core.request``; both are the single source of the HTTP
contract (the web validates with them and ``/openapi.json`` is generated from them).
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field

from worker.core.clock import iso_ms


class JobStatus(StrEnum):
    """Where a job is in its life."""

    #: Accepted and waiting for a worker (or for capacity under the model's limits).
    queued = "queued"
    #: A worker is calling Gemini.
    running = "running"
    #: A retryable failure happened; the job waits for its next attempt.
    retrying = "retrying"
    #: Finished with a result.
    succeeded = "succeeded"
    #: Finished with an error.
    failed = "failed"
    #: Cancelled by the client; Gemini is not called again.
    cancelled = "cancelled"

    @property
    def terminal(self) -> bool:
        """True for the states a job never leaves."""
        return self in TERMINAL


TERMINAL = frozenset({JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled})
#: The statuses a job can still leave, as stored.
NON_TERMINAL = tuple(s.value for s in JobStatus if not s.terminal)


class Priority(StrEnum):
    """Scheduling priority: high work runs before normal, normal before low."""

    high = "high"
    normal = "normal"
    low = "low"

    @property
    def rank(self) -> int:
        """0 for high, 1 for normal, 2 for low (lower runs first)."""
        return _RANKS[self]


_RANKS = {Priority.high: 0, Priority.normal: 1, Priority.low: 2}

ErrorType = Literal["invalid_request", "safety_blocked", "quota_exhausted", "upstream_error", "timeout", "cancelled"]


class Usage(BaseModel):
    """Token counts Gemini reported."""

    prompt_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0


class JobResult(BaseModel):
    """What Gemini answered."""

    text: str
    finish_reason: str | None = None
    model_version: str | None = None
    #: The model that answered (differs from the job's model after a fallback).
    model: str | None = None
    usage: Usage = Field(default_factory=Usage)
    #: Milliseconds from the call to the first streamed token.
    time_to_first_token_ms: int | None = None
    #: True when the answer came from the response cache (no Gemini call was made).
    cached: bool = False


class ErrorInfo(BaseModel):
    """Why a job failed (or why its last attempt did)."""

    type: ErrorType
    message: str


class WebhookAttempt(BaseModel):
    """One webhook delivery attempt."""

    #: When the attempt started.
    at: str
    #: The receiver's HTTP status, when it answered.
    status_code: int | None = None
    #: Why the attempt failed without a status (timeout, connection refused, refused target).
    error: str | None = None
    duration_ms: int


class WebhookDelivery(BaseModel):
    """The job's webhook: its event id (the ``webhook-id`` header), attempts and state."""

    event_id: str
    #: ``pending`` until a 2xx (``delivered``) or until the attempts run out (``failed``).
    state: Literal["pending", "delivered", "failed"]
    attempts: list[WebhookAttempt] = Field(default_factory=list)
    next_attempt_at: str | None = None

    @classmethod
    def from_record(cls, record: dict[str, str]) -> WebhookDelivery | None:
        """The delivery mirrored on a job hash, if the job has an event."""
        if not record.get("webhook_event_id"):
            return None
        next_ms = record.get("webhook_next_ms")
        return cls.model_validate({
            "event_id": record["webhook_event_id"], "state": record.get("webhook_state") or "pending",
            "attempts": json.loads(record.get("webhook_attempts") or "[]"),
            "next_attempt_at": iso_ms(int(next_ms)) if next_ms else None,
        })


class Job(BaseModel):
    """A job as the API shows it."""

    id: str
    status: JobStatus
    priority: Priority
    model: str
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None
    attempts: int = 0
    batch_id: str | None = None
    conversation_id: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    webhook_url: str | None = None
    result: JobResult | None = None
    error: ErrorInfo | None = None
    #: The last failed attempt's error while the job is ``retrying``.
    last_error: ErrorInfo | None = None
    #: Text streamed so far while the job runs.
    partial_text: str | None = None
    #: The webhook event of a finished job with a ``webhook_url``.
    webhook: WebhookDelivery | None = None

    @classmethod
    def from_record(cls, record: dict[str, str]) -> Job:
        """Build the view from a stored job hash."""
        return cls(
            id=record["id"],
            status=JobStatus(record["status"]),
            priority=Priority(record["priority"]),
            model=record["model"],
            created_at=iso_ms(int(record["created_ms"])),
            started_at=iso_ms(int(record["started_ms"])) if record.get("started_ms") else None,
            finished_at=iso_ms(int(record["finished_ms"])) if record.get("finished_ms") else None,
            attempts=int(record.get("attempts") or 0),
            batch_id=record.get("batch_id") or None,
            conversation_id=record.get("conversation_id") or None,
            metadata=json.loads(record.get("metadata") or "{}"),
            webhook_url=record.get("webhook_url") or None,
            result=_json_or_none(record.get("result")),
            error=_json_or_none(record.get("error")),
            last_error=_json_or_none(record.get("last_error")) if record["status"] == "retrying" else None,
            partial_text=record.get("partial_text") if record["status"] == "running" else None,
            webhook=WebhookDelivery.from_record(record),
        )


def _json_or_none(raw: str | None) -> Any:
    return json.loads(raw) if raw else None
