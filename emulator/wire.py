"""JSON bodies and SSE frames exactly as the Gemini API sends them.

Success bodies are GenerateContentResponse objects; every error is the Google envelope
`{"error": {"code", "message", "status", "details"}}` and never carries a Retry-After header (a
429 carries `google.rpc.RetryInfo` in `details` instead). Stream frames are
`data: <one-line JSON>\\r\\n\\r\\n`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

#: google.rpc canonical status name of each HTTP code the emulator answers.
STATUS_NAMES: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
#: Messages the real API uses for the common codes.
DEFAULT_MESSAGES: dict[int, str] = {
    400: "Request contains an invalid argument.",
    403: "The caller does not have permission",
    404: "Requested entity was not found.",
    500: "An internal error has occurred. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
    504: "Deadline expired before operation could complete.",
}
SAFETY_CATEGORIES: tuple[str, ...] = (
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
)
QUOTA_HELP = {
    "@type": "type.googleapis.com/google.rpc.Help",
    "links": [
        {
            "description": "Learn more about Gemini API quotas",
            "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
        }
    ],
}
_METRIC = "generativelanguage.googleapis.com/generate_content_free_tier_"
#: (quotaMetric, quotaId) of each emulated limit.
QUOTA_IDS: dict[str, tuple[str, str]] = {
    "rpm": (_METRIC + "requests", "GenerateRequestsPerMinutePerProjectPerModel"),
    "tpm": (_METRIC + "input_token_count", "GenerateContentInputTokensPerModelPerMinute"),
    "rpd": (_METRIC + "requests", "GenerateRequestsPerDayPerProjectPerModel"),
}

QuotaKind = Literal["rpm", "tpm", "rpd"]


@dataclass(frozen=True)
class QuotaViolation:
    """One exceeded limit: which, its value, and the seconds until it admits again."""

    kind: QuotaKind
    limit: int
    retry_after: float


def error_body(code: int, message: str | None = None, details: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """The Google error envelope."""
    error: dict[str, Any] = {
        "code": code,
        "message": message or DEFAULT_MESSAGES.get(code, STATUS_NAMES.get(code, "Error")),
        "status": STATUS_NAMES.get(code, "UNKNOWN"),
    }
    if details:
        error["details"] = list(details)
    return {"error": error}


def json_response(body: Any, status: int = 200, *, indent: int | None = 2) -> web.Response:
    """A JSON response, pretty-printed like Google's front end."""
    return web.Response(
        status=status, text=json.dumps(body, indent=indent), content_type="application/json", charset="UTF-8"
    )


def error_response(code: int, message: str | None = None, details: Sequence[dict[str, Any]] = ()) -> web.Response:
    """An error envelope response (never with Retry-After)."""
    return json_response(error_body(code, message, details), code)


def invalid_key_details() -> list[dict[str, Any]]:
    """The `details` of the 400 answered for an unknown API key."""
    return [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"},
        },
        {
            "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
            "locale": "en-US",
            "message": "API key not valid. Please pass a valid API key.",
        },
    ]


def retry_delay(seconds: float) -> str:
    """RetryInfo's whole-second duration: the ceiling of `seconds`."""
    return f"{max(0, math.ceil(seconds))}s"


def quota_error_body(model: str, violations: Sequence[QuotaViolation], *, retry_info: bool) -> dict[str, Any]:
    """The 429 RESOURCE_EXHAUSTED envelope with QuotaFailure, Help and (optionally) RetryInfo."""
    wait = max(v.retry_after for v in violations)
    lines = [
        "You exceeded your current quota, please check your plan and billing details. For more information on "
        "this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. To monitor your current usage, "
        "head to: https://ai.dev/usage?tab=rate-limit. "
    ]
    for v in violations:
        lines.append(f"* Quota exceeded for metric: {QUOTA_IDS[v.kind][0]}, limit: {v.limit}, model: {model}")
    lines.append(f"Please retry in {wait:.2f}s.")
    failure = {
        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        "violations": [
            {
                "quotaMetric": QUOTA_IDS[v.kind][0],
                "quotaId": QUOTA_IDS[v.kind][1],
                "quotaDimensions": {"location": "global", "model": model},
                "quotaValue": str(v.limit),
            }
            for v in violations
        ],
    }
    details: list[dict[str, Any]] = [failure, QUOTA_HELP]
    if retry_info:
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay(wait)})
    return error_body(429, "\n".join(lines), details)


