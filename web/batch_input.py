"""Reading a batch submission: its options, then every line validated before anything is written.

A JSONL body is read from the request stream line by line and never held whole: each valid line
becomes its job record at once and is written, compactly, to a spooled temporary file (in memory
up to ``SPOOL_MEMORY``, on disk beyond), and each invalid one leaves its line number and reason
(the first ``MAX_LISTED_ERRORS``).  Only when every line is valid are the records read back from
the spool and enqueued.  So a batch costs the web process about one line plus the spool's memory
part, whatever its size.  A JSON body (``{"requests": [...]}``) is parsed whole and so stays under
the ordinary body limit (``GEMQ_MAX_BODY_BYTES``); large batches are sent as JSONL.
"""

from __future__ import annotations

import hashlib
import io
import json
import tempfile
import time
from collections.abc import Iterator
from typing import IO, Any

from flask import request
from pydantic import Field, ValidationError
from werkzeug.exceptions import RequestEntityTooLarge

from web.batch_lines import Defaults, LineInvalid, parse_line
from web.body import InvalidJson, json_object, parse_json, single_values
from web.errors import ApiError, invalid
from worker.core.job import Priority
from worker.core.request import MODEL_PATTERN, JobRequest, StrictModel
from worker.core.settings import Settings
from worker.store.batches import NewItem
from worker.store.jobs import JobStore

#: Bytes of validated records kept in memory before the spool moves to a temporary file.
SPOOL_MEMORY = 8 * 1024 * 1024
#: Bytes read from the request stream at a time.
READ_BUFFER = 64 * 1024
#: Lines validated between two yields to the process's other requests (gevent: ``time.sleep`` is patched).
YIELD_EVERY = 200
#: Invalid lines listed in a 422.
MAX_LISTED_ERRORS = 100


class BatchOptions(StrictModel):
    """What applies to the whole batch (JSON body fields, or query parameters with JSONL)."""

    #: Model of the lines that name none (default: ``GEMQ_DEFAULT_MODEL``).
    model: str | None = Field(default=None, pattern=MODEL_PATTERN)
    #: Priority of the lines that give none; batches default to low.
    priority: Priority = Priority.low
    #: Where ``batch.completed`` is sent.
    webhook_url: str | None = Field(default=None, max_length=2048)
    metadata: dict[str, str] = Field(default_factory=dict)


class BatchRequest(BatchOptions):
    """``POST /v1/batches`` with a JSON body: the requests and the batch's options."""

    #: Job requests (gemq's shape) or Gemini batch lines (``{"key", "request"}``), each with an optional ``key``.
    requests: list[dict[str, Any]]


class Lines:
    """Validated lines of one batch: records spooled in order, and the first errors."""

    def __init__(self, store: JobStore, tenant: str, batch_id: str, defaults: Defaults, max_lines: int) -> None:
        self.store = store
        self.tenant = tenant
        self.batch_id = batch_id
        self.defaults = defaults
        self.max_lines = max_lines
        self.count = 0
        self.invalid = 0
        self.errors: list[dict[str, str]] = []
        self.spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)

    def add(self, number: int, line: Any) -> None:
        """Validate line ``number`` (decoded JSON) and spool its record, or note why it is invalid."""
        self._count(number)
        try:
            key, job_request = parse_line(line, self.defaults)
        except LineInvalid as exc:
            self._error(number, str(exc))
            return
        if not self.invalid:  # once a line is invalid nothing will be written: only the others' errors matter
            record = self.store.new_record(self.tenant, job_request, batch_id=self.batch_id)
            self.spool.write(json.dumps([key, record], separators=(",", ":")).encode() + b"\n")
        if self.count % YIELD_EVERY == 0:
            time.sleep(0)

    def reject(self, number: int, message: str) -> None:
        """Note line ``number`` as invalid before it could be decoded."""
        self._count(number)
        self._error(number, message)

    def check(self) -> None:
        """422 listing the invalid lines, if any; 422 for an empty batch."""
        if self.invalid:
            listed = f" (the first {len(self.errors)} are listed)" if self.invalid > len(self.errors) else ""
            raise ApiError(422, f"{self.invalid} of {self.count} lines are invalid{listed}; nothing was enqueued",
                           details=self.errors)
        if not self.count:
            raise ApiError(422, "the batch has no requests", details=[{"loc": "body", "message": "no lines"}])

    def items(self) -> Iterator[NewItem]:
        """The validated items in order, read back from the spool."""
        self.spool.seek(0)
        for raw in self.spool:
            key, record = json.loads(raw)
            yield key, record

    def close(self) -> None:
        """Drop the spool."""
        self.spool.close()

    def _count(self, number: int) -> None:
        self.count += 1
        if self.count > self.max_lines:
            raise ApiError(422, f"a batch holds at most {self.max_lines} requests (GEMQ_MAX_BATCH_LINES)",
                           details=[{"loc": f"line {number}", "message": "one request too many"}])

    def _error(self, number: int, message: str) -> None:
        self.invalid += 1
        if len(self.errors) < MAX_LISTED_ERRORS:
            self.errors.append({"loc": f"line {number}", "message": message})


