"""The emulator's RPM/TPM/RPD quota: 429 envelopes through the SDK, and window arithmetic."""

from __future__ import annotations

from datetime import datetime

import pytest
from google import genai
from google.genai import errors

from emulator.quota import PACIFIC, Limits, QuotaTracker, seconds_to_pacific_midnight

MODEL = "gemini-3.5-flash"


def _detail(exc: errors.APIError, kind: str) -> dict:
    matches = [d for d in exc.details["error"]["details"] if d["@type"] == f"type.googleapis.com/google.rpc.{kind}"]
    assert len(matches) <= 1
    return matches[0] if matches else {}


def _retry_seconds(exc: errors.APIError) -> int:
    delay = _detail(exc, "RetryInfo")["retryDelay"]
    assert delay.endswith("s")
    return int(delay[:-1])


def test_rpm_quota_answers_429_with_retry_info_and_quota_failure(emulator, client: genai.Client) -> None:
    emulator.configure(rpm=3)
    for i in range(3):
        client.models.generate_content(model=MODEL, contents=f"q{i}")

    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=MODEL, contents="one too many")

    exc = caught.value
    assert (exc.code, exc.status) == (429, "RESOURCE_EXHAUSTED")
    assert exc.message.startswith("You exceeded your current quota")
    assert 58 <= _retry_seconds(exc) <= 60
    violation = _detail(exc, "QuotaFailure")["violations"][0]
    assert violation["quotaId"] == "GenerateRequestsPerMinutePerProjectPerModel"
    assert violation["quotaDimensions"] == {"location": "global", "model": MODEL}
    assert violation["quotaValue"] == "3"
    assert _detail(exc, "Help")["links"]
    assert "retry-after" not in {k.lower() for k in exc.response.headers}


def test_quota_is_per_model_and_refusals_do_not_count(emulator, client: genai.Client) -> None:
    emulator.configure(rpm=1)
    client.models.generate_content(model=MODEL, contents="a")
    for _ in range(3):
        with pytest.raises(errors.ClientError):
            client.models.generate_content(model=MODEL, contents="b")

    assert client.models.generate_content(model="gemini-3.8-flash", contents="c").text
    assert emulator.admin.get("/_emulator/quota").json()[MODEL]["rpm"] == 1


def test_tpm_quota_counts_prompt_tokens(emulator, client: genai.Client) -> None:
    emulator.configure(tpm=20)
    client.models.generate_content(model=MODEL, contents="one two three four five six seven")  # 10 tokens

    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=MODEL, contents="w " * 8)  # 11 tokens

    violation = _detail(caught.value, "QuotaFailure")["violations"][0]
    assert violation["quotaId"] == "GenerateContentInputTokensPerModelPerMinute"
    assert violation["quotaMetric"].endswith("input_token_count")
    assert client.models.generate_content(model=MODEL, contents="w " * 7).text  # exactly 10 fits


def test_rpd_quota_names_the_per_day_limit(emulator, client: genai.Client) -> None:
    emulator.configure(rpd=2)
    client.models.generate_content(model=MODEL, contents="d1")
    client.models.generate_content(model=MODEL, contents="d2")

    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=MODEL, contents="d3")

    quota_ids = [v["quotaId"] for v in _detail(caught.value, "QuotaFailure")["violations"]]
    assert quota_ids == ["GenerateRequestsPerDayPerProjectPerModel"]
    assert 0 < _retry_seconds(caught.value) <= 86_400 + 3600


def test_omit_retry_info_knob(emulator, client: genai.Client) -> None:
    emulator.configure(rpm=1, omit_retry_info=True)
    client.models.generate_content(model=MODEL, contents="x")

    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=MODEL, contents="y")
    assert _detail(caught.value, "RetryInfo") == {}
    assert _detail(caught.value, "QuotaFailure")


@pytest.mark.parametrize(
    ("kind", "quota_id"),
    [
        ("quota_rpm", "GenerateRequestsPerMinutePerProjectPerModel"),
        ("quota_tpm", "GenerateContentInputTokensPerModelPerMinute"),
        ("quota_rpd", "GenerateRequestsPerDayPerProjectPerModel"),
    ],
)
def test_scripted_quota_faults(emulator, client: genai.Client, kind: str, quota_id: str) -> None:
    emulator.faults({"match": "scripted", "kind": kind, "retry_delay_s": 3})

    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=MODEL, contents="scripted")
    assert _detail(caught.value, "QuotaFailure")["violations"][0]["quotaId"] == quota_id
    assert _retry_seconds(caught.value) == 3
    assert emulator.admin.get("/_emulator/quota").json() == {}


def test_scripted_status_429_carries_retry_info(emulator, client: genai.Client) -> None:
    emulator.faults({"match": "s429", "kind": "status", "status": 429, "retry_delay_s": 2.2})

    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=MODEL, contents="s429")
    assert _retry_seconds(caught.value) == 3
    assert "Please retry in 2.20s." in caught.value.message


def test_rpm_window_slides_and_retry_delay_is_the_ceiling() -> None:
    tracker = QuotaTracker()
    limits = Limits(rpm=2)
    assert tracker.admit("m", 1, limits, now=1000.0) == []
    assert tracker.admit("m", 1, limits, now=1010.5) == []

    refused = tracker.admit("m", 1, limits, now=1020.0)

    assert [(v.kind, v.retry_after) for v in refused] == [("rpm", 40.0)]
    assert tracker.admit("m", 1, limits, now=1060.0) == []  # the 1000.0 request left the window
    assert tracker.admit("m", 1, limits, now=1065.0)[0].retry_after == pytest.approx(5.5)


def test_tpm_retry_waits_for_enough_tokens_to_expire() -> None:
    tracker = QuotaTracker()
    limits = Limits(tpm=100)
    tracker.admit("m", 60, limits, now=0.0)
    tracker.admit("m", 30, limits, now=10.0)

    refused = tracker.admit("m", 50, limits, now=20.0)

    assert [(v.kind, v.retry_after) for v in refused] == [("tpm", 40.0)]


def test_rpd_resets_at_pacific_midnight() -> None:
    tracker = QuotaTracker()
    limits = Limits(rpd=1)
    before_midnight = datetime(2026, 3, 7, 23, 59, 0, tzinfo=PACIFIC).timestamp()
    assert tracker.admit("m", 1, limits, now=before_midnight) == []

    refused = tracker.admit("m", 1, limits, now=before_midnight + 30)

    assert refused[0].kind == "rpd" and refused[0].retry_after == pytest.approx(30)
    assert tracker.admit("m", 1, limits, now=before_midnight + 61) == []


def test_seconds_to_pacific_midnight_across_dst() -> None:
    # 2026-03-08 is the spring-forward day: that local day has 23 hours.
    start_of_day = datetime(2026, 3, 8, 0, 0, 0, tzinfo=PACIFIC).timestamp()

    assert seconds_to_pacific_midnight(start_of_day) == pytest.approx(23 * 3600)
