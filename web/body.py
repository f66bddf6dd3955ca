"""Reading request bodies: content type, size and JSON syntax, each refused with its own status."""

from __future__ import annotations

import json
from typing import Any, NoReturn, TypeVar

from flask import Response, jsonify, request
from pydantic import BaseModel, ValidationError

from web.errors import ApiError, invalid

Q = TypeVar("Q", bound=BaseModel)

JSON = "application/json"
JSONL = "application/jsonl"
#: What an escaped UTF-16 surrogate looks like in JSON text; only then can a lone one be in the body.
_SURROGATE_ESCAPES = (b"\\ud", b"\\uD")


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
        body = parse_json(raw)
    except InvalidJson as exc:
        raise ApiError(400, f"the body is {exc}") from exc
    if not isinstance(body, dict):
        raise ApiError(422, "the body must be a JSON object", details=[{"loc": "body", "message": "not an object"}])
    return body


def single_values(model: type[BaseModel]) -> dict[str, str]:
    """The query string as one value per name; 422 when a parameter of ``model`` is given twice."""
    repeated = [name for name in model.model_fields if len(request.args.getlist(name)) > 1]
    if repeated:
        details = [{"loc": name, "message": "given more than once"} for name in repeated]
        raise ApiError(422, f"invalid request: give {', '.join(repeated)} once", details=details)
    return request.args.to_dict()


def query_of(model: type[Q]) -> Q:
    """The query string validated by ``model``: 422 naming each invalid or repeated parameter."""
    try:
        return model.model_validate(single_values(model))
    except ValidationError as exc:
        raise invalid(exc) from exc


class InvalidJson(ValueError):
    """Text that is not strict JSON; the message says why ("not valid JSON (...)")."""


def parse_json(raw: bytes) -> Any:
    """Strict JSON (RFC 8259): no ``NaN``/``Infinity``, no unpaired surrogate escapes, nesting the parser can hold."""
    try:
        value = json.loads(raw, parse_constant=_no_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidJson(f"not valid JSON ({exc.__class__.__name__}: {exc})") from exc
    except ValueError as exc:
        raise InvalidJson(f"not valid JSON ({exc})") from exc
    except RecursionError as exc:  # the stdlib parser recurses once per level of nesting
        raise InvalidJson("not valid JSON (nested too deeply)") from exc
    if any(escape in raw for escape in _SURROGATE_ESCAPES):
        try:
            json.dumps(value, ensure_ascii=False).encode()
        except UnicodeEncodeError as exc:
            # Redis, hashing and Gemini all need UTF-8, which cannot hold an unpaired surrogate.
            raise InvalidJson("not valid JSON (an unpaired UTF-16 surrogate escape)") from exc
    return value


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def resource_response(view: BaseModel, status: int = 200, *, location: str | None = None) -> Response:
    """A resource as JSON; a 202 for a resource just made carries its ``Location``."""
    response = jsonify(view.model_dump(mode="json"))
    response.status_code = status
    if location is not None and status == 202:
        response.headers["Location"] = location
    return response
