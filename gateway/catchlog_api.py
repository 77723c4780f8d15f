"""HTTP doors to the catch log: a JSON API for electronic-logbook tablets (with its OpenAPI
description at ``/api/openapi.json``) and a plain-HTML page for the captain at ``/catch``.

Both call the same ``CatchLog`` methods, so they share one set of validation rules; a refusal answers
with the field and a translated message, and changes nothing. Bodies are bounded, JSON must be an
object, and the page works without JavaScript. It owns no state of its own beyond what ``CatchLog``
stores, and must not talk to the modem.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from jinja2 import Environment, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from .captive import FormError, RateLimiter, _security_headers, client_key, read_form
from .catchlog import (
    CODELISTS,
    EVENT_TYPES,
    FATES,
    MAX_LINES,
    Captain,
    CaptainLocked,
    CatchInputError,
    CatchLog,
    pick_list,
)
from .i18n import LANGUAGES, catalogue, pick_language

log = logging.getLogger("gateway.catchlog_api")

MAX_JSON_BYTES = 32 * 1024
PAGE_LINES = 4  # species line rows on the haul form
PAGE_CREW_ROWS = 12
CATCH_COOKIE = "sb_catch"

_env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))


def _template() -> Any:
    text = (resources.files("gateway") / "templates" / "catchlog.html").read_text(encoding="utf-8")
    return _env.from_string(text)


def field_label(lang: str, field: str) -> str:
    """``lines[2].species`` → "Species (ASFIS), line 3" in the chosen language."""
    t = catalogue(lang)
    parts = field.split(".")
    label = t(f"field_{parts[-1].split('[')[0]}")
    for part in parts[:-1]:
        if "[" in part and part.endswith("]"):
            index = part[part.index("[") + 1 : -1]
            if index.isdigit():
                label += ", " + t("line_n", n=int(index) + 1)
    return label


def error_message(lang: str, exc: CatchInputError) -> str:
    t = catalogue(lang)
    return t("err_field", field=field_label(lang, exc.field), problem=t(exc.problem, **exc.values))


def _iso(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M")


def openapi(base: str = "") -> dict[str, Any]:
    """The OpenAPI 3.1 description of the catch-log API."""
    err = {"$ref": "#/components/schemas/Error"}
    auth = [{"bearer": []}]
    pos = {"type": "number"}
    time = {"type": "string", "format": "date-time", "description": "ISO 8601; UTC when no offset is given"}

    def code(name: str) -> dict[str, Any]:
        return {"type": "string", "description": f"code from GET /api/catch/codelists/{name}"}

    line = {
        "type": "object",
        "required": ["species", "kg"],
        "properties": {
            "species": code("species"),
            "kg": {"type": "integer", "minimum": 0, "description": "live weight, kilograms"},
            "fate": {"type": "string", "enum": list(FATES), "default": "kept"},
            "local_name": {"type": "string", "maxLength": 40, "description": "required when species is *"},
        },
    }
    events = {
        "trip_start": {
            "required": ["departed", "port", "gear", "area", "latitude", "longitude"],
            "properties": {
                "departed": time,
                "port": code("ports"),
                "gear": code("gear"),
                "area": code("fao_areas"),
                "latitude": pos,
                "longitude": pos,
            },
        },
        "haul": {
            "required": ["start", "duration_min", "latitude", "longitude"],
            "properties": {
                "start": time,
                "duration_min": {"type": "integer", "minimum": 0},
                "latitude": pos,
                "longitude": pos,
                "gear": code("gear"),
                "area": code("fao_areas"),
                "lines": {"type": "array", "maxItems": MAX_LINES, "items": line},
            },
        },
        "etp": {
            "required": ["time", "latitude", "longitude", "species", "count", "condition", "fate"],
            "properties": {
                "time": time,
                "latitude": pos,
                "longitude": pos,
                "species": code("species"),
                "count": {"type": "integer", "minimum": 1},
                "condition": code("etp_conditions"),
                "fate": code("etp_fates"),
            },
        },
        "discard": {
            "required": ["time", "species", "kg", "reason"],
            "properties": {
                "time": time,
                "species": code("species"),
                "kg": {"type": "integer", "minimum": 0},
                "reason": code("discard_reasons"),
            },
        },
        "rest": {
            "required": ["day", "crew"],
            "properties": {
                "day": {"type": "string", "format": "date"},
                "crew": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["crew", "rest_hours"],
                        "properties": {
                            "crew": {"type": "integer", "minimum": 1},
                            "rest_hours": {"type": "number", "minimum": 0, "maximum": 24},
                        },
                    },
                },
            },
        },
        "trip_end": {"required": ["arrived", "port"], "properties": {"arrived": time, "port": code("ports")}},
    }
    schemas: dict[str, Any] = {name: {"type": "object", **body} for name, body in events.items()}
    schemas["Event"] = {
        "type": "object",
        "required": ["type"],
        "description": "one of the event shapes, with `type` naming it (not trip_start)",
        "properties": {"type": {"type": "string", "enum": [e for e in EVENT_TYPES if e != "trip_start"]}},
        "oneOf": [{"$ref": f"#/components/schemas/{name}"} for name in events if name != "trip_start"],
    }
    schemas["Accepted"] = {
        "type": "object",
        "properties": {
            "trip": {"type": "integer"},
            "seq": {"type": "integer"},
            "rid": {"type": "integer"},
            "bytes": {"type": "integer", "description": "size of the compact record"},
        },
    }
    schemas["Error"] = {
        "type": "object",
        "properties": {
            "error": {
                "type": "object",
                "properties": {
                    "field": {"type": "string"},
                    "problem": {"type": "string"},
                    "message": {"type": "string"},
                },
            }
        },
    }

    def op(
        summary: str, body: str | None = None, ok: str = "Accepted", secured: bool = True
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "summary": summary,
            "responses": {
                "200": {
                    "description": "done",
                    "content": {
                        "application/json": {
                            "schema": {"$ref": f"#/components/schemas/{ok}"} if ok else {"type": "object"}
                        }
                    },
                },
                "401": {
                    "description": "no valid captain token",
                    "content": {"application/json": {"schema": err}},
                },
                "422": {
                    "description": "refused; nothing changed",
                    "content": {"application/json": {"schema": err}},
                },
            },
        }
        if secured:
            out["security"] = auth
        if body:
            out["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}},
            }
        return out

    lang_param = {
        "name": "lang",
        "in": "query",
        "schema": {"type": "string", "enum": list(LANGUAGES)},
        "description": "language of error messages and pick-list labels",
    }
    trip_param = {"name": "trip", "in": "path", "required": True, "schema": {"type": "integer"}}
    seq_param = {"name": "seq", "in": "path", "required": True, "schema": {"type": "integer"}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Seabridge catch log",
            "version": "1",
            "description": "Trips, hauls, protected-species interactions, discards and crew rest hours, "
            "recorded on the vessel and queued for the shore as compact records. Corrections and deletions "
            "follow FLUX purpose codes (5 replacement, 3 deletion).",
        },
        "servers": [{"url": base or "/"}],
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "paths": {
            "/api/catch/login": {
                "post": {
                    **op("Sign in as captain; returns a bearer token", ok="", secured=False),
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["handle", "pin"],
                                    "properties": {"handle": {"type": "string"}, "pin": {"type": "string"}},
                                }
                            }
                        },
                    },
                }
            },
            "/api/catch/trips": {
                "get": {**op("List trips", ok=""), "parameters": [lang_param]},
                "post": {**op("Start a trip", "trip_start"), "parameters": [lang_param]},
            },
            "/api/catch/trips/{trip}": {
                "get": {**op("A trip's events as they stand", ok=""), "parameters": [trip_param]}
            },
            "/api/catch/trips/{trip}/events": {
                "post": {**op("Record an event", "Event"), "parameters": [trip_param, lang_param]}
            },
            "/api/catch/trips/{trip}/events/{seq}": {
                "put": {
                    **op("Correct an event (FLUX purpose 5)", "Event"),
                    "parameters": [trip_param, seq_param, lang_param],
                },
                "delete": {
                    **op("Delete an event (FLUX purpose 3)"),
                    "parameters": [trip_param, seq_param, lang_param],
                },
            },
            "/api/catch/codelists/{name}": {
                "get": {
                    **op("Searchable pick list", ok="", secured=False),
                    "parameters": [
                        {
                            "name": "name",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "enum": list(CODELISTS)},
                        },
                        {"name": "q", "in": "query", "schema": {"type": "string"}},
                        lang_param,
                    ],
                }
            },
        },
    }


def catch_routes(catchlog: CatchLog, limiter: RateLimiter | None = None) -> list[BaseRoute]:
    """Routes for the catch-log API and page, to mount in the gateway's web app."""
    limiter = limiter or RateLimiter(60, 1.0, 1024)
    page = _template()

    def lang_of(request: Request, form: dict[str, str] | None = None) -> str:
        return pick_language(
            (form or {}).get("l"),
            request.query_params.get("lang") or request.query_params.get("l"),
            request.cookies.get("sb_lang"),
            accept_language=request.headers.get("accept-language", ""),
        )

    def refuse(lang: str, exc: CatchInputError, status: int = 422) -> JSONResponse:
        body = exc.as_json()
        body["message"] = error_message(lang, exc)
        return JSONResponse({"error": body}, status_code=status)

    async def json_body(request: Request) -> dict[str, Any]:
        length = request.headers.get("content-length")
        if length is None or not length.isdigit() or int(length) > MAX_JSON_BYTES:
            raise CatchInputError(
                "body", "problem_too_large", f"at most {MAX_JSON_BYTES} bytes with a declared length"
            )
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_JSON_BYTES:
                raise CatchInputError("body", "problem_too_large", "too large")
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
        return await run_in_threadpool(catchlog.captain, token) if token else None

    def api(handler: Any, needs_captain: bool = True, has_body: bool = True) -> Any:
        async def endpoint(request: Request) -> Response:
            lang = lang_of(request)
            if not limiter.allow(client_key(request), catchlog.clock.now()):
                return JSONResponse(
                    {"error": {"field": "request", "problem": "problem_rate"}}, status_code=429
                )
            captain = None
            if needs_captain:
                captain = await captain_of(request)
                if captain is None:
                    exc = CatchInputError(
                        "session", "problem_expired", "a captain's bearer token is required"
                    )
                    return refuse(lang, exc, 401)
            try:
                data = await json_body(request) if has_body else {}
                result = await handler(request, captain, data)
            except CatchInputError as exc:
                log.info("catch-log API refused %s: %s", request.url.path, exc)
                status = (
                    413
                    if exc.problem == "problem_too_large"
                    else 404
                    if exc.problem == "problem_not_found"
                    else 422
                )
                return refuse(lang, exc, status)
            return JSONResponse(result)

        return endpoint

    def path_int(request: Request, name: str) -> int:
        value = request.path_params.get(name, "")
        if not str(value).isdigit() or len(str(value)) > 12:
            raise CatchInputError(name, "problem_not_found", f"bad {name}")
        return int(value)

    async def api_login(request: Request, _captain: Any, data: dict[str, Any]) -> dict[str, Any]:
        try:
            captain = await run_in_threadpool(
                catchlog.login, str(data.get("handle", "")), str(data.get("pin", ""))
            )
        except CaptainLocked as exc:
            raise CatchInputError("pin", "problem_locked", "locked", seconds=exc.seconds) from None
        if captain is None:
            raise CatchInputError("pin", "problem_wrong", "wrong captain or PIN")
        return {"token": captain.token, "handle": captain.handle}

    async def api_trips(request: Request, _captain: Any, _data: Any) -> Any:
        return {
            "trips": await run_in_threadpool(catchlog.trips),
            "open": await run_in_threadpool(catchlog.open_trip),
        }

    async def api_start(request: Request, captain: Captain, data: dict[str, Any]) -> Any:
        return await run_in_threadpool(catchlog.start_trip, captain, data)

    async def api_trip(request: Request, _captain: Any, _data: Any) -> Any:
        trip = path_int(request, "trip")
        return {"trip": trip, "events": await run_in_threadpool(catchlog.events, trip)}

    async def api_event(request: Request, captain: Captain, data: dict[str, Any]) -> Any:
        trip = path_int(request, "trip")
        return await run_in_threadpool(
            catchlog.add_event, captain, trip, str(data.get("type", ""))[:20], data
        )

    async def api_correct(request: Request, captain: Captain, data: dict[str, Any]) -> Any:
        return await run_in_threadpool(
            catchlog.correct, captain, path_int(request, "trip"), path_int(request, "seq"), data
        )

    async def api_delete(request: Request, captain: Captain, _data: Any) -> Any:
        return await run_in_threadpool(
            catchlog.correct, captain, path_int(request, "trip"), path_int(request, "seq"), None
        )

    async def api_codelist(request: Request, _captain: Any, _data: Any) -> Any:
        name = request.path_params["name"]
        items = pick_list(name, lang_of(request), request.query_params.get("q", ""))
        return {"list": name, "items": [item.__dict__ for item in items]}

    async def api_openapi(request: Request) -> Response:
        return JSONResponse(openapi())

    # --- the captain's page ------------------------------------------------------------------------

    def render(request: Request, lang: str, status: int = 200, **ctx: Any) -> Response:
        t = catalogue(lang)
        token = ctx.get("token", "")
        query = request.query_params.get("q", "")[:40]
        html = page.render(
            t=t,
            lang=lang,
            languages=[(code, catalogue(code).name) for code in LANGUAGES],
            lists={name: pick_list(name, lang, limit=500) for name in CODELISTS if name != "species"},
            species=pick_list("species", lang, query, limit=500),
            q=query,
            fates=list(FATES),
            page_lines=range(PAGE_LINES),
            crew_rows=range(PAGE_CREW_ROWS),
            iso=_iso,
            token_q=urllib.parse.quote(token),
            **ctx,
        )
        response = HTMLResponse(html, status_code=status)
        if token:
            response.set_cookie(CATCH_COOKIE, token, httponly=True, samesite="strict", max_age=86400)
        return _security_headers(response)

    async def page_captain(request: Request, form: dict[str, str] | None = None) -> Captain | None:
        token = (
            (form or {}).get("t") or request.query_params.get("t") or request.cookies.get(CATCH_COOKIE, "")
        )
        return await run_in_threadpool(catchlog.captain, token) if token else None

    async def dashboard(
        request: Request, captain: Captain, lang: str, status: int = 200, **ctx: Any
    ) -> Response:
        trip = await run_in_threadpool(catchlog.open_trip)
        trips = await run_in_threadpool(catchlog.trips)
        shown = trip or (trips[0]["trip"] if trips else None)
        events = await run_in_threadpool(catchlog.events, shown) if shown else []
        return render(
            request,
            lang,
            status,
            view="log",
            token=captain.token,
            captain=captain.handle,
            trip=trip,
            shown=shown,
            events=events,
            **ctx,
        )

    async def page_home(request: Request) -> Response:
        lang = lang_of(request)
        captain = await page_captain(request)
        if captain is None:
            return render(request, lang, view="login")
        edit = request.query_params.get("edit", "")
        ctx: dict[str, Any] = {}
        if edit.isdigit():
            shown = await run_in_threadpool(catchlog.open_trip)
            trips = await run_in_threadpool(catchlog.trips)
            shown = shown or (trips[0]["trip"] if trips else None)
            if shown:
                for event in await run_in_threadpool(catchlog.events, shown):
                    if event["seq"] == int(edit) and not event["deleted"]:
                        ctx["editing"] = event
        saved = request.query_params.get("saved", "")
        return await dashboard(
            request, captain, lang, saved=saved if saved.replace(",", "").isdigit() else "", **ctx
        )

    def form_event(form: dict[str, str]) -> dict[str, Any]:
        """Page form fields → the same shape the API takes."""
        data: dict[str, Any] = {k: v for k, v in form.items() if k not in ("t", "l")}
        lines = []
        for i in range(PAGE_LINES):
            species = form.get(f"line{i}_species", "").strip()
            kg = form.get(f"line{i}_kg", "").strip()
            if species or kg:
                lines.append(
                    {
                        "species": species,
                        "kg": kg,
                        "fate": form.get(f"line{i}_fate", "kept"),
                        "local_name": form.get(f"line{i}_local_name", ""),
                    }
                )
        data["lines"] = lines
        crew = []
        for i in range(PAGE_CREW_ROWS):
            number, hours = form.get(f"crew{i}", "").strip(), form.get(f"hours{i}", "").strip()
            if number or hours:
                crew.append({"crew": number, "rest_hours": hours})
        data["crew"] = crew
        return data

    async def page_post(request: Request) -> Response:
        lang = pick_language(request.query_params.get("l"), request.cookies.get("sb_lang"))
        if not limiter.allow(client_key(request), catchlog.clock.now()):
            return render(request, lang, 429, view="login", error=catalogue(lang)("problem_rate"))
        try:
            form = await read_form(request)
        except FormError as exc:
            return render(request, lang, 400, view="login", error=str(exc))
        lang = lang_of(request, form)
        action = request.url.path.rsplit("/", 1)[-1]
        if action == "login":
            try:
                captain = await run_in_threadpool(catchlog.login, form.get("handle", ""), form.get("pin", ""))
            except CaptainLocked as exc:
                msg = catalogue(lang)("problem_locked", seconds=exc.seconds)
                return render(request, lang, 429, view="login", error=msg)
            if captain is None:
                return render(request, lang, 403, view="login", error=catalogue(lang)("problem_wrong"))
            return _redirect(captain.token, lang)
        captain = await page_captain(request, form)
        if captain is None:
            return render(request, lang, 401, view="login", error=catalogue(lang)("problem_expired"))
        try:
            if action == "trip":
                result = await run_in_threadpool(catchlog.start_trip, captain, form_event(form))
            elif action == "event":
                data = form_event(form)
                trip = int(form.get("trip", "0") or 0) if form.get("trip", "").isdigit() else 0
                if form.get("seq", "").isdigit():
                    result = await run_in_threadpool(catchlog.correct, captain, trip, int(form["seq"]), data)
                else:
                    result = await run_in_threadpool(
                        catchlog.add_event, captain, trip, form.get("type", ""), data
                    )
            elif action == "delete":
                trip = int(form["trip"]) if form.get("trip", "").isdigit() else 0
                seq = int(form["seq"]) if form.get("seq", "").isdigit() else -1
                result = await run_in_threadpool(catchlog.correct, captain, trip, seq, None)
            else:
                raise CatchInputError("type", "problem_not_found", "unknown action")
        except CatchInputError as exc:
            return await dashboard(request, captain, lang, 422, error=error_message(lang, exc), draft=form)
        return _redirect(captain.token, lang, saved=f"{result['rid']},{result['bytes']}")

    def _redirect(token: str, lang: str, **extra: str) -> Response:
        query = urllib.parse.urlencode({"t": token, "l": lang, **extra})
        response = RedirectResponse(f"/catch?{query}", status_code=303)
        response.set_cookie(CATCH_COOKIE, token, httponly=True, samesite="strict", max_age=86400)
        return _security_headers(response)

    return [
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
        Route("/catch", page_home, methods=["GET"]),
        Route("/catch/login", page_post, methods=["POST"]),
        Route("/catch/trip", page_post, methods=["POST"]),
        Route("/catch/event", page_post, methods=["POST"]),
        Route("/catch/delete", page_post, methods=["POST"]),
    ]
