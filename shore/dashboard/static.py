"""The dashboard's own assets (script, style sheet, coastline), served from ``shore/static`` by name
from a fixed list, the icon and the health check. Nothing is loaded from the internet."""

from __future__ import annotations

from importlib import resources

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from common import favicon

STATIC_FILES = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
    "coast.geojson": "application/geo+json",
}


async def static(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in STATIC_FILES:
        return PlainTextResponse("not found", 404)
    body = (resources.files("shore") / "static" / name).read_bytes()
    return Response(body, media_type=STATIC_FILES[name], headers={"Cache-Control": "max-age=300"})


async def health(_request: Request) -> Response:
    return PlainTextResponse("ok")


routes = [
    Route("/static/{name}", static, methods=["GET"]),
    Route("/health", health, methods=["GET"]),
    favicon.route,
]
