"""The fleet view: each vessel's link, position, budget and latency, the map and the charts, and the
panel the page reloads live. Read-only; the charts are drawn by ``svg``."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import auth as perm
from . import svg
from .auth import Session, User
from .data import DashboardData
from .pages import page, page_context, render, scope
from .records import DAY
from .state import DashboardSettings, clock_of, data_of, settings_of


def fleet_context(data: DashboardData, settings: DashboardSettings, user: User, now: float) -> dict[str, Any]:
    vessels = scope(data, user)
    latencies = {v.slug: data.latencies([v], now - 7 * DAY) for v in vessels}
    statuses = [data.vessel_status(v, now, settings.silent_after_s, latencies[v.slug]) for v in vessels]
    tracks = data.tracks(vessels, now - 3 * DAY)
    day_budget = settings.day_budget_bytes
    budget = None if day_budget is None else day_budget * max(1, len(vessels))
    return {
        "vessels": statuses,
        "now": now,
        "map_svg": svg.fleet_map(statuses, tracks, data.network_positions(vessels, now - 3 * DAY)),  # type: ignore[arg-type]
        "bytes_svg": svg.bytes_per_day_chart(data.bytes_per_day(vessels, now, 14), budget),
        "latency_svg": svg.latency_chart(
            [x for values in latencies.values() for x in values],
            "Delivery latency, vessel to shore (7 days)",
        ),
        "mt_latency_svg": svg.latency_chart(
            data.mt_latencies(vessels, now - 7 * DAY), "Shore to vessel, until sent via satellite (7 days)"
        ),
        "class_svg": svg.class_chart(data.messages_per_class(vessels, now - 7 * DAY)),
        "alerts": data.open_alerts(vessels, crew=user.can(perm.CREW)),
        "silent_after_s": settings.silent_after_s,
    }


async def _render(request: Request, session: Session, template: str, fragment: bool) -> Response:
    data = data_of(request)
    now = clock_of(request).now()
    ctx = await run_in_threadpool(fleet_context, data, settings_of(request), session.user, now)
    return render(template, **await run_in_threadpool(page_context, data, session, "fleet", fragment, **ctx))


@page(perm.FLEET)
async def fleet(request: Request, session: Session) -> Response:
    return await _render(request, session, "fleet.html", False)


@page(perm.FLEET, api=True)
async def fleet_panel(request: Request, session: Session) -> Response:
    return await _render(request, session, "fleet_panel.html", True)


routes = [
    Route("/fleet", fleet, methods=["GET"]),
    Route("/fleet/panel", fleet_panel, methods=["GET"]),
]
