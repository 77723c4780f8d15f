"""Vessel distress (SOS) from the captive page: a confirmation step, the alert itself, the alert in
the member's own list with its state, and marking it a false alarm with the code the page shows (an
HMAC of the record id under a key that lives in RAM for this run).

Raising an SOS needs no account. Every confirmation names a device: a keyed hash (same RAM key) of the
signed-in member, or of the address for an anonymous phone, so the store learns neither; confirmations
from the same device while the alert is open count once (``gateway.distress``). Anonymous
confirmations are rate-limited per address and in total; a refused one still leaves the open alert
raised.
"""

from __future__ import annotations

import hashlib
import hmac
import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from common.web import client_address, decimal

from ..accounts import Session
from ..crew import CrewInputError
from ..distress import SosStatus
from .pages import error_text, guarded, language, render, session_of
from .state import desk_of, limiters_of, now_of, on_accept_of

log = logging.getLogger("gateway.captive")

ALL_ANONYMOUS = "*"  # the key of the anonymous total in the SOS limiter


def _keyed(request: Request, text: str) -> str:
    secret: bytes = request.app.state.sos_secret
    return hmac.new(secret, text.encode(), hashlib.sha256).hexdigest()[:20]


def sos_code(request: Request, rid: int) -> str:
    """The false-alarm code of distress alert ``rid`` (needs ``app.state.sos_secret``)."""
    return _keyed(request, str(rid))


def device_of(request: Request, session: Session | None) -> str:
    """The device a confirmation counts for: the signed-in member, else the phone's address."""
    return _keyed(request, f"member:{session.member}" if session else f"addr:{client_address(request)}")


def sos_items(request: Request, session: Session) -> list[tuple[SosStatus, str]]:
    """The alerts this member confirmed, newest first, with their false-alarm codes (worker thread)."""
    found = desk_of(request).distress.confirmed_by(device_of(request, session))
    return [(status, sos_code(request, status.rid)) for status in found]


async def sos(request: Request, form: dict[str, str], lang: str) -> Response:
    session = await session_of(request, form)
    return render(request, lang, view="sos_confirm", session=session)


async def sos_page(request: Request) -> Response:
    session = await session_of(request)
    return render(request, language(request), view="sos_confirm", session=session)


def _anonymous_allowed(request: Request) -> bool:
    limiters, now = limiters_of(request), now_of(request)
    return limiters.sos.allow(client_address(request), now) and limiters.sos_total.allow(ALL_ANONYMOUS, now)


async def sos_confirm(request: Request, form: dict[str, str], lang: str) -> Response:
    session = await session_of(request, form)
    if session is None and not _anonymous_allowed(request):
        log.warning("anonymous SOS refused by the rate limit: %s", client_address(request))
        err = CrewInputError("request", "too many distress confirmations", "problem_sos_rate")
        return render(request, lang, 429, view="sos_confirm", session=session, error=error_text(lang, err))
    note = form.get("note", "")
    raised = await run_in_threadpool(desk_of(request).distress.raise_alert, device_of(request, session), note)
    on_accept_of(request)()
    log.warning(
        "vessel distress alert %d %s from the captive page (%d devices)",
        raised.rid,
        "confirmed" if raised.joined else "queued",
        raised.devices,
    )
    return render(
        request, lang, view="sos_sent", session=session, sos=raised, sos_code=sos_code(request, raised.rid)
    )


async def sos_cancel(request: Request, form: dict[str, str], lang: str) -> Response:
    """Mark an alert a false alarm (the code proves the page showed it to this phone)."""
    session = await session_of(request, form)
    rid, code = decimal(form.get("rid", "")), form.get("code", "")
    if rid is None or not hmac.compare_digest(code.encode(), sos_code(request, rid).encode()):
        err = CrewInputError("request", "bad cancel code", "problem_expired")
        return render(request, lang, 400, view="sos_confirm", session=session, error=error_text(lang, err))
    outcome = await run_in_threadpool(desk_of(request).distress.false_alarm, rid)
    on_accept_of(request)()
    log.warning("vessel distress alert %d marked a false alarm (%s)", rid, outcome)
    return render(request, lang, view="sos_cancelled", session=session, outcome=outcome)


routes = [
    Route("/sos", sos_page, methods=["GET"]),
    Route("/sos", guarded(sos), methods=["POST"]),
    Route("/sos/confirm", guarded(sos_confirm), methods=["POST"]),
    Route("/sos/cancel", guarded(sos_cancel), methods=["POST"]),
]
