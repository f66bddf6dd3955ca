"""Webhook events: their bodies, and the Redis state of each event's delivery.

An event is created once (idempotent by its id) with the exact body that will be signed and sent
on every attempt, and its attempt 0 is published at once.  Each attempt is taken
(``lua/webhook_begin.lua``), made by ``worker.webhooks.delivery``, and recorded together with the
scheduling of the next one (``lua/webhook_record.lua``) in the ``webhooks:due`` zset, which a
mover thread publishes when due (``lua/webhook_claim.lua``).  Whatever is in flight is also parked
in that zset as a safety net (a first attempt not yet published, an attempt being made, a claimed
attempt being published), so a process dying at any point delays a delivery but never loses it.
Deliveries are therefore at least once; duplicate messages are dropped by ``webhook_begin.lua``.

Used by the worker (job finished), the web (job cancelled) and the batch store
(:meth:`WebhookEvents.enqueue_event` with ``batch.completed``).  No HTTP and no broker here: this
module is imported by the web, and publishes through the :class:`~worker.core.publisher.Publisher`
it is given.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis
import structlog

from worker.core import keys
from worker.core.clock import iso_ms, now_ms
from worker.core.errors import PublishFailed
from worker.core.job import TERMINAL, Job, JobStatus
from worker.core.publisher import Publisher
from worker.core.settings import Settings
from worker.store.scripts import load_script

log = structlog.get_logger("gemq.webhooks")

#: Seconds before the mover publishes attempt 0 itself, should the process that created the event
#: die before publishing it (normally the creator publishes at once and removes this entry).
FIRST_ATTEMPT_GRACE_S = 30.0
#: Event type of a job that reached each terminal status.
JOB_EVENT_TYPES = {JobStatus.succeeded: "job.succeeded", JobStatus.failed: "job.failed",
                   JobStatus.cancelled: "job.cancelled"}


def job_event_id(job_id: str, status: str) -> str:
    """The one event id of a job's terminal event (the ``webhook-id`` header on every attempt)."""
    return f"evt_{job_id}_{status}"


def due_member(event_id: str, attempt: int) -> str:
    """The ``webhooks:due`` member of one attempt."""
    return f"{event_id}:{attempt}"


def parse_due_member(member: str) -> tuple[str, int]:
    """``(event id, attempt)`` from a ``webhooks:due`` member."""
    event_id, _, attempt = member.rpartition(":")
    return event_id, int(attempt)


@dataclass(frozen=True)
class Attempt:
    """What :meth:`WebhookEvents.begin` hands the deliverer for one attempt."""

    event_id: str
    index: int
    tenant: str
    url: str
    body: str
    #: The hash that mirrors the delivery state (the job), or ``""``.
    owner: str


