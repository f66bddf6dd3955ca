"""Conversations: jobs of one conversation run one at a time in submission order and share a history."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator

import pytest
from helpers import Api, CountingConnection, counting_client, tag, tag_of
from procs import EmulatorProcess, RedisServer, WorkerProcess

from worker.core import keys
from worker.core.job import JobStatus
from worker.core.request import JobRequest
from worker.core.settings import Settings
from worker.store.connect import connect
from worker.store.conversations import Conversations
from worker.store.jobs import JobStore

pytestmark = pytest.mark.usefixtures("worker")


@pytest.fixture
def slow_stream(emu: EmulatorProcess) -> Iterator[None]:
    """Answers of 40 tokens at 40 tokens/s: about a second of streaming each."""
    emu.configure(tokens_per_second=40, output_tokens=40)
    yield
    emu.configure(tokens_per_second=0, output_tokens=0)


def new_conversation() -> str:
    """A fresh conversation id."""
    return f"conv-{uuid.uuid4().hex[:12]}"


def words(text: str) -> int:
    """Words as the emulator counts prompt tokens (plus 3 per turn)."""
    return len(text.split())


def test_two_jobs_submitted_together_run_in_order_and_the_second_sees_three_turns(
    api: Api, emu: EmulatorProcess, slow_stream: None
) -> None:
    conversation, marker = new_conversation(), tag()
    first_prompt, second_prompt = f"Name three message queues {marker}", "Which of them is the fastest"
    # Given two jobs of one conversation submitted back to back (the worker has 16 threads)
    first = api.submit(prompt=first_prompt, conversation_id=conversation)
    second = api.submit(prompt=second_prompt, conversation_id=conversation)
    # When both finish
    first, second = api.wait(first["id"]), api.wait(second["id"])
    # Then the second started only after the first ended, and Gemini saw user, model, user
    assert (first["status"], second["status"]) == ("succeeded", "succeeded")
    assert second["started_at"] >= first["finished_at"]
    calls = emu.requests(tag=tag_of(marker))  # the first prompt (and its tag) leads both calls
    assert [c["prompt_tokens"] for c in calls] == [
        words(first_prompt) + 3,
        words(first_prompt) + words(first["result"]["text"]) + words(second_prompt) + 3 * 3,
    ]
    assert second["result"]["usage"]["prompt_tokens"] == calls[1]["prompt_tokens"]
    history = api.get(f"/v1/conversations/{conversation}").get_json()
    assert [t["role"] for t in history["turns"]] == ["user", "model", "user", "model"]
    assert [t["parts"][0]["text"] for t in history["turns"]] == [
        first_prompt, first["result"]["text"], second_prompt, second["result"]["text"]
    ]
    assert history["job_ids"] == [first["id"], second["id"]]
    assert second["conversation_id"] == conversation


def test_many_jobs_run_one_at_a_time_across_worker_processes(
    api: Api, slow_stream: None, make_worker: Callable[..., WorkerProcess]
) -> None:
    make_worker("conv-extra", concurrency=4)
    conversation = new_conversation()
    ids = [api.submit(prompt=f"step {i} {tag()}", conversation_id=conversation)["id"] for i in range(4)]
    jobs = [api.wait(job_id, timeout=30) for job_id in ids]
    assert all(j["status"] == "succeeded" for j in jobs)
    for before, after in zip(jobs, jobs[1:], strict=False):
        assert after["started_at"] >= before["finished_at"]
    assert all(j["attempts"] == 1 for j in jobs)  # waiting for a turn is not an attempt
    assert api.get(f"/v1/conversations/{conversation}").get_json()["job_ids"] == ids


def test_a_failed_job_passes_the_turn_and_leaves_the_history_unchanged(api: Api, emu: EmulatorProcess) -> None:
    conversation, failing, later = new_conversation(), tag(), tag()
    emu.fault(failing, "status", status=400)
    first = api.submit(prompt=f"refused {failing}", conversation_id=conversation)
    second = api.submit(prompt=f"accepted {later}", conversation_id=conversation)
    assert api.wait(first["id"])["error"]["type"] == "invalid_request"
    assert api.wait(second["id"])["status"] == "succeeded"
    assert [c["prompt_tokens"] for c in emu.requests(tag=tag_of(later))] == [words(f"accepted {later}") + 3]
    assert api.get(f"/v1/conversations/{conversation}").get_json()["job_ids"] == [second["id"]]


def test_cancelling_a_waiting_job_lets_the_next_one_run(api: Api, slow_stream: None) -> None:
    conversation = new_conversation()
    first, waiting, last = (api.submit(prompt=f"job {i} {tag()}", conversation_id=conversation) for i in range(3))
    api.wait(first["id"], statuses={"running"})
    assert api.post(f"/v1/jobs/{waiting['id']}/cancel").get_json()["status"] == "cancelled"
    first, last = api.wait(first["id"]), api.wait(last["id"])
    assert last["status"] == "succeeded" and last["started_at"] >= first["finished_at"]
    assert api.get(f"/v1/conversations/{conversation}").get_json()["job_ids"] == [first["id"], last["id"]]


def test_cancelling_the_running_job_lets_the_next_one_run(api: Api, slow_stream: None) -> None:
    conversation = new_conversation()
    running = api.submit(prompt=f"long {tag()}", conversation_id=conversation)
    following = api.submit(prompt=f"next {tag()}", conversation_id=conversation)
    api.wait(running["id"], statuses={"running"})
    api.post(f"/v1/jobs/{running['id']}/cancel")
    assert api.wait(following["id"])["status"] == "succeeded"
    assert api.get(f"/v1/conversations/{conversation}").get_json()["job_ids"] == [following["id"]]


@pytest.fixture
def store(settings: Settings) -> JobStore:
    """The job store on the session's Redis, to stage what a crashed process leaves behind."""
    return JobStore(connect(settings), settings)


