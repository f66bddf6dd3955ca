"""The Gemini client: the only module that imports google-genai (and its transport, httpx2).

One :class:`GeminiClient` per process.  Generation always goes through the streaming call so the
caller sees text as it arrives (``on_delta``) and the time to first token is measured.  SDK and
transport errors are translated into ``worker.core.errors`` where they happen; the SDK itself never
retries (google-genai makes one attempt and ignores ``RetryInfo``: retries are ours).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx2
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from worker.core.errors import (
    GemqError,
    InvalidRequest,
    QuotaExhausted,
    RateLimited,
    SafetyBlocked,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from worker.core.settings import Settings

#: Finish reasons that mean the answer was withheld by a filter.
BLOCKED_FINISH_REASONS = frozenset({"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "RECITATION"})
#: API key sent to the emulator (it accepts any non-empty key).
EMULATOR_API_KEY = "gemq-emulator"

#: Receives each piece of streamed text, and whether it came in the stream's last chunk.
OnDelta = Callable[[str, bool], None]


@dataclass(frozen=True)
class Generation:
    """A finished generation, in gemq's terms."""

    text: str
    finish_reason: str | None
    model_version: str | None
    prompt_tokens: int
    output_tokens: int
    total_tokens: int
    ttft_ms: int | None

    def as_result(self, model: str) -> dict[str, Any]:
        """The job's ``result`` object."""
        return {
            "text": self.text,
            "finish_reason": self.finish_reason,
            "model_version": self.model_version,
            "model": model,
            "usage": {
                "prompt_tokens": self.prompt_tokens,
                "output_tokens": self.output_tokens,
                "total_tokens": self.total_tokens,
            },
            "time_to_first_token_ms": self.ttft_ms,
        }


class GeminiClient:
    """Calls Gemini through google-genai and speaks gemq's error tree."""

    def __init__(self, settings: Settings) -> None:
        base_url = settings.gemini_endpoint
        client_args: dict[str, Any] = {"transport": PerThreadTransport()}
        if base_url and urlsplit(base_url).hostname in {"127.0.0.1", "localhost", "::1"}:
            # A proxy from the environment would otherwise capture loopback calls too.
            client_args["trust_env"] = False
        self._client = genai.Client(
            api_key=settings.gemini_api_key or EMULATOR_API_KEY,
            http_options=types.HttpOptions(
                base_url=base_url,
                api_version=settings.gemini_api_version,
                timeout=int(settings.gemini_timeout * 1000),  # the SDK takes milliseconds
                client_args=client_args,
            ),
        )

    def generate(self, model: str, request: dict[str, Any], on_delta: OnDelta | None = None) -> Generation:
        """Stream one generation; ``on_delta`` gets each piece of text and whether it is the last; it may raise."""
        started = time.monotonic()
        pieces: list[str] = []
        ttft_ms: int | None = None
        last: types.GenerateContentResponse | None = None
        finish_reason: str | None = None
        try:
            stream = self._client.models.generate_content_stream(
                model=model, contents=request["contents"], config=_config(request)
            )
            try:
                for chunk in stream:
                    last = chunk
                    _raise_if_prompt_blocked(chunk)
                    last_chunk = _finish_reason(chunk)
                    finish_reason = last_chunk or finish_reason
                    delta = _chunk_text(chunk)
                    if delta:
                        if ttft_ms is None:
                            ttft_ms = int((time.monotonic() - started) * 1000)
                        pieces.append(delta)
                        if on_delta is not None:
                            on_delta(delta, last_chunk is not None)
            finally:
                close = getattr(stream, "close", None)
                if close is not None:
                    close()  # a generator: closing it releases the HTTP connection when we stop early
        except GemqError:
            raise
        except Exception as exc:  # noqa: BLE001 - every foreign error is translated here
            raise translate(exc) from exc
        return _generation("".join(pieces), finish_reason, last, ttft_ms)

    def count_tokens(self, model: str, request: dict[str, Any]) -> int:
        """Gemini's own count of the request's input tokens."""
        try:
            response = self._client.models.count_tokens(model=model, contents=request["contents"])
        except Exception as exc:  # noqa: BLE001
            raise translate(exc) from exc
        return int(response.total_tokens or 0)

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()


class PerThreadTransport(httpx2.BaseTransport):
    """A small connection pool per calling thread, behind the process's one client.

    httpcore2's pool walks every connection it holds on each request and each response close
    (``ConnectionPool._assign_requests_to_connections``, probing idle sockets for expiry), so one
    pool sized for a worker's 200 threads costs time linear in 200 per call: 15% of the worker's
    CPU in a py-spy profile at concurrency 200, and it grows with the GIL queue it feeds.  A worker
    thread makes one call at a time, so each thread's own pool holds one or two connections.
    """

    #: Connections per thread: one call at a time, and one spare while a closed stream winds down.
    PER_THREAD = 2

    def __init__(self) -> None:
        # One TLS context for every pool: building one loads the CA bundle (about 50 ms of CPU).
        self._ssl = httpx2.create_ssl_context()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._transports: list[httpx2.HTTPTransport] = []

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        """Send on this thread's own pool (made on the thread's first call)."""
        transport: httpx2.HTTPTransport | None = getattr(self._local, "transport", None)
        if transport is None:
            limits = httpx2.Limits(max_connections=self.PER_THREAD, max_keepalive_connections=self.PER_THREAD)
            transport = self._local.transport = httpx2.HTTPTransport(verify=self._ssl, limits=limits)
            with self._lock:
                self._transports.append(transport)
        return transport.handle_request(request)

    def close(self) -> None:
        """Close every thread's pool."""
        with self._lock:
            transports, self._transports = self._transports, []
        for transport in transports:
            transport.close()


