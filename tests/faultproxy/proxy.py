"""The proxy: a listener on a free loopback port, the controls a test switches, and the counts."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter, deque
from typing import Literal

from faultproxy.link import Link
from faultproxy.resp import Command
from faultproxy.rules import Match, Rule, matcher

#: How many forwarded commands ``seen()`` can look back over.
LOG_SIZE = 100_000
#: Seconds between checks of a stop or release while waiting (every wait is bounded).
TICK = 0.02


class FaultProxy:
    """A TCP proxy on a loopback port (``port``, or a free one) in front of ``upstream_host:upstream_port``."""

    def __init__(self, upstream_port: int, *, upstream_host: str = "127.0.0.1", port: int = 0) -> None:
        self.upstream = (upstream_host, upstream_port)
        # Bound now, so the port is known and kept; the acceptor thread owns the socket from start().
        self._first_listener: socket.socket | None = self._listen(port)
        self.port = int(self._first_listener.getsockname()[1])
        self._lock = threading.Lock()
        self._state = threading.Condition(self._lock)
        self._rules: list[Rule] = []
        self._counts: Counter[str] = Counter()
        self._log: deque[Command] = deque(maxlen=LOG_SIZE)
        self._links: set[Link] = set()
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
        return self._add(Rule("hold", matcher(match), times, seconds, then))

    def drop(self, *, match: Match = None, times: int | None = 1, before: bool = False) -> Rule:
        """Close the connection after a matching command ran (its reply lost) or, ``before``, instead of it."""
        rule = Rule("drop_before", matcher(match), times) if before else Rule("hold", matcher(match), times,
                                                                                 then="drop")
        return self._add(rule)

    def delay(self, seconds: float, *, match: Match = None, times: int | None = None) -> Rule:
        """Forward matching commands ``seconds`` late (commands behind them on the connection wait too)."""
        return self._add(Rule("delay", matcher(match), times, seconds))

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
        matches = matcher(match)
        with self._lock:
            return sum(1 for cmd in self._log if matches(cmd))

    def reset_counts(self) -> None:
        """Forget the commands counted so far."""
        with self._lock:
            self._counts.clear()
            self._log.clear()

    # The links' side of the proxy (faultproxy.link)

    def _add(self, rule: Rule) -> Rule:
        with self._lock:
            self._rules.append(rule)
        return rule

    def _decide(self, cmd: Command) -> tuple[Rule | None, bool]:
        """The rule that takes ``cmd`` (if any) and whether the blackhole swallows it; counts it if forwarded."""
        with self._lock:
            if self._blackhole:
                return None, True
            rule = next((r for r in self._rules if r.take(cmd)), None)
            if rule is None or rule.action != "drop_before":
                self._counts[cmd.name] += 1
                self._log.append(cmd)
            return rule, False

    def _forget(self, link: Link) -> None:
        with self._lock:
            self._links.discard(link)

    def _wait(self, seconds: float, event: threading.Event | None = None, link: Link | None = None) -> None:
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

    @staticmethod
    def _listen(port: int) -> socket.socket:
        listener = socket.create_server(("127.0.0.1", port), backlog=128)  # SO_REUSEADDR: the same port again
        listener.settimeout(TICK)
        return listener

    def _accept_loop(self) -> None:
        """The listener's only owner: opens and closes it as ``refuse`` asks, and accepts."""
        listener, self._first_listener = self._first_listener, None
        self._set_listening(True)
        while not self._stopping.is_set():
            with self._lock:
                wanted = self._listen_wanted
            if wanted and listener is None:
                listener = self._listen(self.port)
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
                link = Link(self, client, deaf=self._blackhole)
                self._links.add(link)
            link.start()
        if listener is not None:
            listener.close()
        self._set_listening(False)
