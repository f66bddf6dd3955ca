"""The batch store: creating a batch in pipelined chunks, reading its results, cancelling it, finishing it.

Counting is not done here: ``lua/transition.lua`` keeps each batch's counters and token sums in the
same atomic step as each item's status change, and the change that ends the last item finishes
the batch (status, ``finished_ms``, TTL) and reports it (``Transition.batch_completed``).  Whoever
receives that report (the worker that ran the item, or the web cancelling it) calls
:meth:`BatchStore.finished`, which queues the ``batch.completed`` webhook once per batch and gives
the items the batch's lifetime.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

import redis
import structlog

from worker.core import keys
from worker.core.batch import Batch, BatchStatus, result_line
from worker.core.clock import now_ms
from worker.core.job import NON_TERMINAL
from worker.core.publisher import Publisher
from worker.core.settings import Settings
from worker.store.conversations import Conversations
from worker.store.jobs import JobStore
from worker.store.metrics import Metrics
from worker.store.scripts import OneTrip
from worker.store.webhooks import WebhookEvents

log = structlog.get_logger("gemq.batches")

#: Items written (and messages published) per round trip when a batch is created.
WRITE_CHUNK = 1000
#: Items read per round trip for results, cancels and expiry.
READ_CHUNK = 500
#: Fields of an item read for its results line, and to cancel it.
RESULT_FIELDS = ("status", "result", "error")
CANCEL_FIELDS = ("status", "attempts", "priority", "model", "tenant", "conversation_id", "conv_ticket")

#: An item as stored in the items list: its job id and its key.
Item = tuple[str, str | None]
#: A new item: its key and its job record (not yet written).
NewItem = tuple[str | None, dict[str, str]]


def batch_event_id(batch_id: str) -> str:
    """The one id of a batch's ``batch.completed`` event (the ``webhook-id`` header)."""
    return f"evt_batch_{batch_id}"


