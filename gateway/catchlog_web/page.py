"""The captain's catch-log page at ``/catch``: sign in, start a trip, record an event (haul,
protected-species interaction, discard, crew rest hours, landing), correct or delete one. Plain HTML
forms (no JavaScript needed) that call the same ``CatchLog`` methods as the JSON API.
"""

from __future__ import annotations

import logging
import urllib.parse
from functools import cache
from importlib import resources
from typing import Any

from jinja2 import Environment, Template, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from common.web import TOO_LARGE, FormRefused, client_address, decimal, inline_page_policy, read_form, secured

from ..catchlog import CODELISTS, FATES, Captain, CaptainLocked, CatchInputError, CatchLog, pick_list
from ..i18n import LANGUAGES, catalogue
from .language import error_message, iso, lang_of, remember_language, when
from .state import catchlog_of, limiter_of, secure_cookies_of

PAGE_LINES = 4  # species line rows on the haul form
PAGE_CREW_ROWS = 12
# The fields each event form posts (``catchlog.html`` renders them; ``form_event`` reads them). The form
# reader's limit is the largest form's count, so a bigger form cannot be refused by a stale constant;
# tests/test_web_forms.py renders every form and checks the two agree.
EVENT_FIELDS = ("t", "l", "type", "trip", "seq")
HAUL_FIELDS = (*EVENT_FIELDS, "start", "duration_min", "latitude", "longitude", "gear", "area")
LINE_FIELDS = ("species", "kg", "fate", "local_name")  # per species line: line<i>_<name>
REST_FIELDS = (*EVENT_FIELDS, "day")
CREW_FIELDS = ("crew", "hours")  # per crew row: crew<i>, hours<i>
FORM_FIELDS = max(
    len(HAUL_FIELDS) + PAGE_LINES * len(LINE_FIELDS), len(REST_FIELDS) + PAGE_CREW_ROWS * len(CREW_FIELDS)
)
CATCH_COOKIE = "sb_catch"
POLICY = inline_page_policy()

log = logging.getLogger(__name__)

_env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))


@cache
def _template() -> Template:
    text = (resources.files("gateway") / "templates" / "catchlog.html").read_text(encoding="utf-8")
    return _env.from_string(text)


def render(request: Request, lang: str, status: int = 200, **ctx: Any) -> Response:
    t = catalogue(lang)
    token = ctx.get("token", "")
    query = request.query_params.get("q", "")[:40]
    lists = {name: pick_list(name, lang, limit=500) for name in CODELISTS if name != "species"}
    html = _template().render(
        t=t,
        lang=lang,
        languages=[(code, catalogue(code).name) for code in LANGUAGES],
        lists=lists,
        labels={name: {item.code: item.label for item in items} for name, items in lists.items()},
        species=pick_list("species", lang, query, limit=500),
        q=query,
        fates=list(FATES),
        page_lines=range(PAGE_LINES),
        crew_rows=range(PAGE_CREW_ROWS),
        iso=iso,
        when=when,
        now_iso=iso(catchlog_of(request).clock.now()),
        token_q=urllib.parse.quote(token),
        **ctx,
    )
    response = HTMLResponse(html, status_code=status)
    remember_language(response, lang)
    if token:
        set_session_cookie(request, response, token)
    return secured(response, POLICY)


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    """The captain's session cookie (Secure when the page is served over TLS)."""
    secure = secure_cookies_of(request)
    response.set_cookie(CATCH_COOKIE, token, httponly=True, samesite="strict", max_age=86400, secure=secure)


async def page_captain(request: Request, form: dict[str, str] | None = None) -> Captain | None:
    token = (form or {}).get("t") or request.query_params.get("t") or request.cookies.get(CATCH_COOKIE, "")
    return await run_in_threadpool(catchlog_of(request).captain, token) if token else None


async def _shown_trip(catchlog: CatchLog) -> tuple[int | None, int | None]:
    """The open trip (if any), and the trip the page shows: the open one, else the latest."""
    trip = await run_in_threadpool(catchlog.open_trip)
    trips = await run_in_threadpool(catchlog.trips)
    return trip, trip or (trips[0]["trip"] if trips else None)


async def log_view(request: Request, captain: Captain, lang: str, status: int = 200, **ctx: Any) -> Response:
    """The signed-in page: the open (or latest) trip's events and the forms."""
    catchlog = catchlog_of(request)
    trip, shown = await _shown_trip(catchlog)
    events = await run_in_threadpool(catchlog.events, shown) if shown else []
    return render(
        request,
        lang,
        status,
        view="log",
        token=captain.token,
        captain=captain.handle,
        trip=trip,
        shown=shown,
        events=events,
        **ctx,
    )