def _config(request: dict[str, Any]) -> types.GenerateContentConfig | None:
    """The SDK config from a stored request (``None`` when there is nothing to configure)."""
    options: dict[str, Any] = dict(request.get("generation_config") or {})
    if request.get("system_instruction"):
        options["system_instruction"] = request["system_instruction"]
    if request.get("safety_settings"):
        options["safety_settings"] = request["safety_settings"]
    return types.GenerateContentConfig(**options) if options else None


def _chunk_text(chunk: types.GenerateContentResponse) -> str:
    """The text parts of a chunk (``chunk.text`` warns on non-text parts; we only want text)."""
    if not chunk.candidates or not chunk.candidates[0].content or not chunk.candidates[0].content.parts:
        return ""
    return "".join(p.text for p in chunk.candidates[0].content.parts if p.text and not p.thought)


def _finish_reason(chunk: types.GenerateContentResponse) -> str | None:
    if chunk.candidates and chunk.candidates[0].finish_reason:
        reason = chunk.candidates[0].finish_reason
        return reason.value if hasattr(reason, "value") else str(reason)
    return None


def _raise_if_prompt_blocked(chunk: types.GenerateContentResponse) -> None:
    feedback = chunk.prompt_feedback
    if feedback is not None and feedback.block_reason:
        reason = getattr(feedback.block_reason, "value", feedback.block_reason)
        raise SafetyBlocked(f"the prompt was blocked ({reason})")


def _generation(
    text: str, finish_reason: str | None, last: types.GenerateContentResponse | None, ttft_ms: int | None
) -> Generation:
    if finish_reason in BLOCKED_FINISH_REASONS:
        raise SafetyBlocked(f"the answer was blocked ({finish_reason})")
    if last is None:
        raise UpstreamUnavailable("Gemini closed the stream without a response")
    usage = last.usage_metadata
    prompt_tokens = (usage.prompt_token_count or 0) if usage else 0
    output_tokens = (usage.candidates_token_count or 0) if usage else 0
    total = (usage.total_token_count or prompt_tokens + output_tokens) if usage else 0
    return Generation(text, finish_reason, last.model_version, prompt_tokens, output_tokens, total, ttft_ms)


def translate(exc: Exception) -> GemqError:
    """gemq's error for an exception raised by google-genai or its transport."""
    if isinstance(exc, genai_errors.APIError):
        return _from_api_error(exc)
    if isinstance(exc, httpx2.TimeoutException):
        return UpstreamTimeout(f"Gemini did not answer in time ({type(exc).__name__})")
    if isinstance(exc, httpx2.TransportError):
        return UpstreamUnavailable(f"could not reach Gemini ({type(exc).__name__})")
    # Malformed bodies surface as JSON or validation errors from inside the SDK.
    return UpstreamUnavailable(f"unexpected answer from Gemini ({type(exc).__name__})")


def _from_api_error(exc: genai_errors.APIError) -> GemqError:
    code = int(exc.code or 0)
    message = f"Gemini {code} {exc.status or ''}: {exc.message or ''}".strip()
    if code == 429:
        retry_after, quota_ids = quota_details(exc.details)
        if any("PerDay" in q for q in quota_ids):
            return QuotaExhausted(message, quota_id=next(q for q in quota_ids if "PerDay" in q))
        return RateLimited(message, retry_after=retry_after, quota_id=quota_ids[0] if quota_ids else None)
    if code >= 500 or code == 408:
        return UpstreamUnavailable(message, status_code=code)
    if code in (400, 404, 413, 422) and exc.status != "FAILED_PRECONDITION" and "API_KEY" not in str(exc.details):
        return InvalidRequest(message, status_code=code)
    return UpstreamRejected(message, status_code=code)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


def quota_details(body: Any) -> tuple[float | None, list[str]]:
    """``RetryInfo.retryDelay`` in seconds and the ``QuotaFailure`` quota ids of a 429 body."""
    details = body.get("error", {}).get("details", []) if isinstance(body, dict) else []
    retry_after: float | None = None
    quota_ids: list[str] = []
    for detail in details if isinstance(details, list) else []:
        kind = str(detail.get("@type", "")) if isinstance(detail, dict) else ""
        if kind.endswith("google.rpc.RetryInfo"):
            match = _DURATION.match(str(detail.get("retryDelay", "")))
            retry_after = float(match.group(1)) if match else None
        elif kind.endswith("google.rpc.QuotaFailure"):
            quota_ids += [str(v.get("quotaId", "")) for v in detail.get("violations", []) if isinstance(v, dict)]
    return retry_after, quota_ids
