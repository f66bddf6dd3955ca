"""The aiohttp application (`create_app`) and the process runner (`serve`)."""

from __future__ import annotations

import asyncio
import logging
import resource
import signal
from collections.abc import Awaitable, Callable

from aiohttp import web

from emulator.admin import add_admin_routes
from emulator.batch_admin import add_batch_admin_routes
from emulator.batches import add_batch_routes
from emulator.caches import add_cache_routes
from emulator.config import EmulatorConfig
from emulator.files import add_file_routes
from emulator.generate import model_action
from emulator.models import get_model, list_models
from emulator.state import STATE_KEY, EmulatorState
from emulator.wire import error_response

log = logging.getLogger("emulator")

#: API versions served (the SDK 3.x defaults to v1 unless told v1beta).
API_VERSIONS = ("v1beta", "v1")
#: Largest body aiohttp reads at all; the `max_request_bytes` knob (100 MB by default) answers below it.
MAX_BODY_BYTES = 2 * 1024 * 1024 * 1024
#: Listen backlog: a benchmark may open 1,000 connections at once.
BACKLOG = 4096

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def envelope_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer aiohttp's own 404/405/413 with the Google error envelope."""
    try:
        return await handler(request)
    except web.HTTPNotFound:
        return error_response(404, f"The requested URL {request.path} was not found on this server.")
    except web.HTTPMethodNotAllowed:
        return error_response(404, f"Method {request.method} is not supported on {request.path}.")
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[STATE_KEY].config.max_request_bytes
        return error_response(400, f"Request payload size exceeds the limit: {limit} bytes.")


def create_app(config: EmulatorConfig | None = None) -> web.Application:
    """Build the emulator application for `config` (defaults when None)."""
    app = web.Application(middlewares=[envelope_errors], client_max_size=MAX_BODY_BYTES)
    app[STATE_KEY] = EmulatorState(config or EmulatorConfig())
    # Batch Mode and the Files API; batch create must be registered before `models/{target}`.
    add_batch_routes(app, API_VERSIONS)
    add_file_routes(app, API_VERSIONS)
    add_batch_admin_routes(app)
    for version in API_VERSIONS:
        # Models and generation (issue 15).
        app.router.add_get(f"/{version}/models", list_models)
        app.router.add_get(f"/{version}/models/{{model}}", get_model)
        app.router.add_post(f"/{version}/models/{{target}}", model_action)
        add_cache_routes(app, version)
    add_admin_routes(app)
    return app


def _raise_fd_limit() -> None:
    # 1,000 concurrent streams need more descriptors than the common soft limit of 1,024.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = 65536 if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


async def serve(config: EmulatorConfig) -> None:
    """Run the emulator until SIGINT or SIGTERM."""
    _raise_fd_limit()
    runner = web.AppRunner(create_app(config), access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, backlog=BACKLOG)
    await site.start()
    host, port = runner.addresses[0][:2]
    log.info("Gemini emulator listening on http://%s:%s (config: %s)", host, port, config.log_summary())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("Gemini emulator stopping")
        await runner.cleanup()
