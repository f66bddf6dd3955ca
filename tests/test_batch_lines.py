"""Mapping batch lines (gemq requests and Gemini Batch Mode lines) to job requests: pure logic."""

from __future__ import annotations

from typing import Any

import pytest

from web.batch_lines import Defaults, LineInvalid, parse_line, snake
from worker.core.job import Priority

LOW = Defaults(model=None, priority=Priority.low)


def gemini(request: dict[str, Any], **line: Any) -> dict[str, Any]:
    """A Gemini batch line."""
    return {"request": request, **line}


def text(value: str) -> dict[str, Any]:
    """One user turn."""
    return {"parts": [{"text": value}]}


def test_a_gemini_line_in_camel_case_maps_every_supported_field() -> None:
    line = gemini({
        "contents": [text("hi"), {"role": "model", "parts": [{"text": "hello"}]}, text("more")],
        "systemInstruction": {"role": "system", "parts": [{"text": "be "}, {"text": "brief"}]},
        "generationConfig": {"temperature": 0.3, "topP": 0.9, "topK": 40, "maxOutputTokens": 64,
                             "stopSequences": ["END"], "responseMimeType": "application/json", "candidateCount": 1},
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}],
        "model": "models/gemini-2.5-pro",
    }, key="row-1")

    key, request = parse_line(line, LOW)

    assert key == "row-1"
    assert request.call_spec() == {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}, {"role": "model", "parts": [{"text": "hello"}]},
                     {"role": "user", "parts": [{"text": "more"}]}],
        "system_instruction": "be brief",
        "generation_config": {"temperature": 0.3, "top_p": 0.9, "top_k": 40, "max_output_tokens": 64,
                              "stop_sequences": ["END"], "response_mime_type": "application/json"},
        "safety_settings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}],
    }
    assert (request.model, request.priority) == ("gemini-2.5-pro", Priority.low)


def test_snake_case_gemini_fields_are_accepted_too() -> None:
    _, request = parse_line(gemini({"contents": [text("x")], "system_instruction": text("sys"),
                                    "generation_config": {"max_output_tokens": 8}}), LOW)
    assert request.system_instruction == "sys" and request.generation_config is not None
    assert request.generation_config.max_output_tokens == 8


@pytest.mark.parametrize(("line", "message"), [
    (gemini({"contents": [{"parts": [{"fileData": {"fileUri": "gs://x"}}]}]}),
     "request.contents[0].parts[0].fileData: only text parts are supported"),
    (gemini({"contents": [text("x")], "toolConfig": {}}), "request.toolConfig: tools are not supported"),
    (gemini({"contents": [text("x")], "cachedContent": "c"}), "request.cachedContent: cached content is not supported"),
    (gemini({"contents": [text("x")], "generationConfig": {"seed": 1}}),
     "request.generationConfig.seed: not supported by gemq"),
    (gemini({"contents": [text("x")], "generationConfig": {"candidateCount": 3}}),
     "request.generationConfig.candidateCount: only one candidate per request is supported"),
    (gemini({"contents": [text("x")], "frobnicate": 1}), "request.frobnicate: unknown GenerateContentRequest field"),
    (gemini({"contents": [{"parts": [{"text": "x"}], "extra": 1}]}),
     "request.contents[0].extra: unknown Content field"),
    (gemini({"systemInstruction": text("only")}), "request.contents is required"),
    (gemini({"contents": "x"}), "request.contents must be a list"),
    (gemini("x"), "request must be an object"),
    (gemini({"contents": [text("x")]}, metadata={"a": "b"}), "unknown field(s) next to 'request': metadata"),
    ({"prompt": "x", "webhook_url": "https://a.example"}, "webhook_url belongs to the batch, not to its lines"),
    ({"prompt": "x", "key": ""}, "key must be a string of 1 to 512 characters"),
    ([1, 2], "a line must be a JSON object"),
])
def test_what_gemq_cannot_honour_is_refused_with_the_field_named(line: Any, message: str) -> None:
    with pytest.raises(LineInvalid) as refused:
        parse_line(line, LOW)
    assert str(refused.value) == message


def test_invalid_values_are_reported_by_field() -> None:
    with pytest.raises(LineInvalid, match=r"^generation_config.top_k: Input should be greater than or equal to 1"):
        parse_line(gemini({"contents": [text("x")], "generationConfig": {"topK": 0}}), LOW)
    with pytest.raises(LineInvalid, match="give exactly one of 'prompt' and 'contents'"):
        parse_line({"prompt": "x", "contents": [text("y")]}, LOW)


def test_lines_take_the_batch_defaults_unless_they_say_otherwise() -> None:
    defaults = Defaults(model="gemini-2.5-pro", priority=Priority.high)
    _, plain = parse_line({"prompt": "x"}, defaults)
    _, own = parse_line({"prompt": "x", "model": "gemini-2.5-flash", "priority": "normal"}, defaults)
    assert (plain.model, plain.priority) == ("gemini-2.5-pro", Priority.high)
    assert (own.model, own.priority) == ("gemini-2.5-flash", Priority.normal)


def test_camel_case_becomes_snake_case() -> None:
    assert [snake(n) for n in ("maxOutputTokens", "topP", "contents", "top_k")] == [
        "max_output_tokens", "top_p", "contents", "top_k"]
