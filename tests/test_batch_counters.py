"""The batch counters kept by ``lua/transition.lua``, driven through the JobStore against the real Redis,
and a batch creation that fails half-way.

Except in the last test, no messages are published: items are written and moved directly, as workers would.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from procs import RedisServer

from worker.core import keys
from worker.core.clock import now_ms
from worker.core.job import JobStatus
from worker.core.request import JobRequest
from worker.core.settings import Settings
from worker.queue.app import create_celery
from worker.queue.publisher import CeleryPublisher
from worker.store.batches import WRITE_CHUNK, BatchStore, NewItem
from worker.store.connect import connect
from worker.store.jobs import JobStore, Transition, new_id
from worker.store.webhooks import WebhookEvents


@pytest.fixture
def stores(settings: Settings) -> tuple[JobStore, BatchStore]:
    """A job store and a batch store on the session's Redis."""
    client = connect(settings, max_connections=32)
    store = JobStore(client, settings)
    publisher = CeleryPublisher(create_celery(settings))
    return store, BatchStore(client, settings, store, WebhookEvents(client, settings, publisher), publisher)


def make_batch(stores: tuple[JobStore, BatchStore], size: int) -> tuple[str, list[dict[str, str]]]:
    """A batch of ``size`` queued items written straight to Redis (no messages)."""
    store, batches = stores
    batch_id = new_id()
    record = batches.new_record(batch_id, "acme", total=size, priority="low", model=None, metadata={}, webhook_url=None)
    store.redis.hset(keys.batch(batch_id), mapping=record)
    items = [store.new_record("acme", JobRequest(prompt=f"item {n}"), batch_id=batch_id) for n in range(size)]
    store.save_new(items, index=False)
    store.redis.rpush(keys.batch_items(batch_id), *(item["id"] for item in items))
    return batch_id, items


def run_item(store: JobStore, item: dict[str, str], tokens: int) -> Transition:
    """Move an item as a worker does: running, then succeeded with a usage."""
    assert store.transition(item, JobStatus.running, allowed=("queued",), fields={"attempts": "1"}).moved
    result = {"text": "t", "usage": {"prompt_tokens": tokens, "output_tokens": 2 * tokens, "total_tokens": 3 * tokens}}
    return store.transition(item, JobStatus.succeeded, allowed=("running",),
                            fields={"finished_ms": str(now_ms()), "result": json.dumps(result)})


def test_concurrent_finishes_count_once_each_and_complete_the_batch_once(
    stores: tuple[JobStore, BatchStore], redis_server: RedisServer, settings: Settings
) -> None:
    store, _ = stores
    batch_id, items = make_batch(stores, 200)

    with ThreadPoolExecutor(max_workers=16) as pool:
        moves = list(pool.map(lambda pair: run_item(store, pair[1], pair[0] + 1), enumerate(items)))

    assert all(move.moved for move in moves)
    assert sum(move.batch_completed for move in moves) == 1
    batch = redis_server.client().hgetall(keys.batch(batch_id))
    counts = {name: int(value) for name, value in batch.items() if name.startswith("n_")}
    assert counts == {"n_total": 200, "n_queued": 0, "n_running": 0, "n_succeeded": 200, "n_done": 200}
    assert int(batch["tokens_prompt"]) == sum(range(1, 201))
    assert int(batch["tokens_total"]) == 3 * sum(range(1, 201))
    assert batch["status"] == "completed" and abs(int(batch["finished_ms"]) - now_ms()) < 5000
    assert redis_server.client().ttl(keys.batch(batch_id)) > settings.result_ttl - 60
    assert redis_server.client().ttl(keys.batch_items(batch_id)) > settings.result_ttl - 60


@pytest.mark.parametrize("scripts_lost", [False, True], ids=["scripts-loaded", "redis-lost-its-scripts"])
def test_a_cancel_that_stops_items_ends_the_batch_cancelled(
    stores: tuple[JobStore, BatchStore], redis_server: RedisServer, scripts_lost: bool
) -> None:
    store, _ = stores
    batch_id, items = make_batch(stores, 4)
    run_item(store, items[0], 1)
    store.transition(items[1], JobStatus.running, allowed=("queued",))
    store.redis.hset(keys.batch(batch_id), "cancel_ms", str(now_ms()))
    if scripts_lost:
        store.redis.script_flush()  # as after a Redis restart: each script in the one trip is sent again

    moves = store.cancel_many([{**item, "status": "?"} for item in items])

    assert [(m.moved, m.previous) for m in moves] == [(False, "succeeded"), (True, "running"), (True, "queued"),
                                                      (True, "queued")]
    assert [m.batch_completed for m in moves] == [False, False, False, True]
    batch = redis_server.client().hgetall(keys.batch(batch_id))
    assert (batch["status"], batch["n_cancelled"], batch["n_succeeded"], batch["n_done"]) == (
        "cancelled", "3", "1", "4")


