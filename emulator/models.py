"""The model catalogue routes: `GET /{ver}/models` (paged) and `GET /{ver}/models/{model}`.

Paging follows ListModelsRequest: `pageSize` defaults to 50 and is capped at 1,000 ("If unspecified,
50 models will be returned per page. This method returns at most 1000 models per page"); the
`nextPageToken` is opaque. A model that is not served (unknown or shut down) answers 404 NOT_FOUND.
"""

from __future__ import annotations

import base64
import binascii
import time
from typing import Any

from aiohttp import web

from emulator.auth import check_key, fingerprint, request_key
from emulator.catalog import model_resource, spec_for
from emulator.reqlog import CallInfo
from emulator.state import STATE_KEY
from emulator.textgen import bare_model
from emulator.wire import error_response, json_response

#: Page size of `GET models` when the caller gives none, and the largest honoured.
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def model_version(model: str) -> str:
    """The `modelVersion` the emulator reports: the model name marked as emulated."""
    return f"{bare_model(model)}-emu-001"


def not_found_message(model: str, version: str, method: str) -> str:
    """The API's message for a model it does not serve."""
    return (f"models/{bare_model(model)} is not found for API version {version}, or is not supported for {method}. "
            "Call ListModels to see the list of available models and their supported methods.")


def not_found(model: str, version: str, method: str) -> web.Response:
    """The 404 for an unknown (or shut-down) model."""
    return error_response(404, not_found_message(model, version, method))


def _authorize(request: web.Request, model: str, method: str) -> web.Response | None:
    state = request.app[STATE_KEY]
    key = request_key(request)
    denied = check_key(key, state.config)
    if denied is not None:
        call = CallInfo(time.time(), model, method, fingerprint(key), api_version=request.path.split("/")[1])
        state.log.record(call, denied.status, "auth")
    return denied


def _page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"emu-models:{offset}".encode()).decode().rstrip("=")


def _offset(token: str) -> int:
    if not token:
        return 0
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    if not raw.startswith("emu-models:"):
        raise ValueError(token)
    return int(raw.removeprefix("emu-models:"))


async def list_models(request: web.Request) -> web.Response:
    """`GET /{ver}/models` with `pageSize` / `pageToken` paging."""
    denied = _authorize(request, "", "listModels")
    if denied is not None:
        return denied
    models = request.app[STATE_KEY].config.served_models()
    try:
        size = int(request.query.get("pageSize") or DEFAULT_PAGE_SIZE)
        start = _offset(request.query.get("pageToken") or "")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return error_response(400, "Invalid page token or page size.")
    size = DEFAULT_PAGE_SIZE if size <= 0 else min(size, MAX_PAGE_SIZE)
    body: dict[str, Any] = {"models": [model_resource(spec_for(m)) for m in models[start : start + size]]}
    if start + size < len(models):
        body["nextPageToken"] = _page_token(start + size)
    return json_response(body)


async def get_model(request: web.Request) -> web.Response:
    """`GET /{ver}/models/{model}`."""
    model = bare_model(request.match_info["model"])
    denied = _authorize(request, model, "getModel")
    if denied is not None:
        return denied
    if not request.app[STATE_KEY].config.served(model):
        return not_found(model, request.path.split("/")[1], "getModel")
    return json_response(model_resource(spec_for(model)))
