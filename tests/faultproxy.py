"""A fault-injecting TCP proxy between Redis clients and a real redis-server, for tests.

Clients (gemq subprocesses via ``REDIS_URL=proxy.url``, or clients in the test) connect to the proxy;
the proxy opens one connection to Redis per client connection and reads both directions as RESP, so
a fault can aim at one command of a pipeline and at that command's own reply. Faults are switched
at any time from the test::

    with FaultProxy(server.port) as proxy:
        client = redis.Redis.from_url(proxy.url, socket_timeout=0.5)
        proxy.hold(2.0, match="INCR", times=1)   # INCR runs; its reply is withheld 2 s, then delivered
        ...
        assert proxy.counts["INCR"] == 2         # the client sent it again after its timeout

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

``match`` is a command name (``"EVALSHA"``), a predicate on :class:`resp.Command` (see
:func:`command` and :func:`script`), or ``None`` for every command; ``times`` limits a rule to its
next ``times`` matches (``None``: all). The first live rule that matches a command decides.
``counts`` (by command name) and ``seen(match)`` count commands forwarded to Redis.

Replies are paired with commands in the order Redis answers them. A connection that subscribes
(pub/sub), runs ``MONITOR`` or turns ``CLIENT REPLY`` off is passed through untouched from then on.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from procs import free_port
from resp import PUSH, Command, frame_end, parse_command

Matcher = Callable[[Command], bool]
Match = str | Matcher | None
#: Commands after which a connection's replies no longer pair one-to-one with its commands.
UNPAIRED = frozenset({"SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "MONITOR"})
#: How many forwarded commands ``seen()`` can look back over.
LOG_SIZE = 100_000
#: Seconds between checks of a stop or release while waiting (every wait is bounded).
TICK = 0.02


def command(*names: str) -> Matcher:
    """Matches commands with one of these names (any case)."""
    wanted = {name.upper() for name in names}
    return lambda cmd: cmd.name in wanted


def script(source: str) -> Matcher:
    """Matches runs of this Lua script: ``EVALSHA`` of its SHA1 (as redis-py's ``Script`` sends) or ``EVAL``."""
    sha = hashlib.sha1(source.encode()).hexdigest().encode()
    body = source.encode()

    def matches(cmd: Command) -> bool:
        if not cmd.args:
            return False
        if cmd.name in ("EVALSHA", "EVALSHA_RO"):
            return cmd.args[0].lower() == sha
        return cmd.name in ("EVAL", "EVAL_RO") and cmd.args[0] == body

    return matches


def _unpairs(cmd: Command) -> bool:
    """After ``cmd``, the connection's replies no longer answer its commands one by one."""
    return cmd.name in UNPAIRED or (cmd.name == "CLIENT" and cmd.args[:1] != () and cmd.args[0].upper() == b"REPLY")


def _matcher(match: Match) -> Matcher:
    if match is None:
        return lambda cmd: True
    return command(match) if isinstance(match, str) else match


@dataclass(eq=False)
class Rule:
    """One fault: what to do to the commands it matches, how many more times, how often it fired."""

    action: Literal["hold", "drop_before", "delay"]
    matches: Matcher
    times: int | None
    seconds: float = 0.0
    then: Literal["deliver", "drop"] = "deliver"
    hits: int = 0
    released: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        """End this rule's holds now (each then delivers or drops as ``then`` says)."""
        self.released.set()


class FaultProxy:
    """A TCP proxy on a free loopback port in front of ``upstream_host:upstream_port``."""

    def __init__(self, upstream_port: int, *, upstream_host: str = "127.0.0.1", port: int | None = None) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = port or free_port()
        self._lock = threading.Lock()
        self._state = threading.Condition(self._lock)
        self._rules: list[Rule] = []
        self._counts: Counter[str] = Counter()
        self._log: deque[Command] = deque(maxlen=LOG_SIZE)
        self._links: set[_Link] = set()
        self._listen_wanted = True
        self._listening = False
        self._blackhole = False
        self._stopping = threading.Event()
        self._acceptor = threading.Thread(target=self._accept_loop, name=f"faultproxy-{self.port}", daemon=True)

    @property
    def url(self) -> str:
        """``redis://`` URL of database 0 through the proxy."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> FaultProxy:
        """Listen and return once connections are accepted."""
        self._acceptor.start()
        self._await_listening(True)
        return self

    def stop(self) -> None:
        """Close every connection and the listener; holds end at once."""
        self._stopping.set()
        with self._lock:
            for rule in self._rules:
                rule.release()
        self.drop_connections()
        self._acceptor.join(timeout=5)
        self.drop_connections()  # any accepted while the acceptor was stopping

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # Faults

    def hold(self, seconds: float, *, match: Match = None, times: int | None = None,
             then: Literal["deliver", "drop"] = "deliver") -> Rule:
        """Withhold the replies of matching commands (which run) for ``seconds``, then deliver or drop."""
        return self._add(Rule("hold", _matcher(match), times, seconds, then))

    def drop(self, *, match: Match = None, times: int | None = 1, before: bool = False) -> Rule:
        """Close the connection after a matching command ran (its reply lost) or, ``before``, instead of it."""
        rule = Rule("drop_before", _matcher(match), times) if before else Rule("hold", _matcher(match), times,
                                                                                 then="drop")
        return self._add(rule)

    def delay(self, seconds: float, *, match: Match = None, times: int | None = None) -> Rule:
        """Forward matching commands ``seconds`` late (commands behind them on the connection wait too)."""
        return self._add(Rule("delay", _matcher(match), times, seconds))

    def drop_connections(self) -> int:
        """Close every open connection now; how many there were."""
        with self._lock:
            links = list(self._links)
        for link in links:
            link.close()
        return len(links)

    def refuse(self, on: bool = True) -> None:
        """Refuse new connections (``on``) or accept them again; returns once the listener changed."""
        with self._lock:
            self._listen_wanted = not on
        self._await_listening(not on)

    def blackhole(self, on: bool = True) -> None:
        """Swallow every command from now on (``on``), or stop swallowing for connections still in step."""
        with self._lock:
            self._blackhole = on

    def pass_through(self) -> None:
        """No faults: rules removed (holds in progress run out), connections accepted, commands forwarded."""
        with self._lock:
            self._rules.clear()
            self._blackhole = False
        self.refuse(False)

    # Counting

    @property
    def counts(self) -> Counter[str]:
        """Commands forwarded to Redis so far, by name (a copy)."""
        with self._lock:
            return Counter(self._counts)

    def seen(self, match: Match = None) -> int:
        """How many forwarded commands (of the last ``LOG_SIZE``) match."""
        matches = _matcher(match)
        with self._lock:
            return sum(1 for cmd in self._log if matches(cmd))

    def reset_counts(self) -> None:
        """Forget the commands counted so far."""
        with self._lock:
            self._counts.clear()
            self._log.clear()

    # Internals, used by the connections

    def _add(self, rule: Rule) -> Rule:
        with self._lock:
            self._rules.append(rule)
        return rule

    def _decide(self, cmd: Command) -> tuple[Rule | None, bool]:
        """The rule that takes ``cmd`` (if any) and whether the blackhole swallows it; counts it if forwarded."""
        with self._lock:
            if self._blackhole:
                return None, True
            rule = next((r for r in self._rules if (r.times is None or r.times > 0) and r.matches(cmd)), None)
            if rule is not None:
                rule.hits += 1
                rule.times = None if rule.times is None else rule.times - 1
            if rule is None or rule.action != "drop_before":
                self._counts[cmd.name] += 1
                self._log.append(cmd)
            return rule, False

    def _forget(self, link: _Link) -> None:
        with self._lock:
            self._links.discard(link)

    def _wait(self, seconds: float, event: threading.Event | None = None, link: _Link | None = None) -> None:
        """Sleep ``seconds``, or less if the proxy stops, ``event`` is set or ``link`` closes."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0 and not self._stopping.is_set():
            if (event is not None and event.is_set()) or (link is not None and link.closed.is_set()):
                return
            time.sleep(min(TICK, left))

    def _await_listening(self, listening: bool) -> None:
        with self._state:
            if not self._state.wait_for(lambda: self._listening == listening, timeout=5):
                raise TimeoutError(f"the proxy on port {self.port} did not {'listen' if listening else 'stop'}")

    def _set_listening(self, listening: bool) -> None:
        with self._state:
            self._listening = listening
            self._state.notify_all()

    def _accept_loop(self) -> None:
        """The listener's only owner: opens and closes it as ``refuse`` asks, and accepts."""
        listener: socket.socket | None = None
        while not self._stopping.is_set():
            with self._lock:
                wanted = self._listen_wanted
            if wanted and listener is None:
                listener = socket.create_server(("127.0.0.1", self.port), reuse_port=False, backlog=128)
                listener.settimeout(TICK)
                self._set_listening(True)
            elif not wanted and listener is not None:
                listener.close()
                listener = None
                self._set_listening(False)
            if listener is None:
                self._stopping.wait(TICK)
                continue
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            with self._lock:
                link = _Link(self, client, deaf=self._blackhole)
                self._links.add(link)
            link.start()
        if listener is not None:
            listener.close()
        self._set_listening(False)


class _Link:
    """One client connection and its own connection to Redis, served by two threads."""

    def __init__(self, proxy: FaultProxy, client: socket.socket, *, deaf: bool) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream: socket.socket | None = None
        self.pending: deque[Rule | None] = deque()  # per command forwarded: the hold rule for its reply
        self.paired = True
        self.deaf = deaf
        self.closed = threading.Event()
        self._close_lock = threading.Lock()

    def start(self) -> None:
        threading.Thread(target=self._serve_requests, name="faultproxy-requests", daemon=True).start()

    def close(self) -> None:
        """Close both sides (once); wakes both threads."""
        with self._close_lock:
            if self.closed.is_set():
                return
            self.closed.set()
        for sock in (self.client, self.upstream):
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
        self.proxy._forget(self)

    def _serve_requests(self) -> None:
        try:
            self.client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if not self.deaf:
                self.upstream = socket.create_connection(self.proxy.upstream, timeout=5)
                self.upstream.settimeout(None)
                self.upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                threading.Thread(target=self._serve_replies, name="faultproxy-replies", daemon=True).start()
            buf = bytearray()
            while data := self.client.recv(65536):
                buf += data
                if not self._forward(buf):
                    break
            else:
                if self.upstream is not None:
                    # The client is done: let Redis finish what it received, then it closes its side.
                    self.upstream.shutdown(socket.SHUT_WR)
                    return
        except OSError:
            pass
        self.close()

    def _forward(self, buf: bytearray) -> bool:
        """Forward, delay or drop the whole commands in ``buf`` (consumed); False once the link must close."""
        out, pos = bytearray(), 0
        while (parsed := parse_command(buf, pos)) is not None:
            cmd, end = parsed
            span = buf[pos:end]
            pos = end
            if self.deaf:
                continue
            rule, swallowed = (None, False) if cmd is None else self.proxy._decide(cmd)
            if swallowed:
                self.deaf = True
                continue
            if rule is not None and rule.action != "hold":
                self._send_upstream(out)
                if rule.action == "drop_before":
                    return False
                self.proxy._wait(rule.seconds, link=self)
            if cmd is not None and _unpairs(cmd):
                self.paired = False
            if cmd is not None and self.paired:
                self.pending.append(rule if rule is not None and rule.action == "hold" else None)
            out += span
        del buf[:pos]
        self._send_upstream(out)
        return not self.closed.is_set()

    def _send_upstream(self, out: bytearray) -> None:
        if out and self.upstream is not None:
            self.upstream.sendall(out)
        out.clear()

    def _serve_replies(self) -> None:
        assert self.upstream is not None
        buf = bytearray()
        try:
            while data := self.upstream.recv(65536):
                buf += data
                if not self._answer(buf):
                    break
        except OSError:
            pass
        self.close()

    def _answer(self, buf: bytearray) -> bool:
        """Send the whole replies in ``buf`` to the client (consumed), holding or dropping as their rules say."""
        if not self.paired:
            self.client.sendall(buf)
            buf.clear()
            return True
        sent = pos = 0
        while (end := frame_end(buf, pos)) is not None:
            rule = None if buf[pos] == PUSH or not self.pending else self.pending.popleft()
            if rule is not None:
                self.client.sendall(buf[sent:pos])
                sent = pos
                self.proxy._wait(rule.seconds, rule.released, self)
                if rule.then == "drop" or self.closed.is_set():
                    return False
            pos = end
        self.client.sendall(buf[sent:pos])
        del buf[:pos]
        return True
