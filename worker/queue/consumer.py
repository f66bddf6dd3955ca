"""The worker's consumer, made to survive losing the Redis broker while tasks are in flight.

With kombu 5.7's Redis transport, a worker that loses its broker connection with tasks running
stops for good ("Unrecoverable error: AttributeError: 'NoneType' object has no attribute
'hostname'"): closing the task channel first reads the pending BRPOP reply, which raises on the
dead connection *before* the channel is marked closed; Celery then tears the transport down and
closes the connection again, and that second close tries to restore the channel's unacknowledged
messages through a transport that no longer has a client.  (The same family as celery/kombu#582
and #970.)  Found by tests/reliability/test_redis_restart.py.

:class:`Consumer` (Celery's ``worker_consumer``) closes the task channel completely while the
transport is still whole, before Celery's own clean-up, so that clean-up has nothing left to do.
The channel's unacknowledged messages stay in kombu's unacked hash when Redis is down (kombu
restores them after the visibility timeout), or go back to their queue when it already answers.
"""

from __future__ import annotations

from typing import Any

import structlog
from celery.worker.consumer import Consumer as CeleryConsumer

log = structlog.get_logger("gemq.worker")

#: Tries at closing a channel whose connection is gone (the first may stop at the BRPOP read).
CLOSE_TRIES = 3


class Consumer(CeleryConsumer):
    """Celery's consumer; after a broker connection loss it first closes the task channel itself."""

    def on_connection_error_after_connected(self, exc: Exception) -> None:
        """Close the task channel while the transport is whole, then let Celery reconnect as usual."""
        channel = getattr(getattr(self, "task_consumer", None), "channel", None)
        if channel is not None:
            close_lost_channel(channel)
        super().on_connection_error_after_connected(exc)


def close_lost_channel(channel: Any) -> bool:
    """Close a kombu channel whose connection was lost; True once it is closed."""
    for _ in range(CLOSE_TRIES):
        if getattr(channel, "closed", True):
            return True
        try:
            channel.close()
        except channel.connection_errors as exc:
            # Either the BRPOP read (the channel stays open: try again, the read is not repeated) or
            # the restore of unacked messages to a Redis that is down (the channel is closed by then).
            log.info("broker.channel_close_error", error_type=type(exc).__name__)
    return bool(getattr(channel, "closed", True))
