"""Service tiers: the served tier is reported, Flex is slower and sheddable (503), Priority may downgrade."""

from __future__ import annotations

import time

import pytest
from google import genai
from google.genai import errors, types

from emulator.tiers import FLEX_SHED_MESSAGE

MODEL = "gemini-3.8-flash"


def _ask(client: genai.Client, tier: str | None, prompt: str = "tiered") -> types.GenerateContentResponse:
    config = types.GenerateContentConfig(service_tier=tier) if tier else None
    return client.models.generate_content(model=MODEL, contents=prompt, config=config)


@pytest.mark.parametrize("tier", [None, "standard", "flex", "priority"])
def test_the_served_tier_is_in_the_header_and_the_usage(emulator, client: genai.Client, tier: str | None) -> None:
    response = _ask(client, tier)

    assert response.sdk_http_response.headers["x-gemini-service-tier"] == (tier or "standard")
    entry = emulator.requests()[-1]
    assert entry["service_tier"] == tier
    body = emulator.admin.post(f"/v1beta/models/{MODEL}:generateContent", headers={"x-goog-api-key": "k"}, json={
        "contents": [{"parts": [{"text": "x"}]}], **({"serviceTier": tier} if tier else {})}).json()
    assert body["usageMetadata"]["serviceTier"] == (tier or "standard")


def test_the_stream_reports_the_tier_too(client: genai.Client) -> None:
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="x",
                                                        config=types.GenerateContentConfig(service_tier="flex")))

    assert chunks[0].sdk_http_response.headers["x-gemini-service-tier"] == "flex"


def test_flex_is_slower(emulator, client: genai.Client) -> None:
    emulator.configure(latency_ms=150, flex_latency_factor=3.0, flex_extra_ms=100)

    started = time.monotonic()
    _ask(client, "standard")
    standard = time.monotonic() - started
    started = time.monotonic()
    _ask(client, "flex")
    flex = time.monotonic() - started

    assert 0.15 <= standard < 0.45
    assert flex >= 0.15 * 3 + 0.1


def test_a_shed_flex_call_gets_the_apis_503(emulator, client: genai.Client) -> None:
    emulator.configure(flex_shed_rate=1.0)

    with pytest.raises(errors.ServerError) as caught:
        _ask(client, "flex")
    standard = _ask(client, "standard")

    assert caught.value.details == {"error": {"code": 503, "message": FLEX_SHED_MESSAGE, "status": "UNAVAILABLE"}}
    assert standard.text
    assert [e["outcome"] for e in emulator.requests()] == ["flex_shed", "ok"]


def test_a_scripted_flex_shed_hits_only_flex_calls_and_does_not_count(emulator, client: genai.Client) -> None:
    emulator.faults({"match": "shed me", "kind": "flex_shed", "times": 1})

    standard = _ask(client, None, "shed me")
    with pytest.raises(errors.ServerError) as caught:
        _ask(client, "flex", "shed me")
    again = _ask(client, "flex", "shed me")

    assert standard.text and again.text and caught.value.code == 503
    assert emulator.admin.get("/_emulator/quota").json()[MODEL]["rpm"] == 2


def test_flex_counts_toward_the_same_quota_as_standard(emulator, client: genai.Client) -> None:
    emulator.configure(rpm=2)

    _ask(client, "standard")
    _ask(client, "flex")
    with pytest.raises(errors.ClientError) as caught:
        _ask(client, "flex")

    assert caught.value.code == 429


def test_priority_over_its_limit_is_downgraded_to_standard(emulator, client: genai.Client) -> None:
    emulator.configure(priority_downgrade_rate=1.0)

    response = _ask(client, "priority")

    assert response.sdk_http_response.headers["x-gemini-service-tier"] == "standard"