class WebhookEvents:
    """Creates webhook events and keeps their delivery state in Redis."""

    def __init__(self, client: redis.Redis, settings: Settings, publisher: Publisher) -> None:
        self.redis = client
        self.settings = settings
        self.publisher = publisher
        self._create = load_script(client, "webhook_create")
        self._begin = load_script(client, "webhook_begin")
        self._record = load_script(client, "webhook_record")
        self._claim = load_script(client, "webhook_claim")
        self._published = load_script(client, "webhook_published")

    # -- creating events -------------------------------------------------------------------

    def enqueue_event(
        self, *, tenant: str, url: str, event_type: str, data: dict[str, Any], event_id: str,
        owner: str | None = None,
    ) -> bool:
        """Create the event (once per ``event_id``) and publish its first attempt; True if created now.

        ``owner`` is the Redis hash that shows the delivery (``keys.job(id)``); a batch can pass
        ``keys.batch(id)`` and ``batch.completed``.  ``data`` is sent as the body's ``data``.
        """
        body = json.dumps({"type": event_type, "timestamp": iso_ms(now_ms()), "data": data},
                          separators=(",", ":"), ensure_ascii=False)
        event_keys = [keys.webhook(event_id), keys.webhooks_due(), *([owner] if owner else [])]
        grace_ms = now_ms() + int(FIRST_ATTEMPT_GRACE_S * 1000)
        created = self._create(keys=event_keys, args=[event_id, tenant, url, event_type, body, self._ttl(),
                                                      grace_ms, due_member(event_id, 0)])
        if created != 1:
            return False
        log.info("webhook.enqueued", event_id=event_id, event_type=event_type, tenant=tenant)
        self.publish([due_member(event_id, 0)], parked_until=grace_ms)
        return True

    def enqueue_job_event(self, job_id: str, record: dict[str, str] | None = None) -> bool:
        """The job's terminal event, if it has a webhook and has none yet; safe to call more than once."""
        record = record if record is not None else self.redis.hgetall(keys.job(job_id))
        if not record or not record.get("webhook_url") or record.get("webhook_event_id"):
            return False
        status = JobStatus(record["status"])
        if status not in TERMINAL:
            return False
        event_id = job_event_id(job_id, status.value)
        # The data is the job as GET shows it right after this event is created.
        view = {**record, "webhook_event_id": event_id, "webhook_state": "pending", "webhook_attempts": "[]"}
        data = Job.from_record(view).model_dump(mode="json")
        return self.enqueue_event(tenant=record["tenant"], url=record["webhook_url"],
                                  event_type=JOB_EVENT_TYPES[status], data=data, event_id=event_id,
                                  owner=keys.job(job_id))

    def publish(self, members: Sequence[str], *, parked_until: int) -> None:
        """Publish the attempts named by due ``members`` (parked until ``parked_until`` ms), then unpark them.

        A member whose publish fails stays parked and is published by the mover once due: a broker
        hiccup delays a delivery but never loses it.
        """
        published = []
        for member in members:
            event_id, attempt = parse_due_member(member)
            try:
                self.publisher.publish_webhook_attempt(event_id, attempt)
            except PublishFailed as exc:
                log.warning("webhook.publish_failed", event_id=event_id, attempt=attempt,
                            error_type=type(exc.__cause__ or exc).__name__)
                continue
            published.append(member)
        if published:
            self._published(keys=[keys.webhooks_due()], args=[parked_until, *published])

    def _ttl(self) -> int:
        """Keep an event at least as long as its job, and a day beyond its whole retry schedule."""
        return max(self.settings.result_ttl, int(sum(self.settings.webhook_schedule)) + 86_400)

    # -- delivering ------------------------------------------------------------------------

    def begin(self, event_id: str, index: int, lease_s: float) -> Attempt | str:
        """Take attempt ``index``: an :class:`Attempt`, or why the message is dropped."""
        reply = self._begin(keys=[keys.webhook(event_id), keys.webhooks_due()],
                            args=[index, now_ms(), int(lease_s * 1000), due_member(event_id, index)])
        if int(reply[0]) != 1:
            return str(reply[1])
        tenant, url, body, owner = reply[1:5]
        return Attempt(event_id=event_id, index=index, tenant=tenant, url=url, body=body, owner=owner)

    def record(self, attempt: Attempt, result: dict[str, Any], state: str, next_in: float | None = None) -> bool:
        """Record ``result`` of ``attempt`` and the state after it; schedule the next in ``next_in`` s."""
        due_ms = now_ms() + int((next_in or 0.0) * 1000)
        event_keys = [keys.webhook(attempt.event_id), keys.webhooks_due(), *([attempt.owner] if attempt.owner else [])]
        recorded = self._record(keys=event_keys, args=[
            attempt.index, json.dumps(result, separators=(",", ":")), state, due_ms,
            due_member(attempt.event_id, attempt.index + 1), due_member(attempt.event_id, attempt.index),
        ])
        return bool(recorded)

    def claim_due(self, lease_s: float, limit: int) -> tuple[list[str], int]:
        """Due attempts, claimed for ``lease_s`` seconds (due again if not published by then), and that time (ms)."""
        now = now_ms()
        until = now + int(lease_s * 1000)
        return list(self._claim(keys=[keys.webhooks_due()], args=[now, until, limit])), until

    def get(self, event_id: str) -> dict[str, str]:
        """The event's hash (empty when gone)."""
        return dict(self.redis.hgetall(keys.webhook(event_id)))
