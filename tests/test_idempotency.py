"""Idempotency-Key on POST /v1/jobs: one job per key and body, replays say so, conflicts are 409."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from flask import Flask
from helpers import Api, tag
from procs import RedisServer

from web.idempotency import Idempotency, KeyBusy, KeyConflict, fingerprint


def jobs_of(redis_server: RedisServer, tenant: str) -> int:
    """How many jobs the tenant's index holds."""
    return int(redis_server.client().zcard(f"gemq:tenant:{tenant}:jobs"))


def submit(api: Api, body: dict[str, Any], key: str) -> Any:
    """POST /v1/jobs with an Idempotency-Key."""
    return api.post("/v1/jobs", body, headers={"Idempotency-Key": key})


def test_the_same_key_and_body_return_the_original_job(api: Api, redis_server: RedisServer) -> None:
    key, body = str(uuid.uuid4()), {"prompt": f"once {tag()}", "metadata": {"try": "1"}}
    before = jobs_of(redis_server, "acme")

    first, second = submit(api, body, key), submit(api, body, key)

    assert first.status_code == 202 and "Idempotent-Replayed" not in first.headers
    assert second.status_code == 202 and second.headers["Idempotent-Replayed"] == "true"
    assert second.get_json()["id"] == first.get_json()["id"]
    assert second.headers["Location"] == first.headers["Location"]
    assert jobs_of(redis_server, "acme") == before + 1


def test_key_order_and_spacing_do_not_make_another_body(api: Api) -> None:
    key, prompt = str(uuid.uuid4()), f"order {tag()}"
    first = api.post("/v1/jobs", data=f'{{"prompt": "{prompt}", "priority": "low"}}',
                     headers={"Idempotency-Key": key, "Content-Type": "application/json"})
    second = api.post("/v1/jobs", data=f'{{"priority":"low","prompt":"{prompt}"}}',
                      headers={"Idempotency-Key": key, "Content-Type": "application/json"})
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert second.get_json()["id"] == first.get_json()["id"]


def test_the_same_key_with_another_body_is_409(api: Api, redis_server: RedisServer) -> None:
    key = str(uuid.uuid4())
    assert submit(api, {"prompt": f"first {tag()}"}, key).status_code == 202
    before = jobs_of(redis_server, "acme")

    response = submit(api, {"prompt": f"second {tag()}"}, key)

    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["type"] == "conflict" and "Idempotency-Key" in error["message"] and "different" in error["message"]
    assert jobs_of(redis_server, "acme") == before


def test_keys_are_scoped_to_the_tenant(api: Api) -> None:
    key, body = str(uuid.uuid4()), {"prompt": f"shared key {tag()}"}
    mine, theirs = submit(api, body, key), submit(api.as_tenant("globex"), body, key)
    assert theirs.status_code == 202 and "Idempotent-Replayed" not in theirs.headers
    assert theirs.get_json()["id"] != mine.get_json()["id"]


@pytest.mark.parametrize("key", ["", "x" * 256, "clé-non-ascii", "tab\there"])
def test_a_malformed_key_is_400(api: Api, key: str) -> None:
    response = api.post("/v1/jobs", {"prompt": "hi"}, headers={"Idempotency-Key": key.encode().decode("latin-1")})
    assert response.status_code == 400
    assert response.get_json()["error"]["type"] == "malformed_request"


def test_an_invalid_request_does_not_use_up_the_key(api: Api) -> None:
    key = str(uuid.uuid4())
    assert submit(api, {"prompt": "hi", "priority": "urgent"}, key).status_code == 422
    assert submit(api, {"prompt": f"valid {tag()}"}, key).status_code == 202


def test_simultaneous_identical_requests_create_one_job(app: Flask, redis_server: RedisServer) -> None:
    key, body = str(uuid.uuid4()), {"prompt": f"race {tag()}"}
    before = jobs_of(redis_server, "acme")
    start = threading.Barrier(8)

    def one(_: int) -> Any:
        api = Api(app.test_client())  # one client per thread, like separate connections
        start.wait()
        return submit(api, body, key)

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(one, range(8)))

    assert [r.status_code for r in responses] == [202] * 8
    assert len({r.get_json()["id"] for r in responses}) == 1
    assert sum("Idempotent-Replayed" not in r.headers for r in responses) == 1
    assert jobs_of(redis_server, "acme") == before + 1


def test_a_failed_creation_releases_the_key(redis_server: RedisServer) -> None:
    store, key, fp = Idempotency(redis_server.client()), str(uuid.uuid4()), fingerprint("POST /x", {"a": 1})

    def broken() -> str:
        raise RuntimeError("the broker is down")

    with pytest.raises(RuntimeError):
        store.run("acme", key, fp, broken)
    assert store.run("acme", key, fp, lambda: "made-on-retry") == ("made-on-retry", False)
    assert store.run("acme", key, fp, lambda: "never") == ("made-on-retry", True)
    with pytest.raises(KeyConflict):
        store.run("acme", key, fingerprint("POST /x", {"a": 2}), lambda: "never")


def test_a_request_still_in_progress_after_the_wait_is_busy(redis_server: RedisServer) -> None:
    store, key, fp = Idempotency(redis_server.client(), wait_s=0.2), str(uuid.uuid4()), fingerprint("POST /x", {})
    release, entered = threading.Event(), threading.Event()

    def slow() -> str:
        entered.set()
        release.wait(5)
        return "slow-one"

    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(store.run, "acme", key, fp, slow)
        assert entered.wait(5)
        with pytest.raises(KeyBusy):
            store.run("acme", key, fp, lambda: "never")
        release.set()
        assert first.result(5) == ("slow-one", False)
    assert store.run("acme", key, fp, lambda: "never") == ("slow-one", True)
