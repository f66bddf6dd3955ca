"""Admin routes for Batch Mode and the Files API (no API key needed), so tests can drive time.

* `GET /_emulator/batches` -> every job (brought up to now): name, model, state, outcome, counts,
  times and files
* `POST /_emulator/batches` `{"action": "...", "names": ["batches/..."]}` -> applies the action to the
  named jobs, or to every job not yet ended when `names` is left out; answers the jobs it touched.
  Actions: `advance` (the next state now: PENDING -> RUNNING, RUNNING -> its ending), `finish` (its
  ending now), `stall` (no more progress; it expires at `batch_expire_s`), `resume` (progress again,
  the remaining lines over what is left of `batch_running_s`), `fail`, `expire`.
* `GET /_emulator/files` -> every file: name, display name, MIME type, size, source, state, expiry
"""

from __future__ import annotations

import time
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ValidationError

from emulator.batches import runner
from emulator.batchstore import Batch
from emulator.resources import rfc3339
from emulator.state import STATE_KEY
from emulator.wire import error_response, json_response

PREFIX = "/_emulator"


class BatchAction(BaseModel):
    """Body of `POST /_emulator/batches`."""

    action: Literal["advance", "finish", "stall", "resume", "fail", "expire"]
    names: list[str] | None = None


def _summary(batch: Batch) -> dict[str, Any]:
    stats = batch.stats()
    return {
        "name": batch.name,
        "model": batch.model,
        "displayName": batch.display_name,
        "state": batch.state.value,
        "outcome": batch.outcome,
        "requestCount": len(batch.lines),
        "done": batch.done,
        "successful": int(stats.get("successfulRequestCount", 0)),
        "failed": int(stats.get("failedRequestCount", 0)),
        "inputFile": batch.input_file,
        "responsesFile": (batch.output or {}).get("responsesFile"),
        "createTime": rfc3339(batch.create_time),
        "runAt": rfc3339(batch.timeline.run_at),
        "expireAt": rfc3339(batch.timeline.expire_at),
        "endTime": rfc3339(batch.end_time) if batch.end_time is not None else None,
    }


async def get_batches(request: web.Request) -> web.Response:
    """Every job, oldest first."""
    state = request.app[STATE_KEY]
    return json_response([_summary(b) for b in state.batches.all(time.time(), runner(state))])


async def post_batches(request: web.Request) -> web.Response:
    """Force a transition on some jobs (or every job not yet ended)."""
    try:
        body = BatchAction.model_validate(await request.json())
    except (ValueError, ValidationError) as exc:
        return error_response(400, str(exc))
    state = request.app[STATE_KEY]
    now = time.time()
    run = runner(state)
    jobs = state.batches.all(now, run)
    if body.names is None:
        chosen = [job for job in jobs if not job.terminal]
    else:
        wanted = {name.removeprefix("batches/") for name in body.names}
        chosen = [job for job in jobs if job.id in wanted]
        if len(chosen) != len(wanted):
            return error_response(404, f"unknown batches: {sorted(wanted - {job.id for job in chosen})}")
    for job in chosen:
        job.force(body.action, now, run, state.files, state.config.batch_running_s)
    return json_response([_summary(job) for job in chosen])


async def get_files(request: web.Request) -> web.Response:
    """Every live file, oldest first."""
    now = time.time()
    files = request.app[STATE_KEY].files.listing(now)
    return json_response([
        {
            "name": f.name,
            "displayName": f.display_name,
            "mimeType": f.mime_type,
            "sizeBytes": len(f.data),
            "source": f.source,
            "state": "ACTIVE" if now >= f.active_at else "PROCESSING",
            "expirationTime": rfc3339(f.expire_time),
        }
        for f in sorted(files, key=lambda f: f.seq)
    ])


def add_batch_admin_routes(app: web.Application) -> None:
    """Register the batch and file admin routes on `app`."""
    app.router.add_routes([
        web.get(f"{PREFIX}/batches", get_batches),
        web.post(f"{PREFIX}/batches", post_batches),
        web.get(f"{PREFIX}/files", get_files),
    ])
