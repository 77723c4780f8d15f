"""The plumbing every captive-page screen shares: the page template (``gateway/templates/captive.html``),
the language choice, the session (hidden form field, URL or cookie), redirects home, translated error
text, the security headers and the ``guarded`` wrapper of every form post (rate limit per address,
strict bounded form reading).

It owns no route; the screens (``home``, ``signin``, ``compose``, ``sos``, ``probes``) do.
"""

from __future__ import annotations

import logging
import secrets
import urllib.parse
from collections.abc import Awaitable, Callable
from functools import cache
from importlib import resources
from typing import Any

from jinja2 import Environment, Template, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from common.web import FormRefused, client_address, inline_page_policy, read_form, secured

from ..accounts import Session
from ..crew import MAX_CONTACT_CHARS, MAX_TEXT_CHARS, CrewInputError
from ..i18n import LANG_COOKIE, LANGUAGES, catalogue, pick_language
from .state import accounts_of, limiters_of, now_of, presets_of, secure_cookies_of, vessel_name_of

log = logging.getLogger("gateway.captive")

COOKIE = "sb_session"
MAX_PRESET_BUTTONS = 16
# The fields of the largest form the page renders (compose, with the preset button pressed); the form
# reader refuses more. tests/test_web_forms.py renders every form and checks they agree.
COMPOSE_FIELDS = ("s", "l", "to", "contact", "text", "preset")
FORM_FIELDS = len(COMPOSE_FIELDS)

_env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))


@cache
def _template() -> Template:
    text = (resources.files("gateway") / "templates" / "captive.html").read_text(encoding="utf-8")
    return _env.from_string(text)


def language(request: Request, form: dict[str, str] | None = None, preferred: str | None = None) -> str:
    return pick_language(
        (form or {}).get("l"),
        request.query_params.get("l"),
        request.cookies.get(LANG_COOKIE),
        preferred,
        accept_language=request.headers.get("accept-language", ""),
    )


def render(request: Request, lang: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    """The page in ``lang`` showing ``ctx["view"]``; keeps the language and session cookies."""
    nonce = secrets.token_urlsafe(12)
    t = catalogue(lang)
    session: Session | None = ctx.get("session")
    query = {"l": lang}
    if session is not None:
        query["s"] = session.token
    html = _template().render(
        vessel=vessel_name_of(request),
        t=t,
        lang=lang,
        languages=[(code, catalogue(code).name) for code in LANGUAGES],
        token=session.token if session else "",
        home_url="/?" + urllib.parse.urlencode(query),
        nonce=nonce,
        presets=list(enumerate(presets_of(request).phrases(lang)))[:MAX_PRESET_BUTTONS],
        max_text=MAX_TEXT_CHARS,
        max_contact=MAX_CONTACT_CHARS,
        catch_log=hasattr(request.app.state, "catchlog"),
        **ctx,
    )
    response = HTMLResponse(html, status_code=status)
    response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="strict")
    if session is not None:
        set_session_cookie(request, response, session.token)
    return secured(response, inline_page_policy(nonce))


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    """The crew session cookie (Secure when the page is served over TLS)."""
    secure = secure_cookies_of(request)
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", max_age=7 * 86400, secure=secure)


def size_label(lang: str, frame_bytes: int, credits: int, unit_name: str) -> str:
    """The one wording of a size figure ("83 bytes on the air, 2 credits"), as ``common.estimate.wording``
    says it in English: the live estimate and the list of messages both use it."""
    t = catalogue(lang)
    return t("estimate_value", bytes=frame_bytes, units=credits, unit=t.n(f"unit_{unit_name}", credits))


def error_text(lang: str, exc: CrewInputError | FormRefused) -> str:
    t = catalogue(lang)
    return t("err_field", field=t(f"field_{exc.field}"), problem=t(exc.problem, **exc.values))


async def session_of(request: Request, form: dict[str, str] | None = None) -> Session | None:
    token = (form or {}).get("s") or request.query_params.get("s") or request.cookies.get(COOKIE, "")
    if not token:
        return None
    return await run_in_threadpool(accounts_of(request).session, token)


def redirect_home(request: Request, session: Session | None, lang: str, **extra: str) -> Response:
    query = {"l": lang, **extra}
    if session is not None:
        query["s"] = session.token
    response = RedirectResponse("/?" + urllib.parse.urlencode(query), status_code=303)
    if session is not None:
        set_session_cookie(request, response, session.token)
    response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="strict")
    return secured(response, inline_page_policy())


FormHandler = Callable[[Request, dict[str, str], str], Awaitable[Response]]


def guarded(handler: FormHandler) -> Callable[[Request], Awaitable[Response]]:
    """A form post: within the address's post budget, a strict bounded form, then ``handler(request,
    form, language)``; a refusal shows the sign-in view with the translated reason."""

    async def endpoint(request: Request) -> Response:
        lang = language(request)
        if not limiters_of(request).post.allow(client_address(request), now_of(request)):
            log.warning("rate limit: %s %s", request.url.path, client_address(request))
            exc = CrewInputError("request", "too many requests", "problem_rate")
            return render(request, lang, 429, view="login", error=error_text(lang, exc))
        try:
            form = await read_form(request, FORM_FIELDS)
        except FormRefused as refused:
            log.warning("refused form on %s: %s", request.url.path, refused)
            status = 413 if refused.problem == "problem_too_large" else 400
            return render(request, lang, status, view="login", error=error_text(lang, refused))
        return await handler(request, form, language(request, form))

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint
