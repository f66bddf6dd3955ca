"""API-key check of the Gemini routes: `x-goog-api-key` header or `?key=` query parameter.

A missing key answers 403 PERMISSION_DENIED; when `api_keys` is configured, an unknown key
answers 400 INVALID_ARGUMENT with `google.rpc.ErrorInfo` reason API_KEY_INVALID. By default any
non-empty key is accepted.
"""

from __future__ import annotations

from aiohttp import web

from emulator.config import EmulatorConfig
from emulator.textgen import key_fingerprint
from emulator.wire import error_response, invalid_key_details

MISSING_KEY_MESSAGE = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)
INVALID_KEY_MESSAGE = "API key not valid. Please pass a valid API key."


def request_key(request: web.Request) -> str:
    """The API key the caller sent ('' when none)."""
    return request.headers.get("x-goog-api-key") or request.query.get("key") or ""


def check_key(key: str, config: EmulatorConfig) -> web.Response | None:
    """None when `key` may call, else the error response to send."""
    if not key:
        return error_response(403, MISSING_KEY_MESSAGE)
    if config.api_keys and key not in config.api_keys:
        return error_response(400, INVALID_KEY_MESSAGE, invalid_key_details())
    return None


def fingerprint(key: str) -> str | None:
    """The log's key fingerprint (None when no key was sent)."""
    return key_fingerprint(key) if key else None
