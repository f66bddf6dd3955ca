"""Batches end to end: HTTP submit (JSON and JSONL) -> Redis -> real Celery workers -> emulator -> results."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from helpers import TENANTS, Api, job_events, tag
from procs import EmulatorProcess, RedisServer, WebProcess, free_port, wait_until
from test_metrics import scrape, value

from web import create_app
from worker.core.settings import Settings
from worker.queue.app import create_celery
from worker.queue.publisher import CeleryPublisher

pytestmark = pytest.mark.usefixtures("worker")


def jsonl(lines: list[Any]) -> bytes:
    """A JSONL body (lines that are already strings are sent as they are)."""
    return "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines).encode()


def submit_jsonl(api: Api, lines: list[Any], **params: str) -> Any:
    """POST a JSONL batch; the response."""
    return api.post("/v1/batches", data=jsonl(lines), query_string=params,
                    headers={"Content-Type": "application/jsonl"})


def batch_when(api: Api, batch_id: str, statuses: set[str], timeout: float = 30) -> dict[str, Any]:
    """The batch once its status is one of ``statuses``."""
    def check() -> dict[str, Any] | None:
        batch = api.get(f"/v1/batches/{batch_id}").get_json()
        return batch if batch["status"] in statuses else None
    return wait_until(check, timeout=timeout, what=f"batch {batch_id} to be {sorted(statuses)}")


def results(api: Api, batch_id: str) -> list[dict[str, Any]]:
    """The batch's results lines."""
    response = api.get(f"/v1/batches/{batch_id}/results")
    assert response.status_code == 200 and response.mimetype == "application/jsonl"
    return [json.loads(line) for line in response.get_data(as_text=True).splitlines()]


def test_mixed_line_formats_run_and_results_come_back_in_submission_order(api: Api) -> None:
    marker = tag()
    words = f"Tell me about queues {marker}"
    lines = [
        {"prompt": f"one {marker}", "key": "a"},
        {"key": "b", "request": {"contents": [{"parts": [{"text": words}], "role": "user"}],
                                 "systemInstruction": {"parts": [{"text": "answer in three words"}]},
                                 "generationConfig": {"maxOutputTokens": 5, "temperature": 0.2, "candidateCount": 1}}},
        {"request": {"contents": [{"parts": [{"text": words}]}], "generation_config": {"top_k": 3}}},
        {"contents": [{"role": "user", "parts": [{"text": f"three {marker}"}]}], "model": "gemini-2.5-pro",
         "metadata": {"n": "4"}},
    ]
    response = submit_jsonl(api, lines)
    assert response.status_code == 202, response.get_json()
    submitted = response.get_json()
    assert response.headers["Location"] == f"/v1/batches/{submitted['id']}"
    assert (submitted["status"], submitted["priority"], submitted["total"]) == ("queued", "low", 4)
    assert submitted["counts"]["queued"] == 4

    batch = batch_when(api, submitted["id"], {"completed"})
    rows = results(api, batch["id"])

    assert [(r["index"], r["key"], r["status"]) for r in rows] == [
        (1, "a", "succeeded"), (2, "b", "succeeded"), (3, None, "succeeded"), (4, None, "succeeded")]
    usage_b, usage_c = rows[1]["result"]["usage"], rows[2]["result"]["usage"]
    assert usage_b["output_tokens"] <= 5  # generationConfig.maxOutputTokens reached Gemini
    assert usage_b["prompt_tokens"] == usage_c["prompt_tokens"] + 4 + 3  # the system instruction: 4 words, 1 turn
    item = api.job(rows[3]["id"])
    assert (item["batch_id"], item["priority"], item["model"], item["metadata"]) == (
        batch["id"], "low", "gemini-2.5-pro", {"n": "4"})
    assert batch["counts"] == {"queued": 0, "running": 0, "retrying": 0, "succeeded": 4, "failed": 0, "cancelled": 0}
    assert (batch["done"], batch["progress"], batch["finished_at"] is not None) == (4, 1.0, True)
    assert batch["usage"]["total_tokens"] == sum(r["result"]["usage"]["total_tokens"] for r in rows)


