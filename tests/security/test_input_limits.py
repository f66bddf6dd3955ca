"""Every input has a bound: a request at the bound is accepted, one past it is refused with a clear 4xx."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from helpers import Api
from procs import RedisServer

from web import create_app
from web.batch_lines import MAX_KEY_CHARS
from worker.core import request as J
from worker.core.settings import Settings

Body = Callable[[int], dict[str, Any]]


def parts(n: int) -> list[dict[str, str]]:
    """``n`` one-letter text parts."""
    return [{"text": "x"} for _ in range(n)]


#: name -> (the bound, a request body given a size, where the 422 points)
BOUNDS: dict[str, tuple[int, Body, str]] = {
    "prompt length": (J.MAX_PROMPT_CHARS, lambda n: {"prompt": "x" * n}, "prompt"),
    "total text": (J.MAX_PROMPT_CHARS, lambda n: {"prompt": "x" * (n - 10), "system_instruction": "y" * 10}, "body"),
    "contents": (J.MAX_CONTENTS, lambda n: {"contents": [{"role": "user", "parts": parts(1)}] * n}, "contents"),
    "parts per content": (J.MAX_PARTS, lambda n: {"contents": [{"parts": parts(n)}]}, "contents.0.parts"),
    "metadata entries": (J.MAX_METADATA_KEYS, lambda n: {"prompt": "p", "metadata": {f"k{i}": "v" for i in range(n)}},
                         "metadata"),
    "metadata key": (J.MAX_METADATA_KEY_CHARS, lambda n: {"prompt": "p", "metadata": {"k" * n: "v"}}, "metadata"),
    "metadata value": (J.MAX_METADATA_VALUE_CHARS, lambda n: {"prompt": "p", "metadata": {"k": "v" * n}}, "metadata.k"),
    "stop sequences": (J.MAX_STOP_SEQUENCES, lambda n: {"prompt": "p", "generation_config": {
        "stop_sequences": [f"s{i}" for i in range(n)]}}, "generation_config.stop_sequences"),
    "stop sequence": (J.MAX_STOP_SEQUENCE_CHARS, lambda n: {"prompt": "p", "generation_config": {
        "stop_sequences": ["s" * n]}}, "generation_config.stop_sequences.0"),
    "fallback models": (J.MAX_FALLBACK_MODELS, lambda n: {"prompt": "p", "fallback_models": ["gemini-2.5-pro"] * n},
                        "fallback_models"),
    "safety settings": (J.MAX_SAFETY_SETTINGS, lambda n: {"prompt": "p", "safety_settings": [
        {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}] * n}, "safety_settings"),
    "model name": (64, lambda n: {"prompt": "p", "model": "m" * n}, "model"),
    "conversation id": (64, lambda n: {"prompt": "p", "conversation_id": "c" * n}, "conversation_id"),
    "webhook url": (J.MAX_URL_CHARS, lambda n: {"prompt": "p", "webhook_url": "http://127.0.0.1/" + "a" * (n - 17)},
                    "webhook_url"),
}


@pytest.fixture(scope="module")
def quiet_api(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The API on a Redis no worker reads: accepted jobs just wait there."""
    server = RedisServer(tmp_path_factory.mktemp("limits-redis")).start()
    app = create_app(settings.replace(redis_url=server.url))
    yield Api(app.test_client())
    app.extensions["gemq"].metrics.sink.close()
    server.kill()


def refused(response: Any, status: int) -> dict[str, Any]:
    """Assert a refusal in the API's error shape; return the error."""
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    error: dict[str, Any] = response.get_json()["error"]
    assert error["type"] and error["message"]
    return error


@pytest.mark.parametrize("name", list(BOUNDS))
def test_a_request_at_the_bound_passes_and_one_past_it_is_422(quiet_api: Api, name: str) -> None:
    bound, body, loc = BOUNDS[name]
    assert quiet_api.post("/v1/jobs", body(bound)).status_code == 202
    error = refused(quiet_api.post("/v1/jobs", body(bound + 1)), 422)
    assert any(d["loc"].startswith(loc) for d in error["details"]), error["details"]


def test_the_body_size_is_bounded(settings: Settings, quiet_api: Api) -> None:
    api = Api(create_app(settings.replace(max_body_bytes=4096)).test_client())
    padded = b'{"prompt": "p"}'
    at_bound = padded[:-1] + b" " * (4096 - len(padded)) + b"}"
    headers = {"Content-Type": "application/json"}
    assert api.post("/v1/jobs", data=at_bound, headers=headers).status_code != 413
    assert refused(api.post("/v1/jobs", data=at_bound + b" ", headers=headers), 413)["type"] == "payload_too_large"


