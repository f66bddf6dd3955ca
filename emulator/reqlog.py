"""The bounded request log served by `GET /_emulator/requests`.

Entries hold metadata only, never prompt text or API keys: `ts` (arrival, unix seconds), `model`,
`method`, `status`, `outcome`, `prompt_tokens`, `output_tokens`, `key_fingerprint`, `tag`.
"""

from __future__ import annotations

import sys
from collections import deque
from dataclasses import dataclass
from typing import Any

#: Outcome labels of a logged call.
OUTCOMES = frozenset(
    {
        "ok",
        "quota_rpm",
        "quota_tpm",
        "quota_rpd",
        "error",
        "hang",
        "midstream_error",
        "malformed",
        "safety",
        "auth",
        "invalid",
        "not_found",
        # Batch Mode and the Files API: the concurrency cap, the enqueued-token cap, the storage cap.
        "quota_batches",
        "quota_enqueued_tokens",
        "quota_files",
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


#: Field names of a log entry, in order.
FIELDS = ("ts", "model", "method", "status", "outcome", "prompt_tokens", "output_tokens", "key_fingerprint", "tag")

_Entry = tuple[float, str, str, int, str, int, int, "str | None", "str | None"]


class RequestLog:
    """A FIFO of call records, bounded to the newest `size` entries.

    Entries are stored as tuples with interned strings (about 300 bytes each) so the default bound
    of 200,000 stays around 60 MB; they become dicts only when queried.
    """

    def __init__(self, size: int) -> None:
        self._entries: deque[_Entry] = deque(maxlen=size)

    def record(
        self, call: CallInfo, status: int, outcome: str, *, prompt_tokens: int = 0, output_tokens: int = 0
    ) -> None:
        """Log a call's result."""
        fingerprint = sys.intern(call.key_fingerprint) if call.key_fingerprint else None
        self._entries.append(
            (
                call.ts,
                sys.intern(call.model),
                sys.intern(call.method),
                status,
                outcome,
                prompt_tokens,
                output_tokens,
                fingerprint,
                call.tag,
            )
        )

    def query(
        self, *, model: str | None = None, tag: str | None = None, since: float | None = None
    ) -> list[dict[str, Any]]:
        """Entries, oldest first, filtered by model, tag and arrival time (`ts >= since`)."""
        return [
            dict(zip(FIELDS, entry, strict=True))
            for entry in self._entries
            if (model is None or entry[1] == model)
            and (tag is None or entry[8] == tag)
            and (since is None or entry[0] >= since)
        ]

    def resize(self, size: int) -> None:
        """Change the bound, keeping the newest entries."""
        if size != self._entries.maxlen:
            self._entries = deque(self._entries, maxlen=size)

    def clear(self) -> None:
        """Drop every entry."""
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
