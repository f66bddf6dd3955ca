"""The emulator's own quota: RPM, TPM and RPD per model (the emulator is one project).

* RPM: requests admitted in the last 60.0 s (a request counts when it arrives and is admitted; a
  refused request does not count).
* TPM: prompt tokens of the requests admitted in the last 60.0 s.
* RPD: requests admitted since midnight America/Los_Angeles.

A limit of 0 is unlimited. `admit` either counts the request or returns every limit it would
break, each with the seconds until that window admits it.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from emulator.wire import QuotaViolation

#: Length of the per-minute windows, seconds.
WINDOW_S = 60.0
#: The day quota resets at midnight in this zone.
PACIFIC = ZoneInfo("America/Los_Angeles")


@dataclass(frozen=True)
class Limits:
    """The limits of one model; 0 means unlimited."""

    rpm: int = 0
    tpm: int = 0
    rpd: int = 0


def seconds_to_pacific_midnight(now: float) -> float:
    """Seconds from `now` (unix time) to the next midnight in America/Los_Angeles."""
    local = datetime.fromtimestamp(now, PACIFIC)
    midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), PACIFIC)
    return midnight.timestamp() - now


@dataclass
class _ModelWindows:
    requests: deque[float] = field(default_factory=deque)
    tokens: deque[tuple[float, int]] = field(default_factory=deque)
    token_sum: int = 0
    day: date | None = None
    day_count: int = 0

    def prune(self, now: float) -> None:
        horizon = now - WINDOW_S
        while self.requests and self.requests[0] <= horizon:
            self.requests.popleft()
        while self.tokens and self.tokens[0][0] <= horizon:
            self.token_sum -= self.tokens.popleft()[1]
        today = datetime.fromtimestamp(now, PACIFIC).date()
        if today != self.day:
            self.day, self.day_count = today, 0

    def rpm_wait(self, limit: int, now: float) -> float | None:
        if not limit or len(self.requests) < limit:
            return None
        return self.requests[len(self.requests) - limit] + WINDOW_S - now

    def tpm_wait(self, limit: int, cost: int, now: float) -> float | None:
        if not limit or self.token_sum + cost <= limit:
            return None
        if cost > limit:
            return WINDOW_S
        excess = self.token_sum + cost - limit
        for ts, spent in self.tokens:
            excess -= spent
            if excess <= 0:
                return ts + WINDOW_S - now
        return WINDOW_S

    def record(self, cost: int, now: float) -> None:
        self.requests.append(now)
        self.tokens.append((now, cost))
        self.token_sum += cost
        self.day_count += 1


class QuotaTracker:
    """Sliding-window RPM/TPM and Pacific-day RPD counters, per model."""

    def __init__(self) -> None:
        self._models: dict[str, _ModelWindows] = {}

    def admit(self, model: str, cost: int, limits: Limits, now: float | None = None) -> list[QuotaViolation]:
        """Count the request and return [], or count nothing and return the broken limits."""
        now = time.time() if now is None else now
        windows = self._models.setdefault(model, _ModelWindows())
        windows.prune(now)
        violations: list[QuotaViolation] = []
        if limits.rpd and windows.day_count >= limits.rpd:
            violations.append(QuotaViolation("rpd", limits.rpd, seconds_to_pacific_midnight(now)))
        if (wait := windows.rpm_wait(limits.rpm, now)) is not None:
            violations.append(QuotaViolation("rpm", limits.rpm, wait))
        if (wait := windows.tpm_wait(limits.tpm, cost, now)) is not None:
            violations.append(QuotaViolation("tpm", limits.tpm, wait))
        if not violations:
            windows.record(cost, now)
        return violations

    def snapshot(self, now: float | None = None) -> dict[str, dict[str, int]]:
        """Current window contents per model (for the admin API)."""
        now = time.time() if now is None else now
        out: dict[str, dict[str, int]] = {}
        for model, windows in self._models.items():
            windows.prune(now)
            out[model] = {"rpm": len(windows.requests), "tpm": windows.token_sum, "rpd": windows.day_count}
        return out

    def clear(self) -> None:
        """Forget every window."""
        self._models.clear()
