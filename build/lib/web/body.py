"""Reading request bodies: content type, size and JSON syntax, each refused with its own status."""

from __future__ import annotations

import json
from typing import Any

from flask import request

from web.errors import ApiError

JSON = "application/json"
JSONL = "application/jsonl"


def media_type() -> str:
    """The request's media type without parameters, lower-cased."""
    return (request.mimetype or "").lower()


def require_media_type(*accepted: str) -> str:
    """The request's media type if it is one of ``accepted``, else 415."""
    kind = media_type()
    if kind not in accepted:
        raise ApiError(415, f"send the body as {' or '.join(accepted)} (got {kind or 'no Content-Type'})")
    return kind


def json_object() -> dict[str, Any]:
    """The body as a JSON object: 415 for another type, 413 when too large, 400 when not JSON."""
    require_media_type(JSON)
    raw = request.get_data(cache=False)  # werkzeug enforces MAX_CONTENT_LENGTH here (413)
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, f"the body is not valid JSON ({exc.__class__.__name__}: {exc})") from exc
    if not isinstance(body, dict):
        raise ApiError(422, "the body must be a JSON object", details=[{"loc": "body", "message": "not an object"}])
    return body
