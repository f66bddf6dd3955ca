"""Which jobs have a message in the broker: read from kombu's Redis lists and unacknowledged hash.

For the reaper (``worker.process.reaper``), which re-publishes only jobs whose message is nowhere.
Read-only, and tied to kombu 5.7's Redis layout (a list per queue under ``gemq:broker:``, the
``unacked`` hash of ``[message, exchange, routing key]``) and Celery's message protocol 2.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator
from typing import Any

import redis

from worker.core import keys
from worker.queue.names import RUN_JOB

#: Messages read per LRANGE / HSCAN call while looking through the broker.
SCAN_CHUNK = 1000


def job_ids_in_broker(client: redis.Redis) -> set[str]:
    """Ids of the jobs that have a ``run_job`` message in a job queue or held unacknowledged by a worker."""
    found = set(_job_ids(_unacked_messages(client)))
    for queue in keys.JOB_QUEUES.values():
        found.update(_job_ids(_queue_messages(client, keys.broker_queue(queue))))
    found.update(_job_ids(_unacked_messages(client)))
    return found


def _queue_messages(client: redis.Redis, queue: str) -> Iterator[Any]:
    # LPUSH adds at index 0 while we read upwards: an element may be read twice, never skipped.
    start = 0
    while chunk := client.lrange(queue, start, start + SCAN_CHUNK - 1):
        for raw in chunk:
            yield _loads(raw)
        start += SCAN_CHUNK


def _unacked_messages(client: redis.Redis) -> Iterator[Any]:
    for _, raw in client.hscan_iter(keys.broker_unacked(), count=SCAN_CHUNK):
        entry = _loads(raw)  # kombu keeps [message, exchange, routing key]
        yield entry[0] if isinstance(entry, list) and entry else None


def _loads(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _job_ids(messages: Iterable[Any]) -> Iterator[str]:
    """The job id of each ``run_job`` message (Celery protocol 2: the body is base64 JSON ``[args, kwargs, embed]``)."""
    for message in messages:
        try:
            if message["headers"]["task"] != RUN_JOB:
                continue
            yield str(json.loads(base64.b64decode(message["body"]))[0][0])
        except (ValueError, KeyError, IndexError, TypeError):
            continue
