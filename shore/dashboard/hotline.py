"""The hotline desk: the crew's conversations, a thread with its delivery receipts, the reply
estimate, read markers and sending a reply. Every view of crew content is audited; a reply is published
on the vessel's ``down/crew`` topic like any other shore system's and travels the same path."""

from __future__ import annotations

import json
import secrets
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from common.web import decimal
from firmware_profiles import ProfileError

from . import auth as perm
from .auth import Session, User
from .data import DashboardData
from .estimate import MAX_REPLY_CHARS, estimate_reply
from .pages import addr, page, page_context, render, scope
from .records import RECEIPT_STATES, VesselRow
from .state import clock_of, data_of, publish_of

# Saved replies for the desk. Translations should be reviewed by the desk's native speakers.
SAVED_REPLIES: dict[str, list[str]] = {
    "English": [
        "We received your message. We will answer soon.",
        "Are you safe now? Reply YES or NO.",
        "Help is being arranged. Keep your phone charged.",
    ],
    "မြန်မာ": [
        "သင့်စာကို ရရှိပါပြီ။ မကြာမီ ပြန်ဖြေပါမည်။",
        "ယခု သင် လုံခြုံပါသလား။",
        "အကူအညီ စီစဉ်နေပါသည်။",
    ],
    "ខ្មែរ": [
        "យើងបានទទួលសាររបស់អ្នកហើយ។ យើងនឹងឆ្លើយតបឆាប់ៗ។",
        "តើអ្នកមានសុវត្ថិភាពទេឥឡូវនេះ?",
        "យើងកំពុងរៀបចំជំនួយ។",
    ],
    "ไทย": [
        "เราได้รับข้อความของคุณแล้ว เราจะตอบกลับเร็วๆ นี้",
        "ตอนนี้คุณปลอดภัยไหม ตอบ ใช่ หรือ ไม่",
        "เรากำลังประสานความช่วยเหลือให้คุณ",
    ],
}


def desk_context(
    data: DashboardData, user: User, key: str | None, address: str, now: float
) -> dict[str, Any]:
    vessels = scope(data, user)
    convs = data.conversations(user, vessels)
    ctx: dict[str, Any] = {
        "convs": convs,
        "current": None,
        "thread": [],
        "saved": SAVED_REPLIES,
        "current_key": key or "",
    }
    data.audit(user, "view", "conversation-list", now, f"{len(convs)} conversations", address)
    if key:
        vessel_slug, _, member_s = key.partition(":")
        vessel = next((v for v in vessels if v.slug == vessel_slug), None)
        member_n = decimal(member_s, 9)
        if vessel is not None and member_n is not None:
            member = member_n
            thread = data.thread(vessel, member)
            current = next((c for c in convs if c.key == key), None)
            ctx.update(
                current=current,
                vessel=vessel,
                member=member,
                thread=thread,
                key=key,
                estimate=estimate_reply("", vessel.profile, now),
            )
            last_in = max((m.id for m in thread if m.direction == "in"), default=0)
            if last_in:
                data.mark_read(user, key, last_in)
                if current is not None:
                    current.unread = 0
            data.audit(user, "view", f"conversation:{key}", now, f"{len(thread)} messages", address)
    return ctx


@page(perm.CREW)
async def hotline(request: Request, session: Session) -> Response:
    data = data_of(request)
    key = request.query_params.get("c")
    now = clock_of(request).now()
    ctx = await run_in_threadpool(desk_context, data, session.user, key, addr(request), now)
    return render("hotline.html", **await run_in_threadpool(page_context, data, session, "hotline", **ctx))


@page(perm.CREW, api=True)
async def hotline_list(request: Request, session: Session) -> Response:
    data = data_of(request)
    convs = await run_in_threadpool(data.conversations, session.user, scope(data, session.user))
    return render(
        "hotline_list.html", convs=convs, current_key=request.query_params.get("c", ""), csrf=session.csrf
    )


@page(perm.CREW, api=True)
async def hotline_estimate(request: Request, session: Session) -> Response:
    text = request.query_params.get("text", "")[: MAX_REPLY_CHARS * 2]
    vessel = await run_in_threadpool(data_of(request).vessel_by_slug, request.query_params.get("vessel", ""))
    if vessel is None or not session.user.sees_fleet(vessel.fleet):
        return JSONResponse({"error": "unknown vessel"}, 404)
    member = request.query_params.get("member", "")
    number = int(member) if member.isdigit() and len(member) <= 9 else 0
    try:
        found = await run_in_threadpool(estimate_reply, text, vessel.profile, clock_of(request).now(), number)
    except ProfileError as exc:
        return JSONResponse({"error": str(exc)}, 500)
    return JSONResponse(found)


