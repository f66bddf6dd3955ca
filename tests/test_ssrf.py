"""Webhook targets that must never be called: refused at submit (422) and again at delivery."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from helpers import Api, tag
from procs import RedisServer, WorkerProcess, wait_until
from receiver import Receiver

from web import create_app
from worker.core.settings import Settings
from worker.queue.app import create_celery
from worker.queue.publisher import CeleryPublisher
from worker.store.webhooks import Attempt, WebhookEvents
from worker.webhooks.delivery import Deliverer
from worker.webhooks.ssrf import UnsafeURL, check_url

#: (form, URL): every way of spelling an address gemq must not call.
UNSAFE = [
    ("loopback", "http://127.0.0.1:8080/hook"),
    ("loopback name", "http://localhost/hook"),
    ("decimal integer", "http://2130706433/"),
    ("hex integer", "http://0x7f000001/"),
    ("octal integer", "http://017700000001/"),
    ("short dotted", "http://127.1/"),
    ("octal dotted", "http://0177.0.0.1/"),
    ("unspecified", "http://0.0.0.0/"),
    ("unspecified short", "http://0/"),
    ("private 10/8", "http://10.1.2.3/"),
    ("private 172.16/12", "http://172.16.5.4/"),
    ("private 192.168/16", "http://192.168.1.1/"),
    ("shared CGNAT", "http://100.64.0.1/"),
    ("link-local", "http://169.254.10.10/"),
    ("metadata", "http://169.254.169.254/latest/meta-data/"),
    ("metadata name", "http://metadata.google.internal/computeMetadata/v1/"),
    ("multicast", "http://224.0.0.1/"),
    ("reserved", "http://240.0.0.1/"),
    ("broadcast", "http://255.255.255.255/"),
    ("IPv6 loopback", "http://[::1]/"),
    ("IPv6 unspecified", "http://[::]/"),
    ("IPv6 link-local", "http://[fe80::1]/"),
    ("IPv6 unique local", "http://[fc00::1]/"),
    ("IPv6 metadata", "http://[fd00:ec2::254]/"),
    ("IPv6 multicast", "http://[ff02::1]/"),
    ("IPv6 site-local", "http://[fec0::1]/"),
    ("IPv4-mapped loopback", "http://[::ffff:127.0.0.1]/"),
    ("IPv4-mapped hex", "http://[::ffff:7f00:1]/"),
    ("IPv4-mapped metadata", "http://[::ffff:169.254.169.254]/"),
    ("NAT64 of private", "http://[64:ff9b::a00:1]/"),
    ("6to4 of loopback", "http://[2002:7f00:1::]/"),
    ("not http", "ftp://example.com/hook"),
    ("file", "file:///etc/passwd"),
]
#: Forms refused even with GEMQ_WEBHOOK_ALLOW_PRIVATE=1.
ALWAYS_UNSAFE = ["metadata", "metadata name", "IPv6 metadata", "IPv4-mapped metadata", "not http", "file"]


@pytest.fixture(scope="module")
def strict_app(settings: Settings) -> Flask:
    """The web app with the SSRF rules on (the session's settings allow loopback)."""
    return create_app(settings.replace(webhook_allow_private=False))


def fake_dns(answers: dict[str, list[str]]) -> Callable[..., list[tuple[Any, ...]]]:
    """A resolver that answers from ``answers`` (for names no real DNS here knows)."""
    def resolve(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in answers[host]]
    return resolve


@pytest.mark.parametrize(("form", "url"), UNSAFE, ids=[f for f, _ in UNSAFE])
def test_refused_at_submit(strict_app: Flask, form: str, url: str) -> None:
    response = Api(strict_app.test_client()).post("/v1/jobs", {"prompt": "hi", "webhook_url": url})
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert error["type"] == "invalid_request"
    assert [d["loc"] for d in error["details"]] == ["webhook_url"]


@pytest.mark.parametrize(("form", "url"), UNSAFE, ids=[f for f, _ in UNSAFE])
def test_refused_at_delivery(settings: Settings, redis_server: RedisServer, form: str, url: str) -> None:
    strict = settings.replace(webhook_allow_private=False)
    events = WebhookEvents(redis_server.client(), strict, CeleryPublisher(create_celery(strict)))
    deliverer = Deliverer(settings=strict, events=events)
    result = deliverer.attempt(Attempt(event_id="evt_ssrf", index=0, tenant="acme", url=url, body="{}", owner=""))
    assert result.refused and not result.ok and result.status_code is None
    assert result.error is not None and result.error.startswith("refused: ")
    assert deliverer.next_step(0, result) == ("failed", None)  # a refused target is not retried


@pytest.mark.parametrize("form", ALWAYS_UNSAFE)
def test_metadata_and_other_schemes_stay_refused_when_private_targets_are_allowed(form: str) -> None:
    url = dict(UNSAFE)[form]
    with pytest.raises(UnsafeURL):
        check_url(url, allow_private=True)


def test_private_targets_are_allowed_with_the_switch() -> None:
    assert check_url("http://127.0.0.1:9/hook", allow_private=True).addresses == ("127.0.0.1",)


def test_public_addresses_are_allowed() -> None:
    assert check_url("https://93.184.215.14/hook", allow_private=False).addresses == ("93.184.215.14",)
    assert check_url("http://[2606:4700::1111]/", allow_private=False).addresses == ("2606:4700::1111",)
    assert check_url("http://[::ffff:8.8.8.8]/", allow_private=False).addresses == ("::ffff:808:808",)


def test_a_name_resolving_to_a_private_address_is_refused() -> None:
    with pytest.raises(UnsafeURL, match="resolves to 10.0.0.7, a private address"):
        check_url("https://hooks.example/in", allow_private=False, resolve=fake_dns({"hooks.example": ["10.0.0.7"]}))


def test_one_private_answer_among_public_ones_is_enough_to_refuse() -> None:
    dns = fake_dns({"hooks.example": ["93.184.215.14", "127.0.0.1"]})
    with pytest.raises(UnsafeURL, match="loopback"):
        check_url("https://hooks.example/in", allow_private=False, resolve=dns)


def test_a_public_name_keeps_its_host_for_tls_and_pins_the_address() -> None:
    target = check_url("https://hooks.example:8443/in", allow_private=False,
                       resolve=fake_dns({"hooks.example": ["93.184.215.14"]}))
    assert target.addresses == ("93.184.215.14",)
    assert str(target.pinned_url(target.addresses[0])) == "https://93.184.215.14:8443/in"
    assert target.host_header == "hooks.example:8443"
    assert target.sni_hostname == "hooks.example"


def test_a_name_that_does_not_resolve_is_refused() -> None:
    with pytest.raises(UnsafeURL, match="does not resolve"):
        check_url("https://nowhere.example/", allow_private=False, resolve=fake_dns({}))


@pytest.mark.usefixtures("worker")
def test_a_job_accepted_while_allowed_is_refused_by_a_strict_delivery_worker(
    api: Api, make_worker: Callable[..., WorkerProcess]
) -> None:
    make_worker("webhooks-strict", queues="webhooks", concurrency=2, env={"GEMQ_WEBHOOK_ALLOW_PRIVATE": "0"})
    with Receiver() as receiver:
        job = api.wait(api.submit(prompt=f"strict {tag()}", webhook_url=receiver.url)["id"])
        shown = wait_until(lambda: (j := api.job(job["id"])).get("webhook") and j["webhook"]["state"] == "failed" and j,
                           timeout=20, what="the delivery to be refused")
        assert receiver.received == []
    [attempt] = shown["webhook"]["attempts"]
    assert attempt["error"] == "refused: 127.0.0.1 is a loopback address"
    assert shown["status"] == "succeeded"
