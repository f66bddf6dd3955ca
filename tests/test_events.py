"""``GET /v1/jobs/<id>/events``: live status and text deltas as Server-Sent Events, resumable."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from helpers import TENANTS, Api, tag
from procs import EmulatorProcess, RedisServer, WebProcess
from sse import Event, deltas_text, events

from web import create_app
from worker.core.settings import Settings

pytestmark = pytest.mark.usefixtures("worker")


@pytest.fixture(scope="module")
def live(settings: Settings) -> Api:
    """The API with short heartbeats, so quiet streams look at the job every second."""
    return Api(create_app(settings.replace(sse_heartbeat=1.0, sse_max_duration=60)).test_client())


@pytest.fixture
def slow_stream(emu: EmulatorProcess) -> Iterator[None]:
    """Answers of 120 tokens at 40 tokens/s: about three seconds of streaming each."""
    emu.configure(tokens_per_second=40, output_tokens=120)
    yield
    emu.configure(tokens_per_second=0, output_tokens=0)


def read(api: Api, job_id: str, *, last_id: str | None = None, stop_after_deltas: int | None = None) -> list[Event]:
    """Events of one connection, until the stream ends (or after some deltas, then disconnect)."""
    headers = {"Last-Event-ID": last_id} if last_id else {}
    response = api.get(f"/v1/jobs/{job_id}/events", headers=headers, buffered=False)
    assert response.status_code == 200, response.get_data()
    received: list[Event] = []
    try:
        for event in events(response.response):
            received.append(event)
            if stop_after_deltas and sum(e.event == "delta" for e in received) >= stop_after_deltas:
                break
    finally:
        response.close()
    return received


def test_events_arrive_while_the_job_runs_and_end_with_the_whole_job(live: Api, slow_stream: None) -> None:
    job = live.submit(prompt=f"stream me {tag()}")
    response = live.get(f"/v1/jobs/{job['id']}/events", buffered=False)
    assert response.mimetype == "text/event-stream"
    received: list[Event] = []
    status_at_first_delta = None
    try:
        for event in events(response.response):
            received.append(event)
            if event.event == "delta" and status_at_first_delta is None:
                status_at_first_delta = live.job(job["id"])["status"]
    finally:
        response.close()

    assert status_at_first_delta == "running"
    assert [e.json()["status"] for e in received if e.event == "status"] == ["queued", "running", "succeeded"]
    assert sum(e.event == "delta" for e in received) >= 3
    done = received[-1]
    assert (done.event, done.id) == ("done", "done")
    assert done.json() == live.job(job["id"])
    assert deltas_text(received) == done.json()["result"]["text"]


def test_a_reconnect_with_last_event_id_misses_and_repeats_nothing(live: Api, slow_stream: None) -> None:
    job = live.submit(prompt=f"resume me {tag()}")
    # Given a client that saw two deltas and dropped the connection
    first = read(live, job["id"], stop_after_deltas=2)
    # When it reconnects with the last id it saw
    rest = read(live, job["id"], last_id=first[-1].id)
    # Then it gets the remaining deltas (the job was still running) and the end, each once
    assert any(e.event == "delta" for e in rest)
    ids = [e.id for e in first + rest]
    assert len(ids) == len(set(ids))
    assert rest[-1].event == "done"
    assert deltas_text(first + rest) == rest[-1].json()["result"]["text"]


def test_a_finished_job_replays_at_once_and_a_reconnect_after_done_gets_204(live: Api) -> None:
    job = live.wait(live.submit(prompt=f"finished {tag()}")["id"])
    started = time.monotonic()
    received = read(live, job["id"])
    assert time.monotonic() - started < 0.9  # no wait for a heartbeat
    assert [e.event for e in received][0] == "status" and received[-1].event == "done"
    assert live.get(f"/v1/jobs/{job['id']}/events", headers={"Last-Event-ID": "done"}).status_code == 204


def test_a_reconnect_after_the_terminal_status_still_gets_done(live: Api) -> None:
    job = live.wait(live.submit(prompt=f"ended {tag()}")["id"])
    terminal = [e for e in read(live, job["id"]) if e.event == "status"][-1]
    received = read(live, job["id"], last_id=terminal.id)
    assert [e.event for e in received] == ["done"]


def test_another_tenants_job_and_an_unknown_job_are_404(live: Api) -> None:
    job = live.submit(prompt=f"mine {tag()}")
    assert live.as_tenant("globex").get(f"/v1/jobs/{job['id']}/events").status_code == 404
    assert live.get("/v1/jobs/0123456789abcdef/events").status_code == 404
    assert live.client.get(f"/v1/jobs/{job['id']}/events").status_code == 401


def test_a_malformed_last_event_id_is_400(live: Api) -> None:
    job = live.submit(prompt=f"bad id {tag()}")
    response = live.get(f"/v1/jobs/{job['id']}/events", headers={"Last-Event-ID": "yesterday"})
    assert response.status_code == 400
    assert response.get_json()["error"]["type"] == "malformed_request"


def test_a_stream_ends_when_its_job_disappears_or_its_time_is_up(settings: Settings, redis_server: RedisServer) -> None:
    # Given a database no worker consumes (jobs stay queued) and streams limited to two seconds
    isolated = settings.replace(redis_url=redis_server.url.replace("/0", "/6"), sse_heartbeat=0.5,
                                sse_max_duration=2.0)
    api = Api(create_app(isolated).test_client())
    vanishing, lingering = api.submit(prompt=f"gone {tag()}"), api.submit(prompt=f"slow {tag()}")
    client = redis_server.client()
    client.execute_command("SELECT", 6)
    # When one job's record disappears while its stream is open
    response = api.get(f"/v1/jobs/{vanishing['id']}/events", buffered=False)
    stream = events(response.response)
    assert next(stream).event == "status"
    client.delete(f"gemq:job:{vanishing['id']}")
    gone = list(stream)
    response.close()
    # Then its stream ends with not_found; and the other stream ends when its time is up
    assert [e.event for e in gone] == ["error"] and gone[0].json()["error"]["type"] == "not_found"
    started = time.monotonic()
    timed_out = read(api, lingering["id"])
    assert 1.5 < time.monotonic() - started < 5
    assert [e.event for e in timed_out] == ["status"]


def test_listeners_beyond_the_limit_are_refused_with_503(settings: Settings) -> None:
    api = Api(create_app(settings.replace(sse_max_listeners=1)).test_client())
    job = api.submit(prompt=f"popular {tag()}")
    holding = api.get(f"/v1/jobs/{job['id']}/events", buffered=False)
    refused = api.get(f"/v1/jobs/{job['id']}/events")
    holding.close()
    assert refused.status_code == 503 and refused.headers["Retry-After"]
    again = api.get(f"/v1/jobs/{job['id']}/events", buffered=False)
    assert again.status_code == 200
    again.close()


def test_streams_work_through_gunicorn_and_resume_on_any_process(web_server: WebProcess, slow_stream: None) -> None:
    headers = {"Authorization": f"Bearer {TENANTS['acme']}"}
    with httpx.Client(base_url=web_server.url, headers=headers, timeout=30, trust_env=False) as http:
        job = http.post("/v1/jobs", json={"prompt": f"through gunicorn {tag()}"}).json()
        first: list[Event] = []
        with http.stream("GET", f"/v1/jobs/{job['id']}/events") as response:
            for event in events(response.iter_raw()):
                first.append(event)
                if event.event == "delta":
                    break
        # A new connection, which may reach the other gunicorn worker process
        with httpx.Client(base_url=web_server.url, headers=headers, timeout=30, trust_env=False) as other:
            with other.stream("GET", f"/v1/jobs/{job['id']}/events",
                              headers={"Last-Event-ID": str(first[-1].id)}) as response:
                rest = list(events(response.iter_raw()))
    assert rest[-1].event == "done"
    assert deltas_text(first + rest) == rest[-1].json()["result"]["text"]