def test_a_ticket_whose_job_vanished_does_not_block_the_line(api: Api, store: JobStore) -> None:
    # Given a ticket taken by a job whose record is gone (its publish failed, or the web died)
    conversation = new_conversation()
    lost = store.new_record("acme", JobRequest(prompt="lost", conversation_id=conversation))
    store.save_new([lost])
    store.delete(lost["id"], "acme")
    # When a later job of the conversation is submitted, Then it runs
    job = api.submit(prompt=f"after a lost ticket {tag()}", conversation_id=conversation)
    assert api.wait(job["id"])["status"] == "succeeded"


def test_a_holder_that_finished_without_ending_its_turn_is_settled_by_the_next_job(
    api: Api, store: JobStore, emu: EmulatorProcess
) -> None:
    # Given a job that succeeded but whose worker died before it ended its turn
    conversation, marker = new_conversation(), tag()
    crashed = store.new_record("acme", JobRequest(prompt=f"earlier question {marker}", conversation_id=conversation))
    store.save_new([crashed])
    result = {"text": "earlier answer", "usage": {}}
    store.transition(crashed, JobStatus.succeeded, allowed=("queued",), fields={"result": json.dumps(result)})
    # When the next job of the conversation runs
    job = api.wait(api.submit(prompt="follow up", conversation_id=conversation)["id"])
    # Then it ran, after adding the finished job's exchange to the history once
    assert job["status"] == "succeeded"
    assert [c["prompt_tokens"] for c in emu.requests(tag=tag_of(marker))] == [
        words(f"earlier question {marker}") + words("earlier answer") + words("follow up") + 3 * 3
    ]
    assert api.get(f"/v1/conversations/{conversation}").get_json()["job_ids"] == [crashed["id"], job["id"]]


def test_get_and_delete_are_tenant_scoped_and_delete_starts_afresh(api: Api, emu: EmulatorProcess) -> None:
    conversation = new_conversation()
    api.wait(api.submit(prompt=f"remember this {tag()}", conversation_id=conversation)["id"])
    other = api.as_tenant("globex")
    assert api.get("/v1/conversations/never-used").status_code == 404
    assert other.get(f"/v1/conversations/{conversation}").status_code == 404
    assert other.client.delete(f"/v1/conversations/{conversation}", headers=other.headers).status_code == 404
    assert len(api.get(f"/v1/conversations/{conversation}").get_json()["turns"]) == 2

    assert api.client.delete(f"/v1/conversations/{conversation}", headers=api.headers).status_code == 204

    assert api.get(f"/v1/conversations/{conversation}").get_json()["turns"] == []
    marker = tag()
    api.wait(api.submit(prompt=f"fresh start {marker}", conversation_id=conversation)["id"])
    assert emu.requests(tag=tag_of(marker))[0]["prompt_tokens"] == words(f"fresh start {marker}") + 3


def test_the_same_conversation_id_is_separate_per_tenant(api: Api, emu: EmulatorProcess) -> None:
    conversation = new_conversation()
    api.wait(api.submit(prompt=f"acme's secret {tag()}", conversation_id=conversation)["id"])
    marker = tag()
    job = api.as_tenant("globex").submit(prompt=f"globex asks {marker}", conversation_id=conversation)
    api.as_tenant("globex").wait(job["id"])
    assert emu.requests(tag=tag_of(marker))[0]["prompt_tokens"] == words(f"globex asks {marker}") + 3