def test_the_idempotency_key_is_bounded(quiet_api: Api) -> None:
    assert quiet_api.post("/v1/jobs", {"prompt": "p"}, headers={"Idempotency-Key": "k" * 255}).status_code == 202
    refused(quiet_api.post("/v1/jobs", {"prompt": "p"}, headers={"Idempotency-Key": "k" * 256}), 400)
    refused(quiet_api.post("/v1/jobs", {"prompt": "p"}, headers={"Idempotency-Key": "caf\u00e9"}), 400)


@pytest.mark.parametrize(("query", "loc"), [("limit=101", "limit"), ("cursor=" + "a" * 201, "cursor"),
                                            ("limit=5&limit=6", "limit")])
def test_list_parameters_are_bounded(quiet_api: Api, query: str, loc: str) -> None:
    assert loc in {d["loc"] for d in refused(quiet_api.get(f"/v1/jobs?{query}"), 422)["details"]}


@pytest.mark.parametrize("raw", [b"[" * 100_000, b'{"prompt": NaN}', b'{"prompt": "p", "x": Infinity}',
                                 b'{"prompt": "\\ud800"}', b'{"prompt": "p", "metadata": {"\\udfff": "v"}}',
                                 b'{"prompt": "\xff"}'])
def test_hostile_json_is_400(quiet_api: Api, raw: bytes) -> None:
    response = quiet_api.post("/v1/jobs", data=raw, headers={"Content-Type": "application/json"})
    assert refused(response, 400)["type"] == "malformed_request"


def post_jsonl(api: Api, body: bytes, query: str = "") -> Any:
    """POST a JSONL batch body."""
    return api.post(f"/v1/batches{query}", data=body, headers={"Content-Type": "application/jsonl"})


@pytest.mark.parametrize("line", [b"[" * 100_000, b'{"prompt": NaN}', b'{"prompt": "\\ud800"}', b'{"prompt": "\xff"}',
                                  b'{"key": "' + b"k" * (MAX_KEY_CHARS + 1) + b'", "prompt": "p"}'])
def test_a_hostile_batch_line_is_refused_by_number(quiet_api: Api, line: bytes) -> None:
    error = refused(post_jsonl(quiet_api, b'{"prompt": "fine"}\n' + line + b"\n"), 422)
    assert [d["loc"] for d in error["details"]] == ["line 2"], error


def test_batch_lines_and_options_are_bounded(settings: Settings, quiet_api: Api) -> None:
    api = Api(create_app(settings.replace(redis_url=quiet_api.client.application.extensions["gemq"].settings.redis_url,
                                          max_batch_lines=5, max_batch_bytes=4096)).test_client())
    line = b'{"key": "' + b"k" * MAX_KEY_CHARS + b'", "prompt": "p"}\n'
    assert post_jsonl(api, line * 5).status_code == 202
    assert "GEMQ_MAX_BATCH_LINES" in refused(post_jsonl(api, line * 6), 422)["message"]
    too_big = post_jsonl(api, b'{"prompt": "p"}\n' + b" " * 4096 + b"\n")
    assert "GEMQ_MAX_BATCH_BYTES" in refused(too_big, 413)["message"]
    assert refused(post_jsonl(api, line, "?metadata=" + "[" * 3000), 422)["details"][0]["loc"] == "metadata"
    assert refused(post_jsonl(api, line, "?priority=low&priority=high"), 422)["details"][0]["loc"] == "priority"
    assert refused(api.get("/v1/batches?limit=1&limit=2"), 422)["details"][0]["loc"] == "limit"


def test_a_job_id_of_any_length_is_a_plain_404(quiet_api: Api) -> None:
    for job_id in ("x", "0" * 64, "0" * 65, "x" * 5000):
        assert refused(quiet_api.get(f"/v1/jobs/{job_id}"), 404)["type"] == "not_found"


def test_errors_never_echo_what_was_sent(quiet_api: Api) -> None:
    secret = "sk-live-0123456789abcdef"
    wrong_key = quiet_api.client.get("/v1/jobs", headers={"Authorization": f"Bearer {secret}"})
    invalid = quiet_api.post("/v1/jobs", {"prompt": secret, "priority": secret, "metadata": {"k": secret * 40}})
    for response in (wrong_key, invalid):
        assert secret not in response.get_data(as_text=True)


def test_bounds_are_in_the_openapi_document(quiet_api: Api) -> None:
    schemas = quiet_api.client.get("/openapi.json").get_json()["components"]["schemas"]
    request = next(s for name, s in schemas.items() if name.split(".")[0] == "JobRequest")
    props = request["properties"]
    assert props["metadata"]["maxProperties"] == J.MAX_METADATA_KEYS
    assert props["fallback_models"]["maxItems"] == J.MAX_FALLBACK_MODELS
