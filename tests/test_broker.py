"""Broker wiring: each message lands in exactly one queue, the one of its priority."""

from __future__ import annotations

import pytest
import redis
from kombu.exceptions import KombuError
from procs import RedisServer, free_port

from worker.core import keys
from worker.core.errors import PublishFailed
from worker.core.settings import Settings
from worker.queue.app import create_celery
from worker.queue.publisher import CeleryPublisher


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
    CeleryPublisher(celery).publish_job("job-1", priority)
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
        assert type(channel).__module__ == "worker.queue.transport"
        assert conn.as_uri().startswith("redis://")


def test_a_webhook_attempt_the_broker_does_not_take_is_publish_failed(settings: Settings) -> None:
    # Given a publisher whose broker is not there
    publisher = CeleryPublisher(create_celery(settings.replace(redis_url=f"redis://127.0.0.1:{free_port()}/0")))
    # When it publishes a webhook attempt, then the broker's error arrives as gemq's, with the cause kept
    with pytest.raises(PublishFailed) as raised:
        publisher.publish_webhook_attempt("evt_x", 0)
    assert isinstance(raised.value.__cause__, (KombuError, redis.RedisError, OSError))
