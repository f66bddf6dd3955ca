"""Parsing and validation of `generateContent` / `countTokens` bodies into a `GenerateRequest`.

Names are checked by `emulator.protos` (unknown name -> 400 as the API's parser answers); values
here, with the API's messages where they are known (`* GenerateContentRequest.contents: contents
is not specified`, `Invalid value at '...' (TYPE), "x"`, `Base64 decoding failed for "..."`,
thinking and schema rules in their own modules). A request the SDK builds is never refused for
its shape.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from emulator.catalog import ModelSpec, spec_for
from emulator.genconfig import parse_generation_config
from emulator.media import FileLookup, Media, count, decode_base64, video_seconds
from emulator.protos import InvalidRequest, invalid_value, normalize
from emulator.signatures import check_signatures
from emulator.textgen import count_prompt_tokens
from emulator.thinking import Thinking
from emulator.tools import ToolUse, parse_tools

__all__ = ["GenerateRequest", "InvalidRequest", "ParseContext", "parse_count_tokens", "parse_generate"]

VALID_ROLES = frozenset({"user", "model", "function"})
PART_DATA_KEYS = ("text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode",
                  "codeExecutionResult")
HARM_CATEGORIES = frozenset({"HARM_CATEGORY_HARASSMENT", "HARM_CATEGORY_HATE_SPEECH",
                             "HARM_CATEGORY_SEXUALLY_EXPLICIT", "HARM_CATEGORY_DANGEROUS_CONTENT",
                             "HARM_CATEGORY_CIVIC_INTEGRITY", "HARM_CATEGORY_UNSPECIFIED"})
THRESHOLDS = frozenset({"HARM_BLOCK_THRESHOLD_UNSPECIFIED", "BLOCK_LOW_AND_ABOVE", "BLOCK_MEDIUM_AND_ABOVE",
                        "BLOCK_ONLY_HIGH", "BLOCK_NONE", "OFF"})
#: `serviceTier` values: the SDK sends the lowercase names; the proto enum names are taken too.
TIERS = {"unspecified": "standard", "standard": "standard", "flex": "flex", "priority": "priority"}
CACHE_WITH_TOOLS = ("CachedContent can not be used with GenerateContent request setting system_instruction, tools "
                    "or tool_config.\n\nProposed fix: move those values to CachedContent from GenerateContent request.")
#: A cachedContent name -> (model, cached prompt tokens), or None when unknown.
CacheLookup = Callable[[str], "tuple[str, int] | None"]


class CacheNotFound(Exception):
    """`cachedContent` names no cache: the API answers 403 PERMISSION_DENIED."""


@dataclass(frozen=True)
class ParseContext:
    """What validation needs beyond the body: the model, the API version and the emulator's state."""

    spec: ModelSpec = field(default_factory=lambda: spec_for("gemini-3.5-flash"))
    version: str = "v1beta"
    default_thinking: bool = False
    file_lookup: FileLookup = lambda uri: None
    cache_lookup: CacheLookup = lambda name: None


@dataclass(frozen=True)
class GenerateRequest:
    """What the emulator needs from a request."""

    texts: tuple[str, ...]
    turns: int
    media: tuple[Media, ...] = ()
    cached_tokens: int = 0
    max_output_tokens: int | None = None
    stop_sequences: tuple[str, ...] = ()
    candidate_count: int = 1
    response_mime_type: str = "text/plain"
    response_schema: Any = None
    json_schema: bool = False
    thinking: Thinking = Thinking()
    seed: int | None = None
    response_logprobs: bool = False
    logprobs: int = 0
    tools: ToolUse = ToolUse()
    answers_function: bool = False
    last_user_text: str = ""
    service_tier: str = "standard"
    cached_content: str | None = None

    @property
    def prompt_text(self) -> str:
        """All text parts, system instruction first, newline-joined."""
        return "\n".join(self.texts)

    @property
    def text_tokens(self) -> int:
        """Text tokens: words + 3 per turn (emulator.textgen)."""
        return count_prompt_tokens(self.texts, self.turns)

    @property
    def prompt_tokens(self) -> int:
        """promptTokenCount: text, media and cached tokens (what the TPM quota counts)."""
        return self.text_tokens + sum(m.tokens for m in self.media) + self.cached_tokens

    def token_details(self) -> list[dict[str, Any]]:
        """`promptTokensDetails`: tokens by modality, TEXT first."""
        by: dict[str, int] = {"TEXT": self.text_tokens}
        for item in self.media:
            by[item.modality] = by.get(item.modality, 0) + item.tokens
        return [{"modality": modality, "tokenCount": tokens} for modality, tokens in by.items()]