def test_a_json_body_carries_the_batch_options(api: Api) -> None:
    body = {"requests": [{"prompt": f"json {tag()}", "key": "k1"}, {"prompt": f"two {tag()}", "priority": "normal"}],
            "priority": "high", "model": "gemini-2.5-pro", "metadata": {"team": "ml"}}
    response = api.post("/v1/batches", body)
    assert response.status_code == 202, response.get_json()
    batch = batch_when(api, response.get_json()["id"], {"completed"})
    first, second = results(api, batch["id"])
    assert (batch["priority"], batch["model"], batch["metadata"]) == ("high", "gemini-2.5-pro", {"team": "ml"})
    assert (api.job(first["id"])["priority"], api.job(second["id"])["priority"]) == ("high", "normal")
    assert api.job(first["id"])["model"] == "gemini-2.5-pro" and first["key"] == "k1"


def test_one_invalid_line_refuses_the_whole_batch_listing_line_numbers(api: Api, redis_server: RedisServer) -> None:
    client = redis_server.client()
    jobs_before = sum(1 for _ in client.scan_iter("gemq:job:*", count=1000))
    batches_before = sum(1 for _ in client.scan_iter("gemq:batch:*", count=1000))
    good = {"prompt": f"fine {tag()}"}
    lines: list[Any] = [good, "{not json", good, "",
                        {"request": {"contents": [{"parts": [{"inlineData": {"mimeType": "image/png", "data": ""}}]}]}},
                        {"request": {"contents": [{"parts": [{"text": "x"}]}],
                                     "generationConfig": {"candidateCount": 2}}},
                        {"request": {"contents": [{"parts": [{"text": "x"}]}], "tools": [{}]}},
                        {"prompt": "x", "webhook_url": "https://example.com/h"},
                        {"prompt": "x", "temperature": 0.5},
                        {"prompt": "x", "generation_config": {"temperature": 5}},
                        {"key": 7, "prompt": "x"}]
    lines += [{"prompt": ""}] * 120 + [good]

    response = submit_jsonl(api, lines)

    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["message"] == "128 of 131 lines are invalid (the first 100 are listed); nothing was enqueued"
    details = error["details"]
    assert len(details) == 100
    assert [d["loc"] for d in details[:9]] == [f"line {n}" for n in (2, 5, 6, 7, 8, 9, 10, 11, 12)]
    messages = [d["message"] for d in details[:9]]
    assert messages[0].startswith("not valid JSON")
    assert messages[1] == "request.contents[0].parts[0].inlineData: only text parts are supported"
    assert messages[2] == "request.generationConfig.candidateCount: only one candidate per request is supported"
    assert messages[3].startswith("request.tools: tools")
    assert messages[4] == "webhook_url belongs to the batch, not to its lines"
    assert messages[5].startswith("temperature: Extra inputs are not permitted")
    assert messages[6].startswith("generation_config.temperature: Input should be less than or equal to 2")
    assert messages[7].startswith("key must be a string")
    assert details[-1]["loc"] == "line 103"
    assert sum(1 for _ in client.scan_iter("gemq:job:*", count=1000)) == jobs_before
    assert sum(1 for _ in client.scan_iter("gemq:batch:*", count=1000)) == batches_before


