"""Auth checks and the admin API: request log, config, faults, reset."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from google import genai
from google.genai import errors, types

from emulator.textgen import key_fingerprint

MODEL = "gemini-3.5-flash"
BODY = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


def test_missing_key_is_403_permission_denied(emulator) -> None:
    response = emulator.admin.post(f"/v1beta/models/{MODEL}:generateContent", json=BODY)
    listing = emulator.admin.get("/v1beta/models")

    assert response.status_code == 403
    assert response.json()["error"]["status"] == "PERMISSION_DENIED"
    assert listing.status_code == 403


def test_unknown_key_is_400_api_key_invalid(emulator, make_client: Callable[..., genai.Client]) -> None:
    emulator.configure(api_keys=["good-key"])
    good = make_client(api_key="good-key")
    bad = make_client(api_key="bad-key")

    assert good.models.generate_content(model=MODEL, contents="hi").text
    with pytest.raises(errors.ClientError) as caught:
        bad.models.generate_content(model=MODEL, contents="hi")
    exc = caught.value
    assert (exc.code, exc.status) == (400, "INVALID_ARGUMENT")
    info = exc.details["error"]["details"][0]
    assert info["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"
    assert info["reason"] == "API_KEY_INVALID"
    assert info["metadata"] == {"service": "generativelanguage.googleapis.com"}


def test_config_never_shows_keys(emulator) -> None:
    config = emulator.configure(api_keys="alpha,beta")

    assert config["api_keys"] == [key_fingerprint("alpha"), key_fingerprint("beta")]
    assert "alpha" not in emulator.admin.get("/_emulator/config").text


def test_request_log_has_tag_and_metadata_but_no_prompt_or_key(emulator, client: genai.Client) -> None:
    before = time.time()
    client.models.generate_content(model=MODEL, contents="secret words [[tag:log-1]]")
    client.models.generate_content(model="gemini-3.8-flash", contents="other [[tag:log-2]]")

    entries = emulator.requests(tag="log-1")

    assert len(entries) == 1
    entry = entries[0]
    assert entry["model"] == MODEL and entry["method"] == "generateContent"
    assert entry["status"] == 200 and entry["outcome"] == "ok"
    assert entry["prompt_tokens"] == 6 and entry["output_tokens"] > 0
    assert entry["key_fingerprint"] == key_fingerprint("test-key")
    assert entry["api_version"] == "v1beta"
    assert before <= entry["ts"] <= time.time()
    raw = emulator.admin.get("/_emulator/requests").text
    assert "secret" not in raw and "test-key" not in raw
    assert [e["tag"] for e in emulator.requests(model="gemini-3.8-flash")] == ["log-2"]
    assert emulator.requests(since=time.time() + 1) == []


def test_request_log_clears_and_is_bounded(emulator, client: genai.Client) -> None:
    emulator.configure(log_size=3)
    for i in range(5):
        client.models.generate_content(model=MODEL, contents=f"n{i} [[tag:n{i}]]")

    assert [e["tag"] for e in emulator.requests()] == ["n2", "n3", "n4"]
    emulator.admin.delete("/_emulator/requests").raise_for_status()
    assert emulator.requests() == []


def test_patch_rejects_unknown_and_startup_only_knobs(emulator) -> None:
    assert emulator.admin.patch("/_emulator/config", json={"nope": 1}).status_code == 400
    assert emulator.admin.patch("/_emulator/config", json={"port": 1}).status_code == 400
    assert emulator.admin.patch("/_emulator/config", json={"error_rate": 2}).status_code == 400


def test_faults_list_delete_and_validation(emulator) -> None:
    emulator.faults({"match": "x", "kind": "status", "status": 503, "times": 2})

    listed = emulator.admin.get("/_emulator/faults").json()["faults"]
    assert listed[0]["kind"] == "status" and listed[0]["remaining"] == 2
    assert emulator.admin.post("/_emulator/faults", json={"faults": [{"kind": "status"}]}).status_code == 400
    assert emulator.admin.post("/_emulator/faults", json={"faults": [{"kind": "boom"}]}).status_code == 400
    emulator.admin.delete("/_emulator/faults").raise_for_status()
    assert emulator.admin.get("/_emulator/faults").json() == {"faults": []}


def test_reset_restores_everything(emulator, client: genai.Client) -> None:
    emulator.configure(rpm=1, output_tokens=3)
    emulator.faults({"match": "zzz", "kind": "hang"})
    client.models.generate_content(model=MODEL, contents="a")

    emulator.admin.post("/_emulator/reset").raise_for_status()

    config = emulator.admin.get("/_emulator/config").json()
    assert (config["rpm"], config["output_tokens"]) == (0, 0)
    assert emulator.requests() == []
    assert emulator.admin.get("/_emulator/faults").json() == {"faults": []}
    assert emulator.admin.get("/_emulator/quota").json() == {}


def test_unknown_path_answers_the_error_envelope(emulator) -> None:
    response = emulator.admin.get("/v1beta/nothing-here")

    assert response.status_code == 404
    assert response.json()["error"]["status"] == "NOT_FOUND"


def test_a_logged_body_is_exactly_what_the_sdk_sent_and_can_be_fetched_by_id(emulator, client: genai.Client) -> None:
    config = types.GenerateContentConfig(
        system_instruction="be terse", temperature=0.3, seed=5, service_tier="flex",
        thinking_config=types.ThinkingConfig(thinking_level="LOW", include_thoughts=True),
        response_mime_type="application/json", response_json_schema={"type": "object", "properties": {
            "n": {"type": "integer"}}})
    client.models.generate_content(model=MODEL, contents="body check [[tag:body-1]]", config=config)

    entry = emulator.requests(tag="body-1")[0]
    fetched = emulator.admin.get(f"/_emulator/requests/{entry['request_id']}").json()

    assert entry["service_tier"] == "flex" and "body" not in entry
    body = fetched["body"]
    assert body["contents"] == [{"parts": [{"text": "body check [[tag:body-1]]"}], "role": "user"}]
    assert body["systemInstruction"] == {"parts": [{"text": "be terse"}], "role": "user"}
    assert body["serviceTier"] == "flex"
    assert body["generationConfig"] == {
        "temperature": 0.3, "seed": 5, "responseMimeType": "application/json",
        "responseJsonSchema": {"type": "object", "properties": {"n": {"type": "integer"}}},
        "thinkingConfig": {"include_thoughts": True, "thinking_level": "LOW"}}


def test_the_body_ring_is_bounded_by_its_knob(emulator, client: genai.Client) -> None:
    emulator.configure(body_log_size=2)
    for i in range(3):
        client.models.generate_content(model=MODEL, contents=f"ring {i} [[tag:ring]]")

    entries = emulator.requests(tag="ring", bodies=1)

    assert [e["body"] is None for e in entries] == [True, False, False]
    assert emulator.admin.get("/_emulator/requests/nope").status_code == 404
