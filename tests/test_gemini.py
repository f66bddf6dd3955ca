"""worker.run.gemini through the real google-genai SDK against the emulator: results and error translation."""

from __future__ import annotations

import threading

import pytest
from helpers import tag
from procs import EmulatorProcess

from worker.core.errors import (
    InvalidRequest,
    QuotaExhausted,
    RateLimited,
    SafetyBlocked,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from worker.core.request import JobRequest
from worker.core.settings import Settings
from worker.run.gemini import GeminiClient, PerThreadTransport, quota_details

MODEL = "gemini-2.5-flash"


@pytest.fixture(scope="module")
def gemini(settings: Settings) -> GeminiClient:
    """A client with a short timeout, as a worker builds it."""
    return GeminiClient(settings.replace(gemini_timeout=1.5, worker_concurrency=4))


def spec(prompt: str, **fields: object) -> dict:  # type: ignore[type-arg]
    """A stored call spec for ``prompt``."""
    return JobRequest.model_validate({"prompt": prompt, **fields}).call_spec()


def test_generate_streams_text_and_reports_usage(gemini: GeminiClient) -> None:
    pieces: list[tuple[str, bool]] = []
    generation = gemini.generate(MODEL, spec(f"hello there {tag()}"),
                                 on_delta=lambda delta, last: pieces.append((delta, last)))
    assert len(pieces) > 1, "the answer arrives in several chunks"
    assert "".join(delta for delta, _ in pieces) == generation.text
    assert [last for _, last in pieces] == [False] * (len(pieces) - 1) + [True], "only the last chunk says so"
    assert generation.finish_reason == "STOP"
    assert generation.prompt_tokens > 0 and generation.output_tokens > 0
    assert generation.total_tokens == generation.prompt_tokens + generation.output_tokens
    assert generation.model_version and generation.ttft_ms is not None


def test_the_same_prompt_gives_the_same_text(gemini: GeminiClient) -> None:
    prompt = f"determinism {tag()}"
    assert gemini.generate(MODEL, spec(prompt)).text == gemini.generate(MODEL, spec(prompt)).text


def test_generation_config_reaches_gemini(gemini: GeminiClient) -> None:
    generation = gemini.generate(MODEL, spec(f"limit {tag()}", generation_config={"max_output_tokens": 3}))
    assert generation.finish_reason == "MAX_TOKENS"
    assert generation.output_tokens == 3


def test_system_instruction_and_contents_are_sent(gemini: GeminiClient) -> None:
    request = JobRequest.model_validate({
        "contents": [{"role": "user", "parts": [{"text": "one two"}]}, {"role": "model", "parts": [{"text": "x"}]},
                     {"role": "user", "parts": [{"text": "three"}]}],
        "system_instruction": "be brief please",
    }).call_spec()
    with_system = gemini.generate(MODEL, request)
    without = gemini.generate(MODEL, {"contents": request["contents"]})
    assert with_system.prompt_tokens > without.prompt_tokens


def test_count_tokens(gemini: GeminiClient) -> None:
    assert gemini.count_tokens(MODEL, spec("one two three four")) > 0


def test_a_429_carries_retry_info_as_a_delay(gemini: GeminiClient, emu: EmulatorProcess) -> None:
    marker = tag()
    emu.fault(marker, "quota_rpm", retry_delay_s=7)
    with pytest.raises(RateLimited) as caught:
        gemini.generate(MODEL, spec(f"busy {marker}"))
    assert caught.value.retry_after == 7.0
    assert caught.value.quota_id == "GenerateRequestsPerMinutePerProjectPerModel"


def test_a_429_without_retry_info_has_no_delay(gemini: GeminiClient, emu: EmulatorProcess) -> None:
    marker = tag()
    emu.fault(marker, "quota_rpm", retry_delay_s=None)
    with pytest.raises(RateLimited) as caught:
        gemini.generate(MODEL, spec(f"busy {marker}"))
    assert caught.value.retry_after is None


def test_a_tokens_per_minute_429_is_rate_limited(gemini: GeminiClient, emu: EmulatorProcess) -> None:
    marker = tag()
    emu.fault(marker, "quota_tpm", retry_delay_s=2)
    with pytest.raises(RateLimited) as caught:
        gemini.generate(MODEL, spec(f"tokens {marker}"))
    assert caught.value.quota_id == "GenerateContentInputTokensPerModelPerMinute"


def test_a_per_day_429_is_quota_exhausted(gemini: GeminiClient, emu: EmulatorProcess) -> None:
    marker = tag()
    emu.fault(marker, "quota_rpd")
    with pytest.raises(QuotaExhausted) as caught:
        gemini.generate(MODEL, spec(f"daily {marker}"))
    assert caught.value.quota_id == "GenerateRequestsPerDayPerProjectPerModel"
    assert caught.value.error_type == "quota_exhausted"


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retryable(gemini: GeminiClient, emu: EmulatorProcess, status: int) -> None:
    marker = tag()
    emu.fault(marker, "status", status=status)
    with pytest.raises(UpstreamUnavailable) as caught:
        gemini.generate(MODEL, spec(f"down {marker}"))
    assert caught.value.status_code == status


def test_a_400_is_an_invalid_request(gemini: GeminiClient, emu: EmulatorProcess) -> None:
    marker = tag()
    emu.fault(marker, "status", status=400)
    with pytest.raises(InvalidRequest):
        gemini.generate(MODEL, spec(f"bad {marker}"))


def test_an_unknown_model_is_an_invalid_request(gemini: GeminiClient) -> None:
    with pytest.raises(InvalidRequest) as caught:
        gemini.generate("gemini-0-nonexistent", spec("hi"))
    assert caught.value.status_code == 404


def test_a_hang_times_out(gemini: GeminiClient, emu: EmulatorProcess) -> None:
    marker = tag()
    emu.fault(marker, "hang", hang_s=5)
    with pytest.raises(UpstreamTimeout) as caught:
        gemini.generate(MODEL, spec(f"hang {marker}"))
    assert caught.value.error_type == "timeout"


def test_an_error_in_the_middle_of_a_stream_is_retryable(gemini: GeminiClient, emu: EmulatorProcess) -> None:
    marker = tag()
    emu.fault(marker, "midstream")
    deltas: list[str] = []
    with pytest.raises(UpstreamUnavailable):
        gemini.generate(MODEL, spec(f"cut {marker}"), on_delta=lambda delta, _last: deltas.append(delta))
    assert deltas, "some text arrived before the error"


def test_a_malformed_answer_is_retryable(gemini: GeminiClient, emu: EmulatorProcess) -> None:
    marker = tag()
    emu.fault(marker, "malformed")
    with pytest.raises(UpstreamUnavailable):
        gemini.generate(MODEL, spec(f"garbage {marker}"))


def test_safety_blocks_are_typed(gemini: GeminiClient, emu: EmulatorProcess) -> None:
    for kind in ("safety_prompt", "safety_candidate"):
        marker = tag()
        emu.fault(marker, kind)
        with pytest.raises(SafetyBlocked):
            gemini.generate(MODEL, spec(f"unsafe {marker}"))


def test_a_refused_connection_is_retryable(settings: Settings) -> None:
    client = GeminiClient(settings.replace(gemini_base_url="http://127.0.0.1:1", worker_concurrency=1))
    with pytest.raises(UpstreamUnavailable):
        client.generate(MODEL, spec("hi"))


def test_quota_details_reads_retry_info_and_quota_ids_in_any_order() -> None:
    body = {"error": {"code": 429, "details": [
        {"@type": "type.googleapis.com/google.rpc.Help", "links": []},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "26s"},
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
         "violations": [{"quotaId": "GenerateRequestsPerMinutePerProjectPerModel"}]},
    ]}}
    assert quota_details(body) == (26.0, ["GenerateRequestsPerMinutePerProjectPerModel"])
    assert quota_details({"error": {"details": "nonsense"}}) == (None, [])
    assert quota_details("not a dict") == (None, [])


def test_each_thread_calls_through_its_own_small_pool(settings: Settings) -> None:
    client = GeminiClient(settings)
    transport = client._client._api_client._httpx_client._transport  # noqa: SLF001 - the SDK's own client
    assert isinstance(transport, PerThreadTransport)

    def call() -> None:
        for _ in range(2):  # the second call reuses the thread's pool
            assert client.generate(MODEL, spec(f"pool {tag()}")).text

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    pools = list(transport._transports)  # noqa: SLF001
    assert len(pools) == 3, "one pool per calling thread"
    assert all(len(pool._pool.connections) == 1 for pool in pools), "each thread reused its one connection"  # noqa: SLF001
    client.close()
    assert transport._transports == [] and all(pool._pool.connections == [] for pool in pools)  # noqa: SLF001
