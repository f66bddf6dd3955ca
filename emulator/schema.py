"""Structured output: `responseSchema` (the API's OpenAPI subset) and `responseJsonSchema` (JSON Schema).

`check_response_schema` refuses what the API refuses, with its messages: an OBJECT without
properties (`...properties: should be non-empty for OBJECT type`, quoted in public reports for
nested paths such as `properties["a"].items.properties`), an ARRAY without items, an unknown type
(`Invalid value at '...type' (...Type), "x"`), a format the type does not take. Type names are
taken in any case (the SDK sends capitals). `instance` builds the deterministic document an
answer carries: every declared property, in `propertyOrdering` when given, values drawn from a PRNG
seeded by the prompt, within enum, bounds, lengths and item counts, `$ref`s into `$defs` followed.
"""

from __future__ import annotations

import math
import random
from typing import Any

from emulator.protos import InvalidRequest, invalid_value
from emulator.textgen import VOCABULARY

TYPES = frozenset({"TYPE_UNSPECIFIED", "STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL"})
#: Formats the API takes per type ("only 'enum' and 'date-time' are supported for STRING type").
FORMATS = {"STRING": ("enum", "date-time"), "NUMBER": ("float", "double"), "INTEGER": ("int32", "int64")}
#: Deepest schema nesting generated (a self-referencing $ref stops here).
MAX_DEPTH = 12
_FORMAT_VALUES = {"date-time": "2026-12-03T10:00:00Z", "date": "2026-12-03", "time": "10:00:00",
                  "email": "someone@example.com", "uri": "https://example.com/a", "uuid":
                  "6f1d2c3a-0b4e-4c5d-9e8f-7a6b5c4d3e2f", "hostname": "example.com", "ipv4": "192.0.2.1"}


def check_response_schema(schema: dict[str, Any], where: str, version: str) -> None:
    """Refuse a malformed OpenAPI-subset schema (already checked for unknown names) as the API does."""
    kind = schema.get("type")
    upper = kind.upper() if isinstance(kind, str) else None
    if kind is not None and upper not in TYPES:
        raise invalid_value(f"{_proto_path(where)}.type", "Type", kind, version)
    fmt = schema.get("format")
    if fmt is not None and upper in FORMATS and fmt not in FORMATS[upper]:
        allowed = " and ".join(f"'{f}'" for f in FORMATS[upper])
        raise InvalidRequest(f"* {where}.format: only {allowed} are supported for {upper} type")
    props = schema.get("properties") or {}
    if upper == "OBJECT" and not props and not schema.get("anyOf"):
        raise InvalidRequest(f"* {where}.properties: should be non-empty for OBJECT type")
    if upper == "ARRAY" and "items" not in schema:
        raise InvalidRequest(f"* {where}.items: missing field.")
    for i, name in enumerate(schema.get("required") or []):
        if name not in props:
            raise InvalidRequest(f"* {where}.required[{i}]: property is not defined")
    for name, sub in props.items():
        check_response_schema(sub, f'{where}.properties["{name}"]', version)
    if isinstance(schema.get("items"), dict):
        check_response_schema(schema["items"], f"{where}.items", version)
    for i, sub in enumerate(schema.get("anyOf") or []):
        check_response_schema(sub, f"{where}.any_of[{i}]", version)


def check_json_schema(schema: Any, where: str) -> None:
    """`responseJsonSchema` must be a JSON Schema object (or boolean)."""
    if not isinstance(schema, dict | bool):
        raise InvalidRequest(f"* {where}: must be a JSON Schema object")


def _proto_path(where: str) -> str:
    """`GenerateContentRequest.generation_config.response_schema` -> `generation_config.response_schema`."""
    return where.split(".", 1)[1] if "." in where else where


def instance(schema: Any, seed: int, *, json_schema: bool) -> Any:
    """A deterministic value that conforms to `schema`."""
    builder = _JsonSchema(schema, seed) if json_schema else _OpenApi(seed)
    return builder.value(schema, 0)


