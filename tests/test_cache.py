"""The response cache: an identical successful request is answered from Redis, per tenant."""

from __future__ import annotations

import pytest
from helpers import Api, tag, tag_of
from procs import EmulatorProcess, RedisServer

from worker.core.settings import Settings
from worker.store.cache import request_hash

pytestmark = pytest.mark.usefixtures("worker")


def test_a_cache_hit_makes_no_upstream_call_and_is_marked(api: Api, emu: EmulatorProcess) -> None:
    marker = tag()
    request = {"prompt": f"cache me {marker}", "cache": True, "generation_config": {"temperature": 0.2}}
    first = api.wait(api.submit(**request)["id"])
    second = api.wait(api.submit(**request)["id"])

    assert (first["status"], second["status"]) == ("succeeded", "succeeded")
    assert first["result"]["cached"] is False and second["result"]["cached"] is True
    assert second["result"]["text"] == first["result"]["text"]
    assert second["attempts"] == 0
    assert len(emu.requests(tag=tag_of(marker))) == 1


def test_without_the_flag_an_identical_request_calls_gemini(api: Api, emu: EmulatorProcess) -> None:
    marker = tag()
    api.wait(api.submit(prompt=f"cached once {marker}", cache=True)["id"])
    job = api.wait(api.submit(prompt=f"cached once {marker}")["id"])
    assert job["result"]["cached"] is False
    assert len(emu.requests(tag=tag_of(marker))) == 2


def test_the_cache_is_never_shared_across_tenants(api: Api, emu: EmulatorProcess) -> None:
    marker = tag()
    api.wait(api.submit(prompt=f"tenant answer {marker}", cache=True)["id"])
    other = api.as_tenant("globex")
    job = other.wait(other.submit(prompt=f"tenant answer {marker}", cache=True)["id"])
    assert job["result"]["cached"] is False
    assert len(emu.requests(tag=tag_of(marker))) == 2


def test_failures_are_never_cached(api: Api, emu: EmulatorProcess) -> None:
    marker = tag()
    emu.fault(marker, "status", status=400, times=1)
    request = {"prompt": f"fails first {marker}", "cache": True}
    assert api.wait(api.submit(**request)["id"])["status"] == "failed"
    retried = api.wait(api.submit(**request)["id"])
    assert (retried["status"], retried["result"]["cached"]) == ("succeeded", False)
    assert api.wait(api.submit(**request)["id"])["result"]["cached"] is True
    assert len(emu.requests(tag=tag_of(marker))) == 2


def test_a_different_config_model_or_system_instruction_misses(api: Api, emu: EmulatorProcess) -> None:
    marker = tag()
    base = {"prompt": f"variants {marker}", "cache": True}
    api.wait(api.submit(**base)["id"])
    for variant in ({"generation_config": {"temperature": 1.0}}, {"model": "gemini-2.5-pro"},
                    {"system_instruction": "be brief"}):
        assert api.wait(api.submit(**base, **variant)["id"])["result"]["cached"] is False
    assert len(emu.requests(tag=tag_of(marker))) == 4


def test_cached_results_expire_with_the_cache_ttl(api: Api, redis_server: RedisServer, settings: Settings) -> None:
    api.wait(api.submit(prompt=f"ttl {tag()}", cache=True)["id"])
    client = redis_server.client()
    ttls = [client.ttl(key) for key in client.scan_iter("gemq:cache:acme:*")]
    assert ttls and all(settings.cache_ttl - 60 < ttl <= settings.cache_ttl for ttl in ttls)


def test_the_request_hash_ignores_key_order_and_separates_tenants_and_models() -> None:
    request = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "generation_config": {"a": 1, "b": 2}}
    reordered = {"generation_config": {"b": 2, "a": 1}, "contents": request["contents"]}
    assert request_hash("acme", "m", request) == request_hash("acme", "m", reordered)
    assert request_hash("acme", "m", request) != request_hash("globex", "m", request)
    assert request_hash("acme", "m", request) != request_hash("acme", "m2", request)
    assert request_hash("acme", "m", request) == request_hash("acme", "m", {**request, "fallback_models": ["x"]})
