"""Helpers shared by the Files API and Batch Mode: resource ids, timestamps, paging, status codes."""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import web

T = TypeVar("T")

#: Characters of generated resource ids (real ids are lowercase alphanumeric).
ID_ALPHABET = string.ascii_lowercase + string.digits
#: google.rpc.Code of each HTTP status (what a per-line or Operation `error.code` carries).
GRPC_CODES: dict[int, int] = {
    400: 3,
    401: 16,
    403: 7,
    404: 5,
    409: 10,
    429: 8,
    499: 1,
    500: 13,
    501: 12,
    502: 14,
    503: 14,
    504: 4,
}


def new_id(length: int) -> str:
    """A random lowercase alphanumeric id (`files/<12>`, `batches/<36>` as on the real API)."""
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(length))


def rfc3339(ts: float) -> str:
    """`2026-12-03T10:00:00.123456000Z`: nanosecond digits, as the real API prints timestamps."""
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}000Z"


def camel(name: str) -> str:
    """``display_name`` -> ``displayName`` (proto JSON accepts both spellings)."""
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def camel_keys(message: dict[str, Any]) -> dict[str, Any]:
    """The message with its top-level names in lowerCamelCase."""
    return {camel(name): value for name, value in message.items()}


def grpc_code(http_status: int) -> int:
    """The google.rpc.Code for an HTTP status (2 UNKNOWN when there is none)."""
    return GRPC_CODES.get(http_status, 2)


class BadPageRequest(ValueError):
    """`pageSize` or `pageToken` is not a number."""


def page_query(request: web.Request, default_size: int, max_size: int) -> tuple[int, int | None]:
    """`pageSize` (clamped to 1..max) and `pageToken` (a sequence number) of a list call."""
    try:
        size = int(request.query.get("pageSize") or default_size)
        token = request.query.get("pageToken")
        after = int(token) if token else None
    except ValueError as exc:
        raise BadPageRequest("Invalid pageSize or pageToken.") from exc
    return max(1, min(size, max_size)), after


def newest_first_page(
    items: Sequence[T], seq: Callable[[T], int], size: int, before: int | None
) -> tuple[list[T], str | None]:
    """One page of ``items`` newest first; the token is the sequence number the next page starts below.

    A token that names a position rather than an offset keeps pages stable while new items arrive.
    """
    ordered = sorted(items, key=seq, reverse=True)
    if before is not None:
        ordered = [item for item in ordered if seq(item) < before]
    chunk = ordered[:size]
    token = str(seq(chunk[-1])) if len(ordered) > size else None
    return chunk, token
