"""The API's one error shape, ``{"error": {"type", "message"}}``, and the handlers that produce it.

Every refusal goes through :func:`error_response`; bad input never becomes a 500.
"""

from __future__ import annotations

from typing import Any

import redis
import structlog
from flask import Flask, Response, jsonify
from kombu.exceptions import OperationalError
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import HTTPException

log = structlog.get_logger("gemq.web")

#: ``error.type`` for each status the API answers with on its own.
ERROR_TYPES = {
    400: "malformed_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    503: "unavailable",
}


class ErrorDetail(BaseModel):
    """One invalid field."""

    loc: str
    message: str


class ErrorBodyInner(BaseModel):
    """What went wrong."""

    type: str
    message: str
    details: list[ErrorDetail] | None = None


class ErrorBody(BaseModel):
    """The API's error shape."""

    error: ErrorBodyInner


class ApiError(Exception):
    """A refusal with an HTTP status, raised anywhere in a request."""

    def __init__(self, status: int, message: str, *, details: list[dict[str, str]] | None = None,
                 headers: dict[str, str] | None = None, error_type: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details
        self.headers = headers or {}
        self.error_type = error_type or ERROR_TYPES.get(status, "error")


def error_response(status: int, message: str, *, error_type: str | None = None,
                   details: list[dict[str, str]] | None = None, headers: dict[str, str] | None = None) -> Response:
    """The single builder of error responses."""
    body: dict[str, Any] = {"type": error_type or ERROR_TYPES.get(status, "error"), "message": message}
    if details:
        body["details"] = details
    response = jsonify({"error": body})
    response.status_code = status
    response.headers.update(headers or {})
    return response


def validation_details(exc: ValidationError, *, prefix: str = "") -> list[dict[str, str]]:
    """Each invalid field as ``{"loc": "generation_config.temperature", "message": ...}``."""
    details = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = ".".join(str(p) for p in err["loc"]) or "body"
        details.append({"loc": prefix + loc, "message": err["msg"]})
    return details


def invalid(exc: ValidationError) -> ApiError:
    """A 422 naming the invalid fields."""
    details = validation_details(exc)
    summary = "; ".join(f"{d['loc']}: {d['message']}" for d in details[:5])
    return ApiError(422, f"invalid request: {summary}", details=details)


def register_error_handlers(app: Flask) -> None:
    """Make every failure answer in the API's error shape."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return error_response(exc.status, exc.message, error_type=exc.error_type, details=exc.details,
                              headers=exc.headers)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        headers = {"Allow": exc.valid_methods} if getattr(exc, "valid_methods", None) else None  # type: ignore[attr-defined]
        message = exc.description or exc.name
        if headers:
            return error_response(status, message, headers={"Allow": ", ".join(headers["Allow"])})
        return error_response(status, message)

    @app.errorhandler(redis.ConnectionError)
    @app.errorhandler(redis.TimeoutError)
    @app.errorhandler(OperationalError)
    def _unavailable(exc: Exception) -> Response:
        log.warning("redis.unavailable", error_type=type(exc).__name__)
        return error_response(503, "the job store is unreachable; try again shortly", headers={"Retry-After": "1"})

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.error("request.failed", error_type=type(exc).__name__, exc_info=exc)
        return error_response(500, "internal error", error_type="internal_error")
