"""A webhooks worker killed in the middle of an attempt loses nothing: the attempt is made again."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from helpers import Api, tag
from procs import WorkerProcess, wait_until
from receiver import Answer, Receiver

#: Attempts lease 3 x 2 + 5 = 11 s: the time after which a dead worker's attempt is published again.
ENV = {"GEMQ_WEBHOOK_RETRY_SCHEDULE": "0.2", "GEMQ_WEBHOOK_TIMEOUT": "2"}


@pytest.mark.usefixtures("worker")
def test_an_attempt_cut_short_by_a_killed_worker_is_made_again(
    api: Api, make_worker: Callable[..., WorkerProcess]
) -> None:
    doomed = make_worker("webhooks-doomed", queues="webhooks", concurrency=2, env=ENV)
    with Receiver([Answer(200, delay=1.5)]) as receiver:
        # Given an attempt in flight (the receiver holds the request)
        job = api.wait(api.submit(prompt=f"crash {tag()}", webhook_url=receiver.url)["id"])
        receiver.wait_for(1)
        # When its worker is killed before the answer comes, and another webhooks worker runs
        doomed.kill()
        make_worker("webhooks-survivor", queues="webhooks", concurrency=2, env=ENV)
        # Then the same event arrives again once the attempt's lease ends, and is delivered
        first, second = receiver.wait_for(2, timeout=40)
        shown = wait_until(lambda: (j := api.job(job["id"]))["webhook"]["state"] == "delivered" and j, timeout=10,
                           what="the webhook to be delivered")

    assert second.headers["webhook-id"] == first.headers["webhook-id"] == f"evt_{job['id']}_succeeded"
    assert second.body == first.body and json.loads(second.body)["type"] == "job.succeeded"
    assert [a["status_code"] for a in shown["webhook"]["attempts"]] == [200]  # the cut attempt left no record