def safety_ratings(blocked: bool = False) -> list[dict[str, Any]]:
    """Ratings for the four harm categories; the first one HIGH and blocked when `blocked`."""
    ratings: list[dict[str, Any]] = [{"category": c, "probability": "NEGLIGIBLE"} for c in SAFETY_CATEGORIES]
    if blocked:
        ratings[0] = {"category": SAFETY_CATEGORIES[0], "probability": "HIGH", "blocked": True}
    return ratings


def usage(prompt_tokens: int, output_tokens: int) -> dict[str, Any]:
    """usageMetadata for a finished answer."""
    return {
        "promptTokenCount": prompt_tokens,
        "candidatesTokenCount": output_tokens,
        "totalTokenCount": prompt_tokens + output_tokens,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt_tokens}],
    }


def candidate(text: str | None, finish_reason: str | None = None, index: int = 0) -> dict[str, Any]:
    """One candidate; `text=None` leaves out the content (a safety stop)."""
    cand: dict[str, Any] = {}
    if text is not None:
        cand["content"] = {"parts": [{"text": text}], "role": "model"}
    if finish_reason is not None:
        cand["finishReason"] = finish_reason
        cand["safetyRatings"] = safety_ratings(blocked=finish_reason == "SAFETY")
    cand["index"] = index
    return cand


def response_body(
    candidates: Iterable[dict[str, Any]], *, model_version: str, response_id: str,
    usage_metadata: dict[str, Any] | None, model_status: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A GenerateContentResponse (also one stream chunk); `model_status` for a deprecated model."""
    body: dict[str, Any] = {"candidates": list(candidates)}
    if usage_metadata is not None:
        body["usageMetadata"] = usage_metadata
    body["modelVersion"] = model_version
    body["responseId"] = response_id
    if model_status is not None:
        body["modelStatus"] = model_status
    return body


def blocked_prompt_body(*, prompt_tokens: int, model_version: str, response_id: str,
                        model_status: dict[str, Any] | None = None) -> dict[str, Any]:
    """A response whose prompt was blocked: promptFeedback and no candidates."""
    body = {
        "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": safety_ratings(blocked=True)},
        "usageMetadata": {"promptTokenCount": prompt_tokens, "totalTokenCount": prompt_tokens},
        "modelVersion": model_version,
        "responseId": response_id,
    }
    if model_status is not None:
        body["modelStatus"] = model_status
    return body


def sse_frame(body: dict[str, Any]) -> bytes:
    """One SSE frame: `data: <one-line JSON>\\r\\n\\r\\n`."""
    return b"data: " + json.dumps(body).encode() + b"\r\n\r\n"


def stream_error_frame(code: int, message: str | None, fmt: Literal["raw", "sse"]) -> bytes:
    """An error inside a 200 stream: raw multi-line JSON like Google's front end, or an SSE frame."""
    body = error_body(code, message)
    if fmt == "sse":
        return sse_frame(body)
    return json.dumps(body, indent=2).encode() + b"\n"


def truncated(body: bytes) -> bytes:
    """A body cut in half: what a malformed response looks like."""
    return body[: max(1, len(body) // 2)]


def garbage_frame(body: dict[str, Any]) -> bytes:
    """An SSE frame whose JSON is cut short."""
    return b"data: " + truncated(json.dumps(body).encode()) + b"\r\n\r\n"
