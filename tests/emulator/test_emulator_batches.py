"""Batch Mode through the real google-genai SDK: create, get, list, cancel, delete, results, errors, limits."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from google import genai
from google.genai import errors, types

#: Models served both before and after the catalogue moves to Gemini 3.x (issue 15).
MODEL = "gemini-2.5-flash-lite"
OTHER_MODEL = "gemini-3.5-flash"
#: Seconds a test waits for a job to end.
WAIT_S = 10.0


@pytest.fixture(autouse=True)
def quick_batches(emulator) -> None:
    """A turnaround of a fraction of a second (tests that need another timeline set their own)."""
    emulator.configure(batch_pending_s=0.05, batch_running_s=0.2, models=[MODEL, OTHER_MODEL])


def wait(client: genai.Client, job: types.BatchJob) -> types.BatchJob:
    """Poll the job until it has ended."""
    deadline = time.monotonic() + WAIT_S
    while not (job := client.batches.get(name=job.name)).done:
        assert time.monotonic() < deadline, f"{job.name} still {job.state}"
        time.sleep(0.05)
    return job


def inline(*prompts: str) -> list[dict[str, Any]]:
    """Inline requests with `metadata.key` r0, r1, ..."""
    return [{"contents": prompt, "metadata": {"key": f"r{i}"}} for i, prompt in enumerate(prompts)]


def jsonl(*requests: dict[str, Any]) -> bytes:
    """A JSONL input file, keys k0, k1, ..."""
    return b"".join(json.dumps({"key": f"k{i}", "request": r}).encode() + b"\n" for i, r in enumerate(requests))


def text_request(prompt: str) -> dict[str, Any]:
    """A GenerateContentRequest with one text part."""
    return {"contents": [{"role": "user", "parts": [{"text": prompt}]}]}


def raw_get(emulator, job: types.BatchJob) -> dict[str, Any]:
    """The Operation as the wire carries it (the SDK drops batchStats and the Operation error)."""
    response = emulator.admin.get(f"/v1beta/{job.name}", headers={"x-goog-api-key": "test-key"})
    response.raise_for_status()
    return response.json()


@pytest.mark.parametrize("version", ["v1beta", "v1"])
def test_inline_batch_answers_in_input_order_with_metadata(make_client: Callable[..., genai.Client], version) -> None:
    client = make_client(api_version=version)

    job = client.batches.create(model=MODEL, src=inline("first one", "second one", "third one"),
                                config={"display_name": "inline"})
    done = wait(client, job)

    assert job.state == types.JobState.JOB_STATE_PENDING and job.name.startswith("batches/")
    assert len(job.name) == len("batches/") + 36 and job.model == f"models/{MODEL}"
    assert done.state == types.JobState.JOB_STATE_SUCCEEDED and done.display_name == "inline"
    answers = done.dest.inlined_responses
    assert [a.metadata for a in answers] == [{"key": "r0"}, {"key": "r1"}, {"key": "r2"}]
    online = client.models.generate_content(model=MODEL, contents="second one")
    assert answers[1].response.text == online.text
    assert answers[1].response.usage_metadata.prompt_token_count == online.usage_metadata.prompt_token_count
    assert done.end_time >= done.create_time


def test_file_batch_writes_a_results_file_downloadable_through_the_files_api(emulator, client: genai.Client) -> None:
    source = client.files.upload(file=io.BytesIO(jsonl(text_request("alpha"), text_request("beta"))),
                                 config={"mime_type": "jsonl"})

    done = wait(client, client.batches.create(model=MODEL, src=source.name))
    data = client.files.download(file=done.dest.file_name)
    rows = [json.loads(line) for line in data.decode().splitlines()]

    # The docs' curl downloads from /download/{ver}/...: the same bytes.
    curl = emulator.admin.get(f"/download/v1beta/{done.dest.file_name}:download", params={"alt": "media"},
                              headers={"x-goog-api-key": "test-key"})
    assert curl.content == data

    assert done.dest.file_name == "files/batch-" + done.name.removeprefix("batches/")
    assert [row["key"] for row in rows] == ["k0", "k1"]
    assert list(rows[0]) == ["response", "key"]
    expected = client.models.generate_content(model=MODEL, contents="beta").text
    assert rows[1]["response"]["candidates"][0]["content"]["parts"][0]["text"] == expected


def test_the_operation_on_the_wire(emulator, client: genai.Client) -> None:
    job = client.batches.create(model=MODEL, src=inline("a b c", "d e"))

    created = raw_get(emulator, job)
    done = raw_get(emulator, wait(client, job))

    meta = created["metadata"]
    assert meta["@type"].endswith(".GenerateContentBatch") and meta["state"] == "BATCH_STATE_PENDING"
    assert meta["batchStats"] == {"requestCount": "2", "pendingRequestCount": "2"}
    assert "done" not in created and meta["createTime"].endswith("Z") and len(meta["createTime"]) == 30
    assert done["done"] is True and done["metadata"]["state"] == "BATCH_STATE_SUCCEEDED"
    assert done["metadata"]["batchStats"] == {"requestCount": "2", "successfulRequestCount": "2"}
    assert done["response"]["inlinedResponses"] == done["metadata"]["output"]["inlinedResponses"]


def test_lines_complete_over_the_running_time(emulator, client: genai.Client) -> None:
    emulator.configure(batch_pending_s=0.1, batch_running_s=1.0)
    job = client.batches.create(model=MODEL, src=inline(*(f"p{i}" for i in range(10))))

    time.sleep(0.6)
    midway = raw_get(emulator, job)["metadata"]

    assert midway["state"] == "BATCH_STATE_RUNNING"
    assert 0 < int(midway["batchStats"]["successfulRequestCount"]) < 10
    assert int(midway["batchStats"]["pendingRequestCount"]) > 0


def test_an_invalid_line_fails_alone_and_the_batch_succeeds(emulator, client: genai.Client) -> None:
    src = [{"contents": "fine"}, {"contents": "too hot", "config": {"temperature": 5}}]

    done = wait(client, client.batches.create(model=MODEL, src=src))

    ok, bad = done.dest.inlined_responses
    assert done.state == types.JobState.JOB_STATE_SUCCEEDED
    assert ok.response.text and ok.error is None
    assert bad.response is None and bad.error.code == 3 and "temperature" in bad.error.message
    stats = raw_get(emulator, done)["metadata"]["batchStats"]
    assert stats == {"requestCount": "2", "successfulRequestCount": "1", "failedRequestCount": "1"}


def test_an_unknown_field_refuses_the_inline_create_naming_its_path(emulator) -> None:
    body = {"batch": {"inputConfig": {"requests": {"requests": [
        {"request": {"contents": [{"parts": [{"text": "x"}]}]}},
        {"request": {"contents": [{"parts": [{"text": "y"}]}], "thinking_config": {}}},
    ]}}}}

    response = emulator.admin.post(f"/v1beta/models/{MODEL}:batchGenerateContent", json=body,
                                   headers={"x-goog-api-key": "test-key"})

    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        'Invalid JSON payload received. Unknown name "thinking_config" at '
        "'batch.input_config.requests.requests[1].request': Cannot find field."
    )
    assert emulator.batches() == []


def test_an_unknown_field_in_the_file_refuses_the_create_line_by_line(emulator, client: genai.Client) -> None:
    data = jsonl(text_request("ok"), {**text_request("bad"), "thinking_config": {"thinking_budget": 0}})
    source = client.files.upload(file=io.BytesIO(data), config={"mime_type": "jsonl"})

    with pytest.raises(errors.ClientError) as caught:
        client.batches.create(model=MODEL, src=source.name)

    assert caught.value.code == 400
    line = data.decode().splitlines()[1]
    column = line.index('"thinking_config"') + 1
    expected = f"Error on line 2: invalid JSON, near column {column}: no such field: 'thinking_config'"
    assert caught.value.message == expected


def test_a_scripted_fault_fails_the_line_whose_prompt_it_matches(emulator, client: genai.Client) -> None:
    emulator.faults({"match": "[[tag:bad-line]]", "kind": "status", "status": 503},
                    {"match": "[[tag:unsafe-line]]", "kind": "safety_prompt"})

    done = wait(client, client.batches.create(
        model=MODEL, src=inline("good [[tag:good-line]]", "poison [[tag:bad-line]]", "risky [[tag:unsafe-line]]")))

    good, bad, unsafe = done.dest.inlined_responses
    assert good.response.text
    assert (bad.error.code, bad.error.message) == (14, "The model is overloaded. Please try again later.")
    assert unsafe.response.prompt_feedback.block_reason == types.BlockedReason.SAFETY
    log = {e["tag"]: (e["method"], e["status"], e["outcome"]) for e in emulator.requests()}
    assert log["good-line"] == ("batchGenerateContent", 200, "ok")
    assert log["bad-line"] == ("batchGenerateContent", 503, "error")
    assert log["unsafe-line"] == ("batchGenerateContent", 200, "safety")


def test_batch_lines_do_not_count_against_the_online_quota(emulator, client: genai.Client) -> None:
    emulator.configure(rpm=1)

    wait(client, client.batches.create(model=MODEL, src=inline("one", "two", "three")))

    assert client.models.generate_content(model=MODEL, contents="online").text
    assert emulator.admin.get("/_emulator/quota").json()[MODEL]["rpm"] == 1


def test_creating_twice_makes_two_jobs(client: genai.Client) -> None:
    first = client.batches.create(model=MODEL, src=inline("same"), config={"display_name": "twice"})
    second = client.batches.create(model=MODEL, src=inline("same"), config={"display_name": "twice"})

    assert first.name != second.name
    assert [j.display_name for j in client.batches.list()] == ["twice", "twice"]


def test_list_pages_newest_first_without_inline_results(client: genai.Client) -> None:
    names = [client.batches.create(model=MODEL, src=inline(f"n{i}")).name for i in range(3)]
    wait(client, client.batches.get(name=names[-1]))

    page = client.batches.list(config={"page_size": 2})
    listed = list(client.batches.list(config={"page_size": 2}))

    assert [j.name for j in page.page] == names[::-1][:2]
    assert [j.name for j in listed] == names[::-1]
    assert all(j.dest is None for j in listed)
    assert client.batches.get(name=names[-1]).dest.inlined_responses


def test_cancel_mid_way_ends_cancelled_without_results(emulator, client: genai.Client) -> None:
    emulator.configure(batch_running_s=30)
    job = client.batches.create(model=MODEL, src=inline("a", "b", "c"))
    time.sleep(0.1)
    assert client.batches.get(name=job.name).state == types.JobState.JOB_STATE_RUNNING

    client.batches.cancel(name=job.name)
    done = client.batches.get(name=job.name)

    assert done.state == types.JobState.JOB_STATE_CANCELLED and done.dest is None
    assert raw_get(emulator, done)["error"]["code"] == 1
    client.batches.cancel(name=job.name)
    assert client.batches.get(name=job.name).state == types.JobState.JOB_STATE_CANCELLED


def test_delete_removes_the_job(client: genai.Client) -> None:
    job = client.batches.create(model=MODEL, src=inline("gone"))

    client.batches.delete(name=job.name)

    with pytest.raises(errors.ClientError) as caught:
        client.batches.get(name=job.name)
    assert (caught.value.code, caught.value.status) == (404, "NOT_FOUND")
    assert list(client.batches.list()) == []


def test_outcome_fail_ends_failed_without_results(emulator, client: genai.Client) -> None:
    emulator.configure(batch_outcome="fail")

    done = wait(client, client.batches.create(model=MODEL, src=inline("x")))

    assert done.state == types.JobState.JOB_STATE_FAILED and done.dest is None
    assert raw_get(emulator, done)["error"]["code"] == 13


def test_outcome_expire_ends_expired_without_results(emulator, client: genai.Client) -> None:
    emulator.configure(batch_outcome="expire")

    done = wait(client, client.batches.create(model=MODEL, src=inline("x", "y")))

    assert done.state == types.JobState.JOB_STATE_EXPIRED and done.dest is None
    assert raw_get(emulator, done)["metadata"]["batchStats"] == {"requestCount": "2", "pendingRequestCount": "2"}


def test_a_stalled_job_expires_at_the_expiry_time(emulator, client: genai.Client) -> None:
    emulator.configure(batch_outcome="stall", batch_expire_s=1.0)
    job = client.batches.create(model=MODEL, src=inline("stuck"))

    time.sleep(0.5)
    midway = client.batches.get(name=job.name)
    done = wait(client, job)

    assert midway.state == types.JobState.JOB_STATE_RUNNING
    assert done.state == types.JobState.JOB_STATE_EXPIRED
    assert (done.end_time - done.create_time).total_seconds() == pytest.approx(1.0, abs=0.01)


def test_admin_stalls_resumes_and_finishes_jobs(emulator, client: genai.Client) -> None:
    emulator.configure(batch_pending_s=60, batch_running_s=60)
    first = client.batches.create(model=MODEL, src=inline("one"))
    second = client.batches.create(model=MODEL, src=inline("two"))

    emulator.batches("stall", first.name)
    advanced = emulator.batches("advance")
    finished = emulator.batches("finish", first.name)

    assert [b["state"] for b in advanced] == ["BATCH_STATE_RUNNING", "BATCH_STATE_RUNNING"]
    assert advanced[0]["outcome"] == "succeed"
    assert finished[0]["state"] == "BATCH_STATE_SUCCEEDED"
    assert client.batches.get(name=first.name).dest.inlined_responses[0].response.text
    assert client.batches.get(name=second.name).state == types.JobState.JOB_STATE_RUNNING
    emulator.batches("expire", second.name)
    assert client.batches.get(name=second.name).state == types.JobState.JOB_STATE_EXPIRED


def test_the_concurrency_cap_answers_429(emulator, client: genai.Client) -> None:
    emulator.configure(batch_max_concurrent=1, batch_running_s=60)
    first = client.batches.create(model=MODEL, src=inline("one"))

    with pytest.raises(errors.ClientError) as caught:
        client.batches.create(model=MODEL, src=inline("two"))
    emulator.batches("finish", first.name)

    assert (caught.value.code, caught.value.status) == (429, "RESOURCE_EXHAUSTED")
    assert caught.value.details["error"]["details"][0]["@type"] == "type.googleapis.com/google.rpc.Help"
    assert client.batches.create(model=MODEL, src=inline("three")).name
    outcomes = [e["outcome"] for e in emulator.requests() if e["method"] == "batches.create"]
    assert outcomes == ["ok", "quota_batches", "ok"]


def test_the_enqueued_token_cap_is_per_model(emulator, client: genai.Client) -> None:
    # "w w w w w" is 5 words + 3 for the turn: 8 tokens a line.
    emulator.configure(batch_enqueued_tokens=20, batch_running_s=60)
    client.batches.create(model=MODEL, src=inline("w w w w w", "w w w w w"))

    with pytest.raises(errors.ClientError) as caught:
        client.batches.create(model=MODEL, src=inline("w w w w w"))
    other = client.batches.create(model=OTHER_MODEL, src=inline("w w w w w", "w w w w w"))

    assert caught.value.code == 429
    assert other.name
    assert [e["outcome"] for e in emulator.requests() if e["method"] == "batches.create"] == [
        "ok", "quota_enqueued_tokens", "ok"]


def test_an_inline_body_over_the_limit_is_refused(emulator, client: genai.Client) -> None:
    emulator.configure(batch_inline_max_bytes=2000)

    with pytest.raises(errors.ClientError) as caught:
        client.batches.create(model=MODEL, src=inline("word " * 500))

    assert caught.value.code == 400
    assert caught.value.message == "Request payload size exceeds the limit: 2000 bytes."


def test_an_unknown_model_or_input_file_is_refused(client: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as model:
        client.batches.create(model="gemini-0-nope", src=inline("x"))
    with pytest.raises(errors.ClientError) as source:
        client.batches.create(model=MODEL, src="files/doesnotexist")

    assert model.value.code == 404
    assert source.value.code == 403


def test_batch_calls_and_lines_are_logged(emulator, client: genai.Client) -> None:
    done = wait(client, client.batches.create(model=MODEL, src=inline("tagged [[tag:line-1]]", "plain")))
    client.batches.delete(name=done.name)

    log = emulator.requests()
    methods = [e["method"] for e in log]

    assert methods[0] == "batches.create" and log[0]["tag"] == "line-1" and log[0]["prompt_tokens"] == 9
    assert methods.count("batchGenerateContent") == 2 and methods[-1] == "batches.delete"
    assert [e["tag"] for e in emulator.requests(tag="line-1")] == ["line-1", "line-1"]


def test_reset_clears_batches(emulator, client: genai.Client) -> None:
    client.batches.create(model=MODEL, src=inline("x"))

    emulator.admin.post("/_emulator/reset").raise_for_status()

    assert emulator.batches() == []
    assert list(client.batches.list()) == []
