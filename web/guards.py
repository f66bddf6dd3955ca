"""Checks shared by the submission routes (jobs and batches).

The tenant's submission limit (429 with ``Retry-After``), the webhook target's SSRF rules (422
naming the field) and ``Idempotency-Key`` replays (400 for a bad key, 409 for a conflict).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, g, request

from web.context import ctx
from web.errors import ApiError
from web.idempotency import HEADER, REPLAYED_HEADER, IdempotencyError, KeyBusy, fingerprint, valid_key
from web.submit_limits import SubmitLimitExceeded
from worker.webhooks.ssrf import UnsafeURL, check_url


def enforce_submit_limit(cost: int = 1) -> None:
    """Count a submission for the caller's tenant; 429 with ``Retry-After`` when over a limit."""
    limiter = ctx().submit_limits
    if not limiter.enabled:
        return
    try:
        limiter.hit(g.tenant, cost)
    except SubmitLimitExceeded as exc:
        raise ApiError(429, f"submission limit of {exc.limit} reached; retry in {exc.retry_after} s",
                       headers={"Retry-After": str(exc.retry_after)}) from exc


def check_webhook_url(url: str | None, loc: str = "webhook_url") -> None:
    """422 naming ``loc`` when the webhook target may not be called (see ``worker.webhooks.ssrf``)."""
    if url is None:
        return
    try:
        check_url(url, allow_private=ctx().settings.webhook_allow_private)
    except UnsafeURL as exc:
        raise ApiError(422, f"invalid request: {loc}: {exc}", details=[{"loc": loc, "message": str(exc)}]) from exc


def idempotency_key() -> str | None:
    """The request's ``Idempotency-Key``, if any; 400 when it is not 1-255 printable ASCII characters."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not valid_key(key):
        raise ApiError(400, f"{HEADER} must be 1 to 255 printable ASCII characters")
    return key


def run_idempotent(key: str, body: Any, create: Callable[[], str]) -> tuple[str, bool]:
    """Make the resource once per key: ``(id, replayed)``; 409 when the key belongs to another request."""
    try:
        return ctx().idempotency.run(g.tenant, key, fingerprint(f"{request.method} {request.path}", body), create)
    except KeyBusy as exc:
        raise ApiError(409, str(exc), headers={"Retry-After": "1"}) from exc
    except IdempotencyError as exc:
        raise ApiError(409, str(exc)) from exc


def create_once(key: str | None, body: Any, create: Callable[[], dict[str, str]],
                reread: Callable[[str], dict[str, str] | None], what: str) -> tuple[dict[str, str], bool]:
    """Make the resource (once per ``Idempotency-Key`` when there is one): ``(record, replayed)``.

    A replay answers with the original, read as it is now; 404 when it no longer exists.
    """
    if key is None:
        return create(), False
    made: list[dict[str, str]] = []

    def make() -> str:
        made.append(create())
        return made[0]["id"]

    resource_id, replayed = run_idempotent(key, body, make)
    record = made[0] if made else reread(resource_id)
    if record is None:
        raise ApiError(404, f"the {what} made with this Idempotency-Key no longer exists")
    return record, replayed


def mark_replay(response: Response, replayed: bool) -> Response:
    """Say so in a header when the answer is a replay of an earlier request."""
    if replayed:
        response.headers[REPLAYED_HEADER] = "true"
    return response
