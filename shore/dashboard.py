"""The shore dashboard and hotline desk: fleet view, hotline desk, catch view and administration.

Served by the relay process (one ASGI app under the relay's uvicorn). It owns the HTTP routes, login
with sessions and CSRF protection, what each role may see (``dashboard_auth.PERMISSIONS``; owners see
their own fleet only; crew content only the hotline role, every view of it audited), the live stream
(server-sent events: one stream per tab, filtered per session) and the pages. Data comes from
``dashboard_data`` (the only module that touches the archive); replies are published on the vessel's
``down/crew`` topic like any other shore system's and travel the same path. Every value is escaped; no
asset is loaded from the internet (Content-Security-Policy ``'self'``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from typing import Any
from urllib.parse import quote, urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.clock import Clock, SystemClock
from firmware_profiles import ProfileError

from . import dashboard_auth as perm
from . import dashboard_catch, dashboard_svg
from .archive import Archive
from .dashboard_auth import AuthError, LockoutPolicy, Role, Session, User, parse_role, same_token
from .dashboard_data import DAY, DashboardData, Event, VesselRow, is_safety_text
from .dashboard_estimate import MAX_REPLY_CHARS, estimate_reply
from .relay import slug

log = logging.getLogger("shore.dashboard")

MAX_FORM_BYTES = 16 * 1024
SESSION_COOKIE = "sb_dash"
LOGIN_CSRF_COOKIE = "sb_login_csrf"
STATIC_FILES = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
    "coast.geojson": "application/geo+json",
}
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "media-src 'none'; object-src 'none'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
FLEET_KINDS = {"state/link", "up/telemetry", "up/alert", "evt/alert", "up/position", "state/position"}

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

_env = Environment(
    loader=PackageLoader("shore", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    seconds = max(0, int(seconds))
    if seconds < 90:
        return f"{seconds} s ago"
    if seconds < 5400:
        return f"{seconds // 60} min ago"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h ago"
    return f"{seconds / 86400:.0f} d ago"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _utc(t: float | None) -> str:
    if t is None:
        return "—"
    from datetime import UTC, datetime

    return datetime.fromtimestamp(float(t), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


_env.filters["age"] = _age
_env.filters["duration"] = _duration
_env.filters["utc"] = _utc


def create_app(
    archive: Archive,
    publish: Callable[[str, bytes], None],
    username: str = "hotline",
    password: str = "",
    *,
    clock: Clock | None = None,
    silent_after_s: float = 6 * 3600.0,
    day_budget_bytes: int | None = None,
    secure_cookies: bool = False,
    session_idle_s: float = 8 * 3600.0,
    session_max_s: float = 7 * 86400.0,
    lockout: LockoutPolicy | None = None,
    gdst_domain: str = "seabridge.local",
    poll_s: float = 1.0,
) -> Starlette:
    """The dashboard app. ``username``/``password`` (the relay's ``[dashboard]`` settings), when a
    password is set and the user does not exist yet, create a first user: role hotline if the name is
    ``hotline``, administrator otherwise. Further users come from ``seabridge users add``."""
    clock = clock or SystemClock()
    data = DashboardData(archive, lockout)
    if password and data.user(username) is None:
        role = Role.HOTLINE if username == "hotline" else Role.ADMINISTRATOR
        try:
            data.add_user(username, role, password, None, clock.now())
        except AuthError as exc:
            log.warning("dashboard user %r from the configuration not created: %s", username, exc)

    def render(name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        return HTMLResponse(_env.get_template(name).render(**ctx), status)

    def addr(request: Request) -> str:
        return request.client.host if request.client else "-"

    async def current(request: Request) -> Session | None:
        token = request.cookies.get(SESSION_COOKIE, "")
        if not token:
            return None
        return await run_in_threadpool(data.session, token, clock.now(), session_idle_s, session_max_s)

    def same_origin(request: Request) -> bool:
        origin = request.headers.get("origin") or request.headers.get("referer")
        if not origin or origin == "null":
            return origin != "null"
        return urlsplit(origin).netloc == request.headers.get("host", "")

    async def form_of(request: Request) -> dict[str, str] | None:
        if int(request.headers.get("content-length") or 0) > MAX_FORM_BYTES:
            return None
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return None
        form = await request.form(max_files=0, max_fields=20)
        return {k: str(v) for k, v in form.items()}

    Handler = Callable[[Request, Session], Awaitable[Response]]

    def page(permission: str, mutating: bool = False, api: bool = False) -> Callable[[Handler], Any]:
        """Wrap a handler: a session is required, the role must hold ``permission``, and a mutating
        request must carry the session's CSRF token and come from this origin."""

        def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
            async def endpoint(request: Request) -> Response:
                session = await current(request)
                if session is None:
                    if api or mutating:
                        return PlainTextResponse("login required", 401)
                    target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
                    return RedirectResponse(f"/login?next={target}", 303)
                if not session.user.can(permission):
                    await run_in_threadpool(
                        data.audit, session.user, "denied", request.url.path, clock.now(), "", addr(request)
                    )
                    return render("denied.html", 403, user=session.user, csrf=session.csrf, last=0, perm=perm)
                if mutating:
                    form = await form_of(request)
                    if form is None:
                        return PlainTextResponse("form too large", 413)
                    token = request.headers.get("x-csrf-token") or form.get("csrf")
                    if not same_token(token, session.csrf) or not same_origin(request):
                        await run_in_threadpool(
                            data.audit,
                            session.user,
                            "csrf-refused",
                            request.url.path,
                            clock.now(),
                            "",
                            addr(request),
                        )
                        return PlainTextResponse("invalid or missing CSRF token", 403)
                    request.state.form = form
                return await handler(request, session)

            return endpoint

        return wrap

    def scope(user: User) -> list[VesselRow]:
        return data.vessels(user.fleet)

    def common(session: Session, page_name: str, fragment: bool = False, **ctx: Any) -> dict[str, Any]:
        return {
            "user": session.user,
            "csrf": session.csrf,
            "page": page_name,
            "perm": perm,
            "last": data.last_event_id(),
            "unread_total": (
                sum(
                    c.unread
                    for c in ctx.get("convs") or data.conversations(session.user, scope(session.user))
                )
                if session.user.can(perm.CREW) and not fragment
                else 0
            ),
            **ctx,
        }

    # --- login ------------------------------------------------------------------------------------

    async def login_form(request: Request) -> Response:
        token = secrets.token_urlsafe(24)
        has_users = bool(await run_in_threadpool(data.users))
        response = render(
            "login.html",
            csrf=token,
            error=request.query_params.get("error"),
            next=request.query_params.get("next", "/"),
            has_users=has_users,
        )
        response.set_cookie(
            LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=secure_cookies, path="/login"
        )
        return response

    async def login(request: Request) -> Response:
        form = await form_of(request)
        if form is None:
            return PlainTextResponse("form too large", 413)
        if not same_token(form.get("csrf"), request.cookies.get(LOGIN_CSRF_COOKIE, "")) or not same_origin(
            request
        ):
            return RedirectResponse("/login?error=expired", 303)
        name, password = form.get("username", "")[:64], form.get("password", "")[:256]
        now = clock.now()
        user, outcome = await run_in_threadpool(data.authenticate, name, password, now)
        nxt = form.get("next", "/")
        if not nxt.startswith("/") or nxt.startswith("//") or "\\" in nxt or len(nxt) > 300:
            nxt = "/"
        if user is None:
            await run_in_threadpool(
                data.audit,
                User(name.lower()[:32] or "-", Role.VIEWER, None),
                f"login-{outcome}",
                "login",
                now,
                "",
                addr(request),
            )
            log.warning("dashboard login for %r refused (%s) from %s", name[:32], outcome, addr(request))
            return RedirectResponse(f"/login?error={outcome}&next={quote(nxt)}", 303)
        token, _csrf = await run_in_threadpool(data.open_session, user, now)
        await run_in_threadpool(data.audit, user, "login", "session", now, "", addr(request))
        response = RedirectResponse(nxt, 303)
        response.set_cookie(
            SESSION_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=secure_cookies,
            max_age=int(session_max_s),
        )
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
        return response

    @page(perm.FLEET, mutating=True)
    async def logout(request: Request, session: Session) -> Response:
        await run_in_threadpool(data.close_session, request.cookies.get(SESSION_COOKIE, ""))
        await run_in_threadpool(data.audit, session.user, "logout", "session", clock.now(), "", addr(request))
        response = RedirectResponse("/login", 303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    async def home(request: Request) -> Response:
        session = await current(request)
        if session is None:
            return RedirectResponse("/login", 303)
        return RedirectResponse("/hotline" if session.user.can(perm.CREW) else "/fleet", 303)

    # --- fleet view -------------------------------------------------------------------------------

    def fleet_context(user: User) -> dict[str, Any]:
        now = clock.now()
        vessels = scope(user)
        latencies = {v.slug: data.latencies([v], now - 7 * DAY) for v in vessels}
        statuses = [data.vessel_status(v, now, silent_after_s, latencies[v.slug]) for v in vessels]
        tracks = data.tracks(vessels, now - 3 * DAY)
        budget = None if day_budget_bytes is None else day_budget_bytes * max(1, len(vessels))
        return {
            "vessels": statuses,
            "now": now,
            "map_svg": dashboard_svg.fleet_map(statuses, tracks),  # type: ignore[arg-type]
            "bytes_svg": dashboard_svg.bytes_per_day_chart(data.bytes_per_day(vessels, now, 14), budget),
            "latency_svg": dashboard_svg.latency_chart(
                [x for values in latencies.values() for x in values],
                "Delivery latency, vessel to shore (7 days)",
            ),
            "mt_latency_svg": dashboard_svg.latency_chart(
                data.mt_latencies(vessels, now - 7 * DAY), "Delivery latency, shore to vessel (7 days)"
            ),
            "class_svg": dashboard_svg.class_chart(data.messages_per_class(vessels, now - 7 * DAY)),
            "alerts": data.open_alerts(vessels, crew=user.can(perm.CREW)),
            "silent_after_s": silent_after_s,
        }

    @page(perm.FLEET)
    async def fleet(request: Request, session: Session) -> Response:
        ctx = await run_in_threadpool(fleet_context, session.user)
        return render("fleet.html", **await run_in_threadpool(common, session, "fleet", **ctx))

    @page(perm.FLEET, api=True)
    async def fleet_panel(request: Request, session: Session) -> Response:
        ctx = await run_in_threadpool(fleet_context, session.user)
        return render("fleet_panel.html", **await run_in_threadpool(common, session, "fleet", True, **ctx))

    @page(perm.SOS, api=True)
    async def alerts(request: Request, session: Session) -> Response:
        found = await run_in_threadpool(data.open_alerts, scope(session.user), session.user.can(perm.CREW))
        return JSONResponse(found)

    @page(perm.SOS, mutating=True)
    async def ack(request: Request, session: Session) -> Response:
        form = request.state.form
        kind, ref = form.get("kind", ""), form.get("ref", "")[:128]
        vessel = await run_in_threadpool(data.vessel_by_slug, form.get("vessel", ""))
        if vessel is None or not session.user.sees_fleet(vessel.fleet) or kind not in ("sos", "safety"):
            return PlainTextResponse("unknown alert", 404)
        if kind == "sos" and not session.user.can(perm.ACK_SOS):
            return PlainTextResponse("not allowed", 403)
        if kind == "safety" and not session.user.can(perm.CREW):
            return PlainTextResponse("not allowed", 403)
        now = clock.now()
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

    # --- hotline desk -----------------------------------------------------------------------------

    def desk_context(user: User, key: str | None, address: str) -> dict[str, Any]:
        now = clock.now()
        vessels = scope(user)
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
            if vessel is not None and member_s.isdigit():
                member = int(member_s)
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
        key = request.query_params.get("c")
        ctx = await run_in_threadpool(desk_context, session.user, key, addr(request))
        return render("hotline.html", **await run_in_threadpool(common, session, "hotline", **ctx))

    @page(perm.CREW, api=True)
    async def hotline_list(request: Request, session: Session) -> Response:
        convs = await run_in_threadpool(data.conversations, session.user, scope(session.user))
        return render(
            "hotline_list.html", convs=convs, current_key=request.query_params.get("c", ""), csrf=session.csrf
        )

    @page(perm.CREW, api=True)
    async def hotline_estimate(request: Request, session: Session) -> Response:
        text = request.query_params.get("text", "")[: MAX_REPLY_CHARS * 2]
        vessel = await run_in_threadpool(data.vessel_by_slug, request.query_params.get("vessel", ""))
        if vessel is None or not session.user.sees_fleet(vessel.fleet):
            return JSONResponse({"error": "unknown vessel"}, 404)
        try:
            found = await run_in_threadpool(estimate_reply, text, vessel.profile, clock.now())
        except ProfileError as exc:
            return JSONResponse({"error": str(exc)}, 500)
        return JSONResponse(found)

    @page(perm.CREW, mutating=True)
    async def hotline_read(request: Request, session: Session) -> Response:
        form = request.state.form
        key = form.get("key", "")[:100]
        try:
            last_id = int(form.get("last_id", "0"))
        except ValueError:
            return PlainTextResponse("bad id", 400)
        await run_in_threadpool(data.mark_read, session.user, key, last_id)
        return JSONResponse({"ok": True})

    @page(perm.CREW, mutating=True)
    async def hotline_reply(request: Request, session: Session) -> Response:
        form = request.state.form
        wants_json = "application/json" in request.headers.get("accept", "")
        text = form.get("text", "").strip()
        vessel = await run_in_threadpool(data.vessel_by_slug, form.get("vessel", ""))
        member_s = form.get("member", "")

        def fail(message: str, status: int = 400) -> Response:
            if wants_json:
                return JSONResponse({"error": message}, status)
            return RedirectResponse(f"/hotline?error={quote(message)}", 303)

        if vessel is None or not session.user.sees_fleet(vessel.fleet):
            return fail("unknown vessel", 404)
        if not member_s.isdigit() or len(member_s) > 9:
            return fail("member must be a number")
        if not text or len(text) > MAX_REPLY_CHARS:
            return fail(f"text must be 1 to {MAX_REPLY_CHARS} characters")
        member = int(member_s)
        now = clock.now()
        est = await run_in_threadpool(estimate_reply, text, vessel.profile, now, member)
        msg_id = f"desk-{secrets.token_hex(8)}"
        payload = json.dumps(
            {"msg_id": msg_id, "member": member, "text": text, "sender": "hotline"}, ensure_ascii=False
        ).encode()
        await run_in_threadpool(
            data.record_reply,
            msg_id,
            vessel,
            member,
            text,
            session.user,
            now,
            int(est.get("frame_bytes", 0)),
            int(est.get("credits", 0)),
        )
        publish(f"{vessel.topic}/down/crew", payload)
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
                }
            )
        return RedirectResponse(f"/hotline?c={quote(key)}", 303)

    # --- catch view -------------------------------------------------------------------------------

    def catch_context(user: User) -> dict[str, Any]:
        out = []
        for v in scope(user):
            out.append({"vessel": v, "trips": dashboard_catch.trips(data.catch_events(v))})
        return {"catch": out}

    @page(perm.CATCH)
    async def catch(request: Request, session: Session) -> Response:
        ctx = await run_in_threadpool(catch_context, session.user)
        return render("catch.html", **await run_in_threadpool(common, session, "catch", **ctx))

    @page(perm.CATCH, api=True)
    async def catch_panel(request: Request, session: Session) -> Response:
        ctx = await run_in_threadpool(catch_context, session.user)
        return render("catch_panel.html", **await run_in_threadpool(common, session, "catch", True, **ctx))

    @page(perm.CATCH)
    async def catch_export(request: Request, session: Session) -> Response:
        vessel = await run_in_threadpool(data.vessel_by_slug, request.path_params["vessel"])
        trip_id, fmt = request.path_params["trip"], request.path_params["fmt"]
        if vessel is None or not session.user.sees_fleet(vessel.fleet) or fmt not in ("csv", "jsonld"):
            return PlainTextResponse("not found", 404)
        trips = await run_in_threadpool(lambda: dashboard_catch.trips(data.catch_events(vessel)))
        trip = next((t for t in trips if t.trip == trip_id), None)
        if trip is None:
            return PlainTextResponse("not found", 404)
        now = clock.now()
        await run_in_threadpool(
            data.audit, session.user, f"export-{fmt}", f"{vessel.name}:{trip_id}", now, "", addr(request)
        )
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{vessel.slug}-{trip_id}")
        if fmt == "csv":
            return Response(
                dashboard_catch.trip_csv(trip),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
            )
        doc = dashboard_catch.trip_epcis(trip, vessel.fleet, gdst_domain, now)
        return Response(
            json.dumps(doc, ensure_ascii=False, indent=1),
            media_type="application/ld+json",
            headers={"Content-Disposition": f'attachment; filename="{name}.jsonld"'},
        )

    # --- administration ---------------------------------------------------------------------------

    @page(perm.ADMIN)
    async def admin(request: Request, session: Session) -> Response:
        users = await run_in_threadpool(data.users)
        vessels = await run_in_threadpool(data.vessels)
        audit = await run_in_threadpool(data.audit_log, 300)
        return render(
            "admin.html",
            **await run_in_threadpool(
                common,
                session,
                "admin",
                users=users,
                vessels=vessels,
                audit=audit,
                roles=[r.value for r in Role],
                error=request.query_params.get("error"),
                now=clock.now(),
            ),
        )

    @page(perm.ADMIN, mutating=True)
    async def admin_users(request: Request, session: Session) -> Response:
        form = request.state.form
        action, name = form.get("action", ""), form.get("name", "")
        now = clock.now()
        try:
            if action == "add":
                role = parse_role(form.get("role", ""))
                await run_in_threadpool(
                    data.add_user,
                    name,
                    role,
                    form.get("password", ""),
                    form.get("fleet", "").strip() or None,
                    now,
                )
            elif action == "unlock":
                await run_in_threadpool(data.unlock, name)
            elif action == "remove":
                if name == session.user.name:
                    raise AuthError("you cannot remove yourself")
                await run_in_threadpool(data.remove_user, name)
            else:
                raise AuthError("unknown action")
        except AuthError as exc:
            return RedirectResponse(f"/admin?error={quote(str(exc))}", 303)
        await run_in_threadpool(data.audit, session.user, f"user-{action}", name[:32], now, "", addr(request))
        return RedirectResponse("/admin", 303)

    # --- live stream ------------------------------------------------------------------------------

    def translate(session: Session, e: Event, vessels: dict[str, VesselRow]) -> dict[str, Any] | None:
        user = session.user
        v = vessels.get(e.vessel)
        if v is None or not user.sees_fleet(v.fleet):
            return None
        if e.kind == "up/crew":
            if not user.can(perm.CREW):
                return None
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
                "safety": e.data.get("to") == "hotline" and is_safety_text(text),
            }
        if e.kind == "evt/delivery":
            if not user.can(perm.CREW):
                return None
            return {"type": "delivery", "msg_id": e.data.get("msg_id"), "at": e.data.get("at", e.created)}
        if e.kind == "up/sos" and user.can(perm.SOS):
            return {
                "type": "alert",
                "kind": "sos",
                "ref": str(e.data.get("msg_id", e.id)),
                "vessel": v.name,
                "vessel_slug": v.slug,
                "at": e.data.get("received", e.created),
                "note": e.data.get("note", ""),
                "latitude": e.data.get("latitude"),
                "longitude": e.data.get("longitude"),
                "can_ack": user.can(perm.ACK_SOS),
            }
        if e.kind == "state/sos" and e.data.get("state") == "acknowledged" and user.can(perm.SOS):
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

    async def stream(request: Request) -> Response:
        session = await current(request)
        if session is None:
            return PlainTextResponse("login required", 401)
        try:
            after = int(request.query_params.get("after", "0"))
        except ValueError:
            after = 0
        token = request.cookies.get(SESSION_COOKIE, "")
        address = addr(request)
        on_desk = request.query_params.get("page") == "hotline"

        def safety_alert(msg: dict[str, Any]) -> dict[str, Any]:
            return {
                "type": "alert",
                "kind": "safety",
                "ref": msg["msg_id"],
                "vessel": msg["vessel"],
                "vessel_slug": msg["vessel_slug"],
                "member": msg["member"],
                "handle": msg["handle"],
                "at": msg["at"],
                "can_ack": True,
            }

        def poll(after: int) -> tuple[list[tuple[int, dict[str, Any]]], int]:
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
                    data.audit(
                        session.user, "view", f"crew-live:{msg['key']}", clock.now(), msg["msg_id"], address
                    )
                if msg["type"] == "alert" and data.acked("sos", msg["ref"]) is not None:
                    continue
                if msg["type"] == "crew" and msg["safety"] and data.acked("safety", msg["msg_id"]) is None:
                    out.append((e.id, safety_alert(msg)))
                out.append((e.id, msg))
            return out, after

        async def gen() -> AsyncIterator[bytes]:
            nonlocal after
            yield b"retry: 2000\n\n"
            idle = 0
            checks = 0
            while not await request.is_disconnected():
                messages, after = await run_in_threadpool(poll, after)
                for event_id, msg in messages:
                    yield f"id: {event_id}\ndata: {json.dumps(msg, ensure_ascii=False)}\n\n".encode()
                idle = 0 if messages else idle + 1
                if idle and idle % 15 == 0:
                    yield b": ping\n\n"
                checks += 1
                if checks % 30 == 0:  # a closed or expired session ends the stream
                    alive = await run_in_threadpool(
                        data.session, token, clock.now(), session_idle_s, session_max_s
                    )
                    if alive is None:
                        yield b"event: logout\ndata: {}\n\n"
                        return
                await asyncio.sleep(poll_s)

        return StreamingResponse(
            gen(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    # --- static and health ------------------------------------------------------------------------

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC_FILES:
            return PlainTextResponse("not found", 404)
        body = (resources.files("shore") / "static" / name).read_bytes()
        return Response(body, media_type=STATIC_FILES[name], headers={"Cache-Control": "max-age=300"})

    async def health(_request: Request) -> Response:
        return PlainTextResponse("ok")

    app = Starlette(
        middleware=[Middleware(SecurityHeaders)],
        routes=[
            Route("/", home, methods=["GET"]),
            Route("/login", login_form, methods=["GET"]),
            Route("/login", login, methods=["POST"]),
            Route("/logout", logout, methods=["POST"]),
            Route("/fleet", fleet, methods=["GET"]),
            Route("/fleet/panel", fleet_panel, methods=["GET"]),
            Route("/alerts", alerts, methods=["GET"]),
            Route("/alerts/ack", ack, methods=["POST"]),
            Route("/hotline", hotline, methods=["GET"]),
            Route("/hotline/list", hotline_list, methods=["GET"]),
            Route("/hotline/estimate", hotline_estimate, methods=["GET"]),
            Route("/hotline/read", hotline_read, methods=["POST"]),
            Route("/hotline/reply", hotline_reply, methods=["POST"]),
            Route("/catch", catch, methods=["GET"]),
            Route("/catch/panel", catch_panel, methods=["GET"]),
            Route("/catch/{vessel}/{trip}.{fmt}", catch_export, methods=["GET"]),
            Route("/admin", admin, methods=["GET"]),
            Route("/admin/users", admin_users, methods=["POST"]),
            Route("/events", stream, methods=["GET"]),
            Route("/static/{name}", static, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
        ],
    )

    app.state.data = data
    return app


class SecurityHeaders:
    """ASGI middleware: CSP, no sniffing, no framing, no caching of pages (streams pass untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", CSP)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "same-origin")
                headers.setdefault("X-Frame-Options", "DENY")
                if not static:
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)


__all__ = ["SAVED_REPLIES", "create_app", "slug"]
