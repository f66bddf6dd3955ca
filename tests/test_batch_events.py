"""Batches under several workers, cancelled midway, and their one ``batch.completed`` webhook."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import Api, tag, webhooks_worker_for
from procs import EmulatorProcess, WorkerProcess, wait_until
from receiver import Receiver
from svix.webhooks import Webhook
from test_batches import batch_when, results, submit_jsonl

WEBHOOK_ENV = {"GEMQ_WEBHOOK_RETRY_SCHEDULE": "0.2,0.2", "GEMQ_WEBHOOK_TIMEOUT": "1"}


@pytest.fixture(scope="module")
def webhooks_worker(base_env: dict[str, str], run_dir: Path) -> Iterator[WorkerProcess]:
    """The webhooks worker (only the ``webhooks`` queue), shared by this module's tests."""
    with webhooks_worker_for(base_env, run_dir, "batch-webhooks", WEBHOOK_ENV) as process:
        yield process


pytestmark = pytest.mark.usefixtures("worker", "webhooks_worker")


def test_counts_hold_under_concurrent_workers_and_the_event_is_sent_once(
    api: Api, emu: EmulatorProcess, make_worker: Callable[..., WorkerProcess]
) -> None:
    # Given three worker processes (16 + 8 + 8 threads) taking items of one batch at once
    extra = [make_worker("batch-a", concurrency=8), make_worker("batch-b", concurrency=8)]
    failing = tag()
    emu.fault(failing, "status", status=400, times=10)
    lines = [{"prompt": f"item {n} {tag()}", "key": f"k{n}"} for n in range(290)]
    lines += [{"prompt": f"fails {n} {failing}", "key": f"f{n}"} for n in range(10)]
    with Receiver() as receiver:
        # When the batch runs to the end
        response = submit_jsonl(api, lines, webhook_url=receiver.url, metadata='{"run": "1"}')
        assert response.status_code == 202, response.get_json()
        batch = batch_when(api, response.get_json()["id"], {"completed"}, timeout=60)
        [got] = receiver.wait_for(1)
        time.sleep(1.0)  # nothing more may come
        assert len(receiver.received) == 1

    # Then every item was counted once, by its final status
    assert batch["counts"] == {"queued": 0, "running": 0, "retrying": 0, "succeeded": 290, "failed": 10,
                               "cancelled": 0}
    assert (batch["done"], batch["total"], batch["progress"]) == (300, 300, 1.0)
    rows = results(api, batch["id"])
    assert [r["key"] for r in rows] == [line["key"] for line in lines]
    assert batch["usage"]["total_tokens"] == sum(r["result"]["usage"]["total_tokens"] for r in rows if r["result"])
    assert batch["usage"]["prompt_tokens"] + batch["usage"]["output_tokens"] == batch["usage"]["total_tokens"]
    items = {r["id"] for r in rows}
    for worker in extra:  # each process finished some of them
        finished = [json.loads(line) for line in worker.logfile.read_text().splitlines() if '"job.finished"' in line]
        assert items & {entry["job_id"] for entry in finished}, worker.name
    # And the one event is the finished batch, signed like any webhook
    event = json.loads(got.body)
    assert got.headers["webhook-id"] == f"evt_batch_{batch['id']}"
    Webhook(api.get("/v1/webhooks/secret").get_json()["secret"]).verify(got.body, got.headers)
    assert event["type"] == "batch.completed"
    assert (event["data"]["id"], event["data"]["status"], event["data"]["done"]) == (batch["id"], "completed", 300)
    assert event["data"]["counts"] == batch["counts"] and event["data"]["metadata"] == {"run": "1"}
    shown = batch_when_counts(api, batch["id"], lambda b: b["webhook"] and b["webhook"]["state"] == "delivered")
    assert shown["webhook"]["event_id"] == got.headers["webhook-id"]
    assert [a["status_code"] for a in shown["webhook"]["attempts"]] == [200]


