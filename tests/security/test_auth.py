"""Authentication on every /v1 route, constant-time key comparison, and tenants kept apart."""

from __future__ import annotations

import hmac
import inspect
import json
import re
import uuid
from typing import Any

import pytest
from flask import Flask
from helpers import TENANTS, Api, tag

from web.auth import find_tenant

#: A value for each kind of path parameter when a route is called without a key.
PARAM = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def v1_routes(app: Flask) -> list[tuple[str, str]]:
    """Every (method, path) the app serves under /v1, path parameters filled in."""
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/v1/"):
            path = PARAM.sub("0123456789abcdef0123456789abcdef", rule.rule)
            routes += [(method, path) for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})]
    return routes


def test_every_v1_route_refuses_a_missing_or_wrong_key(app: Flask) -> None:
    client = app.test_client()
    routes = v1_routes(app)
    assert len(routes) >= 6, routes
    for method, path in routes:
        for headers in ({}, {"Authorization": "Bearer not-a-key"}, {"Authorization": f"Basic {TENANTS['acme']}"},
                        {"Authorization": "Bearer "}, {"Authorization": f"Bearer {TENANTS['acme']}x"}):
            response = client.open(path, method=method, headers=headers, json={"prompt": "hi"})
            assert response.status_code == 401, (method, path, headers, response.status_code)
            assert response.get_json()["error"]["type"] == "unauthorized"
            assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_only_health_metrics_and_the_document_are_public(app: Flask) -> None:
    public = {rule.rule for rule in app.url_map.iter_rules()
              if not rule.rule.startswith(("/v1/", "/apidoc/")) and rule.endpoint != "static"}
    assert public == {"/healthz", "/readyz", "/metrics", "/openapi.json"}
    client = app.test_client()
    assert all(client.get(path).status_code != 401 for path in public)


class CountingCompare:
    """A stand-in for ``hmac.compare_digest`` that counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, a: bytes, b: bytes) -> bool:
        self.calls += 1
        assert len(a) == len(b) == 32  # digests, so lengths never differ
        return hmac.compare_digest(a, b)


@pytest.mark.parametrize("token", ["key-0", "key-9", "no-such-key", "", "key-5" * 100])
def test_every_key_is_compared_whatever_matches(token: str) -> None:
    keys = {f"key-{i}": f"tenant-{i}" for i in range(10)}
    compare = CountingCompare()
    tenant = find_tenant(token, keys, compare)
    assert compare.calls == len(keys)
    assert tenant == keys.get(token)


def test_keys_are_compared_with_compare_digest_by_default() -> None:
    assert inspect.signature(find_tenant).parameters["compare"].default is hmac.compare_digest
    assert find_tenant("key-acme", {"key-acme": "acme", "key-globex": "globex"}) == "acme"


def same_as_missing(other: Api, template: str, resource_id: str, method: str = "GET") -> None:
    """Another tenant's resource answers exactly like one that does not exist (its existence is not revealed)."""
    theirs = other.client.open(template.format(id=resource_id), method=method, headers=other.headers)
    nobody = other.client.open(template.format(id=uuid.uuid4().hex), method=method, headers=other.headers)
    assert theirs.status_code == nobody.status_code == 404, (template, theirs.status_code)
    assert theirs.get_json() == nobody.get_json()


def test_a_tenant_cannot_reach_another_tenants_jobs(api: Api) -> None:
    mine = api.submit(prompt=f"private {tag()}", metadata={"owner": "acme"})
    other = api.as_tenant("globex")
    # read, cancel and the event stream look exactly like a job that does not exist
    same_as_missing(other, "/v1/jobs/{id}", mine["id"])
    same_as_missing(other, "/v1/jobs/{id}/cancel", mine["id"], "POST")
    same_as_missing(other, "/v1/jobs/{id}/events", mine["id"])
    # listing shows only the caller's own jobs, whatever the filter
    for query in ("", "?status=queued", "?limit=100"):
        assert mine["id"] not in {j["id"] for j in other.get(f"/v1/jobs{query}").get_json()["jobs"]}
    assert api.job(mine["id"])["status"] != "cancelled"


@pytest.mark.usefixtures("worker")
def test_a_tenant_cannot_reach_or_join_another_tenants_conversation(api: Api) -> None:
    conversation = f"conv-{uuid.uuid4().hex[:12]}"
    mine = api.wait(api.submit(prompt=f"remember the word heliotrope {tag()}", conversation_id=conversation)["id"])
    other = api.as_tenant("globex")
    # reading and clearing look exactly like a conversation that does not exist
    same_as_missing(other, "/v1/conversations/{id}", conversation)
    same_as_missing(other, "/v1/conversations/{id}", conversation, "DELETE")
    # the same id starts the other tenant's own history, which does not hold ours
    theirs = other.wait(other.submit(prompt=f"what word? {tag()}", conversation_id=conversation)["id"])
    assert (mine["status"], theirs["status"]) == ("succeeded", "succeeded")
    assert other.get(f"/v1/conversations/{conversation}").get_json()["job_ids"] == [theirs["id"]]
    assert api.get(f"/v1/conversations/{conversation}").get_json()["job_ids"] == [mine["id"]]


def test_a_tenant_cannot_reach_another_tenants_batches_or_their_items(api: Api) -> None:
    response = api.post("/v1/batches", data=b'{"prompt": "batched"}\n{"prompt": "batched too"}\n',
                        headers={"Content-Type": "application/jsonl"})
    assert response.status_code == 202, response.get_json()
    batch_id = response.get_json()["id"]
    item = next(json.loads(line)["id"] for line in api.get(f"/v1/batches/{batch_id}/results").get_data(as_text=True)
                .splitlines())
    other = api.as_tenant("globex")
    for template, method in (("/v1/batches/{id}", "GET"), ("/v1/batches/{id}/results", "GET"),
                             ("/v1/batches/{id}/cancel", "POST")):
        same_as_missing(other, template, batch_id, method)
    for template, method in (("/v1/jobs/{id}", "GET"), ("/v1/jobs/{id}/cancel", "POST"),
                             ("/v1/jobs/{id}/events", "GET")):
        same_as_missing(other, template, item, method)
    assert batch_id not in {b["id"] for b in other.get("/v1/batches?limit=100").get_json()["batches"]}
    assert batch_id in {b["id"] for b in api.get("/v1/batches?limit=100").get_json()["batches"]}


def test_idempotency_keys_belong_to_their_tenant(api: Api) -> None:
    key, body = f"shared-{tag()}", {"prompt": f"same body {tag()}"}
    first = api.post("/v1/jobs", body, headers={"Idempotency-Key": key})
    other = api.as_tenant("globex").post("/v1/jobs", body, headers={"Idempotency-Key": key})
    assert first.status_code == other.status_code == 202
    assert first.get_json()["id"] != other.get_json()["id"]
    assert "Idempotent-Replayed" not in other.headers


def test_each_tenant_has_its_own_webhook_secret(api: Api) -> None:
    secrets: list[Any] = [a.get("/v1/webhooks/secret").get_json()["secret"] for a in (api, api.as_tenant("globex"))]
    assert secrets[0] != secrets[1] and all(s.startswith("whsec_") for s in secrets)
