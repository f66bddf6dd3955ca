"""A fault-injecting TCP proxy between Redis clients and a real redis-server, for tests.

Clients (gemq subprocesses via ``REDIS_URL=proxy.url``, or clients in the test) connect to the proxy;
the proxy opens one connection to Redis per client connection and reads both directions as RESP, so
a fault can aim at one command of a pipeline and at that command's own reply. Faults are switched
at any time from the test::

    with FaultProxy(server.port) as proxy:
        client = redis.Redis.from_url(proxy.url, socket_timeout=0.5)
        proxy.hold(2.0, match="INCRBY", times=1)  # redis-py's incr runs; its reply comes 2 s late
        ...
        assert proxy.counts["INCRBY"] == 2        # the client sent it again after its timeout

- ``hold(seconds, match=, times=, then=)``: a matching command is forwarded and runs; its reply is
  withheld for ``seconds`` (or until ``rule.release()``), then delivered or, with ``then="drop"``,
  the connection is closed instead. Replies behind it on that connection wait too (order holds).
- ``drop(match=, times=, before=)``: close the connection when a matching command's reply arrives
  (it ran; the client never hears), or with ``before=True`` instead of forwarding it (it never runs).
- ``delay(seconds, match=, times=)``: forward matching commands ``seconds`` late.
- ``drop_connections()``: close every open connection now (commands in flight may or may not run).
- ``refuse(True)``: new connections are refused (the listening socket is closed; same port after).
- ``blackhole(True)``: connections are accepted and commands read, never forwarded nor answered; a
  connection that lost a command to it stays deaf after ``blackhole(False)`` (its replies would be
  out of step), so clients must time out and reconnect, as after a network partition.
- ``pass_through()``: remove every rule, stop refusing and blackholing.

``match`` is a command name (``"EVALSHA"``), a predicate on :class:`Command` (see
:func:`command` and :func:`script`), or ``None`` for every command; ``times`` limits a rule to its
next ``times`` matches (``None``: all). The first live rule that matches a command decides.
``counts`` (by command name) and ``seen(match)`` count commands forwarded to Redis.

Replies are paired with commands in the order Redis answers them. A connection that subscribes
(pub/sub), runs ``MONITOR`` or turns ``CLIENT REPLY`` off is passed through untouched from then on.

Modules: ``proxy`` (the listener and the controls), ``link`` (one client connection and its
connection to Redis), ``rules`` (faults and what they match), ``resp`` (the RESP parser).
"""

from __future__ import annotations

from faultproxy.proxy import FaultProxy
from faultproxy.resp import Command
from faultproxy.rules import Match, Rule, command, script

__all__ = ["Command", "FaultProxy", "Match", "Rule", "command", "script"]
