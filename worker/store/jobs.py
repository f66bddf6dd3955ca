"""The job store: job records in Redis and every change of their state.

A job is one hash (``keys.job``).  All status changes go through ``lua/transition.lua`` so the
check of the current status and the write are atomic: a terminal record is written once, and a
cancelled job cannot be moved back to ``running``.  Each change also appends an event to the
job's stream (``keys.job_events``), which the SSE endpoint reads.  A job of a conversation takes
its place in the conversation's line when it is saved (``lua/conv_ticket.lua``, see
``worker.store.conversations``), so jobs saved together keep their order.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import redis

from worker.core import keys
from worker.core.clock import now_ms
from worker.core.job import NON_TERMINAL, TERMINAL, JobStatus
from worker.core.request import JobRequest
from worker.core.settings import Settings
from worker.store.scripts import OneTrip, load_script

#: Events kept per job stream (approximate MAXLEN); enough for a long streamed answer.
EVENTS_MAXLEN = 2000
#: Jobs read per round trip while listing with a status filter, and the most examined per page.
LIST_CHUNK = 100
LIST_MAX_EXAMINED = 2000


def new_id() -> str:
    """A fresh, unguessable job or batch id."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Transition:
    """Outcome of a status change."""

    #: True when the job moved to the new status.
    moved: bool
    #: The status before (or the current one when refused; ``None`` if the job does not exist).
    previous: str | None
    #: True for the one change that finished the last item of the job's batch.
    batch_completed: bool = False


