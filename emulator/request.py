"""Parsing and validation of Gemini request bodies (`generateContent`, `countTokens`).

Validation follows the real API where it matters to a client: malformed JSON, missing or empty
`contents`, wrong types, bad roles and out-of-range `generationConfig` values answer 400
INVALID_ARGUMENT. So do unknown keys in the request, its contents and parts, `generationConfig` and
`safetySettings`, as the real API's proto JSON parser does: `Invalid JSON payload received. Unknown
name "x" at 'generation_config': Cannot find field.`, with a `google.rpc.BadRequest` detail (the
shape of the real API's answers quoted in google-gemini/gemini-cli#13972 and gera2ld/ai.nvim#13). Names
are accepted in lowerCamelCase and in the proto's snake_case, as the API accepts both; the known
names are every one google-genai 3.4 can send to the Gemini Developer API (its `_to_mldev`
converters), so a request the SDK builds is never refused for its shape.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from emulator.textgen import count_prompt_tokens

#: Roles a content turn may carry.
VALID_ROLES = frozenset({"user", "model", "function"})
#: Keys of which a part must have one.
PART_DATA_KEYS = frozenset(
    {"text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode", "codeExecutionResult"}
)
#: `generationConfig.responseMimeType` values the API allows.
MIME_TYPES = frozenset({"text/plain", "application/json", "application/xml", "application/yaml", "text/x.enum"})
#: Most stop sequences the API allows.
MAX_STOP_SEQUENCES = 5

#: Field names of each message the emulator reads (lowerCamelCase; snake_case is accepted too).
REQUEST_FIELDS = frozenset({
    "model", "contents", "generationConfig", "systemInstruction", "safetySettings", "tools", "toolConfig",
    "cachedContent", "labels", "serviceTier", "store", "continuationToken",
})
CONTENT_FIELDS = frozenset({"role", "parts"})
PART_FIELDS = PART_DATA_KEYS | {
    "thought", "thoughtSignature", "videoMetadata", "partMetadata", "mediaResolution", "audioMetadata",
    "audioTranscription", "documentMetadata", "mediaProcessing", "speechMetadata", "spreadsheetMetadata",
    "toolCall", "toolResponse",
}
GENERATION_CONFIG_FIELDS = frozenset({
    "stopSequences", "responseMimeType", "responseSchema", "responseJsonSchema", "responseModalities",
    "candidateCount", "maxOutputTokens", "temperature", "topP", "topK", "seed", "presencePenalty",
    "frequencyPenalty", "responseLogprobs", "logprobs", "enableEnhancedCivicAnswers", "speechConfig",
    "thinkingConfig", "imageConfig", "mediaResolution", "audioTranscriptionConfig",
})
SAFETY_SETTING_FIELDS = frozenset({"category", "threshold"})
COUNT_TOKENS_FIELDS = frozenset({"contents", "generateContentRequest"})


class InvalidRequest(Exception):
    """The body is not a valid request: answer 400 INVALID_ARGUMENT with this message (and ``details``)."""

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.details = details or []


@dataclass(frozen=True)
class GenerateRequest:
    """What the emulator needs from a request: its texts and the generation knobs."""

    texts: tuple[str, ...]
    turns: int
    max_output_tokens: int | None = None
    stop_sequences: tuple[str, ...] = ()
    candidate_count: int = 1
    response_mime_type: str = "text/plain"

    @property
    def prompt_text(self) -> str:
        """All text parts, system instruction first, newline-joined."""
        return "\n".join(self.texts)

    @property
    def prompt_tokens(self) -> int:
        """Prompt tokens by the rule in `emulator.textgen`."""
        return count_prompt_tokens(self.texts, self.turns)


def load_json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, or InvalidRequest."""
    try:
        data = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"Invalid JSON payload received. {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidRequest("Invalid JSON payload received. Root element must be a message.")
    return data


def parse_generate(body: bytes) -> GenerateRequest:
    """Validate a `generateContent` / `streamGenerateContent` body."""
    data = load_json_object(body)
    return _parse_request(data, "GenerateContentRequest")


def parse_count_tokens(body: bytes) -> GenerateRequest:
    """Validate a `countTokens` body: `contents` or a nested `generateContentRequest`."""
    data = load_json_object(body)
    _check_fields(data, COUNT_TOKENS_FIELDS, "")
    nested = data.get("generateContentRequest", data.get("generate_content_request"))
    if nested is not None:
        if not isinstance(nested, dict):
            raise InvalidRequest("* CountTokensRequest.generate_content_request: must be a message.")
        return _parse_request(nested, "CountTokensRequest.generate_content_request")
    return _parse_request(data, "CountTokensRequest")


