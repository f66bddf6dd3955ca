"""Checks shared by the submission routes (jobs now, batches later).

The tenant's submission limit (429 with ``Retry-After``), the webhook target's SSRF rules (422
naming the field) and ``Idempotency-Key`` replays (400 for a bad key, 409 for a conflict).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import g, request

from web.context import ctx
from web.errors import ApiError
from web.idempotency import HEADER, IdempotencyError, KeyBusy, fingerprint, valid_key
from web.submit_limits import SubmitLimitExceeded
from worker.ssrf import UnsafeURL, check_url


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
    """422 naming ``loc`` when the webhook target may not be called (see ``worker.ssrf``)."""
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