class JobStore:
    """Reads and writes job records; the only code that changes a job's status.

    ``client`` must decode responses to ``str`` (``worker.store.connect.connect``).
    """

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.redis = client
        self.settings = settings
        self._transition = load_script(client, "transition")
        self._partial = load_script(client, "partial")
        self._ticket = load_script(client, "conv_ticket")

    # -- creating and reading ------------------------------------------------------------

    def new_record(
        self, tenant: str, request: JobRequest, *, job_id: str | None = None, batch_id: str | None = None
    ) -> dict[str, str]:
        """The hash fields of a new queued job (not yet written)."""
        record = {
            "id": job_id or new_id(),
            "tenant": tenant,
            "status": JobStatus.queued.value,
            "priority": request.priority.value,
            "model": request.model or self.settings.default_model,
            "created_ms": str(now_ms()),
            "attempts": "0",
            "metadata": json.dumps(request.metadata),
            "request": json.dumps(request.call_spec()),
        }
        if request.webhook_url:
            record["webhook_url"] = request.webhook_url
        if batch_id:
            record["batch_id"] = batch_id
        if request.conversation_id:
            record["conversation_id"] = request.conversation_id
        if request.cache:
            record["cache"] = "1"
        return record

    def save_new(
        self, records: Iterable[dict[str, str]], trip: OneTrip | None = None, *, index: bool = True,
        events: bool = True,
    ) -> None:
        """Write new job records, in one round trip, with their tenant index entry and ``queued`` event.

        With ``trip`` the commands join the caller's round trip, which the caller sends.
        ``index=False`` leaves them out of the tenant's job index; ``events=False`` writes no ``queued``
        event, so the event stream starts with the first change (Redis 7 preallocates a stream's first
        node, ``stream-node-max-bytes``: about 4.3 KB per job while it waits).
        """
        own = trip is None
        trip = trip if trip is not None else OneTrip(self.redis)
        pipe = trip.pipe
        oldest = now_ms() - (self.settings.result_ttl + 86_400) * 1000
        tenants: set[str] = set()
        for record in records:
            pipe.hset(keys.job(record["id"]), mapping=record)
            if events:
                event = {"event": "status", "data": _status_data(record["status"], record)}
                pipe.xadd(keys.job_events(record["id"]), event, maxlen=EVENTS_MAXLEN)
            if index:
                pipe.zadd(keys.tenant_jobs(record["tenant"]), {record["id"]: int(record["created_ms"])})
                tenants.add(record["tenant"])
            # Every new job, batch items too: the reaper watches all unfinished jobs (keys.active).
            pipe.zadd(keys.active(), {record["id"]: int(record["created_ms"])})
            if record.get("conversation_id"):
                self._take_ticket(record, trip)
        for tenant in tenants:
            # Index entries outlive their records by a day at most: the index never grows without bound.
            pipe.zremrangebyscore(keys.tenant_jobs(tenant), "-inf", oldest)
        if own:
            trip.execute()

    def _take_ticket(self, record: dict[str, str], trip: OneTrip) -> None:
        """Queue the job in its conversation's line, in the order jobs are saved (``lua/conv_ticket.lua``)."""
        line = keys.conversation_line(record["tenant"], record["conversation_id"])
        trip.script(self._ticket, [*line, keys.job(record["id"])], [record["id"], self.settings.conversation_ttl])

    def delete(self, job_id: str, tenant: str) -> None:
        """Remove a job that was never enqueued (its publish failed)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.delete(keys.job(job_id), keys.job_events(job_id))
        pipe.zrem(keys.tenant_jobs(tenant), job_id)
        pipe.zrem(keys.active(), job_id)
        pipe.execute()

    def get(self, job_id: str) -> dict[str, str] | None:
        """The job's hash, or ``None``."""
        record = self.redis.hgetall(keys.job(job_id))
        return record or None

    def get_for_tenant(self, job_id: str, tenant: str) -> dict[str, str] | None:
        """The job's hash if it exists and belongs to ``tenant``."""
        record = self.get(job_id)
        return record if record and record.get("tenant") == tenant else None

    def status(self, job_id: str) -> str | None:
        """The job's current status, or ``None`` if it is gone."""
        return self.redis.hget(keys.job(job_id), "status")

    def list_for_tenant(
        self, tenant: str, *, status: str | None, limit: int, cursor: tuple[int, str] | None
    ) -> tuple[list[dict[str, str]], tuple[int, str] | None]:
        """The tenant's jobs, newest first, after ``cursor``; returns the page and the position of its last job."""
        index = keys.tenant_jobs(tenant)
        page: list[dict[str, str]] = []
        examined = 0
        while len(page) < limit and examined < LIST_MAX_EXAMINED:
            top: int | str = cursor[0] if cursor else "+inf"
            rows = [(m, int(s)) for m, s in self.redis.zrevrangebyscore(
                index, top, "-inf", start=0, num=LIST_CHUNK + 1, withscores=True)]
            if cursor:
                # Same-millisecond members come in descending id order: skip those already returned.
                rows = [(m, s) for m, s in rows if s < cursor[0] or m < cursor[1]]
            if not rows:
                return page, None
            for job_id, score in rows:
                examined += 1
                cursor = (score, job_id)
                record = self.get(job_id)
                if record is None:
                    self.redis.zrem(index, job_id)  # its record expired: drop the stale index entry
                elif status is None or record["status"] == status:
                    page.append(record)
                    if len(page) == limit:
                        break
        return page, cursor

    # -- changing state ------------------------------------------------------------------

    def transition(
        self,
        record: dict[str, str],
        to: JobStatus,
        *,
        allowed: Iterable[str],
        fields: dict[str, str] | None = None,
        delta: str = "",
        also: Callable[[OneTrip], None] | None = None,
    ) -> Transition:
        """Move the job to ``to`` if its current status is in ``allowed``; write ``fields`` with it.

        ``delta`` is streamed text not yet written: it becomes the last delta event before the change.
        ``also`` adds commands to the same round trip; they run whatever the outcome.
        """
        call = self._transition_call(record, to, allowed, fields, delta)
        if also is None:
            return _transition_of(self._transition(**call))
        trip = OneTrip(self.redis)
        trip.script(self._transition, call["keys"], call["args"])
        also(trip)
        return _transition_of(trip.execute()[0])

    def _transition_call(
        self, record: dict[str, str], to: JobStatus, allowed: Iterable[str], fields: dict[str, str] | None, delta: str
    ) -> dict[str, list[Any]]:
        """The keys and arguments of ``lua/transition.lua`` for one change."""
        job_id = record["id"]
        job_keys = [keys.job(job_id), keys.job_events(job_id), keys.active()]
        usage = ""
        if record.get("batch_id"):
            job_keys += [keys.batch(record["batch_id"]), keys.batch_items(record["batch_id"])]
            usage = _usage_of((fields or {}).get("result"))
        flat: list[str] = []
        for name, value in (fields or {}).items():
            flat += [name, value]
        return {"keys": job_keys, "args": [
            ",".join(allowed), to.value, int(to in TERMINAL), self.settings.result_ttl, EVENTS_MAXLEN,
            _status_data(to.value, {**record, **(fields or {})}), delta, usage, *flat]}

    def cancel(self, record: dict[str, str]) -> Transition:
        """Cancel a job that has not finished."""
        return self.transition(record, JobStatus.cancelled, allowed=NON_TERMINAL, fields=_cancel_fields())

    def cancel_many(self, records: list[dict[str, str]]) -> list[Transition]:
        """Cancel several jobs (a batch's items) in one round trip; one Transition per record, in order."""
        trip = OneTrip(self.redis)
        fields = _cancel_fields()
        for record in records:
            call = self._transition_call(record, JobStatus.cancelled, NON_TERMINAL, fields, "")
            trip.script(self._transition, call["keys"], call["args"])
        return [_transition_of(reply) for reply in trip.execute()]

    def append_partial(self, job_id: str, delta: str) -> str | None:
        """Append streamed text while the job runs; returns its current status."""
        data = json.dumps({"text": delta})
        status = self._partial(keys=[keys.job(job_id), keys.job_events(job_id)], args=[delta, EVENTS_MAXLEN, data])
        return status or None

    def touch(self, job_id: str, *, due_in: float = 0.0) -> None:
        """Mark an unfinished job as alive until ``due_in`` s from now (its countdown), for the reaper."""
        # XX: a job that finished meanwhile has left the index and must not come back.
        self.redis.zadd(keys.active(), {job_id: now_ms() + int(due_in * 1000)}, xx=True)

    def set_fields(self, job_id: str, fields: dict[str, str]) -> None:
        """Write bookkeeping fields that do not change the status (webhook attempts, timings)."""
        self.redis.hset(keys.job(job_id), mapping=fields)


def _transition_of(reply: list[Any]) -> Transition:
    code, previous, completed = reply
    return Transition(moved=code == 1, previous=previous or None, batch_completed=bool(completed))


def _cancel_fields() -> dict[str, str]:
    error = {"type": "cancelled", "message": "cancelled by the client"}
    return {"finished_ms": str(now_ms()), "error": json.dumps(error)}


def _usage_of(result: str | None) -> str:
    """``"prompt,output,total"`` tokens of a result (JSON), for the batch's sums; ``""`` without one.

    A cached answer adds nothing: no tokens were spent on it.
    """
    answer = json.loads(result) if result else {}
    if not answer or answer.get("cached"):
        return ""
    usage = answer.get("usage") or {}
    return ",".join(str(int(usage.get(k) or 0)) for k in ("prompt_tokens", "output_tokens", "total_tokens"))


def _status_data(status: str, record: dict[str, str]) -> str:
    """The data (JSON) of a status event in the job's stream."""
    return json.dumps({"status": status, "attempts": int(record.get("attempts") or 0)})
