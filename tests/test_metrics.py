"""Metrics: increments from every process summed in Redis, rendered by GET /metrics in Prometheus format."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from helpers import Api, tag
from procfile import log_events
from procs import ROOT, EmulatorProcess, RedisServer, WorkerProcess, free_port, wait_until
from prometheus_client.parser import text_string_to_metric_families

from web import create_app
from worker.core.errors import UpstreamUnavailable
from worker.core.job import Priority
from worker.core.settings import Settings
from worker.store.limiter import Limiter
from worker.store.metrics import MAX_MODEL_LABELS, Accumulator, Metrics, bucket_of, counter_field

Series = dict[tuple[str, frozenset[tuple[str, str]]], float]
FLASH = "gemini-2.5-flash"
REQUIRED = {
    "gemq_jobs": "counter", "gemq_queue_depth": "gauge", "gemq_job_queue_wait_seconds": "histogram",
    "gemq_job_run_seconds": "histogram", "gemq_time_to_first_token_seconds": "histogram", "gemq_tokens": "counter",
    "gemq_upstream_errors": "counter", "gemq_limiter_wait_seconds": "histogram",
    "gemq_webhook_deliveries": "counter", "gemq_jobs_in_flight": "gauge",
}


@pytest.fixture
def ops_redis(run_dir: Path) -> Iterator[RedisServer]:
    """A Redis of the test's own, so every count starts at zero."""
    server = RedisServer(run_dir / f"redis-metrics-{free_port()}").start()
    yield server
    server.stop()


@pytest.fixture
def ops_env(base_env: dict[str, str], ops_redis: RedisServer) -> dict[str, str]:
    """Environment of the test's workers: its own Redis, fast metric flushes."""
    return {**base_env, "REDIS_URL": ops_redis.url, "GEMQ_METRICS_FLUSH_INTERVAL": "0.1"}


@pytest.fixture
def ops_api(ops_env: dict[str, str]) -> Api:
    """The API (Flask test client) on the test's Redis."""
    return Api(create_app(Settings.from_env(ops_env)).test_client())


@pytest.fixture
def start_worker(make_worker: Callable[..., WorkerProcess], ops_env: dict[str, str]) -> Callable[..., WorkerProcess]:
    """Start a worker on the test's Redis."""
    return lambda name, **options: make_worker(name, env=ops_env, **options)


