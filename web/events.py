"""``GET /v1/jobs/<id>/events``: a job's status changes and streamed text as Server-Sent Events."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, request
from spectree import Response as Doc

from web.context import ctx
from web.errors import ApiError, ErrorBody
from web.feed import DONE_ID, EVENT_ID
from web.jobs import own_job
from web.openapi import spec

bp = Blueprint("events", __name__)

HEADERS = {
    "Cache-Control": "no-cache",
    # Proxies such as nginx would otherwise hold frames back in their buffers.
    "X-Accel-Buffering": "no",
}


def documented_only(**doc: Any) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """List a streaming route in the OpenAPI document without spectree's wrapper around its calls.

    spectree's wrapper reads the whole response body (``get_data``) even with ``skip_validation``,
    which would hold an event stream until it ends.  spectree finds a route's documentation through
    its ``__wrapped__`` chain, so the view keeps a documented twin there and is served unwrapped.
    """

    def decorate(view: Callable[..., Response]) -> Callable[..., Response]:
        view.__wrapped__ = spec.validate(**doc)(view)  # type: ignore[attr-defined]
        return view

    return decorate


@bp.get("/v1/jobs/<job_id>/events")
@documented_only(resp=Doc(HTTP_200=None, HTTP_204=None, HTTP_400=ErrorBody, HTTP_401=ErrorBody, HTTP_404=ErrorBody,
                          HTTP_503=ErrorBody), tags=["jobs"], skip_validation=True)
def job_events(job_id: str) -> Response:
    """Server-Sent Events: `status` and `delta` frames (id = position), then `done` with the whole job.

    Resume with the `Last-Event-ID` header (or `?last_event_id=`); after `done` (id `done`) a
    reconnect gets 204, which tells an EventSource to stop.
    """
    own_job(job_id)
    last_id = request.headers.get("Last-Event-ID") or request.args.get("last_event_id") or "0"
    if last_id != "0" and not EVENT_ID.match(last_id):
        raise ApiError(400, "Last-Event-ID must be an event id this stream sent")
    if last_id == DONE_ID:
        return Response(status=204)
    feed = ctx().events
    if not feed.slots.take():
        raise ApiError(503, "too many event streams open on this server; try again shortly",
                       headers={"Retry-After": "5"})
    response = Response(feed.stream(job_id, last_id), mimetype="text/event-stream", headers=HEADERS)
    # The server closes the response however the stream ends (finished, client gone, error), even unstarted.
    response.call_on_close(feed.slots.give_back)
    return response