def test_size_line_count_media_type_and_emptiness_are_refused(settings: Settings) -> None:
    small = Api(create_app(settings.replace(max_batch_lines=3, max_batch_bytes=2000, max_body_bytes=300)).test_client())
    line = {"prompt": "hello"}

    too_many = submit_jsonl(small, [line] * 4)
    assert too_many.status_code == 422
    assert too_many.get_json()["error"]["message"] == "a batch holds at most 3 requests (GEMQ_MAX_BATCH_LINES)"
    too_big = submit_jsonl(small, [{"prompt": "x" * 250}] * 3 + ["", "", ""] + [" " * 1500])
    assert too_big.status_code == 413
    assert "GEMQ_MAX_BATCH_BYTES" in too_big.get_json()["error"]["message"]
    long_line = submit_jsonl(small, [{"prompt": "x" * 400}])
    assert long_line.status_code == 422
    assert long_line.get_json()["error"]["details"] == [
        {"loc": "line 1", "message": "the line is longer than 300 bytes"}]
    big_json = small.post("/v1/batches", {"requests": [{"prompt": "x" * 400}]})
    assert big_json.status_code == 413 and "send larger batches as JSONL" in big_json.get_json()["error"]["message"]
    assert small.post("/v1/batches", data="x", headers={"Content-Type": "text/plain"}).status_code == 415
    empty = submit_jsonl(small, ["", "  "])
    assert (empty.status_code, empty.get_json()["error"]["message"]) == (422, "the batch has no requests")
    assert small.post("/v1/batches", {"requests": "no"}).status_code == 422
    bad_option = submit_jsonl(small, [line], priority="urgent")
    assert bad_option.status_code == 422 and bad_option.get_json()["error"]["details"][0]["loc"] == "priority"


def test_batches_are_the_callers_own(api: Api) -> None:
    batch_id = submit_jsonl(api, [{"prompt": f"mine {tag()}"}]).get_json()["id"]
    other = api.as_tenant("globex")
    for response in (other.get(f"/v1/batches/{batch_id}"), other.get(f"/v1/batches/{batch_id}/results"),
                     other.post(f"/v1/batches/{batch_id}/cancel")):
        assert response.status_code == 404
        assert response.get_json()["error"]["message"] == "no such batch"
    assert api.get("/v1/batches/nope").status_code == 404


def test_items_stay_out_of_the_job_listing(api: Api) -> None:
    batch_id = submit_jsonl(api, [{"prompt": f"unlisted {tag()}"}] * 3).get_json()["id"]
    listed = {job["id"] for job in api.get("/v1/jobs?limit=100").get_json()["jobs"]}
    items = [row["id"] for row in results(api, batch_id)]
    assert len(items) == 3 and not listed & set(items)


