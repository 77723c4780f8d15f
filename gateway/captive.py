"""The crew's captive page: OS captivity probes, the RFC 8908 Captive Portal API, sign-in with a handle
and PIN, consent, compose with presets and a live size estimate, message status, the inbox, vessel
distress (SOS) and the covert personal-safety alert.

Every action is a plain HTML form, so the page works without JavaScript; the session token travels in
a hidden form field and the URL as well as a cookie, so it works in sign-in mini-browsers that drop
cookies. Pages are self-contained (no external assets), every value is escaped by Jinja2's autoescape,
request bodies are bounded and parsed strictly (invalid UTF-8 is refused), and requests are rate
limited per client address. Store calls run in a worker thread so PIN hashing and synchronous disk
writes never stall the daemon's event loop. It does not talk to the modem.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import urllib.parse
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from jinja2 import Environment, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import BaseRoute, Route

from common.estimate import estimate as estimate_cost
from firmware_profiles import ModemProfile, load_profile
from wire.codec import preset_table

from .accounts import Accounts, LoginLocked, Session
from .budget import periods
from .catchlog import CatchLog
from .config import ModemSection
from .crew import MAX_CONTACT_CHARS, MAX_TEXT_CHARS, CrewDesk, CrewInputError
from .fairness import AllowancePolicy, AllowanceState, allowance_state
from .i18n import LANGUAGES, catalogue, pick_language

log = logging.getLogger("gateway.captive")

MAX_FORM_BYTES = 8 * 1024
MAX_FIELDS = 20
COOKIE = "sb_session"
LANG_COOKIE = "sb_lang"
CAPTIVE_JSON = "application/captive+json"
MAX_PRESET_BUTTONS = 16
PROBE_POLICIES = ("portal", "release", "online")

_env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))


def _template(name: str) -> Any:
    text = (resources.files("gateway") / "templates" / name).read_text(encoding="utf-8")
    return _env.from_string(text)


@dataclass(frozen=True)
class CaptiveLimits:
    """Per-client-address request budgets (token buckets: ``burst`` requests, refilled at ``per_s``)."""

    post_burst: int = 30
    post_per_s: float = 0.5
    login_burst: int = 10
    login_per_s: float = 0.1
    api_burst: int = 40
    api_per_s: float = 4.0
    tracked_clients: int = 1024  # least recently seen addresses beyond this are forgotten


class RateLimiter:
    """Token buckets per key, bounded in memory; time comes from the caller's clock."""

    def __init__(self, burst: int, per_s: float, max_keys: int) -> None:
        self.burst = burst
        self.per_s = per_s
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, key: str, now: float) -> bool:
        tokens, at = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + max(0.0, now - at) * self.per_s)
        allowed = tokens >= 1.0
        self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return allowed


class FormError(CrewInputError):
    pass


def parse_form(body: bytes) -> dict[str, str]:
    """Strict ``application/x-www-form-urlencoded`` parsing: ASCII on the wire, UTF-8 inside, bounded."""
    if len(body) > MAX_FORM_BYTES:
        raise FormError("request", "form too large", "problem_too_large")
    try:
        text = body.decode("ascii")
        pairs = urllib.parse.parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=False,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormError("request", "form is not valid UTF-8 form data", "problem_encoding") from exc
    form: dict[str, str] = {}
    for key, value in pairs:
        if "\x00" in value:
            raise FormError("request", "form contains NUL", "problem_encoding")
        form.setdefault(key, value)
    return form


async def read_form(request: Request) -> dict[str, str]:
    length = request.headers.get("content-length")
    if length is None or not length.isdigit() or int(length) > MAX_FORM_BYTES:
        raise FormError(
            "request", f"form must declare a length of at most {MAX_FORM_BYTES} bytes", "problem_too_large"
        )
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in ("application/x-www-form-urlencoded", ""):
        raise FormError("request", "only URL-encoded forms are accepted", "problem_encoding")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormError("request", "form too large", "problem_too_large")
    return parse_form(body)


