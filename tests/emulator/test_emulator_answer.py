"""The generate path as plain functions (what Batch Mode calls per line), without HTTP, quota or faults."""

from __future__ import annotations

from emulator.config import EmulatorConfig
from emulator.generate import count_tokens, generate_content
from emulator.state import EmulatorState

LINE = {"contents": [{"role": "user", "parts": [{"text": "what is after 1?"}]}],
        "generationConfig": {"responseMimeType": "application/json",
                             "responseJsonSchema": {"type": "object", "properties": {"n": {"type": "integer"}}},
                             "thinkingConfig": {"thinking_level": "LOW"}}}


def _state(**knobs: object) -> EmulatorState:
    return EmulatorState(EmulatorConfig(**knobs))


def test_a_batch_line_gets_the_same_answer_as_an_online_call() -> None:
    state = _state()

    first = generate_content(state, "models/gemini-3.5-flash", LINE)
    second = generate_content(state, "gemini-3.5-flash", LINE)

    assert first.status == 200
    assert first.body["candidates"] == second.body["candidates"]
    assert first.body["usageMetadata"]["thoughtsTokenCount"] == 128
    assert first.prompt_tokens == 4 + 3 and first.output_tokens == first.body["usageMetadata"]["candidatesTokenCount"]


def test_a_bad_line_gets_its_error_envelope() -> None:
    state = _state()

    unknown = generate_content(state, "gemini-2.5-flash", LINE)
    invalid = generate_content(state, "gemini-3.5-flash", {"contents": []})
    no_cache = generate_content(state, "gemini-3.5-flash", {**LINE, "cachedContent": "cachedContents/x"})

    assert (unknown.status, unknown.body["error"]["status"]) == (404, "NOT_FOUND")
    assert (invalid.status, invalid.body["error"]["status"]) == (400, "INVALID_ARGUMENT")
    assert (no_cache.status, no_cache.body["error"]["status"]) == (403, "PERMISSION_DENIED")


def test_count_tokens_is_a_plain_function_too() -> None:
    result = count_tokens(_state(), "gemini-3.5-flash", {"contents": LINE["contents"]})

    assert result.status == 200 and result.body == {"totalTokens": 7, "promptTokensDetails": [
        {"modality": "TEXT", "tokenCount": 7}]}


def test_the_file_lookup_hook_lets_file_parts_count_their_bytes() -> None:
    state = _state()
    pdf = b"%PDF" + b"/Type /Page " * 4
    state.file_lookup = lambda uri: ("application/pdf", pdf) if uri.endswith("files/abc") else None
    part = {"fileData": {"fileUri": "https://generativelanguage.googleapis.com/v1beta/files/abc"}}

    result = count_tokens(state, "gemini-3.5-flash", {"contents": [{"parts": [part]}]})

    assert result.body["promptTokensDetails"][1] == {"modality": "DOCUMENT", "tokenCount": 4 * 560}
