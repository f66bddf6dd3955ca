"""The job pipeline end to end: HTTP submit -> Redis -> real Celery worker -> emulator -> result."""

from __future__ import annotations

import json
import time

import pytest
from helpers import Api, job_events, tag, tag_of
from procs import EmulatorProcess, RedisServer, wait_until

from web import create_app
from worker.core.settings import Settings

pytestmark = pytest.mark.usefixtures("worker")


def test_job_succeeds_with_text_finish_reason_and_usage(api: Api, emu: EmulatorProcess) -> None:
    marker = tag()
    submitted = api.submit(prompt=f"Write about queues {marker}", metadata={"team": "ml"})
    assert submitted["status"] == "queued"
    assert submitted["metadata"] == {"team": "ml"}

    job = api.wait(submitted["id"])

    assert job["status"] == "succeeded", job
    assert job["result"]["text"]
    assert job["result"]["finish_reason"] == "STOP"
    assert job["result"]["usage"]["prompt_tokens"] > 0
    assert job["result"]["usage"]["output_tokens"] > 0
    assert job["result"]["usage"]["total_tokens"] >= job["result"]["usage"]["output_tokens"]
    assert job["result"]["model_version"]
    assert job["attempts"] == 1
    assert job["started_at"] and job["finished_at"] and job["error"] is None
    assert len(emu.requests(tag=tag_of(marker))) == 1


def test_a_json_response_mime_type_reaches_gemini_and_the_result_is_json(api: Api) -> None:
    config = {"response_mime_type": "application/json", "temperature": 0.1, "stop_sequences": ["NEVER"]}
    job = api.wait(api.submit(prompt=f"as json {tag()}", generation_config=config)["id"])

    assert job["status"] == "succeeded", job
    assert set(json.loads(job["result"]["text"])) == {"text"}


def test_statuses_move_queued_running_succeeded(api: Api, redis_server: RedisServer) -> None:
    job = api.wait(api.submit(prompt=f"states {tag()}")["id"])
    assert job_events(redis_server, job["id"]) == ["queued", "running", "succeeded"]


def test_a_503_is_retried_and_attempts_are_recorded(api: Api, emu: EmulatorProcess, redis_server: RedisServer) -> None:
    marker = tag()
    emu.fault(marker, "status", status=503, times=2)

    job = api.wait(api.submit(prompt=f"flaky {marker}")["id"])

    assert job["status"] == "succeeded"
    assert job["attempts"] == 3
    assert job_events(redis_server, job["id"]) == [
        "queued", "running", "retrying", "running", "retrying", "running", "succeeded"
    ]


def test_a_400_fails_at_once_as_invalid_request(api: Api, emu: EmulatorProcess) -> None:
    marker = tag()
    emu.fault(marker, "status", status=400)
    job = api.wait(api.submit(prompt=f"bad {marker}")["id"])
    assert job["status"] == "failed"
    assert job["error"]["type"] == "invalid_request"
    assert job["attempts"] == 1


def test_a_blocked_prompt_fails_as_safety_blocked(api: Api, emu: EmulatorProcess) -> None:
    marker = tag()
    emu.fault(marker, "safety_prompt")
    job = api.wait(api.submit(prompt=f"unsafe {marker}")["id"])
    assert (job["status"], job["error"]["type"]) == ("failed", "safety_blocked")


def test_a_blocked_answer_fails_as_safety_blocked(api: Api, emu: EmulatorProcess) -> None:
    marker = tag()
    emu.fault(marker, "safety_candidate")
    job = api.wait(api.submit(prompt=f"unsafe answer {marker}")["id"])
    assert (job["status"], job["error"]["type"]) == ("failed", "safety_blocked")


def test_terminal_records_get_the_result_ttl(api: Api, redis_server: RedisServer, settings: Settings) -> None:
    job = api.wait(api.submit(prompt=f"ttl {tag()}")["id"])
    client = redis_server.client()
    for key in (f"gemq:job:{job['id']}", f"gemq:job:{job['id']}:events"):
        assert settings.result_ttl - 60 < client.ttl(key) <= settings.result_ttl


def test_running_records_have_no_ttl(api: Api, emu: EmulatorProcess, redis_server: RedisServer) -> None:
    marker = tag()
    emu.fault(marker, "hang", hang_s=1.5)
    job = api.submit(prompt=f"slow {marker}")
    api.wait(job["id"], statuses={"running"})
    assert redis_server.client().ttl(f"gemq:job:{job['id']}") == -1
    api.wait(job["id"])


