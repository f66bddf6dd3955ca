"""Broker wiring: each message lands in exactly one queue, the one of its priority."""

from __future__ import annotations

import pytest
from procs import RedisServer

from worker import keys
from worker.celery_app import create_celery, publish_job
from worker.config import Settings


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
