"""Structured output: responseSchema (OpenAPI subset) and responseJsonSchema answers conform; bad schemas are 400."""

from __future__ import annotations

import enum
import json

import httpx
import jsonschema
import pytest
from google import genai
from google.genai import errors, types
from pydantic import BaseModel

MODEL = "gemini-3.5-flash"


class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


class Item(BaseModel):
    name: str
    quantity: int
    price: float | None = None


class Order(BaseModel):
    customer: str
    colour: Colour
    items: list[Item]
    paid: bool


def _post(emulator, config: dict) -> httpx.Response:
    body = {"contents": [{"parts": [{"text": "make an order"}]}], "generationConfig": config}
    return emulator.admin.post(f"/v1beta/models/{MODEL}:generateContent", json=body, headers={"x-goog-api-key": "k"})


def test_a_pydantic_response_schema_gives_a_parsed_instance(client: genai.Client) -> None:
    config = types.GenerateContentConfig(response_mime_type="application/json", response_schema=Order)

    response = client.models.generate_content(model=MODEL, contents="make an order", config=config)

    assert isinstance(response.parsed, Order)
    assert response.parsed.items and all(isinstance(item, Item) for item in response.parsed.items)
    assert list(json.loads(response.text)) == ["customer", "colour", "items", "paid"]


def test_the_same_request_gives_the_same_document(client: genai.Client) -> None:
    config = types.GenerateContentConfig(response_mime_type="application/json", response_schema=Order)

    first = client.models.generate_content(model=MODEL, contents="same", config=config)
    second = client.models.generate_content(model=MODEL, contents="same", config=config)

    assert first.text == second.text


def test_a_json_schema_answer_validates(client: genai.Client) -> None:
    schema = {
        "type": "object",
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "score": {"type": "integer", "minimum": 1, "maximum": 10},
            "ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
            "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}, "minItems": 2, "maxItems": 4},
            "note": {"anyOf": [{"type": "string", "maxLength": 12}, {"type": "null"}]},
            "when": {"type": "string", "format": "date-time"},
            "owner": {"$ref": "#/$defs/Person"},
        },
        "required": ["id", "score", "ratio", "tags", "owner"],
        "additionalProperties": False,
        "$defs": {"Person": {"type": "object", "properties": {"name": {"type": "string", "minLength": 3}},
                             "required": ["name"]}},
    }
    config = types.GenerateContentConfig(response_mime_type="application/json", response_json_schema=schema)

    for prompt in ("one", "two", "three"):
        response = client.models.generate_content(model=MODEL, contents=prompt, config=config)
        jsonschema.validate(json.loads(response.text), schema, format_checker=jsonschema.FormatChecker())
        assert response.parsed == json.loads(response.text)


def test_an_openapi_schema_with_enum_nullable_any_of_and_ordering_validates(emulator) -> None:
    schema = {
        "type": "OBJECT",
        "properties": {
            "b": {"type": "STRING", "enum": ["x", "y"]},
            "a": {"type": "ARRAY", "items": {"type": "INTEGER", "minimum": 5, "maximum": 7}, "maxItems": 2},
            "c": {"type": "NUMBER", "nullable": True},
            "d": {"anyOf": [{"type": "BOOLEAN"}, {"type": "STRING", "format": "date-time"}]},
        },
        "required": ["a", "b"],
        "propertyOrdering": ["a", "b", "c", "d"],
    }
    as_json_schema = {"type": "object", "properties": {
        "b": {"enum": ["x", "y"]}, "a": {"type": "array", "items": {"type": "integer", "minimum": 5, "maximum": 7},
                                         "maxItems": 2},
        "c": {"type": ["number", "null"]}, "d": {"type": ["boolean", "string"]}}, "required": ["a", "b"]}

    response = _post(emulator, {"responseMimeType": "application/json", "responseSchema": schema})

    document = json.loads(response.json()["candidates"][0]["content"]["parts"][0]["text"])
    jsonschema.validate(document, as_json_schema)
    assert list(document) == ["a", "b", "c", "d"]


def test_a_text_enum_answer_is_one_of_the_values(client: genai.Client) -> None:
    config = types.GenerateContentConfig(response_mime_type="text/x.enum", response_schema=Colour)

    response = client.models.generate_content(model=MODEL, contents="pick a colour", config=config)

    assert response.text in {"red", "green"}
    assert response.parsed in set(Colour)


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"type": "OBJECT", "properties": {}},
         "* GenerateContentRequest.generation_config.response_schema.properties: should be non-empty for OBJECT type"),
        ({"type": "OBJECT", "properties": {"a": {"type": "ARRAY", "items": {"type": "OBJECT"}}}},
         '* GenerateContentRequest.generation_config.response_schema.properties["a"].items.properties: '
         "should be non-empty for OBJECT type"),
        ({"type": "ARRAY"}, "* GenerateContentRequest.generation_config.response_schema.items: missing field."),
        ({"type": "OBJEKT"}, "Invalid value at 'generation_config.response_schema.type' "
                             '(type.googleapis.com/google.ai.generativelanguage.v1beta.Type), "OBJEKT"'),
        ({"type": "OBJECT", "properties": {"a": {"type": "STRING"}}, "additionalProperties": False},
         'Invalid JSON payload received. Unknown name "additionalProperties" at '
         "'generation_config.response_schema': Cannot find field."),
        ({"type": "OBJECT", "properties": {"a": {"type": "STRING", "maxLen": 3}}},
         "Invalid JSON payload received. Unknown name \"maxLen\" at "
         "'generation_config.response_schema.properties[0].value': Cannot find field."),
        ({"type": "STRING", "format": "email"}, "* GenerateContentRequest.generation_config.response_schema.format: "
                                                "only 'enum' and 'date-time' are supported for STRING type"),
    ],
)
def test_a_malformed_response_schema_is_400_naming_the_field(emulator, schema: dict, message: str) -> None:
    response = _post(emulator, {"responseMimeType": "application/json", "responseSchema": schema})

    assert response.status_code == 400
    assert response.json()["error"] == {**response.json()["error"], "status": "INVALID_ARGUMENT", "message": message}


def test_both_schema_fields_are_refused(emulator) -> None:
    response = _post(emulator, {"responseMimeType": "application/json", "responseJsonSchema": {"type": "object"},
                                "responseSchema": {"type": "STRING"}})

    assert response.status_code == 400
    assert "response_json_schema" in response.json()["error"]["message"]


def test_the_sdk_sees_a_bad_schema_as_a_client_error(client: genai.Client) -> None:
    config = types.GenerateContentConfig(response_mime_type="application/json",
                                         response_schema={"type": "OBJECT", "properties": {}})

    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=MODEL, contents="x", config=config)

    assert caught.value.code == 400 and "should be non-empty for OBJECT type" in caught.value.message
