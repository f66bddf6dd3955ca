"""Context caches: `cachedContents` create, get, list, patch (ttl) and delete, and the lookup generate uses.

A cache holds its model and its token count (the emulator's token rule over its contents and system
instruction); a request naming it adds that count to `promptTokenCount` and reports it as
`cachedContentTokenCount`. An unknown or expired name answers 403 PERMISSION_DENIED "CachedContent
not found (or permission denied)", the API's answer as many public reports quote it. The API's
minimum cache size (1,024+ tokens) is not enforced.
"""

from __future__ import annotations

import re
import secrets
import time
from datetime import datetime
from typing import Any

from aiohttp import web

from emulator.auth import check_key, request_key
from emulator.cachestore import NOT_FOUND_MESSAGE, CacheEntry
from emulator.models import not_found
from emulator.protos import InvalidRequest
from emulator.request import ParseContext, parse_count_tokens
from emulator.state import STATE_KEY, EmulatorState
from emulator.textgen import bare_model
from emulator.wire import error_response, json_response

DEFAULT_TTL_S = 3600.0
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)s$")


def _expiry(body: dict[str, Any], now: float) -> float:
    ttl, expire = body.get("ttl"), body.get("expireTime", body.get("expire_time"))
    if isinstance(ttl, str) and (match := _DURATION.match(ttl)):
        return now + float(match.group(1))
    if isinstance(expire, str):
        try:
            return datetime.fromisoformat(expire.replace("Z", "+00:00")).timestamp()
        except ValueError as exc:
            raise InvalidRequest(f"Invalid value at 'cached_content.expire_time' (type.googleapis.com/"
                                 f"google.protobuf.Timestamp), \"{expire}\"") from exc
    if ttl is not None:
        raise InvalidRequest(f"Invalid value at 'cached_content.ttl' (type.googleapis.com/google.protobuf.Duration), "
                             f"\"{ttl}\"")
    return now + DEFAULT_TTL_S


def _denied(request: web.Request) -> web.Response | None:
    return check_key(request_key(request), request.app[STATE_KEY].config)


async def create_cache(request: web.Request) -> web.Response:
    """`POST /{ver}/cachedContents`."""
    state = request.app[STATE_KEY]
    if (denied := _denied(request)) is not None:
        return denied
    try:
        body = await request.json()
        model = bare_model(str(body.get("model") or ""))
        if not state.config.served(model):
            return not_found(model, request.path.split("/")[1], "createCachedContent")
        entry = _new_entry(state, model, body)
    except (ValueError, AttributeError):
        return error_response(400, "Invalid JSON payload received.")
    except InvalidRequest as exc:
        return error_response(400, str(exc), exc.details)
    state.caches.add(entry)
    return json_response(entry.resource())


def _new_entry(state: EmulatorState, model: str, body: dict[str, Any]) -> CacheEntry:
    contents = body.get("contents") or []
    system = body.get("systemInstruction", body.get("system_instruction"))
    counted = contents or ([system] if system else [])
    tokens = parse_count_tokens({"contents": counted}, ParseContext()).prompt_tokens if counted else 0
    if contents and system:
        tokens += parse_count_tokens({"contents": [system]}, ParseContext()).prompt_tokens
    now = time.time()
    name = f"cachedContents/{secrets.token_hex(6)}"
    display = str(body.get("displayName", body.get("display_name")) or "")
    return CacheEntry(name, model, tokens, display, now, _expiry(body, now))


async def get_cache(request: web.Request) -> web.Response:
    """`GET /{ver}/cachedContents/{id}`."""
    if (denied := _denied(request)) is not None:
        return denied
    entry = request.app[STATE_KEY].caches.get(f"cachedContents/{request.match_info['cache']}")
    return json_response(entry.resource()) if entry else error_response(403, NOT_FOUND_MESSAGE)


async def list_caches(request: web.Request) -> web.Response:
    """`GET /{ver}/cachedContents` (one page)."""
    if (denied := _denied(request)) is not None:
        return denied
    entries = request.app[STATE_KEY].caches.live()
    return json_response({"cachedContents": [e.resource() for e in entries]} if entries else {})


async def update_cache(request: web.Request) -> web.Response:
    """`PATCH /{ver}/cachedContents/{id}`: a new `ttl` or `expireTime`."""
    if (denied := _denied(request)) is not None:
        return denied
    entry = request.app[STATE_KEY].caches.get(f"cachedContents/{request.match_info['cache']}")
    if entry is None:
        return error_response(403, NOT_FOUND_MESSAGE)
    try:
        entry.expires = _expiry(await request.json(), time.time())
    except InvalidRequest as exc:
        return error_response(400, str(exc))
    return json_response(entry.resource())


async def delete_cache(request: web.Request) -> web.Response:
    """`DELETE /{ver}/cachedContents/{id}`."""
    if (denied := _denied(request)) is not None:
        return denied
    if not request.app[STATE_KEY].caches.delete(f"cachedContents/{request.match_info['cache']}"):
        return error_response(403, NOT_FOUND_MESSAGE)
    return json_response({})


def add_cache_routes(app: web.Application, version: str) -> None:
    """Register the cachedContents routes under `/{version}`."""
    app.router.add_post(f"/{version}/cachedContents", create_cache)
    app.router.add_get(f"/{version}/cachedContents", list_caches)
    app.router.add_get(f"/{version}/cachedContents/{{cache}}", get_cache)
    app.router.add_patch(f"/{version}/cachedContents/{{cache}}", update_cache)
    app.router.add_delete(f"/{version}/cachedContents/{{cache}}", delete_cache)
