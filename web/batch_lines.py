"""One line of a batch: a gemq job request, or Gemini Batch Mode's ``{"key", "request"}`` line.

Gemini's batch files hold one ``GenerateContentRequest`` per line, in the protobuf JSON mapping:
field names in lowerCamelCase (``systemInstruction``, ``generationConfig.maxOutputTokens``), and
the original snake_case accepted as well, as Google's parser does.  :func:`parse_line` maps such a
request onto :class:`~worker.core.request.JobRequest` and refuses, with the field's name, whatever gemq
cannot honour (non-text parts, tools, more than one candidate, ...): a line is run as written or
not at all.  Hand-written rather than a pydantic model with aliases because the point is the
refusal messages, which name Gemini's own fields.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from web.errors import validation_details
from worker.core.job import Priority
from worker.core.request import JobRequest

#: Longest ``key`` of a line.
MAX_KEY_CHARS = 512
#: GenerateContentRequest fields gemq maps (snake_case), and those it refuses with a reason.
REQUEST_FIELDS = {"contents", "system_instruction", "generation_config", "safety_settings", "model"}
REFUSED_REQUEST_FIELDS = {
    "tools": "tools (function calling, search, code execution) are not supported",
    "tool_config": "tools are not supported",
    "cached_content": "cached content is not supported",
    "labels": "labels are not supported",
}
#: GenerationConfig fields gemq passes on (snake_case); ``candidate_count`` is accepted only as 1.
CONFIG_FIELDS = {"temperature", "top_p", "top_k", "max_output_tokens", "stop_sequences", "response_mime_type"}
#: Content and part fields.
CONTENT_FIELDS = {"role", "parts"}


class LineInvalid(ValueError):
    """A line gemq cannot run; the message says why, naming the field."""


@dataclass(frozen=True)
class Defaults:
    """What a batch gives the lines that do not say: their model and priority."""

    model: str | None
    priority: Priority


def parse_line(line: Any, defaults: Defaults) -> tuple[str | None, JobRequest]:
    """``(key, request)`` of one line (already decoded from JSON); raises :class:`LineInvalid`."""
    if not isinstance(line, dict):
        raise LineInvalid("a line must be a JSON object")
    fields = dict(line)
    key = _key(fields.pop("key", None))
    if "request" in fields:
        body = gemini_request(fields.pop("request"))
        if fields:
            raise LineInvalid(f"unknown field(s) next to 'request': {', '.join(sorted(fields))}")
    else:
        if "webhook_url" in fields:
            raise LineInvalid("webhook_url belongs to the batch, not to its lines")
        body = fields
    body.setdefault("priority", defaults.priority.value)
    if defaults.model and not body.get("model"):
        body["model"] = defaults.model
    try:
        return key, JobRequest.model_validate(body)
    except ValidationError as exc:
        details = validation_details(exc)
        raise LineInvalid("; ".join(f"{d['loc']}: {d['message']}" for d in details[:3])) from exc


def gemini_request(request: Any) -> dict[str, Any]:
    """A Gemini ``GenerateContentRequest`` as the body of a gemq job request."""
    request = _object(request, "request")
    body: dict[str, Any] = {}
    for name, value in request.items():
        field = snake(name)
        if field in REFUSED_REQUEST_FIELDS:
            raise LineInvalid(f"request.{name}: {REFUSED_REQUEST_FIELDS[field]}")
        if field not in REQUEST_FIELDS:
            raise LineInvalid(f"request.{name}: unknown GenerateContentRequest field")
        if field == "contents":
            contents = _list(value, f"request.{name}")
            body["contents"] = [_content(c, f"request.{name}[{i}]") for i, c in enumerate(contents)]
        elif field == "system_instruction":
            body["system_instruction"] = _system_instruction(value, f"request.{name}")
        elif field == "generation_config":
            body["generation_config"] = _generation_config(value, f"request.{name}")
        elif field == "safety_settings":
            body["safety_settings"] = value
        else:
            body["model"] = value.removeprefix("models/") if isinstance(value, str) else value
    if "contents" not in body:
        raise LineInvalid("request.contents is required")
    return body


def snake(name: str) -> str:
    """``maxOutputTokens`` -> ``max_output_tokens`` (snake_case names are returned as they are)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _content(content: Any, where: str) -> dict[str, Any]:
    content = _object(content, where)
    for name in content:
        if name not in CONTENT_FIELDS:
            raise LineInvalid(f"{where}.{name}: unknown Content field")
    parts = [_text_part(p, f"{where}.parts[{i}]") for i, p in enumerate(_list(content.get("parts"), f"{where}.parts"))]
    return {"role": content.get("role", "user"), "parts": parts}


def _text_part(part: Any, where: str) -> dict[str, Any]:
    part = _object(part, where)
    others = [name for name in part if name != "text"]
    if others:
        raise LineInvalid(f"{where}.{others[0]}: only text parts are supported")
    if "text" not in part:
        raise LineInvalid(f"{where}: a part needs text")
    return {"text": part["text"]}


def _system_instruction(value: Any, where: str) -> Any:
    """A system instruction is a Content (its role ignored, as Gemini does) or, leniently, a string."""
    if isinstance(value, str):
        return value
    content = _content(value, where)
    texts = [p["text"] for p in content["parts"]]
    if not all(isinstance(t, str) for t in texts):
        raise LineInvalid(f"{where}.parts: text must be a string")
    return "".join(texts)


def _generation_config(value: Any, where: str) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for name, item in _object(value, where).items():
        field = snake(name)
        if field == "candidate_count":
            if item != 1:
                raise LineInvalid(f"{where}.{name}: only one candidate per request is supported")
        elif field in CONFIG_FIELDS:
            config[field] = item
        else:
            raise LineInvalid(f"{where}.{name}: not supported by gemq")
    return config


def _key(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= MAX_KEY_CHARS:
        raise LineInvalid(f"key must be a string of 1 to {MAX_KEY_CHARS} characters")
    return value


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise LineInvalid(f"{where} must be an object")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise LineInvalid(f"{where} must be a list")
    return value
