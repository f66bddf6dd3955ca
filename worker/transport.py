"""kombu's Redis transport, with one Redis client per channel instead of one per command.

kombu 5.7's Redis channel builds a new ``redis.Redis`` object for every acknowledgement, every
delivery's unacked record and every publish (``Channel.conn_or_acquire`` ->
``Channel._create_client``).  The connections come from the channel's pool either way, but
building the client object (its response-callback table, its retry policy) was 4% of a worker's
CPU and 3% of the web's in py-spy profiles.  A redis-py client is thread-safe (each command takes
a connection from the pool), so this channel keeps one per pool and builds a new one only when the
channel has replaced its pool (after a connection loss).

Used through ``broker_transport = "worker.transport:Transport"`` (kombu resolves "module:Class").
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis


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
