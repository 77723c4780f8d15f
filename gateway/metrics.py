"""Prometheus metrics and a health endpoint for the vessel daemon, on a local port.

It owns the exposition: a collector that reads the daemon's state at scrape time (queue depth per class,
record states, budget fractions, link statistics, last scheduler decision) and a small Starlette app with
``/metrics`` (Prometheus text format) and ``/health`` (JSON; HTTP 503 when unhealthy). It does not change
any state and does not open sockets itself; the daemon serves the app with uvicorn.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from wire.records import PriorityClass


@dataclass
class Snapshot:
    """Everything a scrape shows, gathered by the daemon in one call."""

    queue: dict[int, tuple[int, int]] = field(default_factory=dict)
    states: dict[str, int] = field(default_factory=dict)
    budget_day: float = 0.0
    budget_month: float = 0.0
    sessions: int = 0
    failures: int = 0
    frames_sent: int = 0
    bytes_sent: int = 0
    frames_received: int = 0
    mailbox_checks: int = 0
    last_session_at: float = 0.0
    last_success_at: float = 0.0
    decision: str = ""
    healthy: bool = True
    problems: list[str] = field(default_factory=list)
    position_age_s: float | None = None


class _Collector(Collector):
    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        s = self.snapshot()
        depth = GaugeMetricFamily("seabridge_queue_records", "Records not yet delivered", labels=["class"])
        size = GaugeMetricFamily("seabridge_queue_bytes", "Unacknowledged unit bytes", labels=["class"])
        for cls in PriorityClass:
            n, b = s.queue.get(int(cls), (0, 0))
            depth.add_metric([cls.name.lower()], n)
            size.add_metric([cls.name.lower()], b)
        yield depth
        yield size
        states = GaugeMetricFamily("seabridge_records", "Records by state", labels=["state"])
        for state in ("queued", "sent", "delivered", "expired"):
            states.add_metric([state], s.states.get(state, 0))
        yield states
        budget = GaugeMetricFamily(
            "seabridge_budget_used_ratio", "Budget used (1 = spent)", labels=["period"]
        )
        budget.add_metric(["day"], s.budget_day)
        budget.add_metric(["month"], s.budget_month)
        yield budget
        for name, value, doc in (
            ("seabridge_sessions", s.sessions, "Satellite sessions attempted"),
            ("seabridge_session_failures", s.failures, "Sessions that failed"),
            ("seabridge_frames_sent", s.frames_sent, "Frames handed to the network"),
            ("seabridge_bytes_sent", s.bytes_sent, "Frame bytes handed to the network"),
            ("seabridge_frames_received", s.frames_received, "Frames received from the shore"),
            ("seabridge_mailbox_checks", s.mailbox_checks, "Sessions that carried no frame"),
        ):
            yield CounterMetricFamily(name, doc, value=value)
        yield GaugeMetricFamily(
            "seabridge_last_session_timestamp_seconds", "Time of the last session", value=s.last_session_at
        )
        yield GaugeMetricFamily(
            "seabridge_last_success_timestamp_seconds",
            "Time of the last successful session",
            value=s.last_success_at,
        )
        yield GaugeMetricFamily("seabridge_up", "1 when healthy", value=1.0 if s.healthy else 0.0)


def create_metrics_app(snapshot: Callable[[], Snapshot]) -> Starlette:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(snapshot))

    async def metrics(_request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def health(_request: Request) -> Response:
        s = snapshot()
        body: dict[str, Any] = {
            "status": "ok" if s.healthy else "unhealthy",
            "problems": s.problems,
            "last_session_at": s.last_session_at or None,
            "last_success_at": s.last_success_at or None,
            "last_decision": s.decision,
            "queued": sum(n for n, _ in s.queue.values()),
            "budget": {"day": round(s.budget_day, 3), "month": round(s.budget_month, 3)},
        }
        return Response(
            json.dumps(body), status_code=200 if s.healthy else 503, media_type="application/json"
        )

    return Starlette(routes=[Route("/metrics", metrics), Route("/health", health)])
