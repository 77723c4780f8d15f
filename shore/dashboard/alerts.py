"""Open alerts (vessel distress, personal-safety messages), their acknowledgement and marking an SOS
a false alarm. Who may act on what is checked here: SOS needs ``ACK_SOS``, a safety message the crew
permission, and the alert must have arrived from a vessel the user may see (looked up in the archive
by ``alert_data``; the form's own ``vessel`` field is not trusted).
"""

from __future__ import annotations

from typing import Any

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


def _may_act(session: Session, kind: str) -> bool:
    return session.user.can(perm.ACK_SOS if kind == "sos" else perm.CREW)


async def _act(request: Request, session: Session, false_alarm: bool) -> Response:
    data = data_of(request)
    form = request.state.form
    kind, ref = form.get("kind", ""), form.get("ref", "")[:128]
    if false_alarm and kind != "sos":
        return PlainTextResponse("only an SOS can be a false alarm", 400)
    if kind in ("sos", "safety") and not _may_act(session, kind):
        return PlainTextResponse("not allowed", 403)
    found: Any = await run_in_threadpool(data.alert, kind, ref, scope(data, session.user))
    if found is None:
        return PlainTextResponse("unknown alert", 404)
    alert, vessel = found
    now = clock_of(request).now()
    first = await run_in_threadpool(data.acknowledge, alert, vessel, session.user, now, false_alarm)
    action = "false-alarm-sos" if false_alarm else f"ack-{kind}"
    detail = "" if first else "repeat"
    await run_in_threadpool(data.audit, session.user, action, f"{vessel.name}:{ref}", now, detail, addr(request))
    return JSONResponse({"ok": True, "first": first, "by": session.user.name, "at": now})


@page(perm.SOS, mutating=True)
async def ack(request: Request, session: Session) -> Response:
    return await _act(request, session, false_alarm=False)


@page(perm.SOS, mutating=True)
async def false_alarm(request: Request, session: Session) -> Response:
    """An SOS raised by mistake: acknowledged, marked a false alarm, and the vessel's state says so."""
    return await _act(request, session, false_alarm=True)


routes = [
    Route("/alerts", alerts, methods=["GET"]),
    Route("/alerts/ack", ack, methods=["POST"]),
    Route("/alerts/false-alarm", false_alarm, methods=["POST"]),
]