async def page_home(request: Request) -> Response:
    lang = lang_of(request)
    captain = await page_captain(request)
    if captain is None:
        return render(request, lang, view="login")
    edit = decimal(request.query_params.get("edit", ""))
    ctx: dict[str, Any] = {}
    if edit is not None:
        catchlog = catchlog_of(request)
        _trip, shown = await _shown_trip(catchlog)
        if shown:
            for event in await run_in_threadpool(catchlog.events, shown):
                if event["seq"] == edit and not event["deleted"]:
                    ctx["editing"] = event
    saved = request.query_params.get("saved", "")
    return await log_view(
        request, captain, lang, saved=saved if decimal(saved.replace(",", ""), 200) is not None else "", **ctx
    )


def form_event(form: dict[str, str]) -> dict[str, Any]:
    """Page form fields → the same shape the API takes."""
    data: dict[str, Any] = {k: v for k, v in form.items() if k not in ("t", "l")}
    lines = []
    for i in range(PAGE_LINES):
        line = {name: form.get(f"line{i}_{name}", "").strip() for name in LINE_FIELDS}
        if line["species"] or line["kg"]:
            lines.append({**line, "fate": line["fate"] or "kept"})
    data["lines"] = lines
    crew = []
    for i in range(PAGE_CREW_ROWS):
        number, hours = (form.get(f"{name}{i}", "").strip() for name in CREW_FIELDS)
        if number or hours:
            crew.append({"crew": number, "rest_hours": hours})
    data["crew"] = crew
    return data


async def _page_login(request: Request, form: dict[str, str], lang: str) -> Response:
    try:
        captain = await run_in_threadpool(
            catchlog_of(request).login, form.get("handle", ""), form.get("pin", "")
        )
    except CaptainLocked as exc:
        msg = catalogue(lang)("problem_locked", seconds=exc.seconds)
        return render(request, lang, 429, view="login", error=msg, handle=form.get("handle", "")[:32])
    if captain is None:
        error = catalogue(lang)("problem_wrong")
        return render(request, lang, 403, view="login", error=error, handle=form.get("handle", "")[:32])
    return _redirect(request, captain.token, lang)


def _change(catchlog: CatchLog, captain: Captain, action: str, form: dict[str, str]) -> dict[str, Any]:
    """Apply one page action (``trip``, ``event``, ``delete``); raises ``CatchInputError`` on refusal."""
    if action == "trip":
        return catchlog.start_trip(captain, form_event(form))
    if action == "event":
        data = form_event(form)
        trip = decimal(form.get("trip")) or 0
        seq = decimal(form.get("seq"))
        if seq is not None:
            return catchlog.correct(captain, trip, seq, data)
        return catchlog.add_event(captain, trip, form.get("type", ""), data)
    if action == "delete":
        trip = decimal(form.get("trip")) or 0
        seq = decimal(form.get("seq"))
        return catchlog.correct(captain, trip, -1 if seq is None else seq, None)
    raise CatchInputError("type", "problem_not_found", "unknown action")


async def _refused(request: Request, lang: str, exc: FormRefused) -> Response:
    """A form the reader refused: the captain stays on their page (when the cookie names them) and
    reads the real cause in their language; nothing changed."""
    status = 413 if exc.problem == TOO_LARGE else 400
    t = catalogue(lang)
    message = t("err_field", field=t("field_request"), problem=t(exc.problem, **exc.values))
    captain = await page_captain(request)
    if captain is None:
        return render(request, lang, status, view="login", error=message)
    return await log_view(request, captain, lang, status, error=message)


async def page_post(request: Request) -> Response:
    lang = lang_of(request)
    catchlog = catchlog_of(request)
    if not limiter_of(request).allow(client_address(request), catchlog.clock.now()):
        return render(request, lang, 429, view="login", error=catalogue(lang)("problem_rate"))
    try:
        form = await read_form(request, FORM_FIELDS)
    except FormRefused as exc:
        log.warning("refused form on %s: %s", request.url.path, exc)
        return await _refused(request, lang, exc)
    lang = lang_of(request, form)
    action = request.url.path.rsplit("/", 1)[-1]
    if action == "login":
        return await _page_login(request, form, lang)
    captain = await page_captain(request, form)
    if captain is None:
        return render(request, lang, 401, view="login", error=catalogue(lang)("problem_expired"))
    try:
        result = await run_in_threadpool(_change, catchlog, captain, action, form)
    except CatchInputError as exc:
        return await log_view(request, captain, lang, 422, error=error_message(lang, exc), draft=form)
    return _redirect(request, captain.token, lang, saved=f"{result['rid']},{result['bytes']}")


def _redirect(request: Request, token: str, lang: str, **extra: str) -> Response:
    query = urllib.parse.urlencode({"t": token, "l": lang, **extra})
    response = RedirectResponse(f"/catch?{query}", status_code=303)
    remember_language(response, lang)
    set_session_cookie(request, response, token)
    return secured(response, POLICY)


routes = [
    Route("/catch", page_home, methods=["GET"]),
    Route("/catch/login", page_post, methods=["POST"]),
    Route("/catch/trip", page_post, methods=["POST"]),
    Route("/catch/event", page_post, methods=["POST"]),
    Route("/catch/delete", page_post, methods=["POST"]),
]
