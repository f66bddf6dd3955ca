"""gemq's error tree, grouped by what the caller does about it.

::

    GemqError
    ├── RetryableError            retry with backoff; ``retry_after`` (s) wins when Gemini gave one
    │   ├── RateLimited           429 per-minute quota (RPM/TPM); pauses the model for every worker
    │   ├── UpstreamUnavailable   500/502/503/504, connection failures, malformed responses
    │   └── UpstreamTimeout       no answer within the request timeout
    ├── PermanentError            fail the job at once; ``error_type`` is the job's ``error.type``
    │   ├── InvalidRequest        400/404: Gemini refused the request itself
    │   ├── UpstreamRejected      401/403 and other refusals not caused by the request
    │   ├── SafetyBlocked         prompt or answer blocked by safety filters
    │   └── QuotaExhausted        per-day quota spent; no retry before the Pacific midnight reset
    ├── JobCancelled              the job was cancelled while it ran
    └── PublishFailed             the broker did not take a message; it stays parked and is published later

Foreign errors are translated into this tree where they enter: google-genai's and httpx2's in
``worker.run.gemini`` (so nothing else imports the SDK), the broker's in ``worker.queue.publisher``
(so the stores never import kombu).  These exceptions never travel through Celery.
"""

from __future__ import annotations


class GemqError(Exception):
    """Root of every error gemq raises on purpose."""

    #: The ``error.type`` a job shows when this error ends it.
    error_type = "upstream_error"

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code

    def as_dict(self) -> dict[str, str]:
        """The job's ``error`` object."""
        return {"type": self.error_type, "message": self.message}


class RetryableError(GemqError):
    """A failure that may pass: try again later."""

    def __init__(self, message: str, *, status_code: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, status_code=status_code)
        #: Seconds the server asked us to wait (``RetryInfo.retryDelay``), if it said.
        self.retry_after = retry_after


class RateLimited(RetryableError):
    """Gemini answered 429 for a per-minute quota."""

    def __init__(self, message: str, *, retry_after: float | None = None, quota_id: str | None = None) -> None:
        super().__init__(message, status_code=429, retry_after=retry_after)
        self.quota_id = quota_id


class UpstreamUnavailable(RetryableError):
    """Gemini failed on its side or could not be reached."""


class UpstreamTimeout(RetryableError):
    """Gemini did not answer within the request timeout."""

    error_type = "timeout"


class PermanentError(GemqError):
    """A failure that retrying will not fix."""


class InvalidRequest(PermanentError):
    """Gemini refused the request as malformed or naming something that does not exist."""

    error_type = "invalid_request"


class UpstreamRejected(PermanentError):
    """Gemini refused for a reason outside the request (bad key, permission)."""


class SafetyBlocked(PermanentError):
    """The prompt or the answer was blocked by safety filters."""

    error_type = "safety_blocked"


class QuotaExhausted(PermanentError):
    """The per-day quota of a model is spent until the reset at midnight Pacific."""

    error_type = "quota_exhausted"

    def __init__(self, message: str, *, quota_id: str | None = None, reset_in: float | None = None) -> None:
        super().__init__(f"{message} [quota: {quota_id}]" if quota_id else message, status_code=429)
        self.quota_id = quota_id
        #: Seconds until the quota resets.
        self.reset_in = reset_in


class JobCancelled(GemqError):
    """The job was cancelled; stop work and call Gemini no more."""

    error_type = "cancelled"


class PublishFailed(GemqError):
    """The broker did not take a message (``Publisher.publish_webhook_attempt``); whoever parked it retries."""