def options_from_query() -> BatchOptions:
    """The batch's options given as query parameters (JSONL bodies); ``metadata`` is a JSON object."""
    args: dict[str, Any] = single_values(BatchOptions)
    if "metadata" in args:
        try:
            args["metadata"] = parse_json(args["metadata"].encode())
        except InvalidJson as exc:
            raise ApiError(422, "invalid request: metadata: not a JSON object",
                           details=[{"loc": "metadata", "message": "not a JSON object"}]) from exc
    return checked_options(args)


def checked_options(fields: dict[str, Any]) -> BatchOptions:
    """The options, validated like a job's (422 naming the field)."""
    try:
        options = BatchOptions.model_validate(fields)
        # The same rules as a job's metadata and webhook_url, checked by the job model itself.
        JobRequest.model_validate({"prompt": "-", "metadata": options.metadata, "webhook_url": options.webhook_url})
    except ValidationError as exc:
        raise invalid(exc) from exc
    return options


def read_jsonl(lines: Lines, settings: Settings) -> str:
    """Validate a JSONL body line by line, streamed; returns the sha256 of the body (for Idempotency-Key)."""
    request.max_content_length = settings.max_batch_bytes
    digest = hashlib.sha256()
    longest = settings.max_body_bytes  # one line may be as large as one job request
    try:
        reader = io.BufferedReader(request.stream, READ_BUFFER)  # type: ignore[type-var]  # a RawIOBase (LimitedStream)
        number = 0
        while raw := reader.readline(longest + 1):
            digest.update(raw)
            number += 1
            if len(raw) > longest and not raw.endswith(b"\n"):
                lines.reject(number, f"the line is longer than {longest} bytes")
                while raw and not raw.endswith(b"\n"):
                    raw = reader.readline(READ_BUFFER)
                    digest.update(raw)
            elif raw.strip():
                _add_raw(lines, number, raw)
    except RequestEntityTooLarge as exc:
        raise ApiError(413, f"the batch body is larger than {settings.max_batch_bytes} bytes "
                            "(GEMQ_MAX_BATCH_BYTES)") from exc
    return digest.hexdigest()


def _add_raw(lines: Lines, number: int, raw: bytes) -> None:
    try:
        line = parse_json(raw)
    except InvalidJson as exc:
        lines.reject(number, str(exc))
        return
    lines.add(number, line)


def read_json(settings: Settings) -> tuple[BatchOptions, list[Any], dict[str, Any]]:
    """A JSON body: the options, the request lines and the body itself (for Idempotency-Key)."""
    try:
        body = json_object()
    except RequestEntityTooLarge as exc:
        raise ApiError(413, f"a JSON batch body is limited to {settings.max_body_bytes} bytes "
                            "(GEMQ_MAX_BODY_BYTES); send larger batches as JSONL (application/jsonl)") from exc
    fields = dict(body)
    requests = fields.pop("requests", None)
    if not isinstance(requests, list):
        raise ApiError(422, "invalid request: requests: a list of requests is required",
                       details=[{"loc": "requests", "message": "a list of requests is required"}])
    return checked_options(fields), requests, body
