"""The project's icon (``favicon.ico``, shipped as package data) and the route that serves it, for the
web sites of both ends: the vessel's captive page and catch log, and the shore's dashboard.

It owns the icon and its one route; it must not read anything but its own package data.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

PATH = "/favicon.ico"


@cache
def icon() -> bytes:
    return (resources.files("common") / "favicon.ico").read_bytes()


async def favicon(_request: Request) -> Response:
    return Response(icon(), media_type="image/vnd.microsoft.icon", headers={"Cache-Control": "max-age=86400"})


route = Route(PATH, favicon, methods=["GET", "HEAD"])
