"""Admin routes under `/_emulator/` (no API key needed).

* `GET /_emulator/healthz` -> `{"ok": true}`
* `GET /_emulator/requests?model=&tag=&since=&bodies=1` -> the request log (list, with each
  request's logged body when `bodies=1`); `DELETE` clears it
* `GET /_emulator/requests/{request_id}` -> one entry with its logged body (404 when not kept)
* `GET /_emulator/config` -> current knobs (API keys as fingerprints); `PATCH` with a JSON subset
  of knobs changes them (host, port and log_level are start-up only)
* `POST /_emulator/reset` -> start-up config, empty log, quota windows and scripted faults
* `GET /_emulator/faults` lists scripted faults; `POST` `{"faults": [...]}` appends; `DELETE` clears
* `GET /_emulator/quota` -> current window contents per model (`rpm`, `tpm`, `rpd`)
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError

from emulator.faults import ScriptedFault
from emulator.state import STATE_KEY, ConfigChangeRefused
from emulator.textgen import bare_model
from emulator.wire import error_body, error_response, json_response

PREFIX = "/_emulator"


class FaultsRequest(BaseModel):
    """Body of `POST /_emulator/faults`."""

    faults: list[ScriptedFault]


async def _json_body(request: web.Request) -> Any:
    try:
        return await request.json()
    except (ValueError, UnicodeDecodeError) as exc:
        body = json.dumps(error_body(400, f"Invalid JSON payload received. {exc}"))
        raise web.HTTPBadRequest(text=body, content_type="application/json") from exc


async def healthz(request: web.Request) -> web.Response:
    """Liveness."""
    return json_response({"ok": True}, indent=None)


async def get_requests(request: web.Request) -> web.Response:
    """The request log, optionally filtered by model, tag and `since` (unix seconds)."""
    query = request.query
    try:
        since = float(query["since"]) if query.get("since") else None
    except ValueError:
        return error_response(400, "since must be a number (unix seconds)")
    model = bare_model(query["model"]) if query.get("model") else None
    bodies = query.get("bodies", "").lower() in ("1", "true", "yes")
    entries = request.app[STATE_KEY].log.query(model=model, tag=query.get("tag") or None, since=since, bodies=bodies)
    return json_response(entries, indent=None)


async def get_request(request: web.Request) -> web.Response:
    """One logged request, with its body."""
    entry = request.app[STATE_KEY].log.find(request.match_info["request_id"])
    if entry is None:
        return error_response(404, "No such request in the log.")
    return json_response(entry, indent=None)


async def delete_requests(request: web.Request) -> web.Response:
    """Clear the request log."""
    request.app[STATE_KEY].log.clear()
    return json_response({"ok": True}, indent=None)


async def get_config(request: web.Request) -> web.Response:
    """The knobs now in force."""
    return json_response(request.app[STATE_KEY].config.public_dump())


async def patch_config(request: web.Request) -> web.Response:
    """Change a subset of knobs."""
    changes = await _json_body(request)
    if not isinstance(changes, dict):
        return error_response(400, "body must be a JSON object of knobs")
    state = request.app[STATE_KEY]
    try:
        state.update_config(changes)
    except ConfigChangeRefused as exc:
        return error_response(400, str(exc))
    except ValidationError as exc:
        return error_response(400, exc.json())
    return json_response(state.config.public_dump())


async def reset(request: web.Request) -> web.Response:
    """Back to the start-up state."""
    request.app[STATE_KEY].reset()
    return json_response({"ok": True}, indent=None)


async def get_faults(request: web.Request) -> web.Response:
    """The live scripted faults."""
    return json_response({"faults": request.app[STATE_KEY].faults.listing()})


async def post_faults(request: web.Request) -> web.Response:
    """Append scripted faults."""
    try:
        parsed = FaultsRequest.model_validate(await _json_body(request))
    except ValidationError as exc:
        return error_response(400, exc.json())
    faults = request.app[STATE_KEY].faults
    faults.add(parsed.faults)
    return json_response({"faults": faults.listing()})


async def delete_faults(request: web.Request) -> web.Response:
    """Drop every scripted fault."""
    request.app[STATE_KEY].faults.clear()
    return json_response({"ok": True}, indent=None)


async def get_quota(request: web.Request) -> web.Response:
    """Current quota window contents per model."""
    return json_response(request.app[STATE_KEY].quota.snapshot())


def add_admin_routes(app: web.Application) -> None:
    """Register the admin routes on `app`."""
    app.router.add_routes(
        [
            web.get(f"{PREFIX}/healthz", healthz),
            web.get(f"{PREFIX}/requests", get_requests),
            web.get(f"{PREFIX}/requests/{{request_id}}", get_request),
            web.delete(f"{PREFIX}/requests", delete_requests),
            web.get(f"{PREFIX}/config", get_config),
            web.patch(f"{PREFIX}/config", patch_config),
            web.post(f"{PREFIX}/reset", reset),
            web.get(f"{PREFIX}/faults", get_faults),
            web.post(f"{PREFIX}/faults", post_faults),
            web.delete(f"{PREFIX}/faults", delete_faults),
            web.get(f"{PREFIX}/quota", get_quota),
        ]
    )
