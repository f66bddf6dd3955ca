"""The bounded request log served by `GET /_emulator/requests`, and a smaller ring of request bodies.

Entries hold metadata only, never prompt text or API keys: `ts` (arrival, unix seconds), `model`,
`method`, `status`, `outcome`, `prompt_tokens`, `output_tokens`, `key_fingerprint`, `tag`,
`request_id`, `service_tier` (the tier asked for; null for routes without one), `api_version` (the
path's first segment: `v1beta` or `v1`).

Bodies live apart, in a ring of the newest `body_log_size` (a knob; 0 keeps none), keyed by
`request_id`: the JSON exactly as the client sent it, except that each `inlineData.data` is replaced
by `{"bytes": <decoded length>, "sha256": <hex>}` so a 100 MB image costs a few bytes. Fetch one
with `GET /_emulator/requests/{request_id}` or all with `?bodies=1`.
"""

from __future__ import annotations

import hashlib
import sys
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any

from emulator.media import decode_base64

#: Outcome labels of a logged call.
OUTCOMES = frozenset(
    {
        "ok", "quota_rpm", "quota_tpm", "quota_rpd", "error", "hang", "midstream_error", "malformed", "safety",
        "auth", "invalid", "not_found", "too_large", "flex_shed", "permission_denied",
        # Batch Mode and the Files API: the concurrency cap, the enqueued-token cap, the storage cap.
        "quota_batches", "quota_enqueued_tokens", "quota_files",
    }
)


@dataclass
class CallInfo:
    """What is known about a call when it arrives."""

    ts: float
    model: str
    method: str
    key_fingerprint: str | None
    tag: str | None = None
    request_id: str = ""
    service_tier: str | None = None
    api_version: str | None = None


#: Field names of a log entry, in order.
FIELDS = ("ts", "model", "method", "status", "outcome", "prompt_tokens", "output_tokens", "key_fingerprint", "tag",
          "request_id", "service_tier", "api_version")

_Entry = tuple[float, str, str, int, str, int, int, "str | None", "str | None", str, "str | None", "str | None"]


def loggable(body: Any) -> Any:
    """`body` with every inline blob's data replaced by its decoded length and SHA-256."""
    if isinstance(body, list):
        return [loggable(item) for item in body]
    if not isinstance(body, dict):
        return body
    out = {key: loggable(value) for key, value in body.items()}
    for key in ("inlineData", "inline_data"):
        blob = body.get(key)
        if isinstance(blob, dict) and isinstance(blob.get("data"), str):
            raw = decode_base64(blob["data"]) or b""
            out[key] = {**blob, "data": {"bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest()}}
    return out


class RequestLog:
    """A FIFO of call records, bounded to the newest `size` entries, and a ring of `body_size` bodies.

    Entries are stored as tuples with interned strings (about 300 bytes each) so the default bound
    of 200,000 stays around 60 MB; they become dicts only when queried.
    """

    def __init__(self, size: int, body_size: int = 0) -> None:
        self._entries: deque[_Entry] = deque(maxlen=size)
        self._bodies: OrderedDict[str, Any] = OrderedDict()
        self._body_size = body_size

    def record(
        self, call: CallInfo, status: int, outcome: str, *, prompt_tokens: int = 0, output_tokens: int = 0
    ) -> None:
        """Log a call's result."""
        fingerprint = sys.intern(call.key_fingerprint) if call.key_fingerprint else None
        self._entries.append(
            (call.ts, sys.intern(call.model), sys.intern(call.method), status, outcome, prompt_tokens, output_tokens,
             fingerprint, call.tag, call.request_id, call.service_tier,
             sys.intern(call.api_version) if call.api_version else None)
        )

    def keep_body(self, request_id: str, body: Any) -> None:
        """Remember a request's body (made loggable) under its id, dropping the oldest past the bound."""
        if not self._body_size or not request_id:
            return
        self._bodies[request_id] = loggable(body)
        while len(self._bodies) > self._body_size:
            self._bodies.popitem(last=False)

    def body(self, request_id: str) -> Any:
        """The logged body of a request (None when not kept)."""
        return self._bodies.get(request_id)

    def query(
        self, *, model: str | None = None, tag: str | None = None, since: float | None = None, bodies: bool = False
    ) -> list[dict[str, Any]]:
        """Entries, oldest first, filtered by model, tag and arrival time (`ts >= since`)."""
        out = []
        for entry in self._entries:
            if (model is None or entry[1] == model) and (tag is None or entry[8] == tag) and \
                    (since is None or entry[0] >= since):
                item = dict(zip(FIELDS, entry, strict=True))
                if bodies:
                    item["body"] = self._bodies.get(entry[9])
                out.append(item)
        return out

    def find(self, request_id: str) -> dict[str, Any] | None:
        """The entry of one request, with its body."""
        for entry in reversed(self._entries):
            if entry[9] == request_id:
                return dict(zip(FIELDS, entry, strict=True)) | {"body": self._bodies.get(request_id)}
        return None

    def resize(self, size: int, body_size: int | None = None) -> None:
        """Change the bounds, keeping the newest entries."""
        if size != self._entries.maxlen:
            self._entries = deque(self._entries, maxlen=size)
        if body_size is not None:
            self._body_size = body_size
            while len(self._bodies) > body_size:
                self._bodies.popitem(last=False)

    def clear(self) -> None:
        """Drop every entry and body."""
        self._entries.clear()
        self._bodies.clear()

    def __len__(self) -> int:
        return len(self._entries)
