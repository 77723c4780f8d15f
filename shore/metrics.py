"""Prometheus metrics and the health check of the shore relay.

It owns the metric names, a per-service registry (no global state, so tests can run several relays in
one process), and the small HTTP app that serves ``/metrics`` and ``/health``. Counters live where
the events happen (the relay counts frames and rejections, ingest adapters count what they refuse);
this module reads them at scrape time through registered sources. It must not change relay state.

Metrics (all prefixed ``seabridge_``):

* ``frames_in_total{network}``: MO deliveries handed to the pipeline, per network;
* ``frames_out_total{network}``: MT frames the network accepted, per network;
* ``rejections_total{reason}``: refused input, per reason (unknown-vessel, bad-mac, replay,
  rate-limited, bad-signature, malformed-json, ...), summed over every ingest adapter;
* ``records_delivered_total``: frames accepted by the pipeline;
* ``publish_latency_seconds``: from a record's arrival to the broker's PUBACK;
* ``queue_depth{queue}``: unpublished events, unacknowledged MT units, partial records, frames
  queued for workers, acks owed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

log = logging.getLogger("shore.metrics")

CountSource = Callable[[], Mapping[str, int]]


class Metrics:
    """The relay's metrics. Register count sources, observe latencies, render the exposition."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.frames_in: list[CountSource] = []
        self.frames_out: list[CountSource] = []
        self.rejections: list[CountSource] = []
        self.delivered: list[Callable[[], int]] = []
        self.depths: Callable[[], Mapping[str, int]] | None = None
        self.publish_latency = Histogram(
            "seabridge_publish_latency_seconds",
            "Seconds from a record's arrival at the relay to the broker's acknowledgement.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            registry=self.registry,
        )
        self.registry.register(_Collector(self))

    def render(self) -> bytes:
        return generate_latest(self.registry)

    @staticmethod
    def total(sources: Iterable[CountSource]) -> dict[str, int]:
        out: dict[str, int] = {}
        for source in sources:
            for key, value in source().items():
                out[key] = out.get(key, 0) + int(value)
        return out


class _Collector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics

    def collect(self) -> Iterable[Any]:
        m = self.m
        for name, doc, label, sources in (
            ("seabridge_frames_in", "MO deliveries handed to the pipeline.", "network", m.frames_in),
            ("seabridge_frames_out", "MT frames accepted by the network.", "network", m.frames_out),
            ("seabridge_rejections", "Refused input, by reason.", "reason", m.rejections),
        ):
            family = CounterMetricFamily(name, doc, labels=[label])
            for key, value in sorted(Metrics.total(sources).items()):
                family.add_metric([key], value)
            yield family
        delivered = CounterMetricFamily("seabridge_records_delivered", "Frames accepted by the pipeline.")
        delivered.add_metric([], sum(f() for f in m.delivered))
        yield delivered
        depth = GaugeMetricFamily("seabridge_queue_depth", "Items waiting, by queue.", labels=["queue"])
        if m.depths is not None:
            try:
                for key, value in sorted(m.depths().items()):
                    depth.add_metric([key], value)
            except Exception as exc:  # a scrape must not fail because the archive is down
                log.warning("queue depths unavailable: %s", exc)
        yield depth


HealthCheck = Callable[[], bool]


def create_ops_app(metrics: Metrics, checks: Mapping[str, HealthCheck]) -> Starlette:
    """``GET /metrics`` (Prometheus text format) and ``GET /health`` (JSON; 200 healthy, 503 not)."""

    async def metrics_view(_request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        body = await run_in_threadpool(metrics.render)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    async def health_view(_request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        results: dict[str, bool] = {}
        for name, check in checks.items():
            try:
                results[name] = bool(await run_in_threadpool(check))
            except Exception as exc:  # an exploding check is a failed check
                log.warning("health check %s failed: %s", name, exc)
                results[name] = False
        ok = all(results.values())
        return JSONResponse(
            {"status": "ok" if ok else "failing", "checks": results}, status_code=200 if ok else 503
        )

    return Starlette(routes=[Route("/metrics", metrics_view), Route("/health", health_view)])
