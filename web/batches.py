"""``/v1/batches``: submit many requests at once, follow the batch, read its results, cancel it.

A submission counts as one against the tenant's submission limit, whatever its size: the limit
is checked before the body is read (a JSONL body's size is not known until then), it bounds the
rate of requests the front door parses, and the work a batch makes is bounded by
``GEMQ_MAX_BATCH_LINES`` and paced by the Gemini limiter at the batch's (low) priority.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from flask import Blueprint, Response, g, jsonify, request, url_for
from pydantic import BaseModel, Field
from spectree import Response as Doc

from web.batch_input import BatchOptions, BatchRequest, Lines, options_from_query, read_json, read_jsonl
from web.batch_lines import Defaults
from web.body import JSON, JSONL, query_of, require_media_type, resource_response
from web.context import ctx
from web.errors import ApiError, ErrorBody
from web.guards import check_webhook_url, create_once, enforce_submit_limit, idempotency_key, mark_replay
from web.jobs import SubmitHeaders, decode_cursor, encode_cursor
from web.openapi import spec
from worker.core.batch import Batch, BatchResultLine, BatchStatus
from worker.store.jobs import new_id

bp = Blueprint("batches", __name__)

ERRORS = {f"HTTP_{code}": ErrorBody for code in (400, 401, 409, 413, 415, 422, 429, 503)}


class BatchQuery(BaseModel):
    """With a JSONL body, the batch's options are query parameters (``metadata`` as a JSON object)."""

    model: str | None = None
    priority: str | None = None
    webhook_url: str | None = None
    metadata: str | None = None


@bp.post("/v1/batches")
@spec.validate(json=BatchRequest, query=BatchQuery, headers=SubmitHeaders, resp=Doc(HTTP_202=Batch, **ERRORS),
               tags=["batches"], skip_validation=True)
def submit() -> Response:
    """Submit many requests at once: JSON ``{"requests": [...]}``, or JSONL (``application/jsonl``), one per line.

    A line is a job request, or Gemini Batch Mode's ``{"key": ..., "request": {GenerateContentRequest}}``;
    any line may carry a ``key``, echoed in the results.  All or nothing: one invalid line refuses the
    whole batch (422 listing the first 100 invalid lines by number).  Lines default to the batch's
    ``model`` and ``priority`` (low).  Honours ``Idempotency-Key`` like ``POST /v1/jobs``.
    """
    enforce_submit_limit()
    kind = require_media_type(JSON, JSONL)
    key = idempotency_key()
    context = ctx()
    batch_id = new_id()
    lines: Lines | None = None
    try:
        if kind == JSONL:
            options = options_from_query()
            check_webhook_url(options.webhook_url)
            lines = new_lines(options, batch_id)
            body: object = {"sha256": read_jsonl(lines, context.settings), "query": request.args.to_dict()}
        else:
            options, requests, body = read_json(context.settings)
            check_webhook_url(options.webhook_url)
            lines = new_lines(options, batch_id)
            for number, line in enumerate(requests, 1):
                lines.add(number, line)
        lines.check()
        return created(batch_id, options, lines, key, body)
    finally:
        if lines is not None:
            lines.close()


def new_lines(options: BatchOptions, batch_id: str) -> Lines:
    """An empty set of validated lines for the batch."""
    context = ctx()
    return Lines(context.store, g.tenant, batch_id, Defaults(model=options.model, priority=options.priority),
                 context.settings.max_batch_lines)


def created(batch_id: str, options: BatchOptions, lines: Lines, key: str | None, body: object) -> Response:
    """Enqueue the validated batch (once per Idempotency-Key) and answer 202 with it."""
    context = ctx()
    batch = context.batches.new_record(batch_id, g.tenant, total=lines.count, priority=options.priority.value,
                                       model=options.model, metadata=options.metadata, webhook_url=options.webhook_url)

    def create() -> dict[str, str]:
        context.batches.create(batch, lines.items())
        return batch

    record, replayed = create_once(key, body, create, lambda made: context.batches.get_for_tenant(made, g.tenant),
                                   "batch")
    return mark_replay(batch_response(record, 202), replayed)


def batch_response(record: dict[str, str], status: int = 200) -> Response:
    """A batch as JSON, with its ``Location`` when just made."""
    location = url_for("batches.get_batch", batch_id=record["id"]) if status == 202 else None
    return resource_response(Batch.from_record(record), status, location=location)


class BatchList(BaseModel):
    """A page of the caller's batches, newest first."""

    batches: list[Batch]
    next_cursor: str | None = None


class BatchListQuery(BaseModel):
    """Paging for the batch list."""

    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=200)


@bp.get("/v1/batches")
@spec.validate(query=BatchListQuery, resp=Doc(HTTP_200=BatchList, HTTP_401=ErrorBody, HTTP_422=ErrorBody),
               tags=["batches"], skip_validation=True)
def list_batches() -> Response:
    """The caller's batches, newest first."""
    query = query_of(BatchListQuery)
    records, cursor = ctx().batches.list_for_tenant(
        g.tenant, limit=query.limit, cursor=decode_cursor(query.cursor) if query.cursor else None)
    page = BatchList(batches=[Batch.from_record(r) for r in records],
                     next_cursor=encode_cursor(cursor) if cursor and len(records) == query.limit else None)
    return jsonify(page.model_dump(mode="json"))


@bp.get("/v1/batches/<batch_id>")
@spec.validate(resp=Doc(HTTP_200=Batch, HTTP_401=ErrorBody, HTTP_404=ErrorBody), tags=["batches"],
               skip_validation=True)
def get_batch(batch_id: str) -> Response:
    """One of the caller's batches: status, counts by item status, progress, token usage."""
    return batch_response(own_batch(batch_id))


@bp.get("/v1/batches/<batch_id>/results")
@spec.validate(resp=Doc(HTTP_200=BatchResultLine, HTTP_401=ErrorBody, HTTP_404=ErrorBody), tags=["batches"],
               skip_validation=True)
def results(batch_id: str) -> Response:
    """The batch's results as JSONL, one line per item in submission order (streamed, available at any time).

    Each line: ``index``, ``key``, ``id`` (the item's job), ``status``, ``result``, ``error``.
    """
    own_batch(batch_id)
    rows = ctx().batches.results(batch_id)

    def lines() -> Iterator[str]:
        for row in rows:
            yield json.dumps(row, separators=(",", ":"), ensure_ascii=False) + "\n"

    return Response(lines(), mimetype=JSONL)


@bp.post("/v1/batches/<batch_id>/cancel")
@spec.validate(resp=Doc(HTTP_200=Batch, HTTP_401=ErrorBody, HTTP_404=ErrorBody, HTTP_409=ErrorBody),
               tags=["batches"], skip_validation=True)
def cancel(batch_id: str) -> Response:
    """Cancel the items that have not finished; those that did keep their results. 409 once the batch finished."""
    record = own_batch(batch_id)
    status = BatchStatus(record["status"])
    if status.finished:
        raise ApiError(409, f"the batch is already {status.value}")
    context = ctx()
    context.batches.cancel(record)
    return batch_response(own_batch(batch_id))


def own_batch(batch_id: str) -> dict[str, str]:
    """The caller's batch, or 404 (also for another tenant's: its existence is not revealed)."""
    record = ctx().batches.get_for_tenant(batch_id, g.tenant) if len(batch_id) <= 64 else None
    if record is None:
        raise ApiError(404, "no such batch")
    return record
