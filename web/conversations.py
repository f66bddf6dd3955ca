"""``/v1/conversations/<id>``: read or clear a conversation's history (tenant-scoped)."""

from __future__ import annotations

import re

from flask import Blueprint, Response, g, jsonify
from pydantic import BaseModel
from spectree import Response as Doc

from web.context import ctx
from web.errors import ApiError, ErrorBody
from web.openapi import spec
from worker.core.request import CONVERSATION_PATTERN, Content

bp = Blueprint("conversations", __name__)


class Conversation(BaseModel):
    """A conversation's history: what the model sees before the next job's turns."""

    id: str
    #: Every turn, oldest first (user and model, in the order they happened).
    turns: list[Content]
    #: The jobs whose exchanges make up the history, oldest first.
    job_ids: list[str]


def _known(conversation_id: str) -> str:
    """The id if the caller has such a conversation, else 404 (another tenant's is not revealed)."""
    if not re.match(CONVERSATION_PATTERN, conversation_id) or not ctx().conversations.exists(
        g.tenant, conversation_id
    ):
        raise ApiError(404, "no such conversation")
    return conversation_id


@bp.get("/v1/conversations/<conversation_id>")
@spec.validate(resp=Doc(HTTP_200=Conversation, HTTP_401=ErrorBody, HTTP_404=ErrorBody), tags=["conversations"],
               skip_validation=True)
def get_conversation(conversation_id: str) -> Response:
    """The conversation's history."""
    exchanges = ctx().conversations.history(g.tenant, _known(conversation_id))
    view = Conversation(id=conversation_id, turns=[Content.model_validate(t) for e in exchanges for t in e.turns],
                        job_ids=[e.job_id for e in exchanges])
    return jsonify(view.model_dump(mode="json"))


@bp.delete("/v1/conversations/<conversation_id>")
@spec.validate(resp=Doc(HTTP_204=None, HTTP_401=ErrorBody, HTTP_404=ErrorBody), tags=["conversations"],
               skip_validation=True)
def delete_conversation(conversation_id: str) -> Response:
    """Forget the history; jobs already submitted keep their order and start a fresh history."""
    ctx().conversations.clear(g.tenant, _known(conversation_id))
    return Response(status=204)
