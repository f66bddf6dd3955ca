"""generateContent, countTokens and the model catalog through the real google-genai SDK."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from google import genai
from google.genai import errors, types

from emulator.textgen import count_words

MODEL = "gemini-3.5-flash"


def test_generate_returns_text_finish_reason_usage_and_version(client: genai.Client) -> None:
    response = client.models.generate_content(model=MODEL, contents="Tell me about rivers")

    assert response.text and count_words(response.text) >= 20
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    assert response.candidates[0].content.role == "model"
    usage = response.usage_metadata
    # "Tell me about rivers": 4 words + 3 for the one turn.
    assert usage.prompt_token_count == 7
    assert usage.candidates_token_count == count_words(response.text)
    assert usage.total_token_count == usage.prompt_token_count + usage.candidates_token_count
    assert response.model_version == "gemini-3.5-flash-emu-001"
    assert response.response_id


def test_same_prompt_gives_same_text_and_models_differ(client: genai.Client) -> None:
    first = client.models.generate_content(model=MODEL, contents="determinism check")
    second = client.models.generate_content(model=MODEL, contents="determinism check")
    other_model = client.models.generate_content(model="gemini-3.8-flash", contents="determinism check")
    other_prompt = client.models.generate_content(model=MODEL, contents="determinism check!")

    assert first.text == second.text
    assert first.text != other_model.text
    assert first.text != other_prompt.text


def test_system_instruction_counts_as_a_turn(client: genai.Client) -> None:
    config = types.GenerateContentConfig(system_instruction="Be brief please")
    response = client.models.generate_content(model=MODEL, contents="one two", config=config)

    # 3 + 2 words, two turns of 3.
    assert response.usage_metadata.prompt_token_count == 11


def test_both_api_versions_are_served_and_logged(emulator, make_client: Callable[..., genai.Client]) -> None:
    for version in ("v1", "v1beta"):
        # Keep a reference: a genai.Client closes its HTTP client when garbage-collected.
        client = make_client(api_version=version)
        response = client.models.generate_content(model=MODEL, contents=f"hi [[tag:version-{version}]]")
        assert response.text
        assert [e["api_version"] for e in emulator.requests(tag=f"version-{version}")] == [version]


def test_max_output_tokens_cuts_with_max_tokens(client: genai.Client) -> None:
    full = client.models.generate_content(model=MODEL, contents="long answer please").text
    config = types.GenerateContentConfig(max_output_tokens=5, temperature=0.2, top_p=0.9, top_k=40)
    response = client.models.generate_content(model=MODEL, contents="long answer please", config=config)

    assert response.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert response.text == " ".join(full.split()[:5])
    assert response.usage_metadata.candidates_token_count == 5


def test_stop_sequence_cuts_before_first_occurrence(client: genai.Client) -> None:
    full = client.models.generate_content(model=MODEL, contents="stop here").text
    stop = full.split()[6]
    config = types.GenerateContentConfig(stop_sequences=[stop])
    response = client.models.generate_content(model=MODEL, contents="stop here", config=config)

    assert response.text == full[: full.index(stop)]
    assert response.candidates[0].finish_reason == types.FinishReason.STOP


def test_output_tokens_knob_forces_length(emulator, client: genai.Client) -> None:
    emulator.configure(output_tokens=7)
    response = client.models.generate_content(model=MODEL, contents="anything")

    assert count_words(response.text) == 7
    assert response.usage_metadata.candidates_token_count == 7


def test_count_tokens_uses_the_documented_rule(client: genai.Client) -> None:
    result = client.models.count_tokens(model=MODEL, contents="a b c d e")

    assert result.total_tokens == 8


def test_list_and_get_models(client: genai.Client) -> None:
    names = [model.name for model in client.models.list()]
    model = client.models.get(model="gemini-3.8-flash")

    assert {"models/gemini-3.5-flash", "models/gemini-3.8-flash", "models/gemini-2.5-flash-lite"} <= set(names)
    assert "models/gemini-2.0-flash" not in names
    assert model.name == "models/gemini-3.8-flash"
    assert model.display_name == "Gemini 3.8 Flash"
    assert model.input_token_limit and model.output_token_limit
    assert "generateContent" in model.supported_actions


def test_unknown_model_is_404_not_found(client: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model="gemini-9-ultra", contents="hi")
    with pytest.raises(errors.ClientError) as caught_get:
        client.models.get(model="gemini-9-ultra")

    assert caught.value.code == 404 and caught.value.status == "NOT_FOUND"
    assert caught_get.value.code == 404


def test_bad_generation_config_is_400_invalid_argument(client: genai.Client) -> None:
    config = types.GenerateContentConfig(temperature=5.0)
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=MODEL, contents="hi", config=config)

    assert caught.value.code == 400
    assert caught.value.status == "INVALID_ARGUMENT"
    assert caught.value.details["error"]["code"] == 400


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[]", b"{}", b'{"contents": []}', b'{"contents": [{"parts": [{"text": 3}]}]}'],
)
def test_malformed_requests_are_400(emulator, body: bytes) -> None:
    response = emulator.admin.post(
        f"/v1beta/models/{MODEL}:generateContent",
        content=body,
        headers={"x-goog-api-key": "k", "Content-Type": "application/json"},
    )

    assert response.status_code == 400
    assert response.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert "retry-after" not in response.headers


def test_key_may_come_as_query_parameter(emulator) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    response = emulator.admin.post(f"/v1/models/{MODEL}:generateContent?key=abc", json=body)

    assert response.status_code == 200
    assert response.json()["candidates"][0]["content"]["parts"][0]["text"]


def _post(emulator, body: dict, method: str = "generateContent") -> httpx.Response:
    return emulator.admin.post(f"/v1beta/models/{MODEL}:{method}", json=body, headers={"x-goog-api-key": "k"})


@pytest.mark.parametrize(
    ("body", "name", "where"),
    [
        ({"contents": [{"parts": [{"text": "hi"}]}], "generationconfig": {}}, "generationconfig", ""),
        ({"contents": [{"parts": [{"text": "hi"}], "author": "me"}]}, "author", "contents[0]"),
        ({"contents": [{"parts": [{"text": "hi", "id": 1}]}]}, "id", "contents[0].parts[0]"),
        ({"contents": [{"parts": [{"text": "hi"}]}], "generationConfig": {"temprature": 0.2}}, "temprature",
         "generation_config"),
        ({"contents": [{"parts": [{"text": "hi"}]}], "safetySettings": [{"category": "X", "threshold": "Y",
                                                                          "method": "SEVERITY"}]},
         "method", "safety_settings[0]"),
    ],
)
def test_unknown_fields_are_400_naming_the_field_as_the_api_does(emulator, body: dict, name: str, where: str) -> None:
    response = _post(emulator, body)

    assert response.status_code == 400
    error = response.json()["error"]
    at = f" at '{where}'" if where else ""
    assert error["message"] == f'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.'
    assert error["status"] == "INVALID_ARGUMENT"
    violation = error["details"][0]
    assert violation["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    assert violation["fieldViolations"][0]["description"] == error["message"]


def test_the_unknown_field_check_reaches_count_tokens(emulator) -> None:
    response = _post(emulator, {"contents": [{"parts": [{"text": "hi"}]}], "extra": 1}, method="countTokens")

    assert response.status_code == 400
    assert 'Unknown name "extra"' in response.json()["error"]["message"]


def test_snake_case_names_are_accepted_as_the_api_accepts_them(emulator) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "hi there"}]}],
            "system_instruction": {"parts": [{"text": "be brief"}]},
            "generation_config": {"max_output_tokens": 3, "stop_sequences": ["zzz"]}}
    response = _post(emulator, body)

    assert response.status_code == 200
    answer = response.json()
    assert answer["candidates"][0]["finishReason"] == "MAX_TOKENS"
    # "hi there" + "be brief": 4 words, two turns of 3 -- the system instruction was read.
    assert answer["usageMetadata"]["promptTokenCount"] == 10


def test_every_config_the_sdk_builds_is_accepted(client: genai.Client) -> None:
    config = types.GenerateContentConfig(
        system_instruction="s", temperature=0.2, top_p=0.9, top_k=40, candidate_count=1, max_output_tokens=500,
        stop_sequences=["END"], response_mime_type="text/plain", seed=1, presence_penalty=0.1,
        frequency_penalty=0.1, safety_settings=[types.SafetySetting(category="HARM_CATEGORY_HARASSMENT",
                                                                    threshold="BLOCK_ONLY_HIGH")],
        thinking_config=types.ThinkingConfig(thinking_level="LOW"))
    contents = [types.Content(role="user", parts=[types.Part(text="hello", thought=False)])]

    assert client.models.generate_content(model=MODEL, contents=contents, config=config).text


def test_json_mime_type_answers_a_json_document(client: genai.Client) -> None:
    config = types.GenerateContentConfig(response_mime_type="application/json")
    streamed = "".join(c.text or "" for c in client.models.generate_content_stream(
        model=MODEL, contents="describe a river", config=config))
    unary = client.models.generate_content(model=MODEL, contents="describe a river", config=config)
    plain = client.models.generate_content(model=MODEL, contents="describe a river")

    assert json.loads(streamed) == json.loads(unary.text) == {"text": plain.text}
    assert unary.usage_metadata.candidates_token_count == count_words(unary.text)


def test_an_unknown_snake_case_name_is_reported_as_sent(emulator) -> None:
    response = _post(emulator, {"contents": [{"parts": [{"text": "hi"}]}], "generation_configg": {}})

    assert response.json()["error"]["message"] == (
        'Invalid JSON payload received. Unknown name "generation_configg": Cannot find field.')