def scrape(api: Api) -> tuple[str, Series]:
    """GET /metrics (no API key) -> the text and every sample by (name, labels)."""
    response = api.client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain; version=0.0.4")
    text = response.get_data(as_text=True)
    series: Series = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            series[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return text, series


def value(series: Series, name: str, **labels: str) -> float:
    """One sample's value, 0 when absent."""
    return series.get((name, frozenset(labels.items())), 0.0)


def test_jobs_run_by_two_worker_processes_are_counted_once_each(
    ops_api: Api, start_worker: Callable[..., WorkerProcess], emu: EmulatorProcess, run_dir: Path
) -> None:
    # Given two worker processes, one slot each, and calls slow enough that both take work
    marker = tag()
    emu.fault(marker, "hang", hang_s=0.3, times=6)
    workers = [start_worker(f"metrics-{i}", concurrency=1) for i in range(2)]
    # When six jobs run
    jobs = [ops_api.submit(prompt=f"count {i} {marker}") for i in range(6)]
    finished = [ops_api.wait(job["id"]) for job in jobs]
    assert {job["status"] for job in finished} == {"succeeded"}
    for process in workers:
        assert "job.finished" in log_events(process.logfile), process.name
    # Then /metrics shows the sum over both processes
    tokens_in = sum(job["result"]["usage"]["prompt_tokens"] for job in finished)
    tokens_out = sum(job["result"]["usage"]["output_tokens"] for job in finished)

    def settled() -> Series | None:
        series = scrape(ops_api)[1]
        return series if value(series, "gemq_tokens_total", model=FLASH, kind="output") == tokens_out else None

    series = wait_until(settled, timeout=10, what="the metrics of six jobs")
    assert value(series, "gemq_jobs_total", status="succeeded", priority="normal", model=FLASH) == 6
    assert value(series, "gemq_jobs_submitted_total", priority="normal", model=FLASH) == 6
    assert value(series, "gemq_tokens_total", model=FLASH, kind="input") == tokens_in
    assert value(series, "gemq_job_queue_wait_seconds_count", priority="normal") == 6
    assert value(series, "gemq_job_run_seconds_count", model=FLASH, status="succeeded") == 6
    assert value(series, "gemq_job_run_seconds_sum", model=FLASH, status="succeeded") >= 6 * 0.3
    assert value(series, "gemq_time_to_first_token_seconds_count", model=FLASH) == 6
    assert value(series, "gemq_time_to_first_token_seconds_bucket", model=FLASH, le="0.25") < 6  # 0.3 s hangs
    assert value(series, "gemq_limiter_wait_seconds_count", model=FLASH) == 6
    assert value(series, "gemq_workers_live") == 2


def test_upstream_errors_are_counted_by_status_and_failures_by_status(
    ops_api: Api, start_worker: Callable[..., WorkerProcess], emu: EmulatorProcess
) -> None:
    start_worker("metrics-errors", concurrency=2)
    flaky, bad = tag(), tag()
    emu.fault(flaky, "status", status=503)
    emu.fault(bad, "status", status=400)

    assert ops_api.wait(ops_api.submit(prompt=f"flaky {flaky}")["id"])["status"] == "succeeded"
    assert ops_api.wait(ops_api.submit(prompt=f"bad {bad}", priority="high")["id"])["status"] == "failed"

    def settled() -> Series | None:
        series = scrape(ops_api)[1]
        return series if value(series, "gemq_jobs_total", status="failed", priority="high", model=FLASH) else None

    series = wait_until(settled, timeout=10, what="the failure to be counted")
    assert value(series, "gemq_upstream_errors_total", model=FLASH, code="503") == 1
    assert value(series, "gemq_upstream_errors_total", model=FLASH, code="400") == 1
    assert value(series, "gemq_jobs_total", status="succeeded", priority="normal", model=FLASH) == 1
    assert value(series, "gemq_job_run_seconds_count", model=FLASH, status="failed") == 1


def test_queue_depth_in_flight_and_cancellations_are_live(
    ops_api: Api, start_worker: Callable[..., WorkerProcess], emu: EmulatorProcess
) -> None:
    # Given one worker slot busy with a slow call
    blocker = tag()
    emu.fault(blocker, "hang", hang_s=2.0)
    start_worker("metrics-depth", concurrency=1)
    busy = ops_api.submit(prompt=f"blocker {blocker}")
    ops_api.wait(busy["id"], statuses={"running"})
    # When two low jobs and one high job queue behind it, and one low job is cancelled
    lows = [ops_api.submit(prompt=f"low {i} {tag()}", priority="low") for i in range(2)]
    high = ops_api.submit(prompt=f"high {tag()}", priority="high")
    assert ops_api.post(f"/v1/jobs/{lows[0]['id']}/cancel").status_code == 200
    # Then the gauges show the backlog and the call in flight, and the cancellation is counted
    series = wait_until(lambda: (s := scrape(ops_api)[1]) and value(s, "gemq_jobs_total", status="cancelled",
                                                                   priority="low", model=FLASH) == 1 and s,
                        timeout=5, what="the cancellation to be counted")
    assert value(series, "gemq_queue_depth", priority="high") == 1
    assert value(series, "gemq_queue_depth", priority="normal") == 0
    assert value(series, "gemq_queue_depth", priority="low") == 2
    assert value(series, "gemq_jobs_in_flight", model=FLASH) == 1
    # And once all ran, nothing is queued or in flight
    for job in (busy, high, lows[1]):
        ops_api.wait(job["id"], timeout=20)
    series = wait_until(lambda: (s := scrape(ops_api)[1]) and value(s, "gemq_queue_depth", priority="low") == 0
                        and s, timeout=10, what="the queues to drain")
    assert value(series, "gemq_jobs_in_flight", model=FLASH) == 0


def test_the_text_format_parses_and_passes_promtool(ops_api: Api, ops_redis: RedisServer) -> None:
    # Given some of every stored kind, including a webhook outcome and a label that needs escaping
    metrics = Metrics(Accumulator(ops_redis.client()))
    metrics.job_submitted("normal", 'odd"model\\name')
    metrics.webhook_delivery("delivered")
    metrics.admitted(FLASH, 0.2)
    metrics.sink.close()
    # When Prometheus scrapes
    text, series = scrape(ops_api)
    # Then every required family is there with its type, and promtool (where installed) accepts the text
    types = {family.name: family.type for family in text_string_to_metric_families(text)}
    assert {name: types.get(name) for name in REQUIRED} == REQUIRED
    assert value(series, "gemq_webhook_deliveries_total", outcome="delivered") == 1
    assert value(series, "gemq_jobs_submitted_total", priority="normal", model='odd"model\\name') == 1
    assert value(series, "gemq_limiter_wait_seconds_bucket", model=FLASH, le="+Inf") == 1
    assert value(series, "gemq_limiter_wait_seconds_bucket", model=FLASH, le="0.25") == 1
    assert value(series, "gemq_limiter_wait_seconds_bucket", model=FLASH, le="0.05") == 0
    if shutil.which("promtool"):
        check = subprocess.run(["promtool", "check", "metrics"], input=text.encode(), capture_output=True, timeout=30)
        assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()


def test_bucket_of_picks_the_smallest_bound_holding_the_value() -> None:
    assert bucket_of(0.0, (0.1, 1.0)) == "0.1"
    assert bucket_of(0.1, (0.1, 1.0)) == "0.1"
    assert bucket_of(0.5, (0.1, 1.0)) == "1.0"
    assert bucket_of(7.0, (0.1, 1.0)) == "+Inf"


def test_model_labels_beyond_the_cap_are_filed_under_other() -> None:
    metrics = Metrics(Accumulator())
    for i in range(MAX_MODEL_LABELS + 3):
        metrics.job_submitted("low", f"model-{i}")
    recorded = metrics.sink.snapshot()
    assert recorded[("counters", counter_field("gemq_jobs_submitted", {"priority": "low", "model": "other"}))] == 3
    assert ("counters", counter_field("gemq_jobs_submitted", {"priority": "low", "model": "model-0"})) in recorded


def test_upstream_error_without_a_status_is_labelled_by_its_type() -> None:
    metrics = Metrics(Accumulator())
    metrics.upstream_error(FLASH, UpstreamUnavailable("connection reset"))
    field = counter_field("gemq_upstream_errors", {"model": FLASH, "code": "upstream_error"})
    assert metrics.sink.snapshot() == {("counters", field): 1}


def test_a_failed_flush_keeps_its_increments_for_the_next(ops_redis: RedisServer) -> None:
    # Given increments buffered while Redis cannot be reached
    down = redis.Redis(port=free_port(), socket_connect_timeout=0.2, decode_responses=True)
    sink = Accumulator(down, interval=3600)
    sink.add("counters", "x", 2)
    sink.flush()
    assert sink.snapshot() == {("counters", "x"): 2}
    # When Redis is back (here: another client on the same buffer), the next flush writes them once
    sink.client = ops_redis.client()
    sink.add("counters", "x", 1)
    sink.close()
    assert ops_redis.client().hget("gemq:metrics:counters", "x") == "3"


def test_the_grafana_dashboard_queries_only_metrics_we_export(ops_api: Api, ops_redis: RedisServer) -> None:
    # Given one of every stored series
    metrics = Metrics(Accumulator(ops_redis.client()))
    record = {"created_ms": "0", "started_ms": "1000", "finished_ms": "3000", "priority": "low", "model": FLASH}
    metrics.job_submitted("low", FLASH)
    metrics.call_started(record, 1000)
    metrics.admitted(FLASH, 0.0)
    metrics.upstream_error(FLASH, UpstreamUnavailable("down", status_code=503))
    metrics.job_finished(record, "succeeded", {"usage": {"prompt_tokens": 3, "output_tokens": 4},
                                              "time_to_first_token_ms": 50})
    metrics.webhook_delivery("delivered")
    metrics.sink.close()
    limiter = Limiter(ops_redis.client(), Settings(redis_url=ops_redis.url))
    limiter.release(FLASH, limiter.acquire(FLASH, job_id="j", priority=Priority.low, cost=1))
    exported = {name for name, _ in scrape(ops_api)[1]}
    # Then every metric the dashboard queries is exported
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "gemq.json").read_text())
    queried = {name for panel in dashboard["panels"] for target in panel["targets"]
               for name in re.findall(r"\bgemq_[a-z_]+", target["expr"])}
    assert queried and queried <= exported, queried - exported
    assert {p["gridPos"]["x"] + p["gridPos"]["w"] for p in dashboard["panels"]} <= set(range(1, 25))
