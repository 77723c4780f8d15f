"""The live stream: server-sent events, one stream per browser tab, filtered per session.

``translate`` decides what one archive event becomes for one user (or nothing); ``poll`` reads the
events after a given id and applies the desk rules (crew content only on the hotline page, every live
view of it audited, acknowledged alerts not repeated). The stream ends when the session does.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from common.clock import Clock
from common.web import decimal

from . import auth as perm
from .auth import Session
from .data import DashboardData
from .pages import SESSION_COOKIE, addr, current
from .records import Event, VesselRow, event_origin_time, is_safety_text
from .state import clock_of, data_of, settings_of

FLEET_KINDS = {"state/link", "up/telemetry", "up/alert", "evt/alert", "up/position", "state/position"}


def _crew_message(e: Event, v: VesselRow) -> dict[str, Any]:
    text = str(e.data.get("text", ""))
    return {
        "type": "crew",
        "id": e.id,
        "key": f"{v.slug}:{e.data.get('member')}",
        "vessel": v.name,
        "vessel_slug": v.slug,
        "member": e.data.get("member"),
        "handle": e.data.get("handle", ""),
        "to": e.data.get("to", ""),
        "text": text,
        "msg_id": e.data.get("msg_id", ""),
        "at": e.data.get("received", e.created),
        "raised": event_origin_time(e.data) or e.data.get("received", e.created),
        "sent_at": event_origin_time(e.data),
        "safety": e.data.get("to") == "hotline" and is_safety_text(text),
    }


def translate(session: Session, e: Event, vessels: dict[str, VesselRow]) -> dict[str, Any] | None:
    """What event ``e`` becomes on the stream of ``session``'s user, or None if they may not see it."""
    user = session.user
    v = vessels.get(e.vessel)
    if v is None or not user.sees_fleet(v.fleet):
        return None
    if e.kind == "up/crew":
        return _crew_message(e, v) if user.can(perm.CREW) else None
    if e.kind == "evt/delivery":
        if not user.can(perm.CREW):
            return None
        return {"type": "delivery", "msg_id": e.data.get("msg_id"), "at": e.data.get("at", e.created)}
    if e.kind == "up/sos" and user.can(perm.SOS):
        # The alert as it stands (updates merged in) is read back in ``poll``.
        update_of = e.data.get("update_of")
        ref = update_of if isinstance(update_of, str) else str(e.data.get("msg_id", e.id))
        return {"type": "alert", "kind": "sos", "ref": ref, "vessel_slug": v.slug, "can_ack": user.can(perm.ACK_SOS)}
    if e.kind == "state/sos" and e.data.get("by") and user.can(perm.SOS):  # acknowledged ashore
        return {
            "type": "cleared",
            "kind": "sos",
            "ref": e.data.get("msg_id"),
            "by": e.data.get("by"),
            "vessel_slug": v.slug,
        }
    if e.kind.startswith("up/catch") and user.can(perm.CATCH):
        return {"type": "catch", "vessel_slug": v.slug}
    if e.kind in FLEET_KINDS and user.can(perm.FLEET):
        return {"type": "vessel", "vessel_slug": v.slug}
    return None


def safety_alert(msg: dict[str, Any]) -> dict[str, Any]:
    """The alert a crew message to the hotline raises when it reads like a call for help."""
    return {
        "type": "alert",
        "kind": "safety",
        "ref": msg["msg_id"],
        "vessel": msg["vessel"],
        "vessel_slug": msg["vessel_slug"],
        "member": msg["member"],
        "handle": msg["handle"],
        "at": msg["raised"],
        "raised": msg["raised"],
        "arrived": msg["at"],
        "devices": 1,
        "can_ack": True,
    }


def poll(
    data: DashboardData, clock: Clock, session: Session, after: int, on_desk: bool, address: str
) -> tuple[list[tuple[int, dict[str, Any]]], int]:
    """The stream messages for the events after id ``after``, and the id to continue from."""
    events = data.events_after(after)
    vessels = {v.slug: v for v in data.vessels()}
    out = []
    for e in events:
        after = e.id
        msg = translate(session, e, vessels)
        if msg is None:
            continue
        if msg["type"] == "crew" and not on_desk:
            # Other pages only count unread messages: send no crew content, record no view.
            if msg["safety"] and data.acked("safety", msg["msg_id"]) is None:
                out.append((e.id, safety_alert(msg)))
            out.append((e.id, {"type": "crew", "id": msg["id"], "key": msg["key"]}))
            continue
        if msg["type"] == "crew":
            data.audit(session.user, "view", f"crew-live:{msg['key']}", clock.now(), msg["msg_id"], address)
        if msg["type"] == "alert":
            found = data.alert("sos", msg["ref"], [vessels[msg["vessel_slug"]]])
            if found is None or data.acked("sos", msg["ref"]) is not None:
                continue
            msg = {"type": "alert", **found[0], "can_ack": msg["can_ack"]}
        if msg["type"] == "crew" and msg["safety"] and data.acked("safety", msg["msg_id"]) is None:
            out.append((e.id, safety_alert(msg)))
        out.append((e.id, msg))
    return out, after


async def _events(request: Request, session: Session, after: int) -> AsyncIterator[bytes]:
    data, clock, settings = data_of(request), clock_of(request), settings_of(request)
    token = request.cookies.get(SESSION_COOKIE, "")
    address = addr(request)
    on_desk = request.query_params.get("page") == "hotline"
    yield b"retry: 2000\n\n"
    idle = 0
    checks = 0
    while not await request.is_disconnected():
        messages, after = await run_in_threadpool(poll, data, clock, session, after, on_desk, address)
        for event_id, msg in messages:
            yield f"id: {event_id}\ndata: {json.dumps(msg, ensure_ascii=False)}\n\n".encode()
        idle = 0 if messages else idle + 1
        if idle and idle % 15 == 0:
            yield b": ping\n\n"
        checks += 1
        if checks % 30 == 0:  # a closed or expired session ends the stream
            alive = await run_in_threadpool(
                data.session, token, clock.now(), settings.session_idle_s, settings.session_max_s
            )
            if alive is None:
                yield b"event: logout\ndata: {}\n\n"
                return
        await asyncio.sleep(settings.poll_s)


async def stream(request: Request) -> Response:
    session = await current(request)
    if session is None:
        return PlainTextResponse("login required", 401)
    after = decimal(request.query_params.get("after", "0"), 18) or 0
    return StreamingResponse(
        _events(request, session, after),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


routes = [Route("/events", stream, methods=["GET"])]
