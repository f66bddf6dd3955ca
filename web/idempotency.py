"""``Idempotency-Key``: a retried submission gets the original resource back instead of a second one.

Keys are scoped to the tenant and kept 24 h, stored hashed (``keys.idempotency``) with the
fingerprint of the request that used them (route + canonical JSON body) and, once made, the id of
the resource.  The key is claimed atomically (``SET NX``) *before* the resource is made, so of two
simultaneous identical requests exactly one makes it; the other waits briefly for the winner and
replays its answer.  A claim left by a request that died is only held for ``PENDING_TTL`` seconds.

Routes use :meth:`Idempotency.run` through ``web.guards.create_once`` (``POST /v1/jobs``, ``POST /v1/batches``).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from typing import Any

import redis

from worker.core import keys

#: The request header.
HEADER = "Idempotency-Key"
#: Response header on a replayed answer.
REPLAYED_HEADER = "Idempotent-Replayed"
#: Seconds a key is remembered once its resource exists.
IDEMPOTENCY_TTL = 24 * 3600
#: Seconds a claim is held while its request makes the resource (frees the key if that request died).
PENDING_TTL = 30
#: Seconds a request waits for a concurrent one with the same key before answering 409.
REPLAY_WAIT_S = 5.0
#: Seconds between looks while waiting.
POLL_S = 0.01
#: Keys are 1-255 printable ASCII characters (a UUID is the usual choice).
KEY_PATTERN = re.compile(r"[\x20-\x7e]{1,255}")


class IdempotencyError(Exception):
    """The key cannot be used for this request; the message says why (safe to show)."""


class KeyConflict(IdempotencyError):
    """The key was used with a different request."""


class KeyBusy(IdempotencyError):
    """Another request with the key is still being processed."""


def fingerprint(scope: str, body: Any) -> str:
    """What makes two requests "the same": the route and the JSON body (key order and spacing aside)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{scope}\n{canonical}".encode()).hexdigest()


def valid_key(key: str) -> bool:
    """True for a key gemq accepts."""
    return KEY_PATTERN.fullmatch(key) is not None


class Idempotency:
    """Makes a resource at most once per (tenant, key)."""

    def __init__(self, client: redis.Redis, *, wait_s: float = REPLAY_WAIT_S) -> None:
        self.redis = client
        self.wait_s = wait_s

    def run(self, tenant: str, key: str, request_fingerprint: str, create: Callable[[], str]) -> tuple[str, bool]:
        """The resource id for ``key``, and True when it was made by an earlier request (a replay).

        Raises :class:`KeyConflict` when the key was used for another request, :class:`KeyBusy`
        when its first request is still running after ``wait_s``.  If ``create`` raises, the key
        is released so the client can retry with it.
        """
        name = keys.idempotency(tenant, hashlib.sha256(key.encode()).hexdigest())
        deadline = time.monotonic() + self.wait_s
        while True:
            if self.redis.set(name, json.dumps({"fp": request_fingerprint}), nx=True, ex=PENDING_TTL):
                return self._create(name, request_fingerprint, create), False
            raw = self.redis.get(name)
            if raw is not None:
                entry = json.loads(raw)
                if entry["fp"] != request_fingerprint:
                    raise KeyConflict(f"this {HEADER} was already used with a different request body")
                if entry.get("id"):
                    return str(entry["id"]), True
                if time.monotonic() >= deadline:
                    raise KeyBusy(f"a request with this {HEADER} is still being processed; retry shortly")
                time.sleep(POLL_S)
            # raw is None: the first request failed and released the key, or its claim lapsed: claim it.

    def _create(self, name: str, request_fingerprint: str, create: Callable[[], str]) -> str:
        try:
            resource_id = create()
        except BaseException:
            self.redis.delete(name)
            raise
        self.redis.set(name, json.dumps({"fp": request_fingerprint, "id": resource_id}), ex=IDEMPOTENCY_TTL)
        return resource_id
