"""One client connection and its own connection to Redis: commands forwarded, delayed or dropped one by
one; replies paired with them in order, held or dropped."""

from __future__ import annotations

import socket
import threading
from collections import deque
from typing import TYPE_CHECKING

from faultproxy.resp import PUSH, frame_end, parse_command
from faultproxy.rules import Rule, unpairs

if TYPE_CHECKING:
    from faultproxy.proxy import FaultProxy


class Link:
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
        """Serve the connection: a thread for its commands, then one for Redis' replies once connected."""
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

    def _connect_upstream(self) -> bool:
        """Connect to Redis and start serving its replies; False if the link was closed meanwhile."""
        upstream = socket.create_connection(self.proxy.upstream, timeout=5)
        upstream.settimeout(None)
        upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._close_lock:
            if not self.closed.is_set():
                self.upstream = upstream
        if self.upstream is None:
            upstream.close()
            return False
        threading.Thread(target=self._serve_replies, name="faultproxy-replies", daemon=True).start()
        return True

    def _serve_requests(self) -> None:
        try:
            self.client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if not self.deaf and not self._connect_upstream():
                return
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
            if cmd is not None and unpairs(cmd):
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
