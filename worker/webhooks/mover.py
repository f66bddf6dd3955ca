"""The mover: publishes webhook attempts whose time has come, from the ``webhooks:due`` zset.

One thread in each webhooks worker (started by its composition root); any number may run, since a
claim hides the attempts a mover publishes from the others (docs/architecture.md, Webhooks).
"""

from __future__ import annotations

import threading

import redis
import structlog

from worker.store.webhooks import WebhookEvents

log = structlog.get_logger("gemq.webhooks")

#: Seconds between the mover's looks at the due set (one Redis call each).
MOVER_INTERVAL_S = 0.25
#: Most due attempts the mover claims per look.
CLAIM_BATCH = 100
#: Seconds a claimed due attempt stays hidden from other movers while this one publishes it.
CLAIM_LEASE_S = 60.0


class DueMover:
    """Publishes webhook attempts whose time has come; one per webhooks worker, safe to run many."""

    def __init__(self, events: WebhookEvents, *, stop: threading.Event, interval: float = MOVER_INTERVAL_S) -> None:
        self.events = events
        self.stop = stop
        self.interval = interval

    def run_once(self) -> int:
        """Claim and publish what is due now; returns how many."""
        members, claimed_until = self.events.claim_due(CLAIM_LEASE_S, CLAIM_BATCH)
        self.events.publish(members, parked_until=claimed_until)
        return len(members)

    def run(self) -> None:
        """Loop until ``stop`` is set."""
        while not self.stop.wait(self.interval):
            try:
                while self.run_once() == CLAIM_BATCH:
                    pass
            except redis.RedisError as exc:
                log.warning("webhook.mover_error", error_type=type(exc).__name__)  # Redis restarting: next look

    def start(self) -> threading.Thread:
        """Run in a daemon thread."""
        thread = threading.Thread(target=self.run, name="gemq-webhook-mover", daemon=True)
        thread.start()
        return thread
