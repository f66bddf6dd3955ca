"""Pure-logic units: text generation, token rule, request validation, config sources."""

from __future__ import annotations

import pytest

from emulator.config import EmulatorConfig
from emulator.request import InvalidRequest, parse_count_tokens, parse_generate
from emulator.textgen import (
    count_prompt_tokens,
    find_tag,
    generate_text,
    natural_length,
    plan_generation,
    split_chunks,
)


def test_token_rule_is_words_plus_three_per_turn_not_chars_over_four() -> None:
    texts = ["Summarise the following paragraph about photosynthesis", "Sure"]

    assert count_prompt_tokens(texts, turns=2) == 6 + 1 + 6
    assert count_prompt_tokens(texts, turns=2) != sum(len(t) for t in texts) // 4


def test_natural_length_is_between_20_and_60_and_stable() -> None:
    lengths = {natural_length("gemini-3.5-flash", f"p{i}") for i in range(200)}

    assert min(lengths) >= 20 and max(lengths) <= 60 and len(lengths) > 20
    assert generate_text("models/gemini-3.5-flash", "x", 30) == generate_text("gemini-3.5-flash", "x", 30)


@pytest.mark.parametrize("chunk_tokens", [1, 3, 4, 100])
def test_chunks_concatenate_to_the_text(chunk_tokens: int) -> None:
    text = generate_text("m", "chunks", 23)

    chunks = split_chunks(text, chunk_tokens)

    assert "".join(chunks) == text
    assert all(len(c.split()) <= chunk_tokens for c in chunks)


def test_stop_sequence_wins_over_max_tokens_when_it_comes_first() -> None:
    full = generate_text("m", "p", 40)
    stop = full.split()[2]

    gen = plan_generation("m", "p", forced_tokens=40, max_output_tokens=10, stop_sequences=[stop])

    assert gen.finish_reason == "STOP"
    assert gen.text == full[: full.index(stop)]


def test_find_tag() -> None:
    assert find_tag("a [[tag:job-42]] b [[tag:other]]") == "job-42"
    assert find_tag("no tag") is None


def test_parse_counts_system_instruction_and_accepts_count_tokens_wrapper() -> None:
    body = (
        b'{"contents": [{"role": "user", "parts": [{"text": "a b"}]}], "systemInstruction": {"parts": [{"text": "c"}]}}'
    )
    wrapped = b'{"generateContentRequest": {"contents": [{"parts": [{"text": "a b"}]}]}}'

    assert parse_generate(body).prompt_tokens == 3 + 6
    assert parse_count_tokens(wrapped).prompt_tokens == 5


@pytest.mark.parametrize(
    "body",
    [
        b'{"contents": [{"role": "robot", "parts": [{"text": "x"}]}]}',
        b'{"contents": [{"parts": []}]}',
        b'{"contents": [{"parts": [{}]}]}',
        b'{"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"maxOutputTokens": "many"}}',
        b'{"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"stopSequences": ["a","b","c","d","e","f"]}}',
        b'{"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"responseMimeType": "image/png"}}',
    ],
)
def test_invalid_bodies(body: bytes) -> None:
    with pytest.raises(InvalidRequest):
        parse_generate(body)


def test_config_from_env_and_flags() -> None:
    env = {"EMULATOR_RPM": "10", "EMULATOR_API_KEYS": "a, b", "EMULATOR_TTFT_MS": "250", "OTHER": "x"}

    argv = ["--rpm", "20", "--tokens-per-second", "50", "--models", "m1,m2", "--omit-retry-info"]
    config = EmulatorConfig.from_sources(env, argv)

    assert (config.rpm, config.ttft_ms, config.tokens_per_second) == (20, 250.0, 50.0)
    assert config.api_keys == ("a", "b") and config.models == ("m1", "m2") and config.omit_retry_info
    assert "a," not in config.log_summary() and "api_keys=<2 configured>" in config.log_summary()
