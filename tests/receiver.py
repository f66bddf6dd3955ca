"""A real webhook receiver for tests: a threaded HTTP server on loopback that answers as scripted."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from procs import wait_until


@dataclass(frozen=True)
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class Answer:
    """How to answer one request: wait ``delay`` seconds, then ``status`` (with ``headers``)."""

    status: int = 200
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


class Receiver:
    """Records every request; answers the n-th with ``answers[n]`` and later ones with ``default``."""

    def __init__(self, answers: Iterable[Answer] = (), default: Answer | None = None, *, port: int = 0) -> None:
        self.received: list[Received] = []
        self._answers = list(answers)
        self._default = default or Answer()
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Where to send webhooks."""
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, count: int, timeout: float = 20) -> list[Received]:
        """The first ``count`` requests, once they arrived."""
        wait_until(lambda: len(self.received) >= count, timeout=timeout, what=f"{count} webhook request(s)")
        return self.received[:count]

    def _next_answer(self, received: Received) -> Answer:
        with self._lock:
            self.received.append(received)
            return self._answers.pop(0) if self._answers else self._default

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the stdlib's name for it
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                answer = receiver._next_answer(Received(self.path, headers, body))
                time.sleep(answer.delay)
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the sender gave up waiting (a timeout test)

            def log_message(self, *_: Any) -> None:
                pass

        return Handler


def spec_signature(secret: str, headers: dict[str, str], body: bytes) -> str:
    """The Standard Webhooks signature computed from the spec by hand (no library)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
