"""Composing a message: sending it (a preset button sends exactly its table phrase, which the codec
carries as an index) and the live size and cost estimate the form shows as the person types."""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from common.estimate import estimate as estimate_cost
from common.web import client_address, decimal

from ..crew import MAX_CONTACT_CHARS, MAX_TEXT_CHARS, CrewInputError
from .home import home_view
from .pages import (
    MAX_PRESET_BUTTONS,
    error_text,
    guarded,
    language,
    redirect_home,
    render,
    session_of,
    size_label,
)
from .state import accounts_of, desk_of, limiters_of, now_of, on_accept_of, presets_of, profile_of

log = logging.getLogger("gateway.captive")


async def send(request: Request, form: dict[str, str], lang: str) -> Response:
    session = await session_of(request, form)
    if session is None:
        err = CrewInputError("session", "ended", "problem_expired")
        return render(request, lang, 401, view="login", error=error_text(lang, err))
    profile = await run_in_threadpool(accounts_of(request).profile, session)
    if not profile.consented:
        err = CrewInputError("request", "consent first", "problem_consent")
        return render(request, lang, 403, view="consent", session=session, error=error_text(lang, err))
    preset = form.get("preset", "")
    phrases = presets_of(request).phrases(lang)
    index = decimal(preset, 3)
    if index is not None and index < min(len(phrases), MAX_PRESET_BUTTONS):
        text = phrases[index]  # exactly a table phrase: the codec sends it as an index
    else:
        text = form.get("text", "")
    to = form.get("contact", "") if form.get("to") == "family" else form.get("to", "")
    try:
        rid = await run_in_threadpool(desk_of(request).send, session.member, to, text)
    except CrewInputError as exc:
        return await home_view(request, session, lang, 400, error=error_text(lang, exc), draft=text)
    on_accept_of(request)()
    log.info("crew message %d accepted", rid)
    return redirect_home(request, session, lang, sent=str(rid))


async def estimate(request: Request) -> Response:
    """The live figure of the compose form: the message as the signed-in member would send it (their
    member number and nickname when the page's session is known), in the one wording."""
    if not limiters_of(request).api.allow(client_address(request), now_of(request)):
        return JSONResponse({"error": "too many requests"}, status_code=429)
    text = request.query_params.get("text", "")[: MAX_TEXT_CHARS * 2]
    to = request.query_params.get("to", "")[:MAX_CONTACT_CHARS]
    lang = language(request)
    profile = profile_of(request)
    writer: dict[str, object] = {}
    session = await session_of(request)
    if session is not None:
        member = await run_in_threadpool(accounts_of(request).profile, session)
        writer = {"member": session.member, "handle": member.handle}
    version = desk_of(request).wire_version
    cost = estimate_cost(text, None, profile, to=to.strip() or "hotline", version=version, **writer)  # type: ignore[arg-type]
    body = {
        "bytes": cost["frame_bytes"],
        "record_bytes": cost["record_bytes"],
        "frames": cost["frames"],
        "units": cost["credits"],
        "unit_name": profile.billing.unit_name,
        "label": size_label(lang, cost["frame_bytes"], cost["credits"], profile.billing.unit_name),
    }
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


routes = [
    Route("/send", guarded(send), methods=["POST"]),
    Route("/api/estimate", estimate, methods=["GET"]),
]