def test_cancel_midway_stops_what_has_not_finished_and_sends_the_event_once(api: Api, emu: EmulatorProcess) -> None:
    # Given a batch whose first items finish and whose others hang in Gemini or wait in the queue
    slow = tag()
    emu.fault(slow, "hang", hang_s=2, times=40)
    lines = [{"prompt": f"quick {n} {tag()}", "key": f"q{n}"} for n in range(5)]
    lines += [{"prompt": f"slow {n} {slow}", "key": f"s{n}"} for n in range(40)]
    with Receiver() as receiver:
        batch_id = submit_jsonl(api, lines, webhook_url=receiver.url).get_json()["id"]
        batch_when_counts(api, batch_id, lambda b: b["counts"]["succeeded"] == 5 and b["counts"]["running"] > 0)

        # When the client cancels it
        response = api.post(f"/v1/batches/{batch_id}/cancel")

        # Then it is cancelled at once: the finished items keep their results, the others are cancelled
        assert response.status_code == 200, response.get_json()
        batch = response.get_json()
        assert (batch["status"], batch["done"]) == ("cancelled", 45)
        assert (batch["counts"]["succeeded"], batch["counts"]["cancelled"]) == (5, 40)
        assert batch["finished_at"] and batch["cancel_requested_at"]
        [got] = receiver.wait_for(1)
        time.sleep(2.5)  # the hung calls end, their workers see the cancel: no second event
        assert len(receiver.received) == 1
    assert json.loads(got.body)["data"]["status"] == "cancelled"
    rows = results(api, batch_id)
    assert [r["status"] for r in rows] == ["succeeded"] * 5 + ["cancelled"] * 40
    assert all(r["error"]["type"] == "cancelled" and r["result"] is None for r in rows[5:])
    assert api.get(f"/v1/batches/{batch_id}").get_json()["counts"] == batch["counts"]  # late workers changed nothing
    again = api.post(f"/v1/batches/{batch_id}/cancel")
    assert (again.status_code, again.get_json()["error"]["message"]) == (409, "the batch is already cancelled")


def test_a_batch_without_webhook_url_sends_nothing_and_cancelling_a_finished_one_is_409(api: Api) -> None:
    batch = batch_when(api, submit_jsonl(api, [{"prompt": f"quiet {tag()}"}]).get_json()["id"], {"completed"})
    assert batch["webhook"] is None
    response = api.post(f"/v1/batches/{batch['id']}/cancel")
    assert (response.status_code, response.get_json()["error"]["message"]) == (409, "the batch is already completed")


def batch_when_counts(api: Api, batch_id: str, predicate: Callable[[dict[str, Any]], Any],
                      timeout: float = 20) -> dict[str, Any]:
    """The batch once ``predicate`` holds for it."""
    return wait_until(lambda: (b := api.get(f"/v1/batches/{batch_id}").get_json()) and predicate(b) and b,
                      timeout=timeout, what=f"batch {batch_id} to reach the expected counts")


def test_items_of_one_conversation_run_in_line_order_and_a_cancel_frees_the_conversation(
    api: Api, emu: EmulatorProcess
) -> None:
    # Given a batch whose three lines share a conversation
    conversation = f"conv-{tag()[6:-2]}"
    lines = [{"prompt": f"turn {n} {tag()}", "conversation_id": conversation} for n in range(3)]
    batch = batch_when(api, submit_jsonl(api, lines).get_json()["id"], {"completed"})
    # Then they ran one after the other, in line order, each seeing the history before it
    items = [api.job(row["id"]) for row in results(api, batch["id"])]
    assert all(a["finished_at"] <= b["started_at"] for a, b in zip(items, items[1:], strict=False))
    assert api.get(f"/v1/conversations/{conversation}").get_json()["job_ids"] == [i["id"] for i in items]

    # Given another batch in that conversation whose first item hangs in Gemini
    slow = tag()
    emu.fault(slow, "hang", hang_s=6)
    lines = [{"prompt": f"stuck {slow}", "conversation_id": conversation},
             {"prompt": "next", "conversation_id": conversation}]
    stuck = submit_jsonl(api, lines).get_json()["id"]
    batch_when_counts(api, stuck, lambda b: b["counts"]["running"] == 1)
    # When it is cancelled, then a new job of the conversation runs at once, not after the hang
    assert api.post(f"/v1/batches/{stuck}/cancel").status_code == 200
    after = api.submit(prompt=f"after the cancel {tag()}", conversation_id=conversation)
    assert api.wait(after["id"], timeout=4)["status"] == "succeeded"
