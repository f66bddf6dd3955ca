"""Signed webhooks end to end: real job worker, real webhooks worker, a real receiver on loopback."""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import Api, tag, webhooks_worker_for
from procs import EmulatorProcess, RedisServer, WorkerProcess, wait_until
from receiver import Answer, Receiver, spec_signature
from svix.webhooks import Webhook, WebhookVerificationError

from web import create_app
from worker.core.clock import now_ms
from worker.core.job import JobStatus
from worker.core.request import JobRequest
from worker.core.settings import Settings
from worker.queue.app import create_celery
from worker.queue.publisher import CeleryPublisher
from worker.store.jobs import JobStore
from worker.store.webhooks import Attempt, WebhookEvents
from worker.webhooks.delivery import Deliverer

#: Short retries and a short timeout, so a whole schedule runs in seconds.
WEBHOOK_ENV = {"GEMQ_WEBHOOK_RETRY_SCHEDULE": "0.2,0.2,0.2", "GEMQ_WEBHOOK_TIMEOUT": "1"}


@pytest.fixture(scope="module")
def webhooks_worker(base_env: dict[str, str], run_dir: Path) -> Iterator[WorkerProcess]:
    """The webhooks worker (only the ``webhooks`` queue), shared by this module's tests."""
    with webhooks_worker_for(base_env, run_dir, "webhooks", WEBHOOK_ENV) as process:
        yield process


pytestmark = pytest.mark.usefixtures("worker", "webhooks_worker")


def secret_of(api: Api) -> str:
    """The tenant's signing secret from the API."""
    response = api.get("/v1/webhooks/secret")
    assert response.status_code == 200
    return str(response.get_json()["secret"])


def webhook_when(api: Api, job_id: str, state: str, timeout: float = 20) -> dict[str, Any]:
    """The job once its webhook reached ``state``."""
    return wait_until(lambda: (j := api.job(job_id)).get("webhook") and j["webhook"]["state"] == state and j,
                      timeout=timeout, what=f"the webhook of {job_id} to be {state}")


def test_a_delivery_is_signed_and_verifies_with_svix_and_by_the_spec(api: Api) -> None:
    secret = secret_of(api)
    with Receiver() as receiver:
        job = api.wait(api.submit(prompt=f"hook {tag()}", webhook_url=receiver.url)["id"])
        [got] = receiver.wait_for(1)

    Webhook(secret).verify(got.body, got.headers)  # raises when the signature is wrong
    assert got.headers["webhook-signature"] == spec_signature(secret, got.headers, got.body)
    assert abs(int(got.headers["webhook-timestamp"]) - time.time()) < 30
    with pytest.raises(WebhookVerificationError):
        Webhook(secret_of(api.as_tenant("globex"))).verify(got.body, got.headers)
    event = json.loads(got.body)
    assert event["type"] == "job.succeeded"
    assert got.headers["webhook-id"] == f"evt_{job['id']}_succeeded"
    assert got.headers["content-type"] == "application/json"
    shown = webhook_when(api, job["id"], "delivered")
    assert without_webhook(event["data"]) == without_webhook(shown)  # the job as GET shows it
    assert shown["webhook"]["event_id"] == got.headers["webhook-id"]
    [attempt] = shown["webhook"]["attempts"]
    assert attempt["status_code"] == 200 and attempt["error"] is None and attempt["duration_ms"] >= 0


def test_a_receiver_failing_twice_gets_one_event_id_three_times(api: Api) -> None:
    secret = secret_of(api)
    with Receiver([Answer(500), Answer(503)]) as receiver:
        job = api.wait(api.submit(prompt=f"flaky receiver {tag()}", webhook_url=receiver.url)["id"])
        got = receiver.wait_for(3)
        time.sleep(0.5)  # nothing more may come
        assert len(receiver.received) == 3

    assert {r.headers["webhook-id"] for r in got} == {f"evt_{job['id']}_succeeded"}
    assert len({r.body for r in got}) == 1  # the same event, byte for byte
    for request in got:
        Webhook(secret).verify(request.body, request.headers)
    assert got[1].at - got[0].at >= 0.2 and got[2].at - got[1].at >= 0.2  # the retry schedule
    shown = webhook_when(api, job["id"], "delivered")
    assert [a["status_code"] for a in shown["webhook"]["attempts"]] == [500, 503, 200]
    assert shown["status"] == "succeeded"


def test_a_receiver_that_never_answers_in_time_fails_after_the_whole_schedule(api: Api) -> None:
    with Receiver(default=Answer(200, delay=2.5)) as receiver:
        job = api.wait(api.submit(prompt=f"slow receiver {tag()}", webhook_url=receiver.url)["id"])
        shown = webhook_when(api, job["id"], "failed", timeout=30)

    attempts = shown["webhook"]["attempts"]
    assert len(attempts) == 4  # the first attempt and one per scheduled retry
    assert all(a["status_code"] is None and a["error"] == "no answer within 1 s" for a in attempts)
    assert all(900 <= a["duration_ms"] < 2400 for a in attempts)
    assert shown["webhook"]["next_attempt_at"] is None
    assert shown["status"] == "succeeded" and shown["error"] is None  # the job itself is untouched