def test_cancel_stops_a_running_job_at_the_next_chunk(api: Api, emu: EmulatorProcess) -> None:
    emu.configure(tokens_per_second=20, output_tokens=400)
    try:
        job = api.submit(prompt=f"long {tag()}")
        wait_until(lambda: api.job(job["id"]).get("partial_text"), timeout=10, what="partial text")

        response = api.post(f"/v1/jobs/{job['id']}/cancel")

        assert response.status_code == 200
        assert response.get_json()["status"] == "cancelled"
        time.sleep(0.6)
        final = api.job(job["id"])
        assert final["status"] == "cancelled" and final["result"] is None
        assert final["error"]["type"] == "cancelled"
    finally:
        emu.configure(tokens_per_second=0, output_tokens=0)


def test_cancel_of_a_finished_job_is_409(api: Api) -> None:
    job = api.wait(api.submit(prompt=f"done {tag()}")["id"])
    response = api.post(f"/v1/jobs/{job['id']}/cancel")
    assert response.status_code == 409
    assert response.get_json()["error"]["type"] == "conflict"


def test_a_tenant_cannot_see_list_or_cancel_another_tenants_job(api: Api) -> None:
    job = api.submit(prompt=f"private {tag()}")
    other = api.as_tenant("globex")
    assert other.get(f"/v1/jobs/{job['id']}").status_code == 404
    assert other.post(f"/v1/jobs/{job['id']}/cancel").status_code == 404
    assert job["id"] not in {j["id"] for j in other.get("/v1/jobs?limit=100").get_json()["jobs"]}
    assert job["id"] in {j["id"] for j in api.get("/v1/jobs?limit=100").get_json()["jobs"]}


def test_listing_is_newest_first_filters_by_status_and_pages(api: Api) -> None:
    other = api.as_tenant("globex")
    ids = [other.submit(prompt=f"list {i} {tag()}")["id"] for i in range(5)]
    for job_id in ids:
        other.wait(job_id)

    first = other.get("/v1/jobs?limit=3&status=succeeded").get_json()
    second = other.get(f"/v1/jobs?limit=3&status=succeeded&cursor={first['next_cursor']}").get_json()

    listed = [j["id"] for j in first["jobs"] + second["jobs"]]
    assert listed[:5] == list(reversed(ids))
    assert len(set(listed)) == len(listed)


def test_a_cancelled_queued_job_never_reaches_gemini(
    settings: Settings, redis_server: RedisServer, emu: EmulatorProcess, make_worker
) -> None:
    # Given a Redis database no worker consumes yet
    isolated = settings.replace(redis_url=redis_server.url.replace("/0", "/3"))
    api = Api(create_app(isolated).test_client())
    marker = tag()
    job = api.submit(prompt=f"never {marker}")
    # When it is cancelled while queued, and only then a worker starts
    assert api.post(f"/v1/jobs/{job['id']}/cancel").get_json()["status"] == "cancelled"
    make_worker("db3", env={"REDIS_URL": isolated.redis_url}, concurrency=2)
    # Then the message is consumed without a call to Gemini
    client = redis_server.client()
    client.execute_command("SELECT", 3)
    wait_until(lambda: client.llen("gemq:broker:jobs-1-normal") == 0, timeout=15, what="the queue to drain")
    time.sleep(0.5)
    assert emu.requests(tag=tag_of(marker)) == []
    assert api.job(job["id"])["status"] == "cancelled"


def test_high_priority_runs_before_queued_low_work(
    settings: Settings, redis_server: RedisServer, emu: EmulatorProcess, make_worker
) -> None:
    # Given one worker slot, busy with a slow job, and 50 low jobs queued behind it
    isolated = settings.replace(redis_url=redis_server.url.replace("/0", "/4"))
    api = Api(create_app(isolated).test_client())
    blocker = tag()
    emu.fault(blocker, "hang", hang_s=2.0)
    make_worker("prio", env={"REDIS_URL": isolated.redis_url}, concurrency=1)
    busy = api.submit(prompt=f"blocker {blocker}")
    api.wait(busy["id"], statuses={"running"})
    lows = [api.submit(prompt=f"low {i} {tag()}", priority="low")["id"] for i in range(50)]
    # When one high job arrives
    high = api.submit(prompt=f"high {tag()}", priority="high")["id"]
    # Then it is the next to start
    api.wait(high, timeout=30)
    started = {job_id: api.job(job_id)["started_at"] for job_id in lows}
    high_started = api.job(high)["started_at"]
    assert all(s is None or s > high_started for s in started.values())
