"""Broker wiring: each message lands in exactly one queue, the one of its priority."""

from __future__ import annotations

import pytest
from procs import RedisServer

from worker.celery_app import create_celery, publish_job
from worker.core import keys
from worker.core.settings import Settings


@pytest.mark.parametrize("priority", ["high", "normal", "low"])
def test_a_job_message_lands_only_in_its_priority_queue(
    settings: Settings, redis_server: RedisServer, priority: str
) -> None:
    # Given every queue declared (as a worker does at start)
    isolated = settings.replace(redis_url=redis_server.url.replace("/0", "/5"))
    celery = create_celery(isolated)
    client = redis_server.client()
    client.execute_command("SELECT", 5)
    client.flushdb()
    with celery.connection_for_write() as conn:
        for queue in celery.amqp.queues.values():
            queue.bind(conn.default_channel).declare()
    # When one job is published
    publish_job(celery, "job-1", priority)
    # Then exactly one list holds it: its priority's queue
    lengths = {name: client.llen(keys.BROKER_PREFIX + name) for name in (*keys.JOB_QUEUES.values(), keys.WEBHOOK_QUEUE)}
    assert lengths == {name: int(name == keys.JOB_QUEUES[priority]) for name in lengths}


def test_the_broker_channel_reuses_one_client_and_keeps_the_redis_uri(
    settings: Settings, redis_server: RedisServer
) -> None:
    # Given gemq's Celery app on a private database
    celery = create_celery(settings.replace(redis_url=redis_server.url.replace("/0", "/6")))
    with celery.connection_for_write() as conn:
        channel = conn.default_channel
        # When it takes a client twice, as every publish, unacked record and acknowledgement does
        with channel.conn_or_acquire() as first, channel.conn_or_acquire() as second:
            pass
        # Then one client serves them all, and the URI still names the redis scheme (Flower picks its page by it)
        assert first is second
        assert type(channel).__module__ == "worker.transport"
        assert conn.as_uri().startswith("redis://")
