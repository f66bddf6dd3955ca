"""A webhook receiver down for a while (connections refused, then 500s): deliveries resume and succeed
once it is back, under one event id throughout; no secret is ever written to Redis."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from helpers import TENANTS, tag
from procs import WorkerProcess, free_port, wait_until
from receiver import Answer, Receiver, spec_signature
from stack import Stack

from worker.core import keys
from worker.webhooks.secrets import tenant_secret

#: Short retries (the production schedule is 5 s, 5 min, 30 min, ...).
WEBHOOK_ENV = {"GEMQ_WEBHOOK_RETRY_SCHEDULE": "0.3,0.3,0.5,0.5,1,1,1,1", "GEMQ_WEBHOOK_TIMEOUT": "2"}


def test_deliveries_resume_when_the_receiver_comes_back(
    stack: Stack, make_worker: Callable[..., WorkerProcess]
) -> None:
    # Given one worker running jobs and delivering webhooks, and a receiver address where nothing listens
    env = {**stack.env, **WEBHOOK_ENV}
    make_worker("outage", env=env, concurrency=4, queues=f"{','.join(keys.JOB_QUEUES.values())},webhooks")
    port = free_port()
    url = f"http://127.0.0.1:{port}/hooks"
    job = stack.api.wait(stack.api.submit(prompt=f"outage {tag()}", webhook_url=url)["id"])
    # When the first attempts are refused
    wait_until(lambda: len(stack.api.job(job["id"])["webhook"]["attempts"]) >= 2, timeout=10, what="2 failed attempts")
    # and the receiver comes back, answering 500 once, then 200
    with Receiver([Answer(500)], port=port) as receiver:
        back = time.monotonic()
        first, second = receiver.wait_for(2, timeout=15)
        shown = wait_until(lambda: (j := stack.api.job(job["id"]))["webhook"]["state"] == "delivered" and j,
                           timeout=5, what="the webhook to be delivered")
        print(f"\nwebhook delivered {time.monotonic() - back:.1f} s after the receiver came back")

    # Then it was delivered, every attempt recorded, under one event id and one body
    attempts = shown["webhook"]["attempts"]
    assert attempts[-1]["status_code"] == 200 and attempts[-2]["status_code"] == 500
    assert all(a["error"] and "connection" in a["error"] for a in attempts[:-2])
    event_id = f"evt_{job['id']}_succeeded"
    assert shown["webhook"]["event_id"] == event_id
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == event_id
    assert first.body == second.body and json.loads(second.body)["data"]["id"] == job["id"]
    secret = tenant_secret(stack.settings(), "acme")
    assert second.headers["webhook-signature"] == spec_signature(secret, second.headers, second.body)
    # And no secret reached Redis: API keys, the master secret, tenant secrets
    assert_no_secret_in_redis(stack, [*TENANTS.values(), stack.settings().webhook_secret, secret,
                                      secret.removeprefix("whsec_")])


def assert_no_secret_in_redis(stack: Stack, secrets: list[str]) -> None:
    """Read every value of every key of every type and look for each secret."""
    client = stack.redis.client()
    readers = {
        "string": client.get, "hash": client.hgetall, "list": lambda k: client.lrange(k, 0, -1),
        "set": client.smembers, "zset": lambda k: client.zrange(k, 0, -1), "stream": client.xrange,
    }
    scanned = 0
    for key in client.scan_iter(count=1000):
        text = f"{key} {readers[client.type(key)](key)!r}"
        scanned += 1
        for secret in secrets:
            assert secret not in text, f"a secret is in {key}"
    assert scanned > 10
