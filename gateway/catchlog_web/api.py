"""The catch log's JSON API for electronic-logbook tablets, and its OpenAPI description
(``openapi.json``, package data, served as it is at ``/api/openapi.json``).

A captain signs in for a bearer token; every call is rate limited per address, bodies are bounded
JSON objects, and a refusal answers with the field and a translated message and changes nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from functools import cache
from importlib import resources
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from common.web import FormRefused, client_address, decimal, read_body

from ..catchlog import Captain, CaptainLocked, CatchInputError, pick_list
from .language import error_message, lang_of
from .state import catchlog_of, limiter_of

log = logging.getLogger("gateway.catchlog_web")

MAX_JSON_BYTES = 32 * 1024

Handler = Callable[[Request, Any, dict[str, Any]], Awaitable[Any]]


@cache
def openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 description of this API (``openapi.json`` beside this module)."""
    text = (resources.files("gateway") / "catchlog_web" / "openapi.json").read_text(encoding="utf-8")
    doc: dict[str, Any] = json.loads(text)
    return doc


def refuse(lang: str, exc: CatchInputError, status: int = 422) -> JSONResponse:
    body = exc.as_json()
    body["message"] = error_message(lang, exc)
    return JSONResponse({"error": body}, status_code=status)


async def json_body(request: Request) -> dict[str, Any]:
    try:
        raw = await read_body(request, MAX_JSON_BYTES, require_length=True)
    except FormRefused:
        raise CatchInputError(
            "body", "problem_too_large", f"at most {MAX_JSON_BYTES} bytes with a declared length"
        ) from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise CatchInputError("body", "problem_json", "must be a JSON object") from None
    if not isinstance(data, dict):
        raise CatchInputError("body", "problem_json", "must be a JSON object")
    return data


async def captain_of(request: Request) -> Captain | None:
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else ""
    return await run_in_threadpool(catchlog_of(request).captain, token) if token else None


STATUS_OF_PROBLEM = {"problem_too_large": 413, "problem_not_found": 404}


def api(handler: Handler, needs_captain: bool = True, has_body: bool = True) -> Callable[..., Any]:
    """An API endpoint: rate limit, the captain's bearer token (unless ``needs_captain`` is False),
    the JSON body (when ``has_body``), then ``handler(request, captain, body)``'s result as JSON."""

    async def endpoint(request: Request) -> Response:
        lang = lang_of(request)
        if not limiter_of(request).allow(client_address(request), catchlog_of(request).clock.now()):
            return JSONResponse({"error": {"field": "request", "problem": "problem_rate"}}, status_code=429)
        captain = None
        if needs_captain:
            captain = await captain_of(request)
            if captain is None:
                exc = CatchInputError("session", "problem_expired", "a captain's bearer token is required")
                return refuse(lang, exc, 401)
        try:
            data = await json_body(request) if has_body else {}
            result = await handler(request, captain, data)
        except CatchInputError as exc:
            log.info("catch-log API refused %s: %s", request.url.path, exc)
            return refuse(lang, exc, STATUS_OF_PROBLEM.get(exc.problem, 422))
        return JSONResponse(result)

    endpoint.__name__ = handler.__name__
    return endpoint


def path_int(request: Request, name: str) -> int:
    value = decimal(str(request.path_params.get(name, "")))
    if value is None:
        raise CatchInputError(name, "problem_not_found", f"bad {name}")
    return value


async def api_login(request: Request, _captain: Any, data: dict[str, Any]) -> dict[str, Any]:
    try:
        captain = await run_in_threadpool(
            catchlog_of(request).login, str(data.get("handle", "")), str(data.get("pin", ""))
        )
    except CaptainLocked as exc:
        raise CatchInputError("pin", "problem_locked", "locked", seconds=exc.seconds) from None
    if captain is None:
        raise CatchInputError("pin", "problem_wrong", "wrong captain or PIN")
    return {"token": captain.token, "handle": captain.handle}


async def api_trips(request: Request, _captain: Any, _data: Any) -> Any:
    catchlog = catchlog_of(request)
    return {
        "trips": await run_in_threadpool(catchlog.trips),
        "open": await run_in_threadpool(catchlog.open_trip),
    }


async def api_start(request: Request, captain: Captain, data: dict[str, Any]) -> Any:
    return await run_in_threadpool(catchlog_of(request).start_trip, captain, data)


async def api_trip(request: Request, _captain: Any, _data: Any) -> Any:
    trip = path_int(request, "trip")
    return {"trip": trip, "events": await run_in_threadpool(catchlog_of(request).events, trip)}


async def api_event(request: Request, captain: Captain, data: dict[str, Any]) -> Any:
    trip = path_int(request, "trip")
    kind = str(data.get("type", ""))[:20]
    return await run_in_threadpool(catchlog_of(request).add_event, captain, trip, kind, data)


async def api_correct(request: Request, captain: Captain, data: dict[str, Any]) -> Any:
    trip, seq = path_int(request, "trip"), path_int(request, "seq")
    return await run_in_threadpool(catchlog_of(request).correct, captain, trip, seq, data)


async def api_delete(request: Request, captain: Captain, _data: Any) -> Any:
    trip, seq = path_int(request, "trip"), path_int(request, "seq")
    return await run_in_threadpool(catchlog_of(request).correct, captain, trip, seq, None)


async def api_codelist(request: Request, _captain: Any, _data: Any) -> Any:
    name = request.path_params["name"]
    items = pick_list(name, lang_of(request), request.query_params.get("q", ""))
    return {"list": name, "items": [item.__dict__ for item in items]}


async def api_openapi(request: Request) -> Response:
    return JSONResponse(openapi())


routes = [
    Route("/api/openapi.json", api_openapi, methods=["GET"]),
    Route("/api/catch/login", api(api_login, needs_captain=False), methods=["POST"]),
    Route("/api/catch/trips", api(api_trips, has_body=False), methods=["GET"]),
    Route("/api/catch/trips", api(api_start), methods=["POST"]),
    Route("/api/catch/trips/{trip}", api(api_trip, has_body=False), methods=["GET"]),
    Route("/api/catch/trips/{trip}/events", api(api_event), methods=["POST"]),
    Route("/api/catch/trips/{trip}/events/{seq}", api(api_correct), methods=["PUT"]),
    Route("/api/catch/trips/{trip}/events/{seq}", api(api_delete, has_body=False), methods=["DELETE"]),
    Route(
        "/api/catch/codelists/{name}",
        api(api_codelist, needs_captain=False, has_body=False),
        methods=["GET"],
    ),
]
