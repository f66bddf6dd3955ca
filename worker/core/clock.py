"""Times as gemq stores and shows them: epoch milliseconds, and ISO 8601 with milliseconds in UTC."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now_ms() -> int:
    """Wall-clock time in milliseconds."""
    return int(time.time() * 1000)


def iso_ms(ms: int) -> str:
    """``2026-01-01T00:00:00.000Z`` from epoch milliseconds."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
