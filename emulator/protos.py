"""The request messages as the API's JSON parser sees them: field tables, unknown names, enum values.

`normalize(data, "GenerateContentRequest")` walks a request, refuses a name its message does not
have with the parser's own answer (`Invalid JSON payload received. Unknown name "x" at
'generation_config': Cannot find field.`, shapes quoted in google-gemini/gemini-cli#13972 and, for
schema paths such as `response_schema.properties[0].value`, in several public bug reports), and
returns a copy whose message field names are lowerCamelCase (the proto JSON mapping accepts
snake_case too). Free-form values (`functionCall.args`, `responseJsonSchema`, `labels`, ...) are
left exactly as sent. Field names are those google-genai 3.4/3.6 can send to the Developer API.
"""

from __future__ import annotations

import json
from typing import Any

#: Kinds of a field: a sub-message, a repeated sub-message, a map of sub-messages, or any JSON value.
ANY = "any"
_PART_EXTRAS = ("videoMetadata", "partMetadata", "mediaResolution", "audioMetadata", "audioTranscription",
                "documentMetadata", "mediaProcessing", "speechMetadata", "spreadsheetMetadata", "toolCall",
                "toolResponse", "text", "thought", "thoughtSignature")
#: message -> {field: kind}; kind is ANY, "Msg", "[Msg]" (repeated) or "{Msg}" (map<string, Msg>).
MESSAGES: dict[str, dict[str, str]] = {
    "GenerateContentRequest": {
        "model": ANY, "contents": "[Content]", "generationConfig": "GenerationConfig",
        "systemInstruction": "Content", "safetySettings": "[SafetySetting]", "tools": "[Tool]",
        "toolConfig": "ToolConfig", "cachedContent": ANY, "labels": ANY, "serviceTier": ANY, "store": ANY,
        "continuationToken": ANY,
    },
    "CountTokensRequest": {"contents": "[Content]", "generateContentRequest": "GenerateContentRequest"},
    "Content": {"role": ANY, "parts": "[Part]"},
    "Part": {
        "inlineData": "Blob", "fileData": "FileData", "functionCall": "FunctionCall",
        "functionResponse": "FunctionResponse", "executableCode": "ExecutableCode",
        "codeExecutionResult": "CodeExecutionResult", **dict.fromkeys(_PART_EXTRAS, ANY),
    },
    "Blob": {"mimeType": ANY, "data": ANY},
    "FileData": {"mimeType": ANY, "fileUri": ANY},
    "FunctionCall": {"id": ANY, "name": ANY, "args": ANY},
    "FunctionResponse": {"id": ANY, "name": ANY, "response": ANY, "parts": ANY, "willContinue": ANY,
                         "scheduling": ANY},
    "ExecutableCode": {"id": ANY, "language": ANY, "code": ANY},
    "CodeExecutionResult": {"id": ANY, "outcome": ANY, "output": ANY},
    "GenerationConfig": {
        **dict.fromkeys(("stopSequences", "responseMimeType", "responseJsonSchema", "responseModalities",
                         "candidateCount", "maxOutputTokens", "temperature", "topP", "topK", "seed",
                         "presencePenalty", "frequencyPenalty", "responseLogprobs", "logprobs",
                         "enableEnhancedCivicAnswers", "speechConfig", "imageConfig", "mediaResolution",
                         "audioTranscriptionConfig"), ANY),
        "responseSchema": "Schema", "thinkingConfig": "ThinkingConfig",
    },
    "ThinkingConfig": {"includeThoughts": ANY, "thinkingBudget": ANY, "thinkingLevel": ANY},
    "SafetySetting": {"category": ANY, "threshold": ANY},
    "Tool": {
        "functionDeclarations": "[FunctionDeclaration]",
        **dict.fromkeys(("googleSearch", "codeExecution", "urlContext", "googleSearchRetrieval", "computerUse",
                         "fileSearch", "googleMaps", "mcpServers"), ANY),
    },
    "FunctionDeclaration": {"name": ANY, "description": ANY, "parameters": "Schema", "parametersJsonSchema": ANY,
                            "response": "Schema", "responseJsonSchema": ANY, "behavior": ANY},
    "ToolConfig": {"functionCallingConfig": "FunctionCallingConfig", "retrievalConfig": ANY,
                   "includeServerSideToolInvocations": ANY},
    "FunctionCallingConfig": {"mode": ANY, "allowedFunctionNames": ANY},
    "Schema": {
        **dict.fromkeys(("type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems",
                         "required", "minProperties", "maxProperties", "minLength", "maxLength", "pattern",
                         "example", "propertyOrdering", "default", "minimum", "maximum"), ANY),
        "properties": "{Schema}", "anyOf": "[Schema]", "items": "Schema",
    },
}
#: Field paths whose message the parser names as the API does (`generation_config`, not `generationConfig`).
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"


class InvalidRequest(Exception):
    """The body is not a valid request: answer 400 INVALID_ARGUMENT with this message (and ``details``)."""

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.details = details or []


def camel(name: str) -> str:
    """``generation_config`` -> ``generationConfig`` (proto JSON accepts both)."""
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def snake(name: str) -> str:
    """``generationConfig`` -> ``generation_config`` (how the API's messages print a path)."""
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def join(path: str, name: str) -> str:
    """A field path: ``contents[0]`` + ``parts`` -> ``contents[0].parts``."""
    return f"{path}.{name}" if path else name


def unknown_names(names: list[str], path: str) -> InvalidRequest:
    """The parser's answer to names a message does not have."""
    at = f" at '{path}'" if path else ""
    lines = [f'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.' for name in names]
    violations = [{**({"field": path} if path else {}), "description": line} for line in lines]
    return InvalidRequest("\n".join(lines), [{"@type": BAD_REQUEST, "fieldViolations": violations}])


def invalid_value(path: str, type_name: str, value: Any, version: str = "v1beta") -> InvalidRequest:
    """The parser's answer to a value of the wrong type or an unknown enum name."""
    full = type_name if type_name.startswith("TYPE_") else \
        f"type.googleapis.com/google.ai.generativelanguage.{version}.{type_name}"
    message = f"Invalid value at '{path}' ({full}), {json.dumps(value)}"
    violation = {"field": path, "description": message}
    return InvalidRequest(message, [{"@type": BAD_REQUEST, "fieldViolations": [violation]}])


def normalize(value: Any, message: str, path: str = "") -> dict[str, Any]:
    """Check `value` as a `message` and return it with lowerCamelCase message field names."""
    if not isinstance(value, dict):
        raise invalid_value(path or message, message, value)
    fields = MESSAGES[message]
    unknown = [name for name in value if name not in fields and camel(name) not in fields]
    if unknown:
        raise unknown_names(unknown, path)
    out: dict[str, Any] = {}
    for name, item in value.items():
        key = name if name in fields else camel(name)
        out[key] = _field(item, fields[key], join(path, snake(key)))
    return out


def _field(value: Any, kind: str, path: str) -> Any:
    if kind == ANY or value is None:
        return value
    if kind.startswith("["):
        if not isinstance(value, list):
            raise invalid_value(path, kind[1:-1], value)
        return [normalize(item, kind[1:-1], f"{path}[{i}]") for i, item in enumerate(value)]
    if kind.startswith("{"):
        if not isinstance(value, dict):
            raise invalid_value(path, kind[1:-1], value)
        return {key: normalize(item, kind[1:-1], f"{path}[{i}].value") for i, (key, item) in enumerate(value.items())}
    return normalize(value, kind, path)
