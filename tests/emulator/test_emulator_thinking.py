"""Thinking: levels and budgets per model, thought tokens, thought summaries, thought signatures."""

from __future__ import annotations

import httpx
import pytest
from google import genai
from google.genai import types

from emulator.catalog import DYNAMIC_TOKENS, LEVEL_TOKENS

FLASH = "gemini-3.5-flash"
LITE_25 = "gemini-2.5-flash-lite"


def _thinking(**kwargs: object) -> types.GenerateContentConfig:
    return types.GenerateContentConfig(thinking_config=types.ThinkingConfig(**kwargs))


@pytest.mark.parametrize("level", ["MINIMAL", "LOW", "MEDIUM", "HIGH"])
def test_thoughts_token_count_follows_the_level(client: genai.Client, level: str) -> None:
    response = client.models.generate_content(model=FLASH, contents="think", config=_thinking(thinking_level=level))

    usage = response.usage_metadata
    assert (usage.thoughts_token_count or 0) == LEVEL_TOKENS[level]
    assert usage.total_token_count == usage.prompt_token_count + usage.candidates_token_count + LEVEL_TOKENS[level]


@pytest.mark.parametrize(("budget", "thoughts"), [(0, 0), (-1, DYNAMIC_TOKENS), (600, 600)])
def test_thoughts_token_count_follows_the_budget(client: genai.Client, budget: int, thoughts: int) -> None:
    response = client.models.generate_content(model=LITE_25, contents="think", config=_thinking(thinking_budget=budget))

    assert (response.usage_metadata.thoughts_token_count or 0) == thoughts


def test_no_thinking_config_thinks_only_when_the_knob_says_so(emulator, client: genai.Client) -> None:
    quiet = client.models.generate_content(model=FLASH, contents="default")
    emulator.configure(default_thinking=True)
    thinking = client.models.generate_content(model=FLASH, contents="default")

    assert quiet.usage_metadata.thoughts_token_count is None
    assert thinking.usage_metadata.thoughts_token_count == LEVEL_TOKENS["MEDIUM"]


def test_include_thoughts_puts_a_thought_part_before_the_answer(client: genai.Client) -> None:
    config = _thinking(thinking_level="HIGH", include_thoughts=True)

    response = client.models.generate_content(model=FLASH, contents="explain", config=config)
    chunks = list(client.models.generate_content_stream(model=FLASH, contents="explain", config=config))

    parts = response.candidates[0].content.parts
    assert parts[0].thought is True and parts[0].text
    assert not parts[-1].thought and response.text == parts[-1].text
    assert chunks[0].candidates[0].content.parts[0].thought is True
    assert "".join(c.text or "" for c in chunks) == response.text


def test_thoughts_share_max_output_tokens_with_the_answer(client: genai.Client) -> None:
    config = types.GenerateContentConfig(max_output_tokens=130, thinking_config=types.ThinkingConfig(
        thinking_level="LOW"))
    starved = types.GenerateContentConfig(max_output_tokens=100, thinking_config=types.ThinkingConfig(
        thinking_level="LOW"))

    response = client.models.generate_content(model=FLASH, contents="long answer", config=config)
    empty = client.models.generate_content(model=FLASH, contents="long answer", config=starved)

    assert response.usage_metadata.candidates_token_count == 2
    assert response.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert empty.text is None and empty.usage_metadata.thoughts_token_count == 100
    assert empty.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS


def _post(emulator, model: str, thinking: dict) -> httpx.Response:
    body = {"contents": [{"parts": [{"text": "hi"}]}], "generationConfig": {"thinkingConfig": thinking}}
    return emulator.admin.post(f"/v1beta/models/{model}:generateContent", json=body, headers={"x-goog-api-key": "k"})


@pytest.mark.parametrize(
    ("model", "thinking", "message"),
    [
        (LITE_25, {"thinkingLevel": "LOW"}, "Thinking level is not supported for this model."),
        ("gemini-3.8-flash", {"thinkingLevel": "MINIMAL"},
         "Thinking level MINIMAL is not supported for this model. Please retry with other thinking level."),
        ("gemini-3.8-flash", {"thinkingBudget": 0, "thinkingLevel": "LOW"},
         "You can only set only one of thinking budget and thinking level."),
        (FLASH, {"thinkingBudget": 0}, "Budget 0 is invalid. This model only works in thinking mode."),
        (LITE_25, {"thinkingBudget": 64000},
         "The thinking budget 64000 is invalid. Please choose a value between 512 and 24576."),
        (FLASH, {"thinkingLevel": "ULTRA"}, "Invalid value at 'generation_config.thinking_config.thinking_level' "
                                           '(type.googleapis.com/google.ai.generativelanguage.v1beta.ThinkingLevel), '
                                           '"ULTRA"'),
    ],
)
def test_out_of_range_thinking_is_refused_as_the_api_does(emulator, model: str, thinking: dict, message: str) -> None:
    response = _post(emulator, model, thinking)

    assert response.status_code == 400
    assert response.json()["error"]["message"] == message


def test_snake_case_thinking_config_as_the_sdk_sends_it_is_read(emulator) -> None:
    response = _post(emulator, FLASH, {"thinking_level": "HIGH", "include_thoughts": True})

    assert response.json()["usageMetadata"]["thoughtsTokenCount"] == LEVEL_TOKENS["HIGH"]


def test_gemini_3_answers_are_signed_and_the_signature_goes_back_unchanged(client: genai.Client) -> None:
    first = client.models.generate_content(model=FLASH, contents="first turn")
    answer = first.candidates[0].content
    history = [types.Content(role="user", parts=[types.Part(text="first turn")]), answer,
               types.Content(role="user", parts=[types.Part(text="second turn")])]

    second = client.models.generate_content(model=FLASH, contents=history)

    assert answer.parts[-1].thought_signature
    assert second.text


def test_a_signature_the_emulator_did_not_issue_is_corrupted(emulator) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "a"}]},
                         {"role": "model", "parts": [{"text": "b", "thoughtSignature": "Zm9yZ2VkIHNpZ25hdHVyZQ=="}]},
                         {"role": "user", "parts": [{"text": "c"}]}]}
    placeholder = {"contents": [{"role": "user", "parts": [{"text": "a"}]}, {"role": "model", "parts": [
        {"text": "b", "thoughtSignature": "skip_thought_signature_validator"}]}, {"role": "user", "parts": [
            {"text": "c"}]}]}

    forged = emulator.admin.post(f"/v1beta/models/{FLASH}:generateContent", json=body, headers={"x-goog-api-key": "k"})
    skipped = emulator.admin.post(f"/v1beta/models/{FLASH}:generateContent", json=placeholder,
                                  headers={"x-goog-api-key": "k"})

    assert forged.status_code == 400 and forged.json()["error"]["message"] == "Corrupted thought signature."
    assert skipped.status_code == 200


def test_bad_base64_in_a_signature_is_400(emulator) -> None:
    body = {"contents": [{"role": "model", "parts": [{"text": "b", "thoughtSignature": "!!!"}]},
                         {"role": "user", "parts": [{"text": "c"}]}]}

    response = emulator.admin.post(f"/v1/models/{FLASH}:generateContent", json=body, headers={"x-goog-api-key": "k"})

    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith(
        "Invalid value at 'contents[0].parts[0].thought_signature' (TYPE_BYTES), Base64 decoding failed for")
