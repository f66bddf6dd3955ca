"""Every bad input gets the API's error shape and the right status; never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import Api

from web import create_app
from worker.core.settings import Settings


def error_of(response: Any, status: int, error_type: str) -> dict[str, Any]:
    """Assert the status and error type; return the error object."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error"}
    assert body["error"]["type"] == error_type
    assert body["error"]["message"]
    return dict(body["error"])


def test_malformed_json_is_400(api: Api) -> None:
    response = api.post("/v1/jobs", data='{"prompt": ', headers={"Content-Type": "application/json"})
    error_of(response, 400, "malformed_request")


def test_invalid_utf8_is_400(api: Api) -> None:
    response = api.post("/v1/jobs", data=b'{"prompt": "\xff"}', headers={"Content-Type": "application/json"})
    error_of(response, 400, "malformed_request")


def test_wrong_content_type_is_415(api: Api) -> None:
    response = api.post("/v1/jobs", data="prompt=hi", headers={"Content-Type": "application/x-www-form-urlencoded"})
    error_of(response, 415, "unsupported_media_type")


def test_missing_content_type_is_415(api: Api) -> None:
    error_of(api.post("/v1/jobs", data='{"prompt": "hi"}'), 415, "unsupported_media_type")


def test_body_over_the_limit_is_413(settings: Settings) -> None:
    api = Api(create_app(settings.replace(max_body_bytes=1024)).test_client())
    response = api.post("/v1/jobs", {"prompt": "x" * 2000})
    error_of(response, 413, "payload_too_large")


def test_default_body_limit_is_10_mib(api: Api) -> None:
    response = api.post("/v1/jobs", data=b"{" + b" " * (10 * 1024 * 1024), headers={"Content-Type": "application/json"})
    error_of(response, 413, "payload_too_large")


def test_missing_key_is_401(api: Api) -> None:
    response = api.client.post("/v1/jobs", json={"prompt": "hi"})
    error_of(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_wrong_key_is_401(api: Api) -> None:
    response = api.client.get("/v1/jobs", headers={"Authorization": "Bearer not-a-key"})
    error_of(response, 401, "unauthorized")


def test_non_bearer_scheme_is_401(api: Api) -> None:
    response = api.client.get("/v1/jobs", headers={"Authorization": "Basic a2V5LWFjbWU6"})
    error_of(response, 401, "unauthorized")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body"),
        ({"prompt": "a", "contents": [{"role": "user", "parts": [{"text": "b"}]}]}, "body"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": 5}, "prompt"),
        ({"prompt": "hi", "unknown": 1}, "unknown"),
        ({"prompt": "hi", "priority": "urgent"}, "priority"),
        ({"prompt": "hi", "model": "../../etc"}, "model"),
        ({"prompt": "hi", "generation_config": {"temperature": 3}}, "generation_config.temperature"),
        ({"prompt": "hi", "generation_config": {"top_p": -0.1}}, "generation_config.top_p"),
        ({"prompt": "hi", "generation_config": {"max_output_tokens": 0}}, "generation_config.max_output_tokens"),
        ({"prompt": "hi", "generation_config": {"stop_sequences": ["a"] * 6}}, "generation_config.stop_sequences"),
        ({"prompt": "hi", "generation_config": {"seed": 1}}, "generation_config.seed"),
        ({"prompt": "hi", "safety_settings": [{"category": "HARM_X", "threshold": "BLOCK_NONE"}]},
         "safety_settings.0.category"),
        ({"contents": [{"role": "system", "parts": [{"text": "x"}]}]}, "contents.0.role"),
        ({"contents": [{"role": "user", "parts": []}]}, "contents.0.parts"),
        ({"contents": []}, "contents"),
        ({"prompt": "hi", "metadata": {"k": 1}}, "metadata.k"),
        ({"prompt": "hi", "metadata": {f"k{i}": "v" for i in range(17)}}, "metadata"),
        ({"prompt": "hi", "metadata": {"k": "v" * 513}}, "metadata.k"),
        ({"prompt": "hi", "webhook_url": "ftp://example.com/x"}, "webhook_url"),
        ({"prompt": "hi", "fallback_models": ["ok", "bad/name"]}, "fallback_models.1"),
        ({"prompt": "x" * 1_000_001}, "prompt"),
    ],
)
def test_invalid_requests_are_422_naming_the_field(api: Api, body: dict[str, Any], field: str) -> None:
    error = error_of(api.post("/v1/jobs", body), 422, "invalid_request")
    assert field in {d["loc"] for d in error["details"]}, error


def test_a_json_array_is_422(api: Api) -> None:
    error_of(api.post("/v1/jobs", [{"prompt": "hi"}]), 422, "invalid_request")


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=x", "status=done", "cursor=!!!"])
def test_bad_list_queries_are_422(api: Api, query: str) -> None:
    error_of(api.get(f"/v1/jobs?{query}"), 422, "invalid_request")


def test_unknown_job_is_404(api: Api) -> None:
    error_of(api.get("/v1/jobs/0123456789abcdef0123456789abcdef"), 404, "not_found")
    error_of(api.get("/v1/jobs/" + "x" * 500), 404, "not_found")


def test_unknown_route_and_wrong_method_keep_the_shape(api: Api) -> None:
    error_of(api.get("/v1/nothing"), 404, "not_found")
    error_of(api.client.delete("/healthz"), 405, "method_not_allowed")


def test_redis_down_is_503(settings: Settings) -> None:
    api = Api(create_app(settings.replace(redis_url="redis://127.0.0.1:1/0")).test_client())
    error = error_of(api.post("/v1/jobs", {"prompt": "hi"}), 503, "unavailable")
    assert "unreachable" in error["message"]
    assert api.client.get("/readyz").status_code == 503


def test_a_valid_request_with_every_field_is_accepted(api: Api) -> None:
    job = api.submit(
        contents=[{"role": "user", "parts": [{"text": "hi"}]}, {"role": "model", "parts": [{"text": "hello"}]},
                  {"role": "user", "parts": [{"text": "more"}]}],
        model="gemini-2.5-pro",
        system_instruction="be brief",
        generation_config={"temperature": 0.2, "top_p": 0.9, "top_k": 40, "max_output_tokens": 512,
                           "stop_sequences": ["END"], "response_mime_type": "text/plain"},
        safety_settings=[{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}],
        priority="high",
        metadata={"k": "v"},
    )
    assert (job["model"], job["priority"], job["status"]) == ("gemini-2.5-pro", "high", "queued")


def test_openapi_document_lists_the_routes_and_models(api: Api) -> None:
    document = api.client.get("/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    assert {"/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/cancel"} <= set(document["paths"])
    schemas = document["components"]["schemas"]
    assert any(name.startswith("JobRequest") for name in schemas)
    assert any(name.startswith("Job.") or name == "Job" for name in schemas)
