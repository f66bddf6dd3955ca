"""``GET /v1/limits``: each model's Gemini limits and their current use, for operators."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from pydantic import BaseModel
from spectree import Response as Doc

from web.context import ctx
from web.errors import ErrorBody
from web.openapi import spec

bp = Blueprint("limits", __name__)


class ModelLimitValues(BaseModel):
    """Configured limits (null = unlimited)."""

    rpm: int | None = None
    tpm: int | None = None
    rpd: int | None = None
    concurrency: int | None = None


class ModelUse(BaseModel):
    """Use right now, summed over every worker."""

    requests_in_window: int
    tokens_in_window: int
    requests_today: int
    in_flight: int
    waiting: int


class ModelLimitState(BaseModel):
    """One model's limits and use."""

    model: str
    limits: ModelLimitValues
    use: ModelUse
    paused_for_s: float
    closed_for_day_s: float


class LimitsView(BaseModel):
    """Every model the limiter knows."""

    models: list[ModelLimitState]


@bp.get("/v1/limits")
@spec.validate(resp=Doc(HTTP_200=LimitsView, HTTP_401=ErrorBody), tags=["limits"], skip_validation=True)
def limits() -> Response:
    """Each model's limits (``GEMQ_LIMITS``) and current use: window, today, in flight, waiting, pauses."""
    return jsonify(LimitsView.model_validate({"models": ctx().limiter.usage()}).model_dump(mode="json"))