class _Builder:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def words(self, low: int = 1, high: int = 4) -> str:
        return " ".join(self.rng.choice(VOCABULARY) for _ in range(self.rng.randint(low, high)))

    def string(self, schema: dict[str, Any]) -> str:
        if schema.get("format") in _FORMAT_VALUES:
            return _FORMAT_VALUES[schema["format"]]
        text = self.words()
        low, high = int(schema.get("minLength") or 0), schema.get("maxLength")
        while len(text) < low:
            text += " " + self.words()
        return text[: int(high)] if high is not None else text

    def number(self, schema: dict[str, Any], integer: bool) -> int | float:
        low = _first(schema, "minimum", "exclusiveMinimum", default=0)
        high = _first(schema, "maximum", "exclusiveMaximum", default=max(low, 0) + 100)
        if integer:
            low_i = math.floor(low) + 1 if "minimum" not in schema and "exclusiveMinimum" in schema else math.ceil(low)
            high_i = math.ceil(high) - 1 if "maximum" not in schema and "exclusiveMaximum" in schema else \
                math.floor(high)
            return self.rng.randint(low_i, max(low_i, high_i))
        # Strictly inside the bounds, so exclusive ones hold too.
        value = float(low) + (float(high) - float(low)) * self.rng.uniform(0.1, 0.9)
        rounded = round(value, 2)
        return rounded if low < rounded < high else value

    def count(self, schema: dict[str, Any]) -> int:
        low = int(schema.get("minItems") or 1)
        most = schema.get("maxItems")
        high = int(most) if most is not None else max(low, 3)
        return self.rng.randint(min(low, high), high)


class _OpenApi(_Builder):
    def value(self, schema: dict[str, Any], depth: int) -> Any:
        if schema.get("anyOf"):
            return self.value(self.rng.choice(schema["anyOf"]), depth)
        if schema.get("enum"):
            return self.rng.choice(schema["enum"])
        kind = str(schema.get("type") or "STRING").upper()
        if kind == "OBJECT":
            props = schema.get("properties") or {}
            order = [n for n in schema.get("propertyOrdering") or [] if n in props]
            order += [n for n in props if n not in order]
            return {name: self.value(props[name], depth + 1) for name in order} if depth < MAX_DEPTH else {}
        if kind == "ARRAY":
            items = schema.get("items") or {}
            return [self.value(items, depth + 1) for _ in range(self.count(schema))] if depth < MAX_DEPTH else []
        return self.scalar(kind, schema)

    def scalar(self, kind: str, schema: dict[str, Any]) -> Any:
        if kind in ("INTEGER", "NUMBER"):
            return self.number(schema, kind == "INTEGER")
        if kind == "BOOLEAN":
            return self.rng.random() < 0.5
        if kind == "NULL":
            return None
        return self.string(schema)


class _JsonSchema(_Builder):
    def __init__(self, root: Any, seed: int) -> None:
        super().__init__(seed)
        self.root = root if isinstance(root, dict) else {}

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        ref = schema.get("$ref")
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return schema
        node: Any = self.root
        for part in ref[2:].split("/"):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        return {**node, **{k: v for k, v in schema.items() if k != "$ref"}}

    def value(self, schema: Any, depth: int) -> Any:
        if not isinstance(schema, dict):
            return None
        schema = self.resolve(schema)
        for key in ("const", "default"):
            if key in schema:
                return schema[key]
        if schema.get("enum"):
            return self.rng.choice(schema["enum"])
        for key in ("anyOf", "oneOf"):
            if schema.get(key):
                return self.value(self._pick(schema[key]), depth)
        if schema.get("allOf"):
            merged: dict[str, Any] = {}
            for part in schema["allOf"]:
                merged = _merge(merged, self.resolve(part) if isinstance(part, dict) else {})
            return self.value(_merge(merged, {k: v for k, v in schema.items() if k != "allOf"}), depth)
        return self.typed(schema, self._type(schema), depth)

    def typed(self, schema: dict[str, Any], kind: str, depth: int) -> Any:
        if kind == "object":
            props = schema.get("properties") or {}
            return {name: self.value(sub, depth + 1) for name, sub in props.items()} if depth < MAX_DEPTH else {}
        if kind == "array":
            if isinstance(schema.get("prefixItems"), list):
                return [self.value(sub, depth + 1) for sub in schema["prefixItems"]]
            items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
            return [self.value(items, depth + 1) for _ in range(self.count(schema))] if depth < MAX_DEPTH else []
        if kind in ("integer", "number"):
            return self.number(schema, kind == "integer")
        if kind == "boolean":
            return self.rng.random() < 0.5
        if kind == "null":
            return None
        return self.string(schema)

    def _pick(self, options: list[Any]) -> Any:
        """The first branch that is not just `null` (a oneOf must match exactly one branch)."""
        for option in options:
            if isinstance(option, dict) and self.resolve(option).get("type") != "null":
                return option
        return options[0]

    @staticmethod
    def _type(schema: dict[str, Any]) -> str:
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind is None:
            return "object" if "properties" in schema else "array" if "items" in schema else "string"
        return str(kind)


def _first(schema: dict[str, Any], *keys: str, default: float) -> float:
    for key in keys:
        value = schema.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
    return default


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    merged = {**a, **b}
    if "properties" in a and "properties" in b:
        merged["properties"] = {**a["properties"], **b["properties"]}
    return merged
