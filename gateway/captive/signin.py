"""Signing in with a handle and PIN (its own, stricter rate limit and the account lockout), consent,
signing out, and the quick-exit button that also sends the covert personal-safety alert."""

from __future__ import annotations

import logging
import urllib.parse

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from common.web import client_address, inline_page_policy, secured

from ..accounts import LoginLocked
from ..crew import CrewInputError
from ..i18n import LANGUAGES
from ..pins import hash_pin
from .pages import COOKIE, error_text, guarded, redirect_home, render, session_of
from .state import accounts_of, desk_of, limiters_of, now_of, on_accept_of, released_of

log = logging.getLogger("gateway.captive")

DUMMY_SALT = b"\0" * 16


def _remember_release(request: Request) -> None:
    """This address signed in: the "release" probe policy stops calling it captive."""
    released = released_of(request)
    released[client_address(request)] = now_of(request)
    while len(released) > limiters_of(request).tracked_clients:
        released.popitem(last=False)


async def login(request: Request, form: dict[str, str], lang: str) -> Response:
    handle, pin = form.get("handle", ""), form.get("pin", "")
    if not limiters_of(request).login.allow(client_address(request), now_of(request)):
        log.warning("login rate limit: %s", client_address(request))
        err = CrewInputError("pin", "too many tries from this phone", "problem_rate")
        return render(request, lang, 429, view="login", error=error_text(lang, err))
    desk, accounts = desk_of(request), accounts_of(request)
    try:
        handle = desk.check_handle(handle)
        desk.check_pin(pin)
        session = await run_in_threadpool(accounts.login, handle, pin)
    except LoginLocked as exc:
        # As slow as checking a PIN, so the time of the answer does not single out locked handles.
        await run_in_threadpool(hash_pin, pin, DUMMY_SALT)
        err = CrewInputError("pin", "locked", "problem_locked", seconds=exc.seconds)
        return render(request, lang, 429, view="login", error=error_text(lang, err), handle=handle)
    except CrewInputError as exc:
        return render(request, lang, 400, view="login", error=error_text(lang, exc), handle=handle)
    if session is None:
        err = CrewInputError("pin", "wrong", "problem_wrong")
        return render(request, lang, 403, view="login", error=error_text(lang, err), handle=handle)
    _remember_release(request)
    if form.get("l") in LANGUAGES:
        await run_in_threadpool(accounts.set_language, session, lang)
    return redirect_home(request, session, lang)


async def consent(request: Request, form: dict[str, str], lang: str) -> Response:
    session = await session_of(request, form)
    if session is None:
        return redirect_home(request, None, lang)
    if form.get("agree") == "1":
        await run_in_threadpool(accounts_of(request).consent, session)
    return redirect_home(request, session, lang)


async def logout(request: Request, form: dict[str, str], lang: str) -> Response:
    session = await session_of(request, form)
    if session is not None:
        await run_in_threadpool(accounts_of(request).close, session)
    response = redirect_home(request, None, lang)
    response.delete_cookie(COOKIE)
    return response


async def clear(request: Request, form: dict[str, str], lang: str) -> Response:
    """Looks like a quick exit; also sends the covert personal-safety alert to the hotline."""
    session = await session_of(request, form)
    if session is not None:
        accounts = accounts_of(request)
        profile = await run_in_threadpool(accounts.profile, session)
        if profile.consented:
            await run_in_threadpool(desk_of(request).personal_alert, session.member)
            on_accept_of(request)()
        await run_in_threadpool(accounts.close, session)
    response = RedirectResponse("/?" + urllib.parse.urlencode({"l": lang, "c": "1"}), status_code=303)
    response.delete_cookie(COOKIE)
    return secured(response, inline_page_policy())


routes = [
    Route("/login", guarded(login), methods=["POST"]),
    Route("/consent", guarded(consent), methods=["POST"]),
    Route("/logout", guarded(logout), methods=["POST"]),
    Route("/clear", guarded(clear), methods=["POST"]),
]