def load_json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, or InvalidRequest."""
    try:
        data = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"Invalid JSON payload received. {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidRequest("Invalid JSON payload received. Root element must be a message.")
    return data


def parse_generate(body: bytes | dict[str, Any], ctx: ParseContext | None = None) -> GenerateRequest:
    """Validate a `generateContent` / `streamGenerateContent` body (bytes or an already-decoded dict)."""
    data = load_json_object(body) if isinstance(body, bytes) else body
    return _parse_request(normalize(data, "GenerateContentRequest"), "GenerateContentRequest", ctx or ParseContext())


def parse_count_tokens(body: bytes | dict[str, Any], ctx: ParseContext | None = None) -> GenerateRequest:
    """Validate a `countTokens` body: `contents` or a nested `generateContentRequest`."""
    data = normalize(load_json_object(body) if isinstance(body, bytes) else body, "CountTokensRequest")
    nested = data.get("generateContentRequest")
    if nested is not None:
        return _parse_request(nested, "CountTokensRequest.generate_content_request", ctx or ParseContext())
    return _parse_request(data, "CountTokensRequest", ctx or ParseContext())


def _parse_request(data: dict[str, Any], where: str, ctx: ParseContext) -> GenerateRequest:
    contents = data.get("contents")
    if not contents:
        raise InvalidRequest(f"* {where}.contents: contents is not specified")
    reader = _ContentReader(ctx)
    reader.resolution = (data.get("generationConfig") or {}).get("mediaResolution")
    system = data.get("systemInstruction")
    if system is not None:
        reader.read(system, f"{where}.system_instruction", "system_instruction")
    for i, content in enumerate(contents):
        reader.read(content, f"{where}.contents[{i}]", f"contents[{i}]")
    if ctx.spec.gemini3:
        check_signatures(contents)
    _check_safety(data.get("safetySettings") or [], ctx.version)
    config = parse_generation_config(data.get("generationConfig"), f"{where}.generation_config", ctx.spec,
                                     version=ctx.version, default_thinking=ctx.default_thinking)
    tools = parse_tools(data.get("tools"), data.get("toolConfig"), ctx.version)
    cached, cached_tokens = _cached_content(data, ctx)
    return GenerateRequest(
        texts=tuple(reader.texts), turns=len(contents) + (system is not None), media=tuple(reader.media),
        cached_tokens=cached_tokens, tools=tools, answers_function=_answers_function(contents),
        last_user_text=_last_user_text(contents), service_tier=_tier(data.get("serviceTier"), ctx.version),
        cached_content=cached, **config)


class _ContentReader:
    """Collects texts and media of contents, checking each part."""

    def __init__(self, ctx: ParseContext) -> None:
        self.ctx = ctx
        self.texts: list[str] = []
        self.media: list[Media] = []
        self.resolution: str | None = None

    def read(self, content: dict[str, Any], where: str, path: str) -> None:
        role = content.get("role")
        if role is not None and (not isinstance(role, str) or (role and role not in VALID_ROLES)):
            raise InvalidRequest("Please use a valid role: user, model.")
        parts = content.get("parts")
        if not parts:
            raise InvalidRequest(f"* {where}.parts: contents.parts must not be empty.")
        for j, part in enumerate(parts):
            self.part(part, f"{where}.parts[{j}]", f"{path}.parts[{j}]")

    def part(self, part: dict[str, Any], where: str, path: str) -> None:
        if not any(key in part for key in PART_DATA_KEYS):
            raise InvalidRequest(f"* {where}.data: required oneof field 'data' must have one initialized field")
        signature = part.get("thoughtSignature")
        if signature is not None and (not isinstance(signature, str) or decode_base64(signature) is None):
            raise InvalidRequest(f"Invalid value at '{path}.thought_signature' (TYPE_BYTES), {_b64_echo(signature)}")
        if "text" in part:
            if not isinstance(part["text"], str):
                raise invalid_value(f"{path}.text", "TYPE_STRING", part["text"], self.ctx.version)
            if not part.get("thought"):
                self.texts.append(part["text"])
        level = part.get("mediaResolution")
        resolution = level.get("level") if isinstance(level, dict) else None
        if "inlineData" in part:
            self.inline(part["inlineData"], f"{path}.inline_data", resolution)
        if "fileData" in part:
            self.file(part["fileData"], f"{path}.file_data", resolution, part.get("videoMetadata"))

    def inline(self, blob: dict[str, Any], path: str, resolution: str | None) -> None:
        mime, data = blob.get("mimeType"), blob.get("data")
        if not isinstance(mime, str) or not mime:
            raise InvalidRequest(f"* GenerateContentRequest.{path}.mime_type: inline_data.mime_type must be set.")
        raw = decode_base64(data) if isinstance(data, str) else None
        if raw is None:
            raise InvalidRequest(f"Invalid value at '{path}.data' (TYPE_BYTES), {_b64_echo(data)}")
        self.media.append(count(mime, raw, gemini3=self.ctx.spec.gemini3, resolution=resolution or self.resolution))

    def file(self, ref: dict[str, Any], path: str, resolution: str | None, metadata: Any) -> None:
        uri, mime = ref.get("fileUri"), ref.get("mimeType")
        if not isinstance(uri, str) or not uri:
            raise InvalidRequest(f"* GenerateContentRequest.{path}.file_uri: file_uri must be set.")
        known = self.ctx.file_lookup(uri)
        kind = mime if isinstance(mime, str) and mime else (known[0] if known else "application/octet-stream")
        self.media.append(count(kind, known[1] if known else None, gemini3=self.ctx.spec.gemini3,
                                resolution=resolution or self.resolution, seconds=video_seconds(metadata)))


def _b64_echo(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return f'Base64 decoding failed for "{text[:64]}{"..." if len(text) > 64 else ""}"'


def _check_safety(settings: list[dict[str, Any]], version: str) -> None:
    for i, setting in enumerate(settings):
        category, threshold = setting.get("category"), setting.get("threshold")
        if category not in HARM_CATEGORIES:
            raise invalid_value(f"safety_settings[{i}].category", "HarmCategory", category, version)
        if threshold not in THRESHOLDS:
            raise invalid_value(f"safety_settings[{i}].threshold", "SafetySetting.HarmBlockThreshold", threshold,
                                version)


def _tier(value: Any, version: str) -> str:
    if value is None:
        return "standard"
    name = value.lower().removeprefix("service_tier_") if isinstance(value, str) else None
    if name not in TIERS:
        raise invalid_value("service_tier", "ServiceTier", value, version)
    return TIERS[name]


def _cached_content(data: dict[str, Any], ctx: ParseContext) -> tuple[str | None, int]:
    name = data.get("cachedContent")
    if name is None:
        return None, 0
    if not isinstance(name, str):
        raise invalid_value("cached_content", "TYPE_STRING", name, ctx.version)
    found = ctx.cache_lookup(name)
    if found is None:
        raise CacheNotFound(name)
    if any(data.get(key) is not None for key in ("systemInstruction", "tools", "toolConfig")):
        raise InvalidRequest(CACHE_WITH_TOOLS)
    model, tokens = found
    if model != ctx.spec.name:
        raise InvalidRequest(f"Model used by GenerateContent request (models/{ctx.spec.name}) and CachedContent "
                             f"(models/{model}) has to be the same.")
    return name, tokens


def _answers_function(contents: list[dict[str, Any]]) -> bool:
    return any("functionResponse" in part for part in contents[-1].get("parts") or [])


def _last_user_text(contents: list[dict[str, Any]]) -> str:
    for content in reversed(contents):
        if content.get("role") in (None, "", "user"):
            return "\n".join(p["text"] for p in content.get("parts") or [] if isinstance(p.get("text"), str))
    return ""