def test_a_cancel_request_that_stopped_nothing_leaves_the_batch_completed(
    stores: tuple[JobStore, BatchStore], redis_server: RedisServer
) -> None:
    store, _ = stores
    batch_id, items = make_batch(stores, 2)
    run_item(store, items[0], 1)
    store.redis.hset(keys.batch(batch_id), "cancel_ms", str(now_ms()))
    assert run_item(store, items[1], 1).batch_completed
    assert redis_server.client().hget(keys.batch(batch_id), "status") == "completed"


def test_a_batch_hash_that_is_gone_is_not_recreated(
    stores: tuple[JobStore, BatchStore], redis_server: RedisServer
) -> None:
    store, _ = stores
    batch_id, items = make_batch(stores, 2)
    redis_server.client().delete(keys.batch(batch_id))
    assert run_item(store, items[0], 1).moved
    assert not redis_server.client().exists(keys.batch(batch_id))


def test_items_moving_between_running_and_retrying_keep_the_counts_whole(
    stores: tuple[JobStore, BatchStore], redis_server: RedisServer
) -> None:
    store, _ = stores
    batch_id, items = make_batch(stores, 1)
    item = items[0]
    for to, allowed in ((JobStatus.running, "queued"), (JobStatus.retrying, "running"), (JobStatus.running, "retrying"),
                        (JobStatus.running, "running")):
        store.transition(item, to, allowed=(allowed,))
    batch = redis_server.client().hgetall(keys.batch(batch_id))
    assert {k: v for k, v in batch.items() if k.startswith("n_")} == {
        "n_total": "1", "n_queued": "0", "n_running": "1", "n_retrying": "0", "n_done": "0"}


@pytest.mark.usefixtures("worker")
def test_a_creation_that_fails_half_way_leaves_nothing_behind(
    stores: tuple[JobStore, BatchStore], redis_server: RedisServer, settings: Settings
) -> None:
    # Given a batch whose items stop coming after two full chunks were written and published
    store, batches = stores
    batch_id = new_id()
    size = 2 * WRITE_CHUNK + 300
    batch = batches.new_record(batch_id, "acme", total=size, priority="low", model=None, metadata={}, webhook_url=None)
    made: list[str] = []

    def items() -> Iterator[NewItem]:
        for n in range(size):
            if n == 2 * WRITE_CHUNK + 100:
                raise OSError("the spool could not be read")
            record = store.new_record("acme", JobRequest(prompt=f"half way {n}"), batch_id=batch_id)
            made.append(record["id"])
            yield None, record

    # When the creation fails, then the error reaches the caller
    with pytest.raises(OSError):
        batches.create(batch, items())

    # And nothing of the batch is left, though the session worker took some of its messages meanwhile
    client = redis_server.client()
    assert client.exists(keys.batch(batch_id), keys.batch_items(batch_id)) == 0
    assert client.zscore(keys.tenant_batches("acme"), batch_id) is None
    assert client.exists(*(keys.job(job_id) for job_id in made)) == 0


def test_a_cached_answer_adds_no_tokens_to_the_batch(
    stores: tuple[JobStore, BatchStore], redis_server: RedisServer
) -> None:
    store, _ = stores
    batch_id, items = make_batch(stores, 2)
    run_item(store, items[0], 10)
    cached = {"text": "t", "cached": True, "usage": {"prompt_tokens": 7, "output_tokens": 7, "total_tokens": 14}}
    assert store.transition(items[1], JobStatus.succeeded, allowed=("queued",),
                            fields={"finished_ms": str(now_ms()), "result": json.dumps(cached)}).batch_completed
    batch = redis_server.client().hgetall(keys.batch(batch_id))
    assert (batch["tokens_prompt"], batch["tokens_total"], batch["n_succeeded"]) == ("10", "30", "2")
