"""A small Server-Sent Events reader for tests (Flask test-client responses and httpx streams)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Event:
    """One dispatched SSE event."""

    event: str
    data: str
    id: str | None

    def json(self) -> Any:
        """The data as JSON."""
        return json.loads(self.data)


def events(chunks: Iterable[bytes | str]) -> Iterator[Event]:
    """Parse frames as they arrive; comments and ``retry:``-only frames are skipped."""
    buffer = ""
    for chunk in chunks:
        buffer += chunk.decode() if isinstance(chunk, bytes) else chunk
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            fields: dict[str, str] = {}
            for line in block.split("\n"):
                if line and not line.startswith(":"):
                    name, _, value = line.partition(": ")
                    fields[name] = value
            if "data" in fields:
                yield Event(fields.get("event", "message"), fields["data"], fields.get("id"))


def deltas_text(received: Iterable[Event]) -> str:
    """The streamed text: every delta's text, in order."""
    return "".join(e.json()["text"] for e in received if e.event == "delta")
