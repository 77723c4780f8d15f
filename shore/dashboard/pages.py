"""The plumbing every dashboard screen shares: the Jinja2 templates (``shore/templates``) and their
filters, the session cookie, the ``page`` guard (login, role permission, CSRF and same-origin check on
mutating requests, audit of refusals) and the context every full page gets.

It owns no route: the screens (``fleet``, ``hotline``, ``alerts``, ``catch``, ``admin``, ``login``,
``stream``, ``static``) do. Dependencies come from ``request.app.state`` through ``state``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from common.estimate import wording
from common.web import FormRefused, declared_length

from . import auth as perm
from .auth import Session, User, same_token
from .data import DashboardData
from .records import VesselRow
from .state import clock_of, data_of, settings_of

MAX_FORM_BYTES = 16 * 1024
SESSION_COOKIE = "sb_dash"

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
    return datetime.fromtimestamp(float(t), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _segment(value: object) -> str:
    """One URL path segment: every reserved character escaped, ``/`` too (Jinja's ``urlencode`` keeps
    ``/``, which splits a trip id such as ``sea-star-7/1`` into two segments)."""
    return quote(str(value), safe="")


_env.filters["age"] = _age
_env.filters["duration"] = _duration
_env.filters["utc"] = _utc
_env.filters["segment"] = _segment
_env.globals["size_wording"] = wording
_env.filters["plural"] = lambda n, word: f"{n} {word}" + ("" if n == 1 else "s")


def render(name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    return HTMLResponse(_env.get_template(name).render(**ctx), status)


def addr(request: Request) -> str:
    return request.client.host if request.client else "-"


async def current(request: Request) -> Session | None:
    """The request's session, if its cookie names a live one."""
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token:
        return None
    settings = settings_of(request)
    return await run_in_threadpool(
        data_of(request).session,
        token,
        clock_of(request).now(),
        settings.session_idle_s,
        settings.session_max_s,
    )


def same_origin(request: Request) -> bool:
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin or origin == "null":
        return origin != "null"
    return urlsplit(origin).netloc == request.headers.get("host", "")


async def form_of(request: Request) -> dict[str, str] | None:
    """The request's form (URL-encoded or multipart, no files), or None when it is too large."""
    try:
        declared = declared_length(request)
    except FormRefused as refused:
        raise HTTPException(400, str(refused)) from refused
    if (declared or 0) > MAX_FORM_BYTES:
        return None
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return None
    form = await request.form(max_files=0, max_fields=20)
    return {k: str(v) for k, v in form.items()}


async def audit(request: Request, user: User, action: str, target: str, detail: str = "") -> None:
    """One audit-log line for ``user`` doing ``action`` on ``target`` from this request's address."""
    data = data_of(request)
    now = clock_of(request).now()
    await run_in_threadpool(data.audit, user, action, target, now, detail, addr(request))


Handler = Callable[[Request, Session], Awaitable[Response]]


def page(permission: str, mutating: bool = False, api: bool = False) -> Callable[[Handler], Any]:
    """Wrap a handler: a session is required, the role must hold ``permission``, and a mutating
    request must carry the session's CSRF token and come from this origin (its form is then on
    ``request.state.form``)."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            session = await current(request)
            if session is None:
                if api or mutating:
                    return PlainTextResponse("login required", 401)
                target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
                return RedirectResponse(f"/login?next={target}", 303)
            if not session.user.can(permission):
                await audit(request, session.user, "denied", request.url.path)
                return render("denied.html", 403, user=session.user, csrf=session.csrf, last=0, perm=perm)
            if mutating:
                form = await form_of(request)
                if form is None:
                    return PlainTextResponse("form too large", 413)
                token = request.headers.get("x-csrf-token") or form.get("csrf")
                if not same_token(token, session.csrf) or not same_origin(request):
                    await audit(request, session.user, "csrf-refused", request.url.path)
                    return PlainTextResponse("invalid or missing CSRF token", 403)
                request.state.form = form
            return await handler(request, session)

        endpoint.__name__ = handler.__name__
        endpoint.__doc__ = handler.__doc__
        return endpoint

    return wrap


def scope(data: DashboardData, user: User) -> list[VesselRow]:
    """The vessels ``user`` may see (an owner's own fleet, everyone else all)."""
    return data.vessels(user.fleet)


def page_context(
    data: DashboardData, session: Session, page_name: str, fragment: bool = False, **ctx: Any
) -> dict[str, Any]:
    """What every page template gets: the user, the CSRF token, the last event id, unread count."""
    return {
        "user": session.user,
        "csrf": session.csrf,
        "page": page_name,
        "perm": perm,
        "last": data.last_event_id(),
        "unread_total": (
            sum(
                c.unread
                for c in ctx.get("convs") or data.conversations(session.user, scope(data, session.user))
            )
            if session.user.can(perm.CREW) and not fragment
            else 0
        ),
        **ctx,
    }
