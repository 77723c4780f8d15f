"""A minimal dashboard and hotline desk: vessels, the latest events, live updates, a reply form.

Served by the relay process. Events come from the archive's event outbox (what the relay publishes on
MQTT), so the page shows exactly what shore systems receive. Replies typed here are published on the
vessel's ``down/crew`` topic like any other shore system's, and travel the same path. Protected by HTTP
basic credentials when a password is configured; every value is escaped.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import secrets
from collections.abc import AsyncIterator, Callable
from importlib import resources
from typing import Any

from jinja2 import Environment, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from .archive import Archive
from .relay import slug, vessel_topic

MAX_FORM_BYTES = 8 * 1024
_env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))


def _events_after(archive: Archive, after: int, limit: int = 200) -> list[dict[str, Any]]:
    rows = archive.query(
        "SELECT id, topic, payload, created FROM events WHERE id > ? AND topic NOT LIKE '%/state/%' "
        "ORDER BY id DESC LIMIT ?",
        (after, limit),
    )
    out = []
    for event_id, topic, payload, created in reversed(rows):
        try:
            data = json.loads(bytes(payload))
        except (ValueError, UnicodeDecodeError):
            data = {}
        out.append(
            {
                "id": event_id,
                "topic": topic,
                "kind": topic.rsplit("/", 1)[-1],
                "created": created,
                "data": data,
            }
        )
    return out


def create_app(
    archive: Archive,
    publish: Callable[[str, bytes], None],
    username: str = "hotline",
    password: str = "",
) -> Starlette:
    page = _env.from_string(
        (resources.files("seabridge.shore") / "templates" / "dashboard.html").read_text(encoding="utf-8")
    )

    def authorised(request: Request) -> bool:
        if not password:
            return True
        header = request.headers.get("authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, given = base64.b64decode(header[6:], validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return hmac.compare_digest(user, username) and hmac.compare_digest(given, password)

    def deny() -> Response:
        return PlainTextResponse(
            "login required", 401, headers={"WWW-Authenticate": 'Basic realm="seabridge"'}
        )

    async def home(request: Request) -> Response:
        if not authorised(request):
            return deny()
        vessels = await run_in_threadpool(archive.vessels)
        events = await run_in_threadpool(_events_after, archive, 0)
        last = events[-1]["id"] if events else 0
        return HTMLResponse(
            page.render(
                vessels=vessels,
                events=list(reversed(events)),
                last=last,
                error=request.query_params.get("error"),
                sent=request.query_params.get("sent"),
            )
        )

    async def stream(request: Request) -> Response:
        if not authorised(request):
            return deny()
        try:
            after = int(request.query_params.get("after", "0"))
        except ValueError:
            after = 0

        async def gen() -> AsyncIterator[bytes]:
            nonlocal after
            idle = 0
            while not await request.is_disconnected():
                events = await run_in_threadpool(_events_after, archive, after)
                for event in events:
                    after = event["id"]
                    yield f"id: {after}\ndata: {json.dumps(event, ensure_ascii=False)}\n\n".encode()
                idle = 0 if events else idle + 1
                if idle and idle % 15 == 0:
                    yield b": ping\n\n"
                await asyncio.sleep(1.0)

        return StreamingResponse(gen(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    async def reply(request: Request) -> Response:
        if not authorised(request):
            return deny()
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return PlainTextResponse("form too large", 413)
        form = await request.form(max_files=0, max_fields=10)
        vessel_name = str(form.get("vessel", ""))
        text = str(form.get("text", "")).strip()
        try:
            member = int(str(form.get("member", "")))
        except ValueError:
            return RedirectResponse("/?error=member+must+be+a+number", 303)
        vessel = await run_in_threadpool(archive.vessel_by_name, vessel_name)
        if vessel is None or not text or len(text) > 1000:
            return RedirectResponse("/?error=unknown+vessel+or+empty+text", 303)
        msg_id = f"desk-{secrets.token_hex(6)}"
        payload = json.dumps(
            {"msg_id": msg_id, "member": member, "text": text, "sender": "hotline"}, ensure_ascii=False
        ).encode()
        publish(vessel_topic(vessel, "down", "crew"), payload)
        return RedirectResponse(f"/?sent={msg_id}", 303)

    async def health(_request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[
            Route("/", home, methods=["GET"]),
            Route("/events", stream, methods=["GET"]),
            Route("/reply", reply, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
        ]
    )


__all__ = ["create_app", "slug"]