@page(perm.CREW, mutating=True)
async def hotline_read(request: Request, session: Session) -> Response:
    form = request.state.form
    key = form.get("key", "")[:100]
    last_id = decimal(form.get("last_id", "0"), 18)
    if last_id is None:
        return PlainTextResponse("bad id", 400)
    await run_in_threadpool(data_of(request).mark_read, session.user, key, last_id)
    return JSONResponse({"ok": True})


def _reply_problem(vessel: VesselRow | None, user: User, member_s: str, text: str) -> tuple[str, int] | None:
    """Why a reply cannot be sent (message, HTTP status), or None when it can."""
    if vessel is None or not user.sees_fleet(vessel.fleet):
        return "unknown vessel", 404
    if decimal(member_s, 9) is None:
        return "member must be a number", 400
    if not text or len(text) > MAX_REPLY_CHARS:
        return f"text must be 1 to {MAX_REPLY_CHARS} characters", 400
    return None


@page(perm.CREW, mutating=True)
async def hotline_reply(request: Request, session: Session) -> Response:
    data = data_of(request)
    form = request.state.form
    wants_json = "application/json" in request.headers.get("accept", "")
    text = form.get("text", "").strip()
    vessel = await run_in_threadpool(data.vessel_by_slug, form.get("vessel", ""))
    member_s = form.get("member", "")
    problem = _reply_problem(vessel, session.user, member_s, text)
    if problem is not None or vessel is None:
        message, status = problem or ("unknown vessel", 404)
        if wants_json:
            return JSONResponse({"error": message}, status)
        return RedirectResponse(f"/hotline?error={quote(message)}", 303)
    member = decimal(member_s, 9) or 0
    now = clock_of(request).now()
    est = await run_in_threadpool(estimate_reply, text, vessel.profile, now, member)
    msg_id = f"desk-{secrets.token_hex(8)}"
    payload = json.dumps(
        {"msg_id": msg_id, "member": member, "text": text, "sender": "hotline"}, ensure_ascii=False
    ).encode()
    frame_bytes, credits = int(est.get("frame_bytes", 0)), int(est.get("credits", 0))
    await run_in_threadpool(
        data.record_reply, msg_id, vessel, member, text, session.user, now, frame_bytes, credits
    )
    publish_of(request)(f"{vessel.topic}/down/crew", payload)
    key = f"{vessel.slug}:{member}"
    await run_in_threadpool(
        data.audit, session.user, "reply", f"conversation:{key}", now, msg_id, addr(request)
    )
    if wants_json:
        return JSONResponse(
            {
                "msg_id": msg_id,
                "at": now,
                "text": text,
                "sender": session.user.name,
                "frame_bytes": est.get("frame_bytes"),
                "credits": est.get("credits"),
                "size": est.get("size"),
                "state": RECEIPT_STATES[0],
            }
        )
    return RedirectResponse(f"/hotline?c={quote(key)}", 303)


@page(perm.CREW, api=True)
async def hotline_receipts(request: Request, session: Session) -> Response:
    """The receipts of the desk's replies in one conversation, for the open thread to update itself."""
    data = data_of(request)
    vessel = await run_in_threadpool(data.vessel_by_slug, request.query_params.get("vessel", ""))
    member = request.query_params.get("member", "")
    if vessel is None or not session.user.sees_fleet(vessel.fleet) or not member.isdigit() or len(member) > 9:
        return JSONResponse({"error": "unknown conversation"}, 404)
    thread = await run_in_threadpool(data.thread, vessel, int(member))
    return JSONResponse(
        [
            {"msg_id": m.msg_id, "state": m.status, "sent": m.handed_at, "acked": m.delivered_at}
            for m in thread
            if m.direction == "out"
        ]
    )


routes = [
    Route("/hotline", hotline, methods=["GET"]),
    Route("/hotline/receipts", hotline_receipts, methods=["GET"]),
    Route("/hotline/list", hotline_list, methods=["GET"]),
    Route("/hotline/estimate", hotline_estimate, methods=["GET"]),
    Route("/hotline/read", hotline_read, methods=["POST"]),
    Route("/hotline/reply", hotline_reply, methods=["POST"]),
]
