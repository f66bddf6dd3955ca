"""`generationConfig`: numeric ranges, MIME types, modalities, response schemas, thinking and the rest."""

from __future__ import annotations

from typing import Any

from emulator.catalog import ModelSpec
from emulator.media import MEDIA_RESOLUTIONS
from emulator.protos import InvalidRequest, invalid_value
from emulator.schema import check_json_schema, check_response_schema
from emulator.thinking import plan_thinking

MIME_TYPES = frozenset({"text/plain", "application/json", "application/xml", "application/yaml", "text/x.enum"})
MAX_STOP_SEQUENCES = 5
MODALITIES = frozenset({"TEXT", "IMAGE", "AUDIO", "MODALITY_UNSPECIFIED"})


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


def parse_generation_config(config: dict[str, Any] | None, where: str, spec: ModelSpec, *, version: str,
                            default_thinking: bool) -> dict[str, Any]:
    """Check `generationConfig` (normalized) and return the GenerateRequest fields it sets."""
    thinking = plan_thinking(None, spec, default_on=default_thinking, where="", version=version)
    if config is None:
        return {"thinking": thinking}
    _number(config, "temperature", where, 0.0, 2.0)
    _number(config, "topP", where, 0.0, 1.0)
    _number(config, "topK", where, 1.0, 1_000_000.0)
    _number(config, "presencePenalty", where, -2.0, 2.0)
    _number(config, "frequencyPenalty", where, -2.0, 2.0)
    stops = config.get("stopSequences") or []
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise InvalidRequest(f"* {where}.stop_sequences: must be a list of strings")
    if len(stops) > MAX_STOP_SEQUENCES:
        raise InvalidRequest(f"* {where}.stop_sequences: at most {MAX_STOP_SEQUENCES} stop sequences are allowed")
    mime = config.get("responseMimeType")
    if mime is not None and mime not in MIME_TYPES:
        raise InvalidRequest(
            f"* {where}.response_mime_type: allowed mimetypes are `text/plain`, `application/json`, "
            "`application/xml`, `application/yaml` and `text/x.enum`.")
    _check_modalities(config, version)
    schema, json_schema = _response_schema(config, where, version)
    if config.get("thinkingConfig") is not None:
        thinking = plan_thinking(config["thinkingConfig"], spec, default_on=default_thinking,
                                 where="generation_config.thinking_config", version=version)
    return {
        "max_output_tokens": _integer(config, "maxOutputTokens", where, 1, 1_000_000),
        "stop_sequences": tuple(stops),
        "candidate_count": _integer(config, "candidateCount", where, 1, 8) or 1,
        "response_mime_type": mime or "text/plain",
        "response_schema": schema,
        "json_schema": json_schema,
        "thinking": thinking,
        "seed": _integer(config, "seed", where, -(2**31), 2**31 - 1),
        "response_logprobs": bool(config.get("responseLogprobs")),
        "logprobs": _integer(config, "logprobs", where, 0, 20) or 0,
    }


def _check_modalities(config: dict[str, Any], version: str) -> None:
    resolution = config.get("mediaResolution")
    if resolution is not None and resolution not in MEDIA_RESOLUTIONS:
        raise invalid_value("generation_config.media_resolution", "MediaResolution", resolution, version)
    for i, modality in enumerate(config.get("responseModalities") or []):
        if not isinstance(modality, str) or modality.upper() not in MODALITIES:
            raise invalid_value(f"generation_config.response_modalities[{i}]", "GenerationConfig.Modality",
                                modality, version)
        if modality.upper() in ("IMAGE", "AUDIO"):
            raise InvalidRequest(f"Model does not support the requested response modalities: {modality.lower()}")


def _response_schema(config: dict[str, Any], where: str, version: str) -> tuple[Any, bool]:
    schema, json_schema = config.get("responseSchema"), config.get("responseJsonSchema")
    if schema is not None and json_schema is not None:
        raise InvalidRequest(f"* {where}: response_schema and response_json_schema cannot both be set")
    if schema is not None:
        check_response_schema(schema, f"{where}.response_schema", version)
        return schema, False
    if json_schema is not None:
        check_json_schema(json_schema, f"{where}.response_json_schema")
        return json_schema, True
    return None, False