class BatchStore:
    """Reads and writes batches; their items go through the :class:`JobStore` like any job."""

    def __init__(self, client: redis.Redis, settings: Settings, store: JobStore, webhooks: WebhookEvents,
                 publisher: Publisher, metrics: Metrics | None = None, conversations: Conversations | None = None,
                 ) -> None:
        self.redis = client
        self.settings = settings
        self.store = store
        self.webhooks = webhooks
        self.publisher = publisher
        self.metrics = metrics
        self.conversations = conversations

    # -- creating ------------------------------------------------------------------------

    def new_record(self, batch_id: str, tenant: str, *, total: int, priority: str, model: str | None,
                   metadata: dict[str, str], webhook_url: str | None) -> dict[str, str]:
        """The hash fields of a new batch of ``total`` queued items (not yet written)."""
        record = {
            "id": batch_id, "tenant": tenant, "status": BatchStatus.queued.value, "priority": priority,
            "model": model or self.settings.default_model, "created_ms": str(now_ms()),
            "metadata": json.dumps(metadata), "n_total": str(total), "n_queued": str(total), "n_done": "0",
        }
        if webhook_url:
            record["webhook_url"] = webhook_url
        return record

    def create(self, batch: dict[str, str], items: Iterable[NewItem]) -> None:
        """Write the batch, then its items (job records, items list, messages) ``WRITE_CHUNK`` at a time.

        The batch hash comes first, counting every item as queued, so a worker finishing an early
        item before the last chunk is written counts it correctly.  If anything fails, whatever was
        written is deleted (messages already published find no record and are dropped) and the error
        propagates: a batch is enqueued whole or not at all.
        """
        batch_id = batch["id"]
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(keys.batch(batch_id), mapping=batch)
        index = keys.tenant_batches(batch["tenant"])
        pipe.zadd(index, {batch_id: int(batch["created_ms"])})
        pipe.zremrangebyscore(index, "-inf", now_ms() - (self.settings.result_ttl + 86_400) * 1000)
        pipe.execute()
        chunk: list[NewItem] = []
        try:
            for chunk in _chunks(iter(items), WRITE_CHUNK):
                self._write_chunk(batch, chunk)
        except BaseException:
            log.warning("batch.create_failed", batch_id=batch_id)
            # The chunk being written may be in Redis without being in the items list yet.
            self.delete(batch_id, batch["tenant"], also=[record["id"] for _, record in chunk])
            raise
        log.info("batch.submitted", batch_id=batch_id, tenant=batch["tenant"], items=batch["n_total"],
                 priority=batch["priority"])

    def _write_chunk(self, batch: dict[str, str], chunk: list[NewItem]) -> None:
        records = []
        entries = []
        for key, record in chunk:
            record["created_ms"] = batch["created_ms"]
            records.append(record)
            entries.append(record["id"] if key is None else f"{record['id']} {key}")
        trip = OneTrip(self.redis)
        # Batch items stay out of the tenant's job index (the batch is their listing), and their event
        # streams start when they do: a waiting item costs Redis about 2 KB instead of 6.5.
        self.store.save_new(records, trip, index=False, events=False)
        trip.pipe.rpush(keys.batch_items(batch["id"]), *entries)
        trip.execute()
        self.publisher.publish_jobs((r["id"], r["priority"]) for r in records)
        if self.metrics:
            for (priority, model), count in Counter((r["priority"], r["model"]) for r in records).items():
                self.metrics.job_submitted(priority, model, count)

    def delete(self, batch_id: str, tenant: str, also: list[str] | None = None) -> None:
        """Remove a batch, its items and the jobs ``also`` (a creation that failed half-way)."""
        self._delete_jobs(also or [])
        for chunk in self.item_chunks(batch_id):
            self._delete_jobs([job_id for job_id, _ in chunk])
        pipe = self.redis.pipeline(transaction=False)
        pipe.delete(keys.batch(batch_id), keys.batch_items(batch_id))
        pipe.zrem(keys.tenant_batches(tenant), batch_id)
        pipe.execute()

    def _delete_jobs(self, job_ids: list[str]) -> None:
        if job_ids:
            pipe = self.redis.pipeline(transaction=False)
            pipe.delete(*(k for job_id in job_ids for k in (keys.job(job_id), keys.job_events(job_id))))
            pipe.zrem(keys.active(), *job_ids)
            pipe.execute()

    # -- reading -------------------------------------------------------------------------

    def get_for_tenant(self, batch_id: str, tenant: str) -> dict[str, str] | None:
        """The batch's hash if it exists and belongs to ``tenant``."""
        record = self.redis.hgetall(keys.batch(batch_id))
        return record if record and record.get("tenant") == tenant else None

    def list_for_tenant(
        self, tenant: str, *, limit: int, cursor: tuple[int, str] | None
    ) -> tuple[list[dict[str, str]], tuple[int, str] | None]:
        """The tenant's batches, newest first, after ``cursor``; the page and the position of its last batch."""
        index = keys.tenant_batches(tenant)
        top: int | str = cursor[0] if cursor else "+inf"
        # A few more than asked: same-millisecond entries already returned are skipped below.
        rows = [(m, int(s)) for m, s in self.redis.zrevrangebyscore(index, top, "-inf", start=0, num=limit + 16,
                                                                      withscores=True)]
        if cursor:
            rows = [(m, s) for m, s in rows if s < cursor[0] or m < cursor[1]]
        rows = rows[:limit]
        pipe = self.redis.pipeline(transaction=False)
        for batch_id, _ in rows:
            pipe.hgetall(keys.batch(batch_id))
        records = pipe.execute()
        page = [record for record in records if record]
        gone = [batch_id for (batch_id, _), record in zip(rows, records, strict=True) if not record]
        if gone:
            self.redis.zrem(index, *gone)  # their records expired: drop the stale index entries
        return page, ((rows[-1][1], rows[-1][0]) if rows else None)

    def item_chunks(self, batch_id: str, size: int = READ_CHUNK) -> Iterator[list[Item]]:
        """The batch's items in submission order, ``size`` per round trip."""
        start = 0
        while True:
            entries = self.redis.lrange(keys.batch_items(batch_id), start, start + size - 1)
            if not entries:
                return
            yield [_item(entry) for entry in entries]
            start += len(entries)

    def results(self, batch_id: str) -> Iterator[dict[str, Any]]:
        """One results line per item, in submission order; the items are read ``READ_CHUNK`` per round trip."""
        index = 0
        for chunk in self.item_chunks(batch_id):
            pipe = self.redis.pipeline(transaction=False)
            for job_id, _ in chunk:
                pipe.hmget(keys.job(job_id), RESULT_FIELDS)
            for (job_id, key), fields in zip(chunk, pipe.execute(), strict=True):
                index += 1
                yield result_line(index, job_id, key, fields)

    # -- cancelling and finishing ----------------------------------------------------------

    def cancel(self, batch: dict[str, str]) -> int:
        """Cancel every item that has not finished; returns how many were cancelled.

        Running items are announced (``worker.store.cancels``) so their calls stop at the next chunk.
        """
        batch_id = batch["id"]
        self.redis.hsetnx(keys.batch(batch_id), "cancel_ms", str(now_ms()))
        cancelled = 0
        completed = False
        for chunk in self.item_chunks(batch_id):
            pipe = self.redis.pipeline(transaction=False)
            for job_id, _ in chunk:
                pipe.hmget(keys.job(job_id), CANCEL_FIELDS)
            records = [{"id": job_id, "batch_id": batch_id, **dict(zip(CANCEL_FIELDS, fields, strict=True))}
                       for (job_id, _), fields in zip(chunk, pipe.execute(), strict=True) if fields[0] in NON_TERMINAL]
            if not records:
                continue
            moves = self.store.cancel_many(records)
            pipe = self.redis.pipeline(transaction=False)
            for record, move in zip(records, moves, strict=True):
                if move.moved and move.previous != "queued":
                    pipe.publish(keys.cancels_channel(), record["id"])
                if move.moved:
                    self._cancelled(record)
            pipe.execute()
            cancelled += sum(move.moved for move in moves)
            completed = completed or any(move.batch_completed for move in moves)
        log.info("batch.cancelled", batch_id=batch_id, tenant=batch["tenant"], items=cancelled)
        if completed:
            self.finished(batch_id, just_completed=True)
        return cancelled

    def _cancelled(self, record: dict[str, str]) -> None:
        """What a cancel does besides the change itself: count it, let the item's conversation move on."""
        if self.metrics:
            self.metrics.job_finished(record, "cancelled")
        if self.conversations and record.get("conversation_id"):
            self.conversations.settle({**record, "status": "cancelled"})

    def finished(self, batch_id: str, *, just_completed: bool) -> None:
        """After an item of the batch ended: if the batch is finished, queue its webhook (once per batch).

        ``just_completed`` is True for the one caller whose change ended the last item: it also gives
        every item the batch's remaining lifetime, so results stay whole until the batch expires.
        Others (a redelivered message of the last item, whose worker may have died before queueing
        the event) only make sure the event exists: creating it is idempotent.
        """
        head = self.redis.hmget(keys.batch(batch_id), ("status", "webhook_url", "webhook_event_id"))
        status, url, event_id = head
        if not status or not BatchStatus(status).finished:
            return
        if url and not event_id:
            self._enqueue_event(batch_id)
        if just_completed:
            self._extend_items(batch_id)

    def _enqueue_event(self, batch_id: str) -> None:
        record = self.redis.hgetall(keys.batch(batch_id))
        if not record:
            return
        event_id = batch_event_id(batch_id)
        # The data is the batch as GET shows it right after this event is created.
        view = {**record, "webhook_event_id": event_id, "webhook_state": "pending", "webhook_attempts": "[]"}
        data = Batch.from_record(view).model_dump(mode="json")
        self.webhooks.enqueue_event(tenant=record["tenant"], url=record["webhook_url"], event_type="batch.completed",
                                    data=data, event_id=event_id, owner=keys.batch(batch_id))

    def _extend_items(self, batch_id: str) -> None:
        """Items expire with the batch, not before (each got the result TTL when it ended)."""
        ttl = self.redis.ttl(keys.batch(batch_id))
        if ttl <= 0:
            return
        for chunk in self.item_chunks(batch_id, WRITE_CHUNK):
            pipe = self.redis.pipeline(transaction=False)
            for job_id, _ in chunk:
                pipe.expire(keys.job(job_id), ttl, gt=True)
                pipe.expire(keys.job_events(job_id), ttl, gt=True)
            pipe.execute()


def _item(entry: str) -> Item:
    job_id, sep, key = entry.partition(" ")
    return job_id, key if sep else None


def _chunks(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    while chunk := list(islice(items, size)):
        yield chunk
