"""Gemini's limits, shared by every worker process on every machine.

Gemini enforces requests per minute, input tokens per minute and requests per day per project and
model.  Celery's ``rate_limit`` is per worker (N workers make N times the limit), so gemq keeps
the state in Redis and admits each call with one atomic script (``lua/acquire.lua``) that checks
all of a model's limits in one round trip:

- requests: a sliding log of the last 60 s (+ a small margin), so no 60 s window ever holds more
  than ``rpm`` calls;
- tokens: an estimate of the input tokens is charged before the call and settled against
  ``usageMetadata.promptTokenCount`` after it (``lua/settle.lua``);
- requests per day: a counter per Pacific date; once spent, the model is closed until midnight;
- concurrency: leases that expire (renewed while a call runs), so a killed worker cannot leak them;
- pause: a 429's ``retryDelay`` pauses the model for every worker (``lua/hold.lua``).

Priority: low (and optionally normal) work may use only part of each window
(``Settings.priority_reserve``), so a burst of high work is admitted at once; and jobs waiting for
capacity queue in a per-model waiting room ordered by priority, then arrival, so the next free
slot goes to the highest waiting priority.  A refused caller is told how long to wait, computed
from its place in that room, so waiters wake in turn rather than all at once.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import redis

from worker.core import keys
from worker.core.job import Priority
from worker.core.settings import ModelLimits, Settings
from worker.store.scripts import OneTrip, load_script

PACIFIC = ZoneInfo("America/Los_Angeles")
#: Length of the request and token windows, before the margin.
WINDOW_S = 60.0
#: The lease keeper renews live leases this many times per lease length.
LEASE_RENEWALS = 3
#: A waiting-room entry outlives the wait it was given by this much, then lapses.
WAIT_GRACE_MS = 5_000
#: Rough characters per token for the estimate charged before a call.
CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class Admission:
    """The limiter's answer for one call."""

    admitted: bool
    #: Seconds to wait before asking again (when not admitted).
    wait: float = 0.0
    #: Which limit refused: ``rpm``, ``tpm``, ``rpd``, ``concurrency`` or ``paused``.
    reason: str = ""
    #: The call's id in the limiter (to release and settle it).
    call_id: str = ""
    #: Tokens charged for the call.
    cost: int = 0

    @property
    def day_exhausted(self) -> bool:
        """True when the model's daily quota is spent until the Pacific midnight reset."""
        return self.reason == "rpd"


