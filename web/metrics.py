"""``GET /metrics``: gemq's Prometheus metrics, summed over every process, rendered at scrape.

Counters and histograms are read from the Redis hashes every process flushes into
(``worker.store.metrics``); gauges are read live: queue depths from kombu's lists, calls in flight from
the limiter's concurrency leases, live workers from their heartbeats.  prometheus-client renders
the text format from a custom collector, so the format is the library's, not ours.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import redis
from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from spectree import Response as Doc

from web.context import ctx
from web.health import WORKER_FRESH_S
from web.openapi import spec as api_spec
from worker.core import keys
from worker.store.metrics import STORED, MetricSpec

bp = Blueprint("metrics", __name__)

Labels = tuple[tuple[str, str], ...]


class GemqCollector(Collector):
    """Builds every gemq metric family from Redis at each scrape."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def collect(self) -> Iterator[Metric]:
        """The families, in the order of ``worker.store.metrics.STORED``, then the gauges."""
        now = int(time.time() * 1000)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(keys.metrics("counters"))
        pipe.hgetall(keys.metrics("hist"))
        for queue in keys.JOB_QUEUES.values():
            pipe.llen(keys.broker_queue(queue))
        pipe.hlen(keys.broker_unacked())
        pipe.zcount(keys.workers(), now - WORKER_FRESH_S * 1000, "+inf")
        pipe.smembers(keys.limiter_models())
        counters, hist, *depths, unacked, live, models = pipe.execute()
        counter_rows = _parse_counters(counters)
        hist_rows = _parse_hist(hist)
        for spec in STORED:
            if spec.kind == "counter":
                yield _counter(spec, counter_rows.get(spec.name, {}))
            else:
                yield _histogram(spec, hist_rows.get(spec.name, {}))
        depth = GaugeMetricFamily("gemq_queue_depth", "Jobs waiting in the broker, by priority.", labels=["priority"])
        for priority, count in zip(keys.JOB_QUEUES, depths, strict=True):
            depth.add_metric([priority], count)
        yield depth
        yield GaugeMetricFamily("gemq_broker_unacked_messages",
                                "Messages delivered to workers and not yet acknowledged (running or parked).",
                                value=unacked)
        yield GaugeMetricFamily("gemq_workers_live", "Workers with a heartbeat in the last 30 s.", value=live)
        yield self._in_flight(sorted(m for m in models if m != "*"), now)

    def _in_flight(self, models: list[str], now: int) -> GaugeMetricFamily:
        family = GaugeMetricFamily("gemq_jobs_in_flight", "Gemini calls running now (live limiter leases).",
                                   labels=["model"])
        pipe = self.redis.pipeline(transaction=False)
        for model in models:
            pipe.zcount(keys.limiter(model, "leases"), now, "+inf")
        for model, count in zip(models, pipe.execute() if models else [], strict=True):
            family.add_metric([model], count)
        return family


def _labels(raw: dict[str, str]) -> Labels:
    return tuple(sorted(raw.items()))


def _parse_counters(fields: dict[str, str]) -> dict[str, dict[Labels, float]]:
    rows: dict[str, dict[Labels, float]] = defaultdict(dict)
    for field, value in fields.items():
        try:
            name, labels = json.loads(field)
            rows[name][_labels(labels)] = float(value)
        except (ValueError, TypeError):
            continue  # not ours; never fail a scrape over one field
    return rows


def _parse_hist(fields: dict[str, str]) -> dict[str, dict[Labels, dict[str, float]]]:
    rows: dict[str, dict[Labels, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    for field, value in fields.items():
        try:
            name, labels, bucket = json.loads(field)
            rows[name][_labels(labels)][bucket] = float(value)
        except (ValueError, TypeError):
            continue
    return rows


def _counter(spec: MetricSpec, rows: dict[Labels, float]) -> CounterMetricFamily:
    family = CounterMetricFamily(spec.name, spec.help, labels=list(spec.labels))
    for labels, value in sorted(rows.items()):
        family.add_metric(_values(spec, labels), value)
    return family


def _histogram(spec: MetricSpec, rows: dict[Labels, dict[str, float]]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(spec.name, spec.help, labels=list(spec.labels))
    for labels, stored in sorted(rows.items()):
        total = stored.pop("sum", 0.0)
        bounds = sorted({*map(repr, map(float, spec.buckets)), *stored} - {"+Inf"}, key=float) + ["+Inf"]
        cumulative, buckets = 0.0, []
        for bound in bounds:
            cumulative += stored.get(bound, 0.0)
            buckets.append((bound, cumulative))
        family.add_metric(_values(spec, labels), buckets, total)
    return family


def _values(spec: MetricSpec, labels: Labels) -> list[str]:
    found = dict(labels)
    return [found.get(name, "") for name in spec.labels]


def registry_for(client: redis.Redis) -> CollectorRegistry:
    """A registry holding only gemq's collector (no process metrics: they would be one process's view)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GemqCollector(client))
    return registry


@bp.get("/metrics")
@api_spec.validate(resp=Doc("HTTP_200"), security={}, tags=["health"], skip_validation=True)
def metrics() -> Response:
    """Prometheus text format, summed over every gemq process."""
    body: Any = generate_latest(ctx().metrics_registry)
    # The classic text format (0.0.4): what every Prometheus 2.x and 3.x scrapes; our names need no UTF-8 escaping.
    return Response(body, content_type=CONTENT_TYPE_PLAIN_0_0_4)
