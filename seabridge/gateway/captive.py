"""The crew's captive page: claim a handle, write to the hotline or family, read replies.

Plain HTML forms (no JavaScript needed), every value escaped by Jinja2's autoescape, request bodies
bounded. Store calls run in a worker thread so PIN hashing and synchronous disk writes never stall
the daemon's event loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib import resources
from typing import Any

from jinja2 import Environment, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from .crew import CrewDesk, CrewInputError

log = logging.getLogger("seabridge.gateway.captive")

MAX_FORM_BYTES = 8 * 1024
COOKIE = "sb_session"

_env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))


def _template(name: str) -> Any:
    text = (resources.files("seabridge.gateway") / "templates" / name).read_text(encoding="utf-8")
    return _env.from_string(text)


async def _form(request: Request) -> dict[str, str]:
    length = request.headers.get("content-length")
    if length is None or not length.isdigit() or int(length) > MAX_FORM_BYTES:
        raise CrewInputError("request", f"form must declare a length of at most {MAX_FORM_BYTES} bytes")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise CrewInputError("request", "form too large")
    form = await request.form(max_files=0, max_fields=20, max_part_size=MAX_FORM_BYTES)
    return {k: v for k, v in form.items() if isinstance(v, str)}


def create_app(desk: CrewDesk, vessel_name: str, on_accept: Callable[[], None] = lambda: None) -> Starlette:
    page = _template("captive.html")

    def render(status: int = 200, **ctx: Any) -> HTMLResponse:
        return HTMLResponse(page.render(vessel=vessel_name, **ctx), status_code=status)

    async def member_of(request: Request) -> int | None:
        token = request.cookies.get(COOKIE, "")
        if not token or len(token) > 64:
            return None
        return await run_in_threadpool(desk.store.session_member, token)

    async def home(request: Request) -> Response:
        member = await member_of(request)
        if member is None:
            return render(view="login")
        handle = await run_in_threadpool(desk.store.member_handle, member)
        messages = await run_in_threadpool(desk.messages, member)
        inbox = await run_in_threadpool(desk.inbox, member)
        notice = request.query_params.get("sent")
        return render(view="home", handle=handle, messages=messages, inbox=inbox, sent=notice)

    async def login(request: Request) -> Response:
        try:
            form = await _form(request)
            member = await run_in_threadpool(desk.login, form.get("handle", ""), form.get("pin", ""))
        except CrewInputError as exc:
            return render(400, view="login", error=str(exc))
        if member is None:
            return render(403, view="login", error="handle: that handle is taken or the PIN is wrong")
        token = await run_in_threadpool(desk.store.open_session, member, desk.clock.now())
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", max_age=30 * 86400)
        return response

    async def logout(request: Request) -> Response:
        token = request.cookies.get(COOKIE, "")
        if token:
            await run_in_threadpool(desk.store.close_session, token)
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    async def send(request: Request) -> Response:
        member = await member_of(request)
        if member is None:
            return RedirectResponse("/", status_code=303)
        try:
            form = await _form(request)
            rid = await run_in_threadpool(desk.send, member, form.get("to", ""), form.get("text", ""))
        except CrewInputError as exc:
            messages = await run_in_threadpool(desk.messages, member)
            inbox = await run_in_threadpool(desk.inbox, member)
            handle = await run_in_threadpool(desk.store.member_handle, member)
            return render(400, view="home", handle=handle, messages=messages, inbox=inbox, error=str(exc))
        on_accept()
        log.info("crew message %d accepted", rid)
        return RedirectResponse(f"/?sent={rid}", status_code=303)

    async def health(_request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[
            Route("/", home, methods=["GET"]),
            Route("/login", login, methods=["POST"]),
            Route("/logout", logout, methods=["POST"]),
            Route("/send", send, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
        ]
    )
