"""The catch view: each vessel's trips as the catch records tell them, and a trip's export as CSV or
as GDST 1.2 EPCIS JSON-LD (every export audited). Trips are built by ``catch_trips``."""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from . import auth as perm
from . import catch_trips
from .auth import Session, User
from .data import DashboardData
from .pages import addr, page, page_context, render, scope
from .state import clock_of, data_of, settings_of


def catch_context(data: DashboardData, user: User) -> dict[str, Any]:
    out = []
    for v in scope(data, user):
        out.append({"vessel": v, "trips": catch_trips.trips(data.catch_events(v))})
    return {"catch": out}


async def _render(request: Request, session: Session, template: str, fragment: bool) -> Response:
    data = data_of(request)
    ctx = await run_in_threadpool(catch_context, data, session.user)
    return render(template, **await run_in_threadpool(page_context, data, session, "catch", fragment, **ctx))


@page(perm.CATCH)
async def catch(request: Request, session: Session) -> Response:
    return await _render(request, session, "catch.html", False)


@page(perm.CATCH, api=True)
async def catch_panel(request: Request, session: Session) -> Response:
    return await _render(request, session, "catch_panel.html", True)


@page(perm.CATCH)
async def catch_export(request: Request, session: Session) -> Response:
    data = data_of(request)
    vessel = await run_in_threadpool(data.vessel_by_slug, request.path_params["vessel"])
    # Trip ids may hold "/" (``sea-star-7/1``): the route takes the rest of the path, format last.
    trip_id, _, fmt = request.path_params["trip"].rpartition(".")
    if vessel is None or not session.user.sees_fleet(vessel.fleet) or fmt not in ("csv", "jsonld"):
        return PlainTextResponse("not found", 404)
    trips = await run_in_threadpool(lambda: catch_trips.trips(data.catch_events(vessel)))
    trip = next((t for t in trips if t.trip == trip_id), None)
    if trip is None:
        return PlainTextResponse("not found", 404)
    now = clock_of(request).now()
    await run_in_threadpool(
        data.audit, session.user, f"export-{fmt}", f"{vessel.name}:{trip_id}", now, "", addr(request)
    )
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{vessel.slug}-{trip_id}")
    if fmt == "csv":
        return Response(
            catch_trips.trip_csv(trip),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    doc = catch_trips.trip_epcis(trip, vessel.fleet, settings_of(request).gdst_domain, now)
    return Response(
        json.dumps(doc, ensure_ascii=False, indent=1),
        media_type="application/ld+json",
        headers={"Content-Disposition": f'attachment; filename="{name}.jsonld"'},
    )


routes = [
    Route("/catch", catch, methods=["GET"]),
    Route("/catch/panel", catch_panel, methods=["GET"]),
    Route("/catch/{vessel}/{trip:path}", catch_export, methods=["GET"]),
]
