"""Liveness, readiness and the OpenAPI document (no API key needed)."""

from __future__ import annotations

import time

import redis
from flask import Blueprint, Response, jsonify
from pydantic import BaseModel
from spectree import Response as Doc

from web.context import ctx
from web.openapi import spec
from worker.core import keys

bp = Blueprint("health", __name__)

#: A worker counts as live if it sent a heartbeat this recently.
WORKER_FRESH_S = 30


class Health(BaseModel):
    """The process answers."""

    ok: bool


class Checks(BaseModel):
    """What readiness needs."""

    redis: bool
    worker: bool


class Readiness(BaseModel):
    """Whether the deployment can take and run jobs, and which check failed if not."""

    ready: bool
    checks: Checks


@bp.get("/healthz")
@spec.validate(resp=Doc(HTTP_200=Health), security={}, tags=["health"], skip_validation=True)
def healthz() -> Response:
    """The process answers."""
    return jsonify({"ok": True})


@bp.get("/readyz")
@spec.validate(resp=Doc(HTTP_200=Readiness, HTTP_503=Readiness), security={}, tags=["health"], skip_validation=True)
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
@spec.validate(resp=Doc("HTTP_200"), security={}, tags=["health"], skip_validation=True)
def openapi() -> Response:
    """The OpenAPI 3 document of the API."""
    return jsonify(spec.spec)
