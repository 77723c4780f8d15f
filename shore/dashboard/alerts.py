"""Open alerts (vessel distress, personal-safety messages) and their acknowledgement. Who may
acknowledge what is checked here: SOS needs ``ACK_SOS``, a safety message the crew permission."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from . import auth as perm
from .auth import Session
from .pages import addr, page, scope
from .state import clock_of, data_of


@page(perm.SOS, api=True)
async def alerts(request: Request, session: Session) -> Response:
    data = data_of(request)
    found = await run_in_threadpool(data.open_alerts, scope(data, session.user), session.user.can(perm.CREW))
    return JSONResponse(found)


@page(perm.SOS, mutating=True)
async def ack(request: Request, session: Session) -> Response:
    data = data_of(request)
    form = request.state.form
    kind, ref = form.get("kind", ""), form.get("ref", "")[:128]
    vessel = await run_in_threadpool(data.vessel_by_slug, form.get("vessel", ""))
    if vessel is None or not session.user.sees_fleet(vessel.fleet) or kind not in ("sos", "safety"):
        return PlainTextResponse("unknown alert", 404)
    if kind == "sos" and not session.user.can(perm.ACK_SOS):
        return PlainTextResponse("not allowed", 403)
    if kind == "safety" and not session.user.can(perm.CREW):
        return PlainTextResponse("not allowed", 403)
    now = clock_of(request).now()
    first = await run_in_threadpool(data.acknowledge, kind, ref, session.user, now, vessel)
    await run_in_threadpool(
        data.audit,
        session.user,
        f"ack-{kind}",
        f"{vessel.name}:{ref}",
        now,
        "" if first else "repeat",
        addr(request),
    )
    return JSONResponse({"ok": True, "first": first, "by": session.user.name, "at": now})


routes = [
    Route("/alerts", alerts, methods=["GET"]),
    Route("/alerts/ack", ack, methods=["POST"]),
]
