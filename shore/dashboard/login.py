"""Signing in and out of the dashboard, and the home address that sends each role to its screen.

The login form carries its own CSRF token (a cookie scoped to ``/login``); a refused login is audited
and logged with the reason, and answered the same whatever the reason (unknown name, wrong password,
locked account), so the answer does not tell which user names exist. The refused form comes back with
the typed user name (never the password), carried to the form by a short cookie scoped to ``/login``.
It does not decide what a role may see (``auth.PERMISSIONS`` does).
"""

from __future__ import annotations

import logging
import secrets
from urllib.parse import quote, unquote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from . import auth as perm
from .auth import Role, Session, User, same_token
from .pages import SESSION_COOKIE, addr, audit, current, form_of, page, render, same_origin
from .state import clock_of, data_of, settings_of

log = logging.getLogger("shore.dashboard")

LOGIN_CSRF_COOKIE = "sb_login_csrf"
LOGIN_NAME_COOKIE = "sb_login_name"  # the user name of a refused login, until the form shows it again


async def login_form(request: Request) -> Response:
    token = secrets.token_urlsafe(24)
    has_users = bool(await run_in_threadpool(data_of(request).users))
    error = request.query_params.get("error")
    typed = unquote(request.cookies.get(LOGIN_NAME_COOKIE, ""))[:64] if error == "refused" else ""
    response = render(
        "login.html",
        csrf=token,
        error=error,
        next=request.query_params.get("next", "/"),
        has_users=has_users,
        username=typed,
    )
    response.delete_cookie(LOGIN_NAME_COOKIE, path="/login")
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=settings_of(request).secure_cookies,
        path="/login",
    )
    return response


def _next_page(target: str) -> str:
    """Where to go after signing in: a path on this site, never another site."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target or len(target) > 300:
        return "/"
    return target


async def login(request: Request) -> Response:
    form = await form_of(request)
    if form is None:
        return PlainTextResponse("form too large", 413)
    if not same_token(form.get("csrf"), request.cookies.get(LOGIN_CSRF_COOKIE, "")) or not same_origin(
        request
    ):
        return RedirectResponse("/login?error=expired", 303)
    data, settings = data_of(request), settings_of(request)
    name, password = form.get("username", "")[:64], form.get("password", "")[:256]
    now = clock_of(request).now()
    user, outcome = await run_in_threadpool(data.authenticate, name, password, now)
    nxt = _next_page(form.get("next", "/"))
    if user is None:
        who = User(name.lower()[:32] or "-", Role.VIEWER, None)
        await run_in_threadpool(data.audit, who, f"login-{outcome}", "login", now, "", addr(request))
        log.warning("dashboard login for %r refused (%s) from %s", name[:32], outcome, addr(request))
        # One answer for a wrong password, an unknown name and a locked account: the lockout must not
        # tell which names exist (the audit log keeps the real outcome).
        refused = RedirectResponse(f"/login?error=refused&next={quote(nxt)}", 303)
        refused.set_cookie(
            LOGIN_NAME_COOKIE,
            quote(name, safe=""),
            max_age=300,
            httponly=True,
            samesite="strict",
            secure=settings.secure_cookies,
            path="/login",
        )
        return refused
    token, _csrf = await run_in_threadpool(data.open_session, user, now)
    await run_in_threadpool(data.audit, user, "login", "session", now, "", addr(request))
    response = RedirectResponse(nxt, 303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=settings.secure_cookies,
        max_age=int(settings.session_max_s),
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@page(perm.FLEET, mutating=True)
async def logout(request: Request, session: Session) -> Response:
    await run_in_threadpool(data_of(request).close_session, request.cookies.get(SESSION_COOKIE, ""))
    await audit(request, session.user, "logout", "session")
    response = RedirectResponse("/login", 303)
    response.delete_cookie(SESSION_COOKIE)
    return response


async def home(request: Request) -> Response:
    session = await current(request)
    if session is None:
        return RedirectResponse("/login", 303)
    return RedirectResponse("/hotline" if session.user.can(perm.CREW) else "/fleet", 303)


routes = [
    Route("/", home, methods=["GET"]),
    Route("/login", login_form, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
]
