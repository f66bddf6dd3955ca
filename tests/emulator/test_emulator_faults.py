"""Scripted and random faults: 5xx, hangs, malformed bodies, safety blocks."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx2
import pytest
from google import genai
from google.genai import errors, types

MODEL = "gemini-3.5-flash"


def test_scripted_503_twice_then_success(emulator, client: genai.Client) -> None:
    emulator.faults({"match": "[[tag:flaky]]", "kind": "status", "status": 503, "times": 2})

    for _ in range(2):
        with pytest.raises(errors.ServerError) as caught:
            client.models.generate_content(model=MODEL, contents="retry me [[tag:flaky]]")
        assert caught.value.code == 503
        assert caught.value.status == "UNAVAILABLE"
        assert caught.value.message == "The model is overloaded. Please try again later."
    response = client.models.generate_content(model=MODEL, contents="retry me [[tag:flaky]]")

    assert response.text
    assert [e["status"] for e in emulator.requests(tag="flaky")] == [503, 503, 200]


def test_faults_only_hit_matching_prompts(emulator, client: genai.Client) -> None:
    emulator.faults({"match": "poison", "kind": "status", "status": 500})

    assert client.models.generate_content(model=MODEL, contents="harmless").text
    with pytest.raises(errors.ServerError) as caught:
        client.models.generate_content(model=MODEL, contents="poison")
    assert caught.value.status == "INTERNAL"
    assert emulator.admin.get("/_emulator/faults").json() == {"faults": []}


def test_scripted_504_and_400_statuses(emulator, client: genai.Client) -> None:
    emulator.faults(
        {"match": "s504", "kind": "status", "status": 504},
        {"match": "s400", "kind": "status", "status": 400},
    )

    with pytest.raises(errors.ServerError) as server:
        client.models.generate_content(model=MODEL, contents="s504")
    with pytest.raises(errors.ClientError) as client_error:
        client.models.generate_content(model=MODEL, contents="s400")
    assert (server.value.code, server.value.status) == (504, "DEADLINE_EXCEEDED")
    assert (client_error.value.code, client_error.value.status) == (400, "INVALID_ARGUMENT")


def test_hang_makes_the_sdk_time_out(emulator, make_client: Callable[..., genai.Client]) -> None:
    emulator.faults({"match": "[[tag:hang]]", "kind": "hang", "hang_s": 5})
    client = make_client(timeout_ms=400)

    with pytest.raises(httpx2.ReadTimeout):
        client.models.generate_content(model=MODEL, contents="wait [[tag:hang]]")
    assert emulator.requests(tag="hang")[0]["outcome"] == "hang"


def test_malformed_unary_body_makes_the_sdk_raise_json_decode_error(emulator, client: genai.Client) -> None:
    emulator.faults({"match": "garble", "kind": "malformed"})

    with pytest.raises(json.JSONDecodeError):
        client.models.generate_content(model=MODEL, contents="garble")


def test_blocked_prompt_has_no_text(emulator, client: genai.Client) -> None:
    emulator.faults({"match": "unsafe", "kind": "safety_prompt", "times": 2})
    response = client.models.generate_content(model=MODEL, contents="unsafe")
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="unsafe"))

    assert response.text is None
    assert response.prompt_feedback.block_reason == types.BlockedReason.SAFETY
    assert not response.candidates
    assert len(chunks) == 1 and chunks[0].text is None
    assert chunks[0].prompt_feedback.block_reason == types.BlockedReason.SAFETY


def test_safety_stopped_candidate_has_no_text(emulator, client: genai.Client) -> None:
    emulator.faults({"match": "edgy", "kind": "safety_candidate", "times": 2})
    response = client.models.generate_content(model=MODEL, contents="edgy")
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="edgy"))

    assert response.text is None
    assert response.candidates[0].finish_reason == types.FinishReason.SAFETY
    assert chunks[-1].text is None
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.SAFETY
    assert any(r.blocked for r in response.candidates[0].safety_ratings)


def test_random_errors_follow_the_rate_and_the_seed(emulator, client: genai.Client) -> None:
    emulator.configure(error_rate=0.5, seed=123)

    def run() -> list[int]:
        codes = []
        for i in range(40):
            try:
                client.models.generate_content(model=MODEL, contents=f"r{i}")
                codes.append(200)
            except errors.ServerError as exc:
                codes.append(exc.code)
        return codes

    first = run()
    emulator.configure(seed=124)
    emulator.configure(seed=123)
    second = run()

    assert first == second
    assert {500, 503, 200} == set(first)
    assert 10 <= first.count(200) <= 30


def test_random_safety_rate_one_blocks_everything(emulator, client: genai.Client) -> None:
    emulator.configure(safety_rate=1.0)

    assert all(client.models.generate_content(model=MODEL, contents=f"s{i}").text is None for i in range(6))
