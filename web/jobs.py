"""``/v1/jobs``: submit, read, list and cancel jobs."""

from __future__ import annotations

import base64
import binascii

import redis
import structlog
from flask import Blueprint, Response, g, jsonify, url_for
from pydantic import BaseModel, Field, ValidationError
from spectree import Response as Doc

from web.body import json_object, query_of, resource_response
from web.context import ctx
from web.errors import ApiError, ErrorBody, invalid
from web.guards import check_webhook_url, create_once, enforce_submit_limit, idempotency_key, mark_replay
from web.openapi import spec
from worker.core.job import Job, JobStatus
from worker.core.request import JobRequest
from worker.store.cancels import announce_cancel

log = structlog.get_logger("gemq.web")
bp = Blueprint("jobs", __name__)


class JobList(BaseModel):
    """A page of the caller's jobs, newest first."""

    jobs: list[Job]
    next_cursor: str | None = None


class ListQuery(BaseModel):
    """Filters and paging for the job list."""

    status: JobStatus | None = None
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=200)


ERRORS = {f"HTTP_{code}": ErrorBody for code in (400, 401, 409, 413, 415, 422, 429, 503)}


class SubmitHeaders(BaseModel):
    """Optional headers of a submission."""

    idempotency_key: str | None = Field(
        default=None, alias="Idempotency-Key", min_length=1, max_length=255,
        description="Makes retries safe: the same key and body within 24 h return the original job "
                    "(with Idempotent-Replayed: true); the key with another body is 409.")


@bp.post("/v1/jobs")
@spec.validate(json=JobRequest, headers=SubmitHeaders, resp=Doc(HTTP_202=Job, **ERRORS), tags=["jobs"],
               skip_validation=True)
def submit() -> Response:
    """Submit a job; it runs in the background.

    With an ``Idempotency-Key`` header, a retry of the same request (same key and body, within 24 h)
    answers with the original job and ``Idempotent-Replayed: true``; the key with another body is 409.
    """
    enforce_submit_limit()
    body = json_object()
    try:
        job_request = JobRequest.model_validate(body)
    except ValidationError as exc:
        raise invalid(exc) from exc
    check_webhook_url(job_request.webhook_url)
    record, replayed = create_once(idempotency_key(), body, lambda: submit_job(g.tenant, job_request),
                                   lambda job_id: ctx().store.get_for_tenant(job_id, g.tenant), "job")
    return mark_replay(job_response(record, 202), replayed)


def submit_job(tenant: str, job_request: JobRequest) -> dict[str, str]:
    """Store a new job and publish its message; nothing is kept if publishing fails."""
    context = ctx()
    record = context.store.new_record(tenant, job_request)
    context.store.save_new([record])
    try:
        context.publisher.publish_job(record["id"], record["priority"])
    except Exception:
        context.store.delete(record["id"], tenant)
        raise
    context.metrics.job_submitted(record["priority"], record["model"])
    log.info("job.submitted", job_id=record["id"], tenant=tenant, model=record["model"], priority=record["priority"])
    return record


def job_response(record: dict[str, str], status: int = 200) -> Response:
    """A job as JSON, with its ``Location`` when just made."""
    location = url_for("jobs.get_job", job_id=record["id"]) if status == 202 else None
    return resource_response(Job.from_record(record), status, location=location)


@bp.get("/v1/jobs/<job_id>")
@spec.validate(resp=Doc(HTTP_200=Job, HTTP_401=ErrorBody, HTTP_404=ErrorBody), tags=["jobs"], skip_validation=True)
def get_job(job_id: str) -> Response:
    """One of the caller's jobs."""
    return job_response(own_job(job_id))


@bp.get("/v1/jobs")
@spec.validate(query=ListQuery, resp=Doc(HTTP_200=JobList, HTTP_401=ErrorBody, HTTP_422=ErrorBody), tags=["jobs"],
               skip_validation=True)
def list_jobs() -> Response:
    """The caller's jobs, newest first, optionally of one status."""
    query = query_of(ListQuery)
    records, cursor = ctx().store.list_for_tenant(
        g.tenant, status=query.status.value if query.status else None, limit=query.limit,
        cursor=decode_cursor(query.cursor) if query.cursor else None,
    )
    jobs = [Job.from_record(r) for r in records]
    page = JobList(jobs=jobs, next_cursor=encode_cursor(cursor) if cursor and len(jobs) == query.limit else None)
    return jsonify(page.model_dump(mode="json"))


@bp.post("/v1/jobs/<job_id>/cancel")
@spec.validate(resp=Doc(HTTP_200=Job, HTTP_401=ErrorBody, HTTP_404=ErrorBody, HTTP_409=ErrorBody), tags=["jobs"],
               skip_validation=True)
def cancel_job(job_id: str) -> Response:
    """Cancel a job that has not finished; Gemini is not called for it again."""
    record = own_job(job_id)
    outcome = ctx().store.cancel(record)
    if not outcome.moved:
        raise ApiError(409, f"the job is already {outcome.previous}")
    announce_cancel(ctx().redis, job_id)
    ctx().metrics.job_finished(record, "cancelled")
    ctx().conversations.settle({**record, "status": "cancelled"})  # the next job of its conversation may start
    log.info("job.cancelled", job_id=job_id, tenant=g.tenant, model=record["model"], priority=record["priority"],
             previous=outcome.previous)
    if record.get("webhook_url"):
        queue_cancel_webhook(job_id)
    return job_response(ctx().store.get(job_id) or record)


def queue_cancel_webhook(job_id: str) -> None:
    """Queue the ``job.cancelled`` event; a failure here is not the client's (the worker queues it too)."""
    try:
        ctx().webhooks.enqueue_job_event(job_id)
    except redis.RedisError as exc:
        # The job's own message still reaches a worker, which finds it cancelled and queues the event.
        log.warning("webhook.enqueue_failed", job_id=job_id, error_type=type(exc).__name__)


def own_job(job_id: str) -> dict[str, str]:
    """The caller's job, or 404 (also for another tenant's job: its existence is not revealed)."""
    record = ctx().store.get_for_tenant(job_id, g.tenant) if len(job_id) <= 64 else None
    if record is None:
        raise ApiError(404, "no such job")
    return record


def encode_cursor(cursor: tuple[int, str]) -> str:
    """An opaque cursor for the next page."""
    return base64.urlsafe_b64encode(f"{cursor[0]}:{cursor[1]}".encode()).decode().rstrip("=")


def decode_cursor(raw: str) -> tuple[int, str]:
    """The position a cursor points at; 422 when it is not one of ours."""
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        score, _, job_id = text.partition(":")
        return int(score), job_id
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise ApiError(422, "invalid cursor", details=[{"loc": "cursor", "message": "not a cursor"}]) from exc
