"""streamGenerateContent?alt=sse: framing, pacing and mid-stream faults, through the real SDK."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from google import genai
from google.genai import errors, types

MODEL = "gemini-3.5-flash"


def test_stream_yields_chunks_with_usage_and_finish_on_the_last(emulator, client: genai.Client) -> None:
    emulator.configure(chunk_tokens=4)
    whole = client.models.generate_content(model=MODEL, contents="stream me").text
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="stream me"))

    assert len(chunks) >= 5
    assert "".join(chunk.text for chunk in chunks) == whole
    assert all(chunk.usage_metadata is None for chunk in chunks[:-1])
    assert all(chunk.candidates[0].finish_reason is None for chunk in chunks[:-1])
    last = chunks[-1]
    assert last.candidates[0].finish_reason == types.FinishReason.STOP
    assert last.usage_metadata.prompt_token_count == 5
    assert last.usage_metadata.candidates_token_count == len(whole.split())
    assert all(chunk.model_version == "gemini-3.5-flash-emu-001" for chunk in chunks)


def test_frames_are_data_lines_with_crlf_framing(emulator) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "raw frames"}]}]}
    response = emulator.admin.post(
        f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse", json=body, headers={"x-goog-api-key": "k"}
    )

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    frames = response.content.split(b"\r\n\r\n")
    assert frames[-1] == b""
    assert all(frame.startswith(b"data: {") and b"\n" not in frame for frame in frames[:-1])


def test_stream_is_paced_by_ttft_and_tokens_per_second(emulator, client: genai.Client) -> None:
    emulator.configure(ttft_ms=300, tokens_per_second=40, output_tokens=12, chunk_tokens=4)
    started = time.monotonic()
    arrivals = []
    for _ in client.models.generate_content_stream(model=MODEL, contents="pace"):
        arrivals.append(time.monotonic() - started)

    # Three chunks due at 0.3, 0.4 and 0.5 s.
    assert len(arrivals) == 3
    assert 0.28 <= arrivals[0] < 0.6
    assert 0.48 <= arrivals[-1] < 1.0


def test_unary_call_takes_latency_plus_ttft_plus_generation_time(emulator, client: genai.Client) -> None:
    emulator.configure(latency_ms=100, ttft_ms=100, tokens_per_second=50, output_tokens=10)
    started = time.monotonic()
    client.models.generate_content(model=MODEL, contents="slow")

    assert 0.38 <= time.monotonic() - started < 1.0


def test_stream_max_tokens_reports_partial_text(client: genai.Client) -> None:
    config = types.GenerateContentConfig(max_output_tokens=6)
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="cap me", config=config))

    assert len("".join(chunk.text for chunk in chunks).split()) == 6
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.MAX_TOKENS


@pytest.mark.parametrize("fmt", ["raw", "sse"])
def test_midstream_error_raises_server_error_after_some_chunks(emulator, client: genai.Client, fmt: str) -> None:
    emulator.configure(midstream_error_format=fmt)
    emulator.faults({"match": "[[tag:mid]]", "kind": "midstream", "status": 503})
    received = []
    with pytest.raises(errors.ServerError) as caught:
        for chunk in client.models.generate_content_stream(model=MODEL, contents="break [[tag:mid]]"):
            received.append(chunk.text)

    assert len(received) >= 1
    assert caught.value.code == 503
    assert caught.value.status == "UNAVAILABLE"
    assert emulator.requests(tag="mid")[0]["outcome"] == "midstream_error"


def test_midstream_error_raises_in_the_async_sdk_too(emulator, make_client: Callable[..., genai.Client]) -> None:
    emulator.faults({"match": "async-mid", "kind": "midstream"})
    client = make_client()

    async def consume() -> list[str]:
        received: list[str] = []
        async for chunk in await client.aio.models.generate_content_stream(model=MODEL, contents="async-mid"):
            received.append(chunk.text)
        return received

    with pytest.raises(errors.ServerError) as caught:
        asyncio.run(consume())
    assert caught.value.code == 500 and caught.value.status == "INTERNAL"


def test_quota_429_before_the_first_frame_raises_on_call(emulator, client: genai.Client) -> None:
    emulator.faults({"match": "stream-429", "kind": "quota_rpm", "retry_delay_s": 4})

    with pytest.raises(errors.ClientError) as caught:
        list(client.models.generate_content_stream(model=MODEL, contents="stream-429"))
    assert caught.value.code == 429
    assert caught.value.status == "RESOURCE_EXHAUSTED"


def test_malformed_stream_frame_raises_unknown_api_response_error(emulator, client: genai.Client) -> None:
    emulator.faults({"match": "bad-frame", "kind": "malformed"})
    received = []
    with pytest.raises(errors.UnknownApiResponseError):
        for chunk in client.models.generate_content_stream(model=MODEL, contents="bad-frame"):
            received.append(chunk.text)

    assert len(received) == 1


def test_stream_without_alt_sse_is_refused(emulator) -> None:
    body = {"contents": [{"parts": [{"text": "x"}]}]}
    response = emulator.admin.post(
        f"/v1beta/models/{MODEL}:streamGenerateContent", json=body, headers={"x-goog-api-key": "k"}
    )

    assert response.status_code == 400
