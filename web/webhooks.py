"""``/v1/webhooks``: the caller's webhook signing secret."""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify
from pydantic import BaseModel, Field
from spectree import Response as Doc

from web.context import ctx
from web.errors import ErrorBody
from web.openapi import spec
from worker.webhooks.secrets import tenant_secret

bp = Blueprint("webhooks", __name__)


class WebhookSecret(BaseModel):
    """The secret that signs the caller's webhooks (Standard Webhooks ``whsec_`` form)."""

    secret: str = Field(description="Pass it to any Standard Webhooks library to verify deliveries.")


@bp.get("/v1/webhooks/secret")
@spec.validate(resp=Doc(HTTP_200=WebhookSecret, HTTP_401=ErrorBody), tags=["webhooks"], skip_validation=True)
def secret() -> Response:
    """The caller's webhook signing secret; it is derived from the server's master secret, so it is stable."""
    response = jsonify(WebhookSecret(secret=tenant_secret(ctx().settings, g.tenant)).model_dump())
    response.headers["Cache-Control"] = "no-store"
    return response
