"""Liveness, readiness and the OpenAPI document (no API key needed)."""

from __future__ import annotations

import time

import redis
from flask import Blueprint, Response, jsonify

from web.context import ctx
from web.openapi import spec
from worker import keys

bp = Blueprint("health", __name__)

#: A worker counts as live if it sent a heartbeat this recently.
WORKER_FRESH_S = 30


@bp.get("/healthz")
def healthz() -> Response:
    """The process answers."""
    return jsonify({"ok": True})


@bp.get("/readyz")
def readyz() -> Response:
    """Redis answers and at least one worker sent a heartbeat recently; 503 otherwise."""
    checks = {"redis": False, "worker": False}
    try:
        client = ctx().redis
        checks["redis"] = bool(client.ping())
        fresh = int((time.time() - WORKER_FRESH_S) * 1000)
        checks["worker"] = client.zcount(keys.workers(), fresh, "+inf") > 0
    except redis.RedisError:
        pass
    response = jsonify({"ready": all(checks.values()), "checks": checks})
    response.status_code = 200 if all(checks.values()) else 503
    return response


@bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI 3 document of the API."""
    return jsonify(spec.spec)
