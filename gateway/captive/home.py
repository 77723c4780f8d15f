"""The crew member's home screen: the consent notice until agreed, then the compose form, their
messages with queue position and expected send time, the inbox of replies, and their allowance.
Read-only except for remembering a language picked from the URL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from common.estimate import estimate_stored
from common.web import decimal

from ..accounts import Session
from ..i18n import LANGUAGES
from .pages import language, render, session_of, size_label
from .sos import sos_items
from .state import accounts_of, allowance_of, desk_of, profile_of


def _hhmm(at: float | None) -> str | None:
    """``HH:MM`` (UTC) of an expected send time; None when the budget holds the message back."""
    if at is None:
        return None
    return datetime.fromtimestamp(at, UTC).strftime("%H:%M")


def _when(at: float) -> str:
    """``7 Dec 14:05`` (UTC) of a reply."""
    return datetime.fromtimestamp(at, UTC).strftime("%d %b %H:%M").lstrip("0")


def _gather(request: Request, session: Session, lang: str) -> dict[str, Any]:
    """The member's messages (with the size of each from the one estimator), queue positions,
    expected send times, the inbox with the time of each reply, and the allowance."""
    desk = desk_of(request)
    profile = profile_of(request)
    unit = profile.billing.unit_name
    messages = desk.messages(session.member)
    sizes = {}
    for m in messages:
        cost = estimate_stored(m.size, profile, version=desk.wire_version, member=session.member)
        sizes[m.rid] = size_label(lang, cost["frame_bytes"], cost["credits"], unit)
    positions = {m.rid: desk.queue_position(m.rid) for m in messages if m.state == "queued"}
    expected_send = getattr(desk, "expected_send", None)
    expected = {
        m.rid: _hhmm(expected_send(m.created)) if expected_send is not None else ""
        for m in messages
        if m.state == "queued"
    }
    return {
        "messages": messages,
        "sizes": sizes,
        "positions": positions,
        "expected": expected,
        "inbox": [(entry, _when(entry.created)) for entry in accounts_of(request).inbox(session)],
        "allowance": allowance_of(request)(session.member),
        "sos_alerts": sos_items(request, session),
    }


async def home_view(request: Request, session: Session, lang: str, status: int = 200, **ctx: Any) -> Response:
    """The signed-in home screen (or the consent notice), with ``ctx`` (an error, a draft) on top."""
    profile = await run_in_threadpool(accounts_of(request).profile, session)
    if not profile.consented:
        return render(request, lang, status, view="consent", session=session, **ctx)
    data = await run_in_threadpool(_gather, request, session, lang)
    return render(request, lang, status, view="home", session=session, handle=profile.handle, **data, **ctx)


async def home(request: Request) -> Response:
    session = await session_of(request)
    if session is None:
        return render(request, language(request), view="login", cleared=request.query_params.get("c") == "1")
    accounts = accounts_of(request)
    profile = await run_in_threadpool(accounts.profile, session)
    lang = language(request, preferred=profile.lang)
    if request.query_params.get("l") in LANGUAGES and request.query_params.get("l") != profile.lang:
        await run_in_threadpool(accounts.set_language, session, lang)
    sent = request.query_params.get("sent", "")
    return await home_view(request, session, lang, sent=sent if decimal(sent) is not None else "")


routes = [Route("/", home, methods=["GET"])]
