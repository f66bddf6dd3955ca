"""Per-tenant submission limits: 429 with Retry-After in the API's error shape, per tenant, in Redis."""

from __future__ import annotations

import time
import uuid
from typing import Any

from flask import Flask
from helpers import tag

from web import create_app
from worker.core.settings import Settings


def limited_app(settings: Settings, limits: str, tenants: list[str]) -> tuple[Flask, dict[str, str]]:
    """An app with ``limits`` and fresh tenants (their counters start empty): ``(app, tenant -> key)``."""
    keys = {tenant: f"key-{tenant}" for tenant in tenants}
    app = create_app(settings.replace(submit_limits=limits, api_keys={k: t for t, k in keys.items()}))
    return app, keys


def post_job(app: Flask, key: str, **extra: Any) -> Any:
    """POST /v1/jobs as the tenant of ``key``."""
    return app.test_client().post("/v1/jobs", json={"prompt": f"limited {tag()}", **extra},
                                  headers={"Authorization": f"Bearer {key}"})


def test_over_the_per_second_limit_is_429_with_retry_after(settings: Settings) -> None:
    tenant = f"rl-{uuid.uuid4().hex[:8]}"
    app, keys = limited_app(settings, "3/second;100/minute", [tenant])

    statuses = [post_job(app, keys[tenant]).status_code for _ in range(3)]
    refused = post_job(app, keys[tenant])

    assert statuses == [202, 202, 202]
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"
    assert refused.get_json()["error"]["type"] == "rate_limited"
    assert "3 per 1 second" in refused.get_json()["error"]["message"]


def test_after_retry_after_the_tenant_may_submit_again(settings: Settings) -> None:
    tenant = f"rl-{uuid.uuid4().hex[:8]}"
    app, keys = limited_app(settings, "2/second", [tenant])
    for _ in range(2):
        assert post_job(app, keys[tenant]).status_code == 202
    refused = post_job(app, keys[tenant])
    assert refused.status_code == 429

    # The sliding window weights the previous second for a while: wait out Retry-After and a little.
    time.sleep(int(refused.headers["Retry-After"]) + 1.1)

    assert post_job(app, keys[tenant]).status_code == 202


def test_the_minute_limit_gives_a_longer_retry_after(settings: Settings) -> None:
    tenant = f"rl-{uuid.uuid4().hex[:8]}"
    app, keys = limited_app(settings, "100/second;4/minute", [tenant])
    for _ in range(4):
        assert post_job(app, keys[tenant]).status_code == 202

    refused = post_job(app, keys[tenant])

    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "4 per 1 minute" in refused.get_json()["error"]["message"]


def test_each_tenant_has_its_own_budget(settings: Settings) -> None:
    busy, quiet = f"rl-{uuid.uuid4().hex[:8]}", f"rl-{uuid.uuid4().hex[:8]}"
    app, keys = limited_app(settings, "2/minute", [busy, quiet])
    for _ in range(2):
        post_job(app, keys[busy])
    assert post_job(app, keys[busy]).status_code == 429
    assert post_job(app, keys[quiet]).status_code == 202


def test_the_limit_is_shared_by_every_web_process(settings: Settings) -> None:
    tenant = f"rl-{uuid.uuid4().hex[:8]}"
    first, keys = limited_app(settings, "2/minute", [tenant])
    second, _ = limited_app(settings, "2/minute", [tenant])  # another gunicorn worker or machine
    assert post_job(first, keys[tenant]).status_code == 202
    assert post_job(second, keys[tenant]).status_code == 202
    assert post_job(first, keys[tenant]).status_code == 429


def test_no_limit_when_the_setting_is_empty(settings: Settings) -> None:
    tenant = f"rl-{uuid.uuid4().hex[:8]}"
    app, keys = limited_app(settings, "", [tenant])
    assert all(post_job(app, keys[tenant]).status_code == 202 for _ in range(60))
