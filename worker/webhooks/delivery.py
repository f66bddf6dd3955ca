"""Webhook delivery: one signed HTTP attempt at a time (``worker.webhooks.mover`` publishes the due ones).

Runs in the ``webhooks`` worker process only (its own Celery queue), so a slow receiver holds a
delivery thread, never a generation thread.  Each attempt re-checks the target against the SSRF
rules (``worker.webhooks.ssrf``) and connects to the address it checked; redirects are not followed; a 2xx
within ``GEMQ_WEBHOOK_TIMEOUT`` seconds (all of connecting, sending and waiting for the status
line) is success.  Signing uses the ``standardwebhooks`` library with the tenant's secret.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import standardwebhooks
import structlog

from worker.core.clock import iso_ms, now_ms
from worker.core.settings import Settings
from worker.store.metrics import Accumulator, Metrics
from worker.store.webhooks import Attempt, WebhookEvents
from worker.webhooks.secrets import tenant_secret
from worker.webhooks.ssrf import Resolver, Target, UnsafeURL, check_url

log = structlog.get_logger("gemq.webhooks")

USER_AGENT = "gemq-webhooks/0.1"


@dataclass(frozen=True)
class AttemptResult:
    """How one HTTP attempt went."""

    ok: bool
    status_code: int | None = None
    error: str | None = None
    duration_ms: int = 0
    #: The target was refused (SSRF rules): no later attempt can succeed.
    refused: bool = False

    def as_record(self, started_ms: int) -> dict[str, Any]:
        """The attempt as stored on the event and shown on the job."""
        return {"at": iso_ms(started_ms), "status_code": self.status_code, "error": self.error,
                "duration_ms": self.duration_ms}


class Deliverer:
    """Makes webhook attempts and records them; plain code, called by the Celery task."""

    def __init__(self, *, settings: Settings, events: WebhookEvents, http: httpx.Client | None = None,
                 resolve: Resolver = socket.getaddrinfo, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.events = events
        self.metrics = metrics or Metrics(Accumulator())
        # No proxies from the environment: the connection must go to the address the SSRF check
        # approved.  No keep-alive: a pooled TLS connection verified for one host name must not carry
        # another host's event to the same address.
        self.http = http or httpx.Client(trust_env=False, follow_redirects=False, limits=httpx.Limits(
            max_connections=None, max_keepalive_connections=0))
        self.resolve = resolve
        #: Longer than an attempt takes (its HTTP budget plus the DNS lookup and two Redis calls), so a
        #: duplicate message never runs beside a live attempt; a dead worker's attempt is retried after it.
        self.lease_s = 3 * settings.webhook_timeout + 5.0

    def deliver(self, event_id: str, index: int) -> str:
        """Make attempt ``index`` of the event, record it and schedule the next; returns the new state."""
        attempt = self.events.begin(event_id, index, self.lease_s)
        if isinstance(attempt, str):
            log.info("webhook.skipped", event_id=event_id, attempt=index, reason=attempt)
            return attempt
        started = now_ms()
        result = self.attempt(attempt)
        state, next_in = self.next_step(index, result)
        self.events.record(attempt, result.as_record(started), state, next_in)
        self.metrics.webhook_delivery(_outcome(state, result))
        log.info("webhook.attempt", event_id=event_id, attempt=index, status_code=result.status_code,
                 error=result.error, duration_ms=result.duration_ms, state=state, next_in=next_in)
        return state

    def next_step(self, index: int, result: AttemptResult) -> tuple[str, float | None]:
        """The state after attempt ``index`` and, while pending, the seconds until the next one."""
        if result.ok:
            return "delivered", None
        if result.refused or index >= len(self.settings.webhook_schedule):
            return "failed", None
        return "pending", self.settings.webhook_schedule[index]

    def attempt(self, attempt: Attempt) -> AttemptResult:
        """Check the target, sign the body and POST it once."""
        try:
            target = check_url(attempt.url, allow_private=self.settings.webhook_allow_private, resolve=self.resolve)
        except UnsafeURL as exc:
            return AttemptResult(ok=False, error=f"refused: {exc}", refused=True)
        return self.post(target, attempt.body, self.sign(attempt))

    def sign(self, attempt: Attempt) -> dict[str, str]:
        """Standard Webhooks headers for this attempt (a fresh timestamp each time)."""
        signer = standardwebhooks.Webhook(tenant_secret(self.settings, attempt.tenant))
        now = datetime.now(tz=UTC).replace(microsecond=0)
        return {
            "webhook-id": attempt.event_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signer.sign(attempt.event_id, now, attempt.body),
            "content-type": "application/json",
            "user-agent": USER_AGENT,
        }

    def post(self, target: Target, body: str, headers: dict[str, str]) -> AttemptResult:
        """POST to the checked addresses in turn (the next only if connecting failed), within the budget."""
        budget = self.settings.webhook_timeout
        started = time.monotonic()
        error = "no address to connect to"
        for address in target.addresses:
            left = budget - (time.monotonic() - started)
            if left <= 0:
                break
            # TLS: the server name sent and verified is the host's name, not the pinned address.
            sni = {"sni_hostname": target.sni_hostname} if target.sni_hostname else None
            request = self.http.build_request("POST", target.pinned_url(address), content=body.encode(),
                                              headers={**headers, "host": target.host_header},
                                              timeout=httpx.Timeout(left), extensions=sni)
            try:
                response = self.http.send(request, stream=True)
                status = response.status_code
                response.close()  # only the status matters: the body is never read
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                error = f"connection to {address} failed: {type(exc).__name__}"
                continue
            except httpx.TimeoutException:
                return self._result(started, error=f"no answer within {budget:g} s")
            except httpx.HTTPError as exc:
                return self._result(started, error=f"{type(exc).__name__}: {exc}"[:300])
            if time.monotonic() - started > budget:
                return self._result(started, status=status, error=f"answered after more than {budget:g} s")
            return self._result(started, status=status, ok=200 <= status < 300)
        return self._result(started, error=error)

    @staticmethod
    def _result(started: float, *, status: int | None = None, error: str | None = None,
                ok: bool = False) -> AttemptResult:
        duration_ms = int((time.monotonic() - started) * 1000)
        return AttemptResult(ok=ok, status_code=status, error=error, duration_ms=duration_ms)


def _outcome(state: str, result: AttemptResult) -> str:
    """The ``gemq_webhook_deliveries_total`` outcome of one attempt."""
    if result.ok:
        return "delivered"
    if result.refused:
        return "refused"
    return "exhausted" if state == "failed" else "failed"
