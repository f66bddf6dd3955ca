"""kombu's Redis transport, with one Redis client per channel instead of one per command.

kombu 5.7's Redis channel builds a new ``redis.Redis`` object for every acknowledgement, every
delivery's unacked record and every publish (``Channel.conn_or_acquire`` ->
``Channel._create_client``).  The connections come from the channel's pool either way, but building
the client object (its response-callback table, its retry policy, redis-py's deprecated-argument
check over its ~50 parameters) was 6% of a worker's CPU and 8% of the web's in py-spy profiles
(``py-spy record --gil``, bench/throughput.py's load).  A redis-py client is thread-safe (each
command takes a connection from the pool), so this channel keeps one per pool and builds a new one
only when the channel has replaced its pool (after a connection loss).

It is installed under kombu's own ``redis``/``rediss`` aliases (:func:`install`), not through
Celery's ``broker_transport`` setting: with that setting the connection's URI names the transport's
class path instead of ``redis://``, and Flower's broker page, which picks its client by the URI's
scheme, refuses it (tests/test_flower.py).
"""

from __future__ import annotations

from typing import Any

from kombu import transport as kombu_transport
from kombu.transport import redis as kombu_redis

#: Where kombu finds this transport.
TRANSPORT_PATH = "worker.queue.transport:Transport"


class Channel(kombu_redis.Channel):
    """kombu's Redis channel, reusing its synchronous client."""

    _sync_client: Any = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:
            return super()._create_client(asynchronous=True)
        client = self._sync_client
        if client is None or client.connection_pool is not self.pool:
            client = self._sync_client = super()._create_client()
        return client


class Transport(kombu_redis.Transport):
    """kombu's Redis transport with :class:`Channel`."""

    Channel = Channel


def install() -> None:
    """Make ``redis://`` and ``rediss://`` broker URLs use :class:`Transport` in this process (idempotent)."""
    for scheme in ("redis", "rediss"):
        kombu_transport.TRANSPORT_ALIASES[scheme] = TRANSPORT_PATH
        # kombu caches each name's class on first use (get_transport_cls): forget a plain one.
        getattr(kombu_transport, "_transport_cache", {}).pop(scheme, None)
