"""How phones find the page: the operating systems' captivity probes (Android, Apple, Windows,
Firefox and others), the RFC 8908 Captive Portal API, the catch-all redirect for any other address
(the DNS answers every name with the gateway) and the health check.

``app.state.probe_policy``: "portal" answers every probe as captive (the sign-in sheet opens on each
join), "release" answers as captive until that address has signed in, "online" never claims
captivity. ``app.state.portal_url``, when set, is the page's address in answers.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from common import favicon
from common.web import client_address

CAPTIVE_JSON = "application/captive+json"
PROBE_POLICIES = ("portal", "release", "online")


def base_url(request: Request) -> str:
    """The page's address as phones should open it."""
    portal_url: str = request.app.state.portal_url
    if portal_url:
        return portal_url.rstrip("/") + "/"
    server = request.scope.get("server")
    if server:
        host, port = server[0], server[1]
        return f"http://{host}/" if port == 80 else f"http://{host}:{port}/"
    return str(request.base_url)


def is_captive(request: Request) -> bool:
    policy: str = request.app.state.probe_policy
    if policy == "online":
        return False
    if policy == "release":
        released: OrderedDict[str, float] = request.app.state.released
        return client_address(request) not in released
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


routes = [
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
    favicon.route,
]

catch_all = Route("/{path:path}", elsewhere, methods=["GET", "HEAD"])