def test_an_idempotency_key_replays_the_batch(api: Api) -> None:
    lines = [{"prompt": f"once {tag()}"}] * 2
    headers = {"Content-Type": "application/jsonl", "Idempotency-Key": tag()}
    first = api.post("/v1/batches", data=jsonl(lines), headers=headers)
    again = api.post("/v1/batches", data=jsonl(lines), headers=headers)
    other = api.post("/v1/batches", data=jsonl(lines[:1]), headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert other.status_code == 409


def test_a_finished_batch_expires_with_its_items(api: Api, redis_server: RedisServer, settings: Settings) -> None:
    batch = batch_when(api, submit_jsonl(api, [{"prompt": f"ttl {tag()}"}] * 3).get_json()["id"], {"completed"})
    client = redis_server.client()
    batch_ttl = client.ttl(f"gemq:batch:{batch['id']}")
    assert settings.result_ttl - 60 < batch_ttl <= settings.result_ttl
    assert client.ttl(f"gemq:batch:{batch['id']}:items") > settings.result_ttl - 60
    for row in results(api, batch["id"]):
        wait_until(lambda r=row: client.ttl(f"gemq:job:{r['id']}") >= batch_ttl - 2, timeout=5,
                   what="items to live as long as their batch")


def test_a_failing_item_still_completes_the_batch(api: Api, emu: EmulatorProcess, redis_server: RedisServer) -> None:
    marker = tag()
    emu.fault(marker, "status", status=400)
    lines = [{"prompt": f"ok {tag()}"}, {"prompt": f"bad {marker}", "key": "bad"}]
    batch = batch_when(api, submit_jsonl(api, lines).get_json()["id"], {"completed"})
    assert (batch["counts"]["succeeded"], batch["counts"]["failed"]) == (1, 1)
    bad = results(api, batch["id"])[1]
    assert (bad["key"], bad["status"], bad["result"]) == ("bad", "failed", None)
    assert bad["error"]["type"] == "invalid_request"
    assert job_events(redis_server, bad["id"]) == ["running", "failed"]  # an item's events start when it does


def test_the_batch_list_pages_newest_first(api: Api) -> None:
    made = [submit_jsonl(api.as_tenant("globex"), [{"prompt": f"list {n} {tag()}"}]).get_json()["id"]
            for n in range(3)]
    first = api.as_tenant("globex").get("/v1/batches?limit=2").get_json()
    second = api.as_tenant("globex").get(f"/v1/batches?limit=2&cursor={first['next_cursor']}").get_json()
    listed = [b["id"] for b in first["batches"] + second["batches"]]
    assert listed[:3] == made[::-1]
    assert all(b["id"] not in made for b in api.get("/v1/batches?limit=100").get_json()["batches"])
    assert api.get("/v1/batches?limit=0").status_code == 422


def test_the_openapi_document_describes_the_batch_routes(api: Api) -> None:
    document = api.client.get("/openapi.json").get_json()
    assert {"/v1/batches", "/v1/batches/{batch_id}", "/v1/batches/{batch_id}/results",
            "/v1/batches/{batch_id}/cancel"} <= set(document["paths"])
    assert set(document["paths"]["/v1/batches"]) == {"get", "post"}


def test_items_are_counted_in_the_metrics_as_submitted_and_cancelled(api: Api, emu: EmulatorProcess) -> None:
    # A model and priority no other test uses: other tests' increments may still be on their way to Redis.
    def submitted() -> float:
        return value(scrape(api)[1], "gemq_jobs_submitted_total", priority="low", model="gemini-2.0-flash")

    def cancelled() -> float:
        return value(scrape(api)[1], "gemq_jobs_total", status="cancelled", priority="low", model="gemini-2.0-flash")

    before, cancelled_before = submitted(), cancelled()
    slow = tag()
    emu.fault(slow, "hang", hang_s=1, times=5)
    lines = [{"prompt": f"counted {n} {slow}"} for n in range(5)]
    batch_id = submit_jsonl(api, lines, model="gemini-2.0-flash").get_json()["id"]
    assert api.post(f"/v1/batches/{batch_id}/cancel").status_code == 200
    wait_until(lambda: submitted() == before + 5 and cancelled() == cancelled_before + 5, timeout=10,
               what="the batch's items in the metrics")


def test_an_unreachable_broker_is_503_and_leaves_nothing(settings: Settings, redis_server: RedisServer) -> None:
    app = create_app(settings)
    unreachable = CeleryPublisher(create_celery(settings.replace(redis_url=f"redis://127.0.0.1:{free_port()}/0")))
    context = app.extensions["gemq"]
    batches = copy.copy(context.batches)
    batches.publisher = unreachable
    app.extensions["gemq"] = dataclasses.replace(context, publisher=unreachable, batches=batches)
    batches_before = sum(1 for _ in redis_server.client().scan_iter("gemq:batch:*", count=1000))

    response = submit_jsonl(Api(app.test_client()), [{"prompt": f"lost {n}"} for n in range(5)])

    assert response.status_code == 503
    assert response.get_json()["error"]["type"] == "unavailable"
    assert sum(1 for _ in redis_server.client().scan_iter("gemq:batch:*", count=1000)) == batches_before


def test_gunicorn_reads_a_chunked_jsonl_body_as_a_stream(web_server: WebProcess, api: Api) -> None:
    def body() -> Iterator[bytes]:  # no Content-Length: sent with chunked transfer encoding
        for n in range(300):
            yield (json.dumps({"prompt": f"chunked {n} {tag()}", "key": str(n)}) + "\n").encode()

    response = httpx.post(f"{web_server.url}/v1/batches", content=body(), trust_env=False, timeout=30,
                          headers={"Authorization": f"Bearer {TENANTS['acme']}", "Content-Type": "application/jsonl"})
    assert response.status_code == 202, response.text
    batch = batch_when(api, response.json()["id"], {"completed"})
    assert batch["total"] == 300
    assert [row["key"] for row in results(api, batch["id"])] == [str(n) for n in range(300)]
