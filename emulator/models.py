"""The model catalog: `GET /{ver}/models` and `GET /{ver}/models/{model}`."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from emulator.auth import check_key, fingerprint, request_key
from emulator.reqlog import CallInfo
from emulator.state import STATE_KEY
from emulator.textgen import bare_model
from emulator.wire import error_response, json_response

#: Methods every emulated model supports.
GENERATION_METHODS = ["generateContent", "countTokens", "createCachedContent", "batchGenerateContent"]
#: Output token limit of known models (others get DEFAULT_OUTPUT_LIMIT).
OUTPUT_LIMITS = {"gemini-2.0-flash": 8192, "gemini-2.0-flash-lite": 8192}
DEFAULT_INPUT_LIMIT = 1_048_576
DEFAULT_OUTPUT_LIMIT = 65_536
#: Page size of `GET models` when the caller gives none.
DEFAULT_PAGE_SIZE = 50


def model_version(model: str) -> str:
    """The `modelVersion` the emulator reports: the model name marked as emulated."""
    return f"{bare_model(model)}-emu-001"


def display_name(model: str) -> str:
    """`gemini-2.5-flash-lite` -> `Gemini 2.5 Flash-Lite`."""
    words = bare_model(model).replace("-lite", "_lite").split("-")
    return " ".join(word.capitalize().replace("_lite", "-Lite") for word in words)


def model_info(model: str) -> dict[str, Any]:
    """The Model resource of `model`."""
    name = bare_model(model)
    thinking = name.startswith("gemini-2.5")
    info: dict[str, Any] = {
        "name": f"models/{name}",
        "version": "001",
        "displayName": display_name(name),
        "description": f"Emulated {display_name(name)} (gemq offline emulator).",
        "inputTokenLimit": DEFAULT_INPUT_LIMIT,
        "outputTokenLimit": OUTPUT_LIMITS.get(name, DEFAULT_OUTPUT_LIMIT),
        "supportedGenerationMethods": GENERATION_METHODS,
        "temperature": 1,
        "topP": 0.95,
        "topK": 64,
        "maxTemperature": 2,
    }
    if thinking:
        info["thinking"] = True
    return info


def not_found(model: str, version: str, method: str) -> web.Response:
    """The 404 for an unknown model."""
    return error_response(
        404,
        f"models/{bare_model(model)} is not found for API version {version}, or is not supported for {method}. "
        "Call ListModels to see the list of available models and their supported methods.",
    )


def _authorize(request: web.Request, model: str, method: str) -> web.Response | None:
    state = request.app[STATE_KEY]
    key = request_key(request)
    denied = check_key(key, state.config)
    if denied is not None:
        call = CallInfo(time.time(), model, method, fingerprint(key), api_version=request.path.split("/")[1])
        state.log.record(call, denied.status, "auth")
    return denied


async def list_models(request: web.Request) -> web.Response:
    """`GET /{ver}/models` with `pageSize` / `pageToken` paging."""
    denied = _authorize(request, "", "listModels")
    if denied is not None:
        return denied
    models = request.app[STATE_KEY].config.models
    try:
        size = int(request.query.get("pageSize") or DEFAULT_PAGE_SIZE)
        start = int(request.query.get("pageToken") or 0)
    except ValueError:
        return error_response(400, "Invalid pageSize or pageToken.")
    size = max(1, min(size, 1000))
    body: dict[str, Any] = {"models": [model_info(m) for m in models[start : start + size]]}
    if start + size < len(models):
        body["nextPageToken"] = str(start + size)
    return json_response(body)


async def get_model(request: web.Request) -> web.Response:
    """`GET /{ver}/models/{model}`."""
    model = bare_model(request.match_info["model"])
    denied = _authorize(request, model, "getModel")
    if denied is not None:
        return denied
    if model not in request.app[STATE_KEY].config.models:
        return not_found(model, request.path.split("/")[1], "getModel")
    return json_response(model_info(model))