def client_key(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _security_headers(response: Response, nonce: str = "") -> Response:
    script = f"'nonce-{nonce}'" if nonce else "'none'"
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; style-src 'unsafe-inline'; script-src {script}; connect-src 'self'; "
        "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    return response


def _catch_routes(catchlog: CatchLog) -> list[BaseRoute]:
    from .catchlog_api import catch_routes  # it builds on this module's form and header helpers

    return catch_routes(catchlog)


def _unlimited(desk: CrewDesk) -> Callable[[int], AllowanceState]:
    def allowance(member: int) -> AllowanceState:
        day, month = periods(desk.clock.now())
        used = desk.store.member_usage
        return allowance_state(AllowancePolicy(), used(member, day), used(member, month))

    return allowance


def create_app(
    desk: CrewDesk,
    vessel_name: str,
    on_accept: Callable[[], None] = lambda: None,
    *,
    profile: ModemProfile | None = None,
    accounts: Accounts | None = None,
    limits: CaptiveLimits | None = None,
    probe_policy: str = "portal",
    allowance: Callable[[int], AllowanceState] | None = None,
    portal_url: str = "",
    extra_routes: list[BaseRoute] | None = None,
    catch_log: bool = True,
) -> Starlette:
    """The captive page app. ``probe_policy``: "portal" answers every OS probe as captive (the sign-in
    sheet opens on each join), "release" answers as captive until that address has signed in, "online"
    never claims captivity (rely on DHCP option 114 and a printed address).

    ``catch_log`` mounts the captain's catch-log page (``/catch``) and JSON API (``/api/catch``,
    described at ``/api/openapi.json``) in the same app. ``profile`` prices the live estimate and ``allowance(member)`` gives a member's remaining bytes;
    when not given they are taken from the object ``on_accept`` is bound to (the daemon), else the
    default modem profile and no limit."""
    if probe_policy not in PROBE_POLICIES:
        raise ValueError(f"probe_policy must be one of {PROBE_POLICIES}")
    page = _template("captive.html")
    owner = getattr(on_accept, "__self__", None)
    profile = profile or getattr(owner, "profile", None) or load_profile(ModemSection().profile)
    given_allowance = allowance
    owner_allowance = getattr(owner, "allowance", None)
    unlimited = _unlimited(desk)

    def allowance_of(member: int) -> AllowanceState:
        # Looked up per request: the daemon may install ``desk.allowance`` after building the app.
        source = given_allowance or desk.allowance or owner_allowance or unlimited
        return source(member)

    presets = preset_table()
    accounts = accounts or Accounts(desk.store, desk.clock)
    limits = limits or CaptiveLimits()
    post_limit = RateLimiter(limits.post_burst, limits.post_per_s, limits.tracked_clients)
    login_limit = RateLimiter(limits.login_burst, limits.login_per_s, limits.tracked_clients)
    api_limit = RateLimiter(limits.api_burst, limits.api_per_s, limits.tracked_clients)
    released: OrderedDict[str, float] = OrderedDict()
    sos_secret = secrets.token_bytes(32)  # RAM only: a cancel code is good for this run

    def now() -> float:
        return desk.clock.now()

    def base_url(request: Request) -> str:
        if portal_url:
            return portal_url.rstrip("/") + "/"
        server = request.scope.get("server")
        if server:
            host, port = server[0], server[1]
            return f"http://{host}/" if port == 80 else f"http://{host}:{port}/"
        return str(request.base_url)

    def language(request: Request, form: dict[str, str] | None = None, preferred: str | None = None) -> str:
        return pick_language(
            (form or {}).get("l"),
            request.query_params.get("l"),
            request.cookies.get(LANG_COOKIE),
            preferred,
            accept_language=request.headers.get("accept-language", ""),
        )

    def render(request: Request, lang: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        nonce = secrets.token_urlsafe(12)
        t = catalogue(lang)
        session: Session | None = ctx.get("session")
        query = {"l": lang}
        if session is not None:
            query["s"] = session.token
        html = page.render(
            vessel=vessel_name,
            t=t,
            lang=lang,
            languages=[(code, catalogue(code).name) for code in LANGUAGES],
            token=session.token if session else "",
            home_url="/?" + urllib.parse.urlencode(query),
            nonce=nonce,
            presets=list(enumerate(presets.phrases(lang)))[:MAX_PRESET_BUTTONS],
            max_text=MAX_TEXT_CHARS,
            max_contact=MAX_CONTACT_CHARS,
            **ctx,
        )
        response = HTMLResponse(html, status_code=status)
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="strict")
        if session is not None:
            response.set_cookie(COOKIE, session.token, httponly=True, samesite="strict", max_age=7 * 86400)
        return _security_headers(response, nonce)

    def error_text(lang: str, exc: CrewInputError) -> str:
        t = catalogue(lang)
        return t("err_field", field=t(f"field_{exc.field}"), problem=t(exc.problem, **exc.values))

    async def session_of(request: Request, form: dict[str, str] | None = None) -> Session | None:
        token = (form or {}).get("s") or request.query_params.get("s") or request.cookies.get(COOKIE, "")
        if not token:
            return None
        return await run_in_threadpool(accounts.session, token)

    def redirect_home(session: Session | None, lang: str, **extra: str) -> Response:
        query = {"l": lang, **extra}
        if session is not None:
            query["s"] = session.token
        response = RedirectResponse("/?" + urllib.parse.urlencode(query), status_code=303)
        if session is not None:
            response.set_cookie(COOKIE, session.token, httponly=True, samesite="strict", max_age=7 * 86400)
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="strict")
        return _security_headers(response)

    async def home_view(
        request: Request, session: Session, lang: str, status: int = 200, **ctx: Any
    ) -> Response:
        profile_ = await run_in_threadpool(accounts.profile, session)
        if not profile_.consented:
            return render(request, lang, status, view="consent", session=session, **ctx)

        def gather() -> dict[str, Any]:
            messages = desk.messages(session.member)
            positions = {m.rid: desk.queue_position(m.rid) for m in messages if m.state == "queued"}
            expected_send = getattr(desk, "expected_send", None)
            expected = {
                m.rid: _hhmm(expected_send(m.created)) if expected_send is not None else ""
                for m in messages
                if m.state == "queued"
            }
            return {
                "messages": messages,
                "positions": positions,
                "expected": expected,
                "inbox": accounts.inbox(session),
                "allowance": allowance_of(session.member),
            }

        data = await run_in_threadpool(gather)
        return render(
            request, lang, status, view="home", session=session, handle=profile_.handle, **data, **ctx
        )

    # --- pages -------------------------------------------------------------------------------------

    async def home(request: Request) -> Response:
        session = await session_of(request)
        if session is None:
            return render(
                request, language(request), view="login", cleared=request.query_params.get("c") == "1"
            )
        profile_ = await run_in_threadpool(accounts.profile, session)
        lang = language(request, preferred=profile_.lang)
        if request.query_params.get("l") in LANGUAGES and request.query_params.get("l") != profile_.lang:
            await run_in_threadpool(accounts.set_language, session, lang)
        sent = request.query_params.get("sent", "")
        return await home_view(request, session, lang, sent=sent if sent.isdigit() else "")

    def guarded(
        handler: Callable[[Request, dict[str, str], str], Awaitable[Response]], bucket: RateLimiter
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            lang = language(request)
            if not bucket.allow(client_key(request), now()):
                log.warning("rate limit: %s %s", request.url.path, client_key(request))
                exc = CrewInputError("request", "too many requests", "problem_rate")
                return render(request, lang, 429, view="login", error=error_text(lang, exc))
            try:
                form = await read_form(request)
            except CrewInputError as exc:
                log.warning("refused form on %s: %s", request.url.path, exc)
                return render(
                    request,
                    lang,
                    413 if exc.problem == "problem_too_large" else 400,
                    view="login",
                    error=error_text(lang, exc),
                )
            return await handler(request, form, language(request, form))

        return endpoint

    async def login(request: Request, form: dict[str, str], lang: str) -> Response:
        handle, pin = form.get("handle", ""), form.get("pin", "")
        if not login_limit.allow(client_key(request), now()):
            log.warning("login rate limit: %s", client_key(request))
            err = CrewInputError("pin", "too many tries from this phone", "problem_rate")
            return render(request, lang, 429, view="login", error=error_text(lang, err))
        try:
            handle = desk.check_handle(handle)
            desk.check_pin(pin)
            session = await run_in_threadpool(accounts.login, handle, pin)
        except LoginLocked as exc:
            err = CrewInputError("pin", "locked", "problem_locked", seconds=exc.seconds)
            return render(request, lang, 429, view="login", error=error_text(lang, err), handle=handle)
        except CrewInputError as exc:
            return render(request, lang, 400, view="login", error=error_text(lang, exc), handle=handle)
        if session is None:
            err = CrewInputError("pin", "wrong", "problem_wrong")
            return render(request, lang, 403, view="login", error=error_text(lang, err), handle=handle)
        released[client_key(request)] = now()
        while len(released) > limits.tracked_clients:
            released.popitem(last=False)
        if form.get("l") in LANGUAGES:
            await run_in_threadpool(accounts.set_language, session, lang)
        return redirect_home(session, lang)

    async def consent(request: Request, form: dict[str, str], lang: str) -> Response:
        session = await session_of(request, form)
        if session is None:
            return redirect_home(None, lang)
        if form.get("agree") == "1":
            await run_in_threadpool(accounts.consent, session)
        return redirect_home(session, lang)

    async def logout(request: Request, form: dict[str, str], lang: str) -> Response:
        session = await session_of(request, form)
        if session is not None:
            await run_in_threadpool(accounts.close, session)
        response = redirect_home(None, lang)
        response.delete_cookie(COOKIE)
        return response

    async def send(request: Request, form: dict[str, str], lang: str) -> Response:
        session = await session_of(request, form)
        if session is None:
            err = CrewInputError("session", "ended", "problem_expired")
            return render(request, lang, 401, view="login", error=error_text(lang, err))
        profile_ = await run_in_threadpool(accounts.profile, session)
        if not profile_.consented:
            err = CrewInputError("request", "consent first", "problem_consent")
            return render(request, lang, 403, view="consent", session=session, error=error_text(lang, err))
        preset = form.get("preset", "")
        phrases = presets.phrases(lang)
        if preset.isdigit() and int(preset) < min(len(phrases), MAX_PRESET_BUTTONS):
            text = phrases[int(preset)]  # exactly a table phrase: the codec sends it as an index
        else:
            text = form.get("text", "")
        to = form.get("contact", "") if form.get("to") == "family" else form.get("to", "")
        try:
            rid = await run_in_threadpool(desk.send, session.member, to, text)
        except CrewInputError as exc:
            return await home_view(request, session, lang, 400, error=error_text(lang, exc), draft=text)
        on_accept()
        log.info("crew message %d accepted", rid)
        return redirect_home(session, lang, sent=str(rid))

    async def clear(request: Request, form: dict[str, str], lang: str) -> Response:
        """Looks like a quick exit; also sends the covert personal-safety alert to the hotline."""
        session = await session_of(request, form)
        if session is not None:
            profile_ = await run_in_threadpool(accounts.profile, session)
            if profile_.consented:
                await run_in_threadpool(desk.personal_alert, session.member)
                on_accept()
            await run_in_threadpool(accounts.close, session)
        response = RedirectResponse("/?" + urllib.parse.urlencode({"l": lang, "c": "1"}), status_code=303)
        response.delete_cookie(COOKIE)
        return _security_headers(response)

    def sos_code(rid: int) -> str:
        return hmac.new(sos_secret, str(rid).encode(), hashlib.sha256).hexdigest()[:20]

    async def sos(request: Request, form: dict[str, str], lang: str) -> Response:
        session = await session_of(request, form)
        return render(request, lang, view="sos_confirm", session=session)

    async def sos_page(request: Request) -> Response:
        session = await session_of(request)
        return render(request, language(request), view="sos_confirm", session=session)

    async def sos_confirm(request: Request, form: dict[str, str], lang: str) -> Response:
        session = await session_of(request, form)
        note = form.get("note", "")[:200]
        rid = await run_in_threadpool(desk.sos, note)
        on_accept()
        log.warning("vessel distress alert %d queued from the captive page", rid)
        return render(request, lang, view="sos_sent", session=session, sos_rid=rid, sos_code=sos_code(rid))

    async def sos_cancel(request: Request, form: dict[str, str], lang: str) -> Response:
        session = await session_of(request, form)
        rid_text, code = form.get("rid", ""), form.get("code", "")
        if (
            not rid_text.isdigit()
            or len(rid_text) > 12
            or not hmac.compare_digest(code, sos_code(int(rid_text)))
        ):
            err = CrewInputError("request", "bad cancel code", "problem_expired")
            return render(
                request, lang, 400, view="sos_confirm", session=session, error=error_text(lang, err)
            )
        outcome = await run_in_threadpool(desk.cancel_sos, int(rid_text))
        on_accept()
        log.warning("vessel distress alert %s cancelled (%s)", rid_text, outcome)
        return render(request, lang, view="sos_cancelled", session=session, outcome=outcome)

    # --- JSON ---------------------------------------------------------------------------------------

    async def estimate(request: Request) -> Response:
        if not api_limit.allow(client_key(request), now()):
            return JSONResponse({"error": "too many requests"}, status_code=429)
        text = request.query_params.get("text", "")[: MAX_TEXT_CHARS * 2]
        to = request.query_params.get("to", "")[:MAX_CONTACT_CHARS]
        lang = language(request)
        cost = estimate_cost(text, None, profile, to=to.strip() or "hotline")
        body = {
            "bytes": cost["frame_bytes"],
            "record_bytes": cost["record_bytes"],
            "frames": cost["frames"],
            "units": cost["credits"],
            "unit_name": profile.billing.unit_name,
            "label": catalogue(lang)("estimate_value", bytes=cost["frame_bytes"], units=cost["credits"]),
        }
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    def is_captive(request: Request) -> bool:
        if probe_policy == "online":
            return False
        if probe_policy == "release":
            return client_key(request) not in released
        return True

    async def captive_api(request: Request) -> Response:
        """RFC 8908 Captive Portal API."""
        body: dict[str, Any] = {"captive": is_captive(request), "user-portal-url": base_url(request)}
        body["venue-info-url"] = base_url(request)
        body["can-extend-session"] = False
        return Response(
            json.dumps(body),
            media_type=CAPTIVE_JSON,
            headers={"Cache-Control": "private, no-store"},
        )

    # --- OS captivity probes ----------------------------------------------------------------------

    def to_portal(request: Request) -> Response:
        response = RedirectResponse(base_url(request), status_code=302)
        response.headers["Cache-Control"] = "no-store"
        return response

    async def probe_android(request: Request) -> Response:
        if is_captive(request):
            return to_portal(request)
        return Response(status_code=204, headers={"Cache-Control": "no-store"})

    async def probe_apple(request: Request) -> Response:
        if is_captive(request):
            return to_portal(request)
        return HTMLResponse(
            "<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>",
            headers={"Cache-Control": "no-store"},
        )

    async def probe_windows(request: Request) -> Response:
        if is_captive(request):
            return to_portal(request)
        text = "Microsoft NCSI" if request.url.path.endswith("ncsi.txt") else "Microsoft Connect Test"
        return PlainTextResponse(text, headers={"Cache-Control": "no-store"})

    async def probe_text(request: Request) -> Response:
        if is_captive(request):
            return to_portal(request)
        return PlainTextResponse("success\n" if request.url.path.endswith("success.txt") else "OK\n")

    async def health(_request: Request) -> Response:
        return PlainTextResponse("ok")

    async def elsewhere(request: Request) -> Response:
        """Any other address (the DNS answers every name with the gateway): send people to the page."""
        return to_portal(request)

    routes: list[BaseRoute] = [
        Route("/", home, methods=["GET"]),
        Route("/login", guarded(login, post_limit), methods=["POST"]),
        Route("/consent", guarded(consent, post_limit), methods=["POST"]),
        Route("/logout", guarded(logout, post_limit), methods=["POST"]),
        Route("/send", guarded(send, post_limit), methods=["POST"]),
        Route("/clear", guarded(clear, post_limit), methods=["POST"]),
        Route("/sos", sos_page, methods=["GET"]),
        Route("/sos", guarded(sos, post_limit), methods=["POST"]),
        Route("/sos/confirm", guarded(sos_confirm, post_limit), methods=["POST"]),
        Route("/sos/cancel", guarded(sos_cancel, post_limit), methods=["POST"]),
        Route("/api/estimate", estimate, methods=["GET"]),
        Route("/api/captive", captive_api, methods=["GET"]),
        Route("/generate_204", probe_android, methods=["GET", "HEAD"]),
        Route("/gen_204", probe_android, methods=["GET", "HEAD"]),
        Route("/hotspot-detect.html", probe_apple, methods=["GET", "HEAD"]),
        Route("/library/test/success.html", probe_apple, methods=["GET", "HEAD"]),
        Route("/connecttest.txt", probe_windows, methods=["GET", "HEAD"]),
        Route("/ncsi.txt", probe_windows, methods=["GET", "HEAD"]),
        Route("/redirect", elsewhere, methods=["GET", "HEAD"]),
        Route("/success.txt", probe_text, methods=["GET", "HEAD"]),
        Route("/canonical.html", probe_text, methods=["GET", "HEAD"]),
        Route("/static/hotspot.txt", probe_text, methods=["GET", "HEAD"]),
        Route("/health", health, methods=["GET"]),
        *(extra_routes or []),
        *(_catch_routes(CatchLog(desk.store, desk.clock, on_accept)) if catch_log else []),
        Route("/{path:path}", elsewhere, methods=["GET", "HEAD"]),
    ]
    app = Starlette(routes=routes)
    app.state.accounts = accounts
    app.state.desk = desk
    return app


def _hhmm(at: float | None) -> str | None:
    """``HH:MM`` (UTC) of an expected send time; None when the budget holds the message back."""
    if at is None:
        return None
    return datetime.fromtimestamp(at, UTC).strftime("%H:%M")
