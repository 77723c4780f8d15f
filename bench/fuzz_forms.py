"""Fuzz targets for the web forms: the captive page's strict form reader (``common.web.read_form``)
and the dashboard's (``shore.dashboard.pages.form_of``: Starlette's parser, URL-encoded or multipart,
no files, at most 20 fields), each fed a real ASGI request: hostile bodies, content types and
``Content-Length`` headers (any the HTTP server lets through: digits, or none).

Promise checked: a typed refusal (``FormRefused``; for the dashboard ``None`` for too large, or
Starlette's ``HTTPException`` 400 / the multipart parser's error) or a ``str`` → ``str`` mapping that
says what the body said (the captive reader's result re-encodes and re-parses to itself, has no NUL
and respects the size limit; the dashboard's holds no uploaded file and at most 20 fields).
"""

from __future__ import annotations

import asyncio
import random
from typing import Any
from urllib.parse import urlencode

from python_multipart.exceptions import FormParserError
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request

from bench.fuzz_kit import Target, mutate_bytes
from common.web import MAX_FORM_BYTES, FormRefused, parse_form, read_form
from gateway.captive.pages import FORM_FIELDS
from shore.dashboard.pages import form_of

_FIELDS = {"handle": "crew-07", "pin": "482913", "text": "ขอความช่วยเหลือ", "rid": "12", "csrf": "x" * 43}
_HOSTILE = ["²", "⓽", "١٢", "%00", "%FF", "%E0%A4", "\x00", "+", "&&", "==", "a" * 9000, "%", "%2"]
_TYPES = [
    "application/x-www-form-urlencoded",
    "",
    "multipart/form-data; boundary=xyz",
    "multipart/form-data",
    "text/plain",
    "application/x-www-form-urlencoded; charset=latin-1",
]
_LENGTHS = ["0", "1", "99999999999", "8193", "16385"]  # h11/httptools refuse anything but digits


def _form_input(rng: random.Random) -> tuple[bytes, str, str | None]:
    fields: dict[str, str] = dict(_FIELDS)
    for _ in range(rng.randint(0, 3)):
        name = rng.choice([*fields, "x", "rid", ""])
        fields[name] = rng.choice(_HOSTILE) if rng.random() < 0.6 else fields.get(name, "") + rng.choice(_HOSTILE)
    body = urlencode(fields).encode() if rng.random() < 0.8 else b"&".join(f"f{i}=1".encode() for i in range(rng.randint(0, 40)))
    if rng.random() < 0.2:
        body = b"--xyz\r\nContent-Disposition: form-data; name=\"a\"; filename=\"x\"\r\n\r\nhi\r\n--xyz--\r\n"
    if rng.random() < 0.4:
        body = mutate_bytes(rng, body, [])
    ctype = rng.choice(_TYPES)
    roll = rng.random()
    length = str(len(body)) if roll < 0.7 else (None if roll < 0.8 else rng.choice(_LENGTHS))
    return body, ctype, length


def _request(body: bytes, ctype: str, length: str | None) -> Request:
    headers = [(b"content-type", ctype.encode("latin-1"))]
    if length is not None:
        headers.append((b"content-length", length.encode("utf-8")))
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers, "query_string": b""}
    return Request(scope, receive)


def _check_captive(case: tuple[bytes, str, str | None]) -> str:
    try:
        form = asyncio.run(read_form(_request(*case), FORM_FIELDS))
    except FormRefused as exc:
        return f"refused-{exc.problem}"
    assert all(isinstance(k, str) and isinstance(v, str) and "\x00" not in v for k, v in form.items())
    assert len(case[0]) <= MAX_FORM_BYTES and len(form) <= FORM_FIELDS
    again = parse_form(urlencode(form).encode(), MAX_FORM_BYTES * 3, FORM_FIELDS)
    assert again == form, "the form does not re-parse to itself"
    return "form"


def _check_dashboard(case: tuple[bytes, str, str | None]) -> str:
    try:
        form = asyncio.run(form_of(_request(*case)))
    except HTTPException as exc:
        assert exc.status_code == 400
        return "refused-400"
    except (FormParserError, MultiPartException):  # a 400 inside an app
        return "refused-multipart"
    if form is None:
        return "refused-too-large"
    assert len(form) <= 20 and all(isinstance(v, str) for v in form.values()), f"files or fields slipped in: {form!r}"
    return "form"


FORM_TARGETS = [
    Target("captive-form", _form_input, _check_captive),
    Target("dashboard-form", _form_input, _check_dashboard),
]