def _parse_request(data: dict[str, Any], where: str) -> GenerateRequest:
    _check_fields(data, REQUEST_FIELDS, "" if where == "GenerateContentRequest" else "generate_content_request")
    data = _camel_keys(data)
    contents = data.get("contents")
    if not contents:
        raise InvalidRequest(f"* {where}.contents: contents is not specified")
    if not isinstance(contents, list):
        raise InvalidRequest(f"* {where}.contents: must be a list")
    texts: list[str] = []
    turns = len(contents)
    system = data.get("systemInstruction")
    if system is not None:
        texts.extend(_content_texts(system, f"{where}.system_instruction"))
        turns += 1
    for i, content in enumerate(contents):
        texts.extend(_content_texts(content, f"{where}.contents[{i}]"))
    _check_list_of_dicts(data.get("safetySettings"), f"{where}.safety_settings")
    config = _parse_generation_config(data.get("generationConfig"), f"{where}.generation_config")
    return GenerateRequest(texts=tuple(texts), turns=turns, **config)


def _content_texts(content: Any, where: str) -> list[str]:
    if not isinstance(content, dict):
        raise InvalidRequest(f"* {where}: must be a Content message")
    _check_fields(content, CONTENT_FIELDS, _path(where))
    role = content.get("role")
    if role is not None and (not isinstance(role, str) or (role and role not in VALID_ROLES)):
        raise InvalidRequest("Please use a valid role: user, model.")
    parts = content.get("parts")
    if not parts or not isinstance(parts, list):
        raise InvalidRequest(f"* {where}.parts: contents.parts must not be empty.")
    texts: list[str] = []
    for j, part in enumerate(parts):
        if isinstance(part, dict):
            _check_fields(part, PART_FIELDS, _path(f"{where}.parts[{j}]"))
            part = _camel_keys(part)
        if not isinstance(part, dict) or not PART_DATA_KEYS & part.keys():
            raise InvalidRequest(
                f"* {where}.parts[{j}].data: required oneof field 'data' must have one initialized field"
            )
        if "text" in part:
            if not isinstance(part["text"], str):
                raise InvalidRequest(f"* {where}.parts[{j}].text: must be a string")
            texts.append(part["text"])
    return texts


def _check_list_of_dicts(value: Any, where: str) -> None:
    if value is not None and (not isinstance(value, list) or not all(isinstance(v, dict) for v in value)):
        raise InvalidRequest(f"* {where}: must be a list of messages")
    for i, item in enumerate(value or []):
        _check_fields(item, SAFETY_SETTING_FIELDS, _path(f"{where}[{i}]"))


def _check_fields(message: dict[str, Any], known: frozenset[str], path: str) -> None:
    """Refuse names ``known`` does not hold (in either spelling), as the API's JSON parser does."""
    unknown = [name for name in message if name not in known and _camel(name) not in known]
    if not unknown:
        return
    at = f" at '{path}'" if path else ""
    lines = [f'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.' for name in unknown]
    violations = [{**({"field": path} if path else {}), "description": line} for line in lines]
    raise InvalidRequest("\n".join(lines), [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                                              "fieldViolations": violations}])


def _camel(name: str) -> str:
    """``generation_config`` -> ``generationConfig`` (proto JSON accepts both)."""
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def _camel_keys(message: dict[str, Any]) -> dict[str, Any]:
    """The message with its top-level names in lowerCamelCase (what the rest of the parser reads)."""
    return {_camel(name): value for name, value in message.items()}


def _path(where: str) -> str:
    """A field path as the API's messages print it: ``contents[0].parts[1]``, without the message name."""
    return where.split(".", 1)[1] if "." in where else ""


def _number(config: dict[str, Any], key: str, where: str, low: float, high: float) -> None:
    value = config.get(key)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise InvalidRequest(f"* {where}.{key}: must be a number in [{low}, {high}]")


def _integer(config: dict[str, Any], key: str, where: str, low: int, high: int) -> int | None:
    value = config.get(key)
    if value is None:
        return None
    integral = isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer()
    if not integral or not low <= value <= high:
        raise InvalidRequest(f"* {where}.{key}: must be an integer in [{low}, {high}]")
    return int(value)


def _parse_generation_config(config: Any, where: str) -> dict[str, Any]:
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise InvalidRequest(f"* {where}: must be a GenerationConfig message")
    _check_fields(config, GENERATION_CONFIG_FIELDS, _path(where))
    config = _camel_keys(config)
    _number(config, "temperature", where, 0.0, 2.0)
    _number(config, "topP", where, 0.0, 1.0)
    _number(config, "topK", where, 1.0, 1_000_000.0)
    stops = config.get("stopSequences") or []
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise InvalidRequest(f"* {where}.stop_sequences: must be a list of strings")
    if len(stops) > MAX_STOP_SEQUENCES:
        raise InvalidRequest(f"* {where}.stop_sequences: at most {MAX_STOP_SEQUENCES} stop sequences are allowed")
    mime = config.get("responseMimeType")
    if mime is not None and mime not in MIME_TYPES:
        raise InvalidRequest(
            f"* {where}.response_mime_type: allowed mimetypes are `text/plain`, `application/json`, "
            "`application/xml`, `application/yaml` and `text/x.enum`."
        )
    return {
        "max_output_tokens": _integer(config, "maxOutputTokens", where, 1, 1_000_000),
        "stop_sequences": tuple(stops),
        "candidate_count": _integer(config, "candidateCount", where, 1, 8) or 1,
        "response_mime_type": mime or "text/plain",
    }
