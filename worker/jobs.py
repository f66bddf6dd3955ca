"""The job: its states, its priorities, the request a client sends and the view it gets back.

These pydantic models are the single source of the HTTP contract: the web validates with them
and ``/openapi.json`` is generated from them.  Input bounds are named constants below.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

#: Longest prompt (characters, all text parts together).
MAX_PROMPT_CHARS = 1_000_000
#: Most turns in ``contents``.
MAX_CONTENTS = 1_000
#: Most parts in one turn.
MAX_PARTS = 100
#: Most metadata entries, and the longest key and value.
MAX_METADATA_KEYS = 16
MAX_METADATA_KEY_CHARS = 64
MAX_METADATA_VALUE_CHARS = 512
#: Model names: letters, digits, dot, dash, underscore (they become part of Redis keys).
MODEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
#: Most stop sequences, and their length.
MAX_STOP_SEQUENCES = 5
MAX_STOP_SEQUENCE_CHARS = 100
#: Most fallback models and safety settings.
MAX_FALLBACK_MODELS = 3
MAX_SAFETY_SETTINGS = 10
#: Longest webhook URL.
MAX_URL_CHARS = 2048

# Bounds written as types, so /openapi.json states them and the validation errors name the item.
ModelName = Annotated[str, StringConstraints(pattern=MODEL_PATTERN)]
StopSequence = Annotated[str, StringConstraints(min_length=1, max_length=MAX_STOP_SEQUENCE_CHARS)]
MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=MAX_METADATA_KEY_CHARS)]
MetadataValue = Annotated[str, StringConstraints(max_length=MAX_METADATA_VALUE_CHARS)]
#: Conversation ids (tenant-scoped; they become part of Redis keys).
CONVERSATION_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


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


class StrictModel(BaseModel):
    """A request model: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


class Part(StrictModel):
    """One text part of a turn."""

    text: str = Field(max_length=MAX_PROMPT_CHARS)


class Content(StrictModel):
    """One turn of a conversation, as Gemini takes it."""

    role: Literal["user", "model"] = "user"
    parts: list[Part] = Field(min_length=1, max_length=MAX_PARTS)


class GenerationConfig(StrictModel):
    """Sampling and output controls passed to Gemini."""

    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    top_k: int | None = Field(default=None, ge=1, le=1000)
    max_output_tokens: int | None = Field(default=None, ge=1, le=65_536)
    stop_sequences: list[StopSequence] | None = Field(default=None, max_length=MAX_STOP_SEQUENCES)
    response_mime_type: Literal["text/plain", "application/json", "text/x.enum"] | None = None


HarmCategory = Literal[
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
    "HARM_CATEGORY_CIVIC_INTEGRITY",
]
HarmThreshold = Literal["BLOCK_NONE", "BLOCK_ONLY_HIGH", "BLOCK_MEDIUM_AND_ABOVE", "BLOCK_LOW_AND_ABOVE", "OFF"]


class SafetySetting(StrictModel):
    """One safety filter threshold."""

    category: HarmCategory
    threshold: HarmThreshold


class JobRequest(StrictModel):
    """What a client submits: exactly one of ``prompt`` and ``contents``."""

    # The "exactly one" rule in /openapi.json too (a null value does not count as given).
    model_config = ConfigDict(extra="forbid", json_schema_extra={"oneOf": [
        {"required": ["prompt"], "properties": {"prompt": {"type": "string"}}},
        {"required": ["contents"], "properties": {"contents": {"type": "array"}}},
    ]})

    prompt: str | None = Field(default=None, min_length=1, max_length=MAX_PROMPT_CHARS)
    contents: list[Content] | None = Field(default=None, min_length=1, max_length=MAX_CONTENTS)
    model: ModelName | None = None
    system_instruction: str | None = Field(default=None, max_length=MAX_PROMPT_CHARS)
    generation_config: GenerationConfig | None = None
    safety_settings: list[SafetySetting] | None = Field(default=None, max_length=MAX_SAFETY_SETTINGS)
    priority: Priority = Priority.normal
    webhook_url: str | None = Field(default=None, max_length=MAX_URL_CHARS)
    metadata: dict[MetadataKey, MetadataValue] = Field(default_factory=dict, max_length=MAX_METADATA_KEYS)
    #: Models tried in order when the model stays rate limited or unavailable past the retry budget.
    fallback_models: list[ModelName] = Field(default_factory=list, max_length=MAX_FALLBACK_MODELS)
    #: Continue this conversation: the model sees its history, and the exchange is added when the job succeeds.
    conversation_id: str | None = Field(default=None, pattern=CONVERSATION_PATTERN)
    #: Answer from the response cache when an identical request succeeded before (not with a conversation).
    cache: bool = False

    @model_validator(mode="after")
    def _one_input(self) -> JobRequest:
        if (self.prompt is None) == (self.contents is None):
            raise ValueError("give exactly one of 'prompt' and 'contents'")
        if self.cache and self.conversation_id:
            # The history changes with every exchange, so the same request means something new each time.
            raise ValueError("'cache' cannot be used with 'conversation_id'")
        if self.text_chars() > MAX_PROMPT_CHARS:
            raise ValueError(f"the request's text is longer than {MAX_PROMPT_CHARS} characters")
        return self

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.lower().startswith(("http://", "https://")):
            raise ValueError("webhook_url must be an http or https URL")
        return value

    def text_chars(self) -> int:
        """Characters of text in the prompt, contents and system instruction."""
        chars = len(self.prompt or "") + len(self.system_instruction or "")
        return chars + sum(len(p.text) for c in self.contents or () for p in c.parts)

    def turns(self) -> list[dict[str, Any]]:
        """The conversation as Gemini's ``contents``."""
        if self.contents is not None:
            return [c.model_dump() for c in self.contents]
        return [{"role": "user", "parts": [{"text": self.prompt}]}]

    def call_spec(self) -> dict[str, Any]:
        """What the worker needs to call Gemini (stored with the job as ``request``)."""
        spec: dict[str, Any] = {"contents": self.turns()}
        if self.system_instruction:
            spec["system_instruction"] = self.system_instruction
        if self.generation_config:
            spec["generation_config"] = self.generation_config.model_dump(exclude_none=True)
        if self.safety_settings:
            spec["safety_settings"] = [s.model_dump() for s in self.safety_settings]
        if self.fallback_models:
            spec["fallback_models"] = self.fallback_models
        return spec


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


def now_ms() -> int:
    """Wall-clock time in milliseconds."""
    return int(time.time() * 1000)


def iso_ms(ms: int) -> str:
    """``2026-01-01T00:00:00.000Z`` from epoch milliseconds."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