def test_a_failed_job_sends_job_failed_and_attempts_running_out_leave_its_status(
    api: Api, emu: EmulatorProcess
) -> None:
    marker = tag()
    emu.fault(marker, "status", status=400)
    with Receiver(default=Answer(500)) as receiver:
        job = api.wait(api.submit(prompt=f"bad {marker}", webhook_url=receiver.url)["id"])
        shown = webhook_when(api, job["id"], "failed")
        got = receiver.wait_for(4)

    assert json.loads(got[0].body)["type"] == "job.failed"
    assert [a["status_code"] for a in shown["webhook"]["attempts"]] == [500, 500, 500, 500]
    assert shown["status"] == "failed" and shown["error"]["type"] == "invalid_request"


def test_a_cancelled_job_sends_job_cancelled_once(api: Api, emu: EmulatorProcess) -> None:
    marker = tag()
    emu.fault(marker, "hang", hang_s=1.5)
    with Receiver() as receiver:
        job = api.submit(prompt=f"to cancel {marker}", webhook_url=receiver.url)
        api.wait(job["id"], statuses={"running"})
        assert api.post(f"/v1/jobs/{job['id']}/cancel").status_code == 200
        [got] = receiver.wait_for(1)
        time.sleep(2.5)  # the worker wakes from the hang, sees the cancel and must not send it again
        assert len(receiver.received) == 1

    assert json.loads(got.body)["type"] == "job.cancelled"
    assert got.headers["webhook-id"] == f"evt_{job['id']}_cancelled"
    assert webhook_when(api, job["id"], "delivered")["status"] == "cancelled"


def test_a_redelivered_message_of_a_finished_job_queues_its_webhook_exactly_once(
    api: Api, settings: Settings, redis_server: RedisServer
) -> None:
    # Given a job a worker finished just before dying, without queueing its webhook
    store = JobStore(redis_server.client(), settings)
    with Receiver() as receiver:
        record = store.new_record("acme", JobRequest(prompt="finished elsewhere", webhook_url=receiver.url))
        store.save_new([record])
        result = {"text": "done", "finish_reason": "STOP"}
        store.transition(record, JobStatus.succeeded, allowed=("queued",),
                         fields={"finished_ms": str(now_ms()), "result": json.dumps(result)})
        # When its message is redelivered, then the event goes out
        publisher = CeleryPublisher(create_celery(settings))
        publisher.publish_job(record["id"], "normal")
        [got] = receiver.wait_for(1)
        # And when the message comes once more (at least once), it does not go out again
        publisher.publish_job(record["id"], "normal")
        time.sleep(1.5)
        assert len(receiver.received) == 1
    assert json.loads(got.body)["data"]["result"]["text"] == "done"


def webhook_events(settings: Settings, redis_server: RedisServer) -> WebhookEvents:
    """Webhook events on the session's Redis, publishing through gemq's Celery app."""
    return WebhookEvents(redis_server.client(), settings, CeleryPublisher(create_celery(settings)))


def test_delivery_connects_to_the_checked_address_and_keeps_the_host_name(
    settings: Settings, redis_server: RedisServer
) -> None:
    looked_up: list[str] = []

    def resolve(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        looked_up.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    deliverer = Deliverer(settings=settings, events=webhook_events(settings, redis_server), resolve=resolve)
    with Receiver() as receiver:
        port = receiver.server.server_address[1]
        result = deliverer.attempt(attempt_to(f"http://hooks.example:{port}/in"))
    assert result.ok and result.status_code == 200
    assert looked_up == ["hooks.example"]
    assert receiver.received[0].headers["host"] == f"hooks.example:{port}"
    assert receiver.received[0].path == "/in"


def test_redirects_are_not_followed(settings: Settings, redis_server: RedisServer) -> None:
    deliverer = Deliverer(settings=settings, events=webhook_events(settings, redis_server))
    with Receiver() as target, Receiver(default=Answer(302, headers={"Location": target.url})) as redirector:
        result = deliverer.attempt(attempt_to(redirector.url))
    assert not result.ok and result.status_code == 302
    assert target.received == []


def test_the_secret_is_per_tenant_stable_and_derived_from_the_master_secret(api: Api, settings: Settings) -> None:
    acme, globex = secret_of(api), secret_of(api.as_tenant("globex"))
    assert acme.startswith("whsec_") and len(base64.b64decode(acme.removeprefix("whsec_"))) == 32
    assert acme != globex and secret_of(api) == acme
    other = Api(create_app(settings.replace(webhook_secret="another-master")).test_client())
    assert secret_of(other) != acme
    assert api.client.get("/v1/webhooks/secret").status_code == 401


def without_webhook(job: dict[str, Any]) -> dict[str, Any]:
    """A job view without its (changing) webhook field."""
    return {k: v for k, v in job.items() if k != "webhook"}


def attempt_to(url: str) -> Attempt:
    """A stand-alone attempt (no stored event) to ``url``."""
    return Attempt(event_id="evt_test", index=0, tenant="acme", url=url, body='{"type":"test"}', owner="")