def test_saving_conversation_jobs_is_one_round_trip_and_keeps_their_order(
    settings: Settings, redis_server: RedisServer
) -> None:
    client = counting_client(redis_server)
    store = JobStore(client, settings)
    conversation = f"c-{uuid.uuid4().hex}"
    records = [store.new_record("acme", JobRequest(prompt=f"turn {n}", conversation_id=conversation)) for n in range(3)]
    store.save_new(records[:1])  # loads the ticket script
    # When two more jobs of the conversation are saved together
    CountingConnection.sent = 0
    store.save_new(records[1:])
    # Then one round trip wrote them (no SCRIPT EXISTS first), and their tickets follow submission order
    assert CountingConnection.sent == 1
    assert [int(client.hget(keys.job(r["id"]), "conv_ticket")) for r in records] == [1, 2, 3]


def test_conversation_tickets_are_taken_after_redis_lost_its_scripts(settings: Settings,
                                                                     redis_server: RedisServer) -> None:
    client = connect(settings)
    store = JobStore(client, settings)
    conversation = f"c-{uuid.uuid4().hex}"
    records = [store.new_record("acme", JobRequest(prompt=f"turn {n}", conversation_id=conversation)) for n in range(2)]
    client.script_flush()
    store.save_new(records)
    assert [int(client.hget(keys.job(r["id"]), "conv_ticket")) for r in records] == [1, 2]


def test_history_keeps_whole_exchanges_within_the_turn_bound(settings: Settings, redis_server: RedisServer) -> None:
    # Given a store on a database no worker reads, and a bound of four turns
    bounded = settings.replace(redis_url=redis_server.url.replace("/0", "/7"), conversation_max_turns=4)
    client = connect(bounded)
    store = JobStore(client, bounded)
    conversations = Conversations(client, store, bounded)
    conversation = new_conversation()

    def exchange(request: JobRequest, answer: str) -> str:
        record = store.new_record("acme", request)
        store.save_new([record])
        record = store.get(record["id"]) or {}
        assert conversations.prepare(record, json.loads(record["request"])) is not None  # its turn
        result = json.dumps({"text": answer})
        store.transition(record, JobStatus.succeeded, allowed=("queued",), fields={"result": result})
        assert conversations.settle(store.get(record["id"]) or {})
        return record["id"]

    # When three two-turn exchanges are added
    ids = [exchange(JobRequest(prompt=f"q{i}", conversation_id=conversation), f"a{i}") for i in range(3)]
    # Then the oldest whole exchange is dropped
    history = conversations.history("acme", conversation)
    assert [e.job_id for e in history] == ids[1:]
    assert [t["role"] for e in history for t in e.turns] == ["user", "model", "user", "model"]
    # And an exchange longer than the bound is kept alone, whole
    long_turns = [{"role": r, "parts": [{"text": r}]} for r in ("user", "model", "user", "model", "user")]
    big = exchange(JobRequest(contents=long_turns, conversation_id=conversation), "six")
    assert [e.job_id for e in conversations.history("acme", conversation)] == [big]
    assert len(conversations.history("acme", conversation)[0].turns) == 6


@pytest.mark.parametrize("body", [
    {"prompt": "x", "conversation_id": "has space"},
    {"prompt": "x", "conversation_id": "x" * 65},
    {"prompt": "x", "conversation_id": ""},
    {"prompt": "x", "conversation_id": "ok", "cache": True},
])
def test_invalid_conversation_requests_are_422(api: Api, body: dict[str, object]) -> None:
    response = api.post("/v1/jobs", body)
    assert response.status_code == 422
    assert response.get_json()["error"]["type"] == "invalid_request"


def test_a_conversations_keys_share_one_ttl_refreshed_on_use(api: Api, redis_server: RedisServer,
                                                             settings: Settings) -> None:
    conversation = new_conversation()
    api.wait(api.submit(prompt=f"keep me {tag()}", conversation_id=conversation)["id"])
    client = redis_server.client()
    line = [f"gemq:conv:acme:{conversation}"] + [f"gemq:conv:acme:{conversation}:{p}" for p in ("next", "turn")]
    ttls = [client.ttl(key) for key in line]
    assert all(settings.conversation_ttl - 60 < ttl <= settings.conversation_ttl for ttl in ttls), ttls
