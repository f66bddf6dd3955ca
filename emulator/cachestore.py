"""The context caches of one emulator (`cachedContents/...`): resource fields, token counts, expiry."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

#: What the API answers (403 PERMISSION_DENIED) for an unknown or expired cache.
NOT_FOUND_MESSAGE = "CachedContent not found (or permission denied)"

@dataclass
class CacheEntry:
    """One cache: its resource fields and token count."""

    name: str
    model: str
    tokens: int
    display_name: str
    created: float
    expires: float

    def resource(self) -> dict[str, Any]:
        """The CachedContent resource (contents are never returned, as with the API)."""
        body: dict[str, Any] = {"name": self.name, "model": f"models/{self.model}",
                                "createTime": _rfc3339(self.created), "updateTime": _rfc3339(self.created),
                                "expireTime": _rfc3339(self.expires), "usageMetadata": {"totalTokenCount": self.tokens}}
        if self.display_name:
            body["displayName"] = self.display_name
        return body


class CacheStore:
    """The caches of one emulator."""

    def __init__(self) -> None:
        self._entries: dict[str, CacheEntry] = {}

    def lookup(self, name: str) -> tuple[str, int] | None:
        """(model, tokens) of a live cache, or None."""
        entry = self.get(name)
        return (entry.model, entry.tokens) if entry else None

    def get(self, name: str) -> CacheEntry | None:
        """A live cache by name (`cachedContents/x`)."""
        entry = self._entries.get(name)
        if entry is not None and entry.expires <= time.time():
            del self._entries[name]
            return None
        return entry

    def add(self, entry: CacheEntry) -> None:
        """Store a new cache."""
        self._entries[entry.name] = entry

    def delete(self, name: str) -> bool:
        """Remove a cache; False when there was none."""
        return self._entries.pop(name, None) is not None

    def live(self) -> list[CacheEntry]:
        """Every live cache, oldest first."""
        return [e for name in list(self._entries) if (e := self.get(name)) is not None]

    def clear(self) -> None:
        """Forget every cache."""
        self._entries.clear()


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