class Limiter:
    """Admission, settlement, release and pauses for every model's limits."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.redis = client
        self.settings = settings
        self._acquire = load_script(client, "acquire")
        self._settle = load_script(client, "settle")
        self._hold = load_script(client, "hold")
        self._seen: set[str] = set()
        self.lease_ms = int(settings.limiter_lease * 1000)
        self.window_ms = int((WINDOW_S + settings.limiter_window_margin) * 1000)
        self._day: tuple[int, str, int] = (0, "", 0)
        self._key_lists: dict[str, list[str]] = {}

    def acquire(self, model: str, *, job_id: str, priority: Priority, cost: int) -> Admission:
        """Admit one call to ``model`` or say how long to wait."""
        limits = self.settings.limits_for(model)
        share = 1.0 - self.settings.priority_reserve.get(priority.value, 0.0)
        day, day_left = self._today()
        call_id = f"{job_id}:{uuid.uuid4().hex[:8]}"
        self._remember(model)
        numbers = (
            priority.rank, cost, _cap(limits.rpm, share), _cap(limits.tpm, share), limits.rpd or 0,
            _cap(limits.concurrency, share), self.window_ms, self.lease_ms, day_left, WAIT_GRACE_MS,
        )
        # The numbers travel as one argument: fewer arguments to pack and send on every admission.
        code, ms, reason = self._acquire(
            keys=self._keys(model), args=[job_id, call_id, day, " ".join(map(str, numbers))]
        )
        if code == 1:
            return Admission(True, call_id=call_id, cost=cost)
        return Admission(False, wait=int(ms) / 1000, reason=reason)

    def release(self, model: str, admission: Admission, actual_tokens: int = 0, trip: OneTrip | None = None) -> None:
        """End a call: give back its concurrency slot and, if Gemini counted its input, settle its charge.

        One round trip: the token correction (``lua/settle.lua``) and the lease removal go together,
        in ``trip`` when given (the job's final transition), sent by the caller.
        """
        own = trip is None
        trip = trip or OneTrip(self.redis)
        if actual_tokens > 0 and actual_tokens != admission.cost:
            trip.script(self._settle, [keys.limiter(model, "log"), keys.limiter(model, "state")],
                        [admission.call_id, admission.cost, actual_tokens])
        trip.pipe.zrem(keys.limiter(model, "leases"), admission.call_id)
        if own:
            trip.execute()

    def pause(self, model: str, seconds: float) -> None:
        """Stop admitting calls to ``model`` for ``seconds``, for every worker."""
        self._hold(keys=[keys.limiter(model, "state")], args=["pause_until", max(1, int(seconds * 1000))])

    def close_for_day(self, model: str) -> float:
        """Close ``model`` until the daily quota resets; returns the seconds until then."""
        _, left = pacific_day()
        self._hold(keys=[keys.limiter(model, "state")], args=["closed_until", left * 1000])
        return float(left)

    def renew(self, leases: Iterable[tuple[str, str]]) -> None:
        """Extend the leases of calls still running (``(model, call_id)`` pairs)."""
        pipe = self.redis.pipeline(transaction=False)
        until = int(time.time() * 1000) + self.lease_ms
        for model, call_id in leases:
            pipe.zadd(keys.limiter(model, "leases"), {call_id: until}, xx=True)
        pipe.execute()

    def usage(self) -> list[dict[str, Any]]:
        """Each known model's limits and current use, for operators."""
        models = sorted(
            (set(self.redis.smembers(keys.limiter_models())) | set(self.settings.limits)) - {"*"}
        )
        now = int(time.time() * 1000)
        day, _ = pacific_day()
        pipe = self.redis.pipeline(transaction=False)
        for model in models:
            pipe.zcount(keys.limiter(model, "log"), now - self.window_ms, "+inf")
            pipe.hmget(keys.limiter(model, "state"), "tokens", "day", "day_count", "pause_until", "closed_until")
            pipe.zcount(keys.limiter(model, "leases"), now, "+inf")
            pipe.zcard(keys.limiter(model, "waiting"))
        rows = pipe.execute()
        return [_usage_row(model, self.settings.limits_for(model), day, now, rows[i * 4:(i + 1) * 4])
                for i, model in enumerate(models)]

    def _today(self) -> tuple[str, int]:
        """The Pacific date and seconds to its midnight, recomputed at most once a second."""
        second = int(time.time())
        if self._day[0] != second:
            self._day = (second, *pacific_day())
        return self._day[1], self._day[2]

    def _keys(self, model: str) -> list[str]:
        """The admission script's KEYS for a model (built once per model)."""
        found = self._key_lists.get(model)
        if found is None:
            found = [keys.limiter(model, part) for part in ("log", "leases", "state", "waiting", "waitexp")]
            self._key_lists[model] = found
        return found

    def _remember(self, model: str) -> None:
        if model not in self._seen:
            self.redis.sadd(keys.limiter_models(), model)
            self._seen.add(model)


class LeaseKeeper:
    """Renews the concurrency leases of calls in flight, so only a dead worker's leases lapse."""

    def __init__(self, limiter: Limiter) -> None:
        self.limiter = limiter
        self.interval = limiter.lease_ms / 1000 / LEASE_RENEWALS
        self._leases: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, model: str, call_id: str) -> None:
        """Start renewing a lease."""
        with self._lock:
            self._leases.add((model, call_id))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="gemq-lease-keeper", daemon=True)
                self._thread.start()

    def drop(self, model: str, call_id: str) -> None:
        """Stop renewing a lease (the call ended)."""
        with self._lock:
            self._leases.discard((model, call_id))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                leases = list(self._leases)
            if leases:
                try:
                    self.limiter.renew(leases)
                except redis.RedisError:
                    pass  # Redis is away; the next round tries again, and a lease lasts several rounds.

    def stop(self) -> None:
        """Stop the renewal thread."""
        self._stop.set()


def estimate_tokens(request: dict[str, Any]) -> int:
    """Input tokens charged before a call: about one per four characters, plus a little per turn."""
    chars = len(request.get("system_instruction") or "")
    turns = request.get("contents") or []
    chars += sum(len(p.get("text", "")) for turn in turns for p in turn.get("parts", []))
    return max(1, math.ceil(chars / CHARS_PER_TOKEN) + 4 * len(turns))


def pacific_day(now: datetime | None = None) -> tuple[str, int]:
    """Today's date in Pacific time and the whole seconds until its midnight (when day quotas reset)."""
    now = (now or datetime.now(PACIFIC)).astimezone(PACIFIC)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=PACIFIC)
    # Subtract in UTC: Python subtracts two datetimes with the same tzinfo as wall-clock times,
    # which is an hour off on the days daylight saving starts or ends.
    left = midnight.astimezone(UTC) - now.astimezone(UTC)
    return now.date().isoformat(), max(1, math.ceil(left.total_seconds()))


def _cap(limit: int | None, share: float) -> int:
    """The part of ``limit`` a priority may use (0 = unlimited)."""
    return max(1, math.floor(limit * share)) if limit else 0


def _usage_row(model: str, limits: ModelLimits, day: str, now: int, row: list[Any]) -> dict[str, Any]:
    requests, (tokens, state_day, day_count, pause_until, closed_until), leases, waiting = row
    return {
        "model": model,
        "limits": {"rpm": limits.rpm, "tpm": limits.tpm, "rpd": limits.rpd, "concurrency": limits.concurrency},
        "use": {
            "requests_in_window": int(requests),
            "tokens_in_window": int(tokens or 0),
            "requests_today": int(day_count or 0) if state_day == day else 0,
            "in_flight": int(leases),
            "waiting": int(waiting),
        },
        "paused_for_s": max(0.0, round((int(pause_until or 0) - now) / 1000, 3)),
        "closed_for_day_s": max(0, round((int(closed_until or 0) - now) / 1000)),
    }
