"""Vessel distress (SOS) from the captive page: a confirmation step, the alert itself, and cancelling
it with the code shown once (an HMAC of the record id under a key that lives in RAM for this run)."""

from __future__ import annotations

import hashlib
import hmac
import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..crew import CrewInputError
from .pages import error_text, guarded, language, render, session_of
from .state import desk_of, on_accept_of

log = logging.getLogger("gateway.captive")


def sos_code(request: Request, rid: int) -> str:
    """The cancel code of distress alert ``rid`` (needs ``app.state.sos_secret``)."""
    secret: bytes = request.app.state.sos_secret
    return hmac.new(secret, str(rid).encode(), hashlib.sha256).hexdigest()[:20]


async def sos(request: Request, form: dict[str, str], lang: str) -> Response:
    session = await session_of(request, form)
    return render(request, lang, view="sos_confirm", session=session)


async def sos_page(request: Request) -> Response:
    session = await session_of(request)
    return render(request, language(request), view="sos_confirm", session=session)


async def sos_confirm(request: Request, form: dict[str, str], lang: str) -> Response:
    session = await session_of(request, form)
    note = form.get("note", "")[:200]
    rid = await run_in_threadpool(desk_of(request).sos, note)
    on_accept_of(request)()
    log.warning("vessel distress alert %d queued from the captive page", rid)
    code = sos_code(request, rid)
    return render(request, lang, view="sos_sent", session=session, sos_rid=rid, sos_code=code)


async def sos_cancel(request: Request, form: dict[str, str], lang: str) -> Response:
    session = await session_of(request, form)
    rid_text, code = form.get("rid", ""), form.get("code", "")
    if (
        not rid_text.isdigit()
        or len(rid_text) > 12
        or not hmac.compare_digest(code, sos_code(request, int(rid_text)))
    ):
        err = CrewInputError("request", "bad cancel code", "problem_expired")
        return render(request, lang, 400, view="sos_confirm", session=session, error=error_text(lang, err))
    outcome = await run_in_threadpool(desk_of(request).cancel_sos, int(rid_text))
    on_accept_of(request)()
    log.warning("vessel distress alert %s cancelled (%s)", rid_text, outcome)
    return render(request, lang, view="sos_cancelled", session=session, outcome=outcome)


routes = [
    Route("/sos", sos_page, methods=["GET"]),
    Route("/sos", guarded(sos), methods=["POST"]),
    Route("/sos/confirm", guarded(sos_confirm), methods=["POST"]),
    Route("/sos/cancel", guarded(sos_cancel), methods=["POST"]),
]
