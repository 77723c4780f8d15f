"""HTTP helpers the web doors of both ends share: bounded body reading, strict form parsing,
per-client token-bucket rate limiting, the client's address and security response headers.

Used by the vessel's captive page and catch log (``gateway``) and by the shore's RockBLOCK webhook and
dashboard (``shore``), which never import each other. It owns no route, no template and no state
beyond a limiter's buckets; time is passed in by the caller.
"""

from __future__ import annotations

import urllib.parse
from collections import OrderedDict
from collections.abc import MutableMapping
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

MAX_FORM_BYTES = 8 * 1024  # the vessel pages' forms; the webhook and dashboard pass their own limits

TOO_LARGE = "problem_too_large"
TOO_MANY_FIELDS = "problem_fields"
BAD_ENCODING = "problem_encoding"


class FormRefused(ValueError):
    """A request body was refused before it reached a handler. ``problem`` is ``TOO_LARGE``,
    ``TOO_MANY_FIELDS`` or ``BAD_ENCODING`` (also the vessel pages' catalogue key, whose text takes
    ``values``); ``field`` is always ``"request"``."""

    field = "request"

    def __init__(self, message: str, problem: str, **values: object) -> None:
        super().__init__(f"request: {message}")
        self.problem = problem
        self.values: dict[str, object] = dict(values)


def decimal(text: str | None, max_digits: int = 12) -> int | None:
    """The value of ``text`` if it is 1 to ``max_digits`` ASCII digits, else None.

    The one way the web doors read a number from a form, a path or a header: ``str.isdigit`` also
    accepts Unicode digits (``²``, ``⓽``) that ``int`` then refuses, which made them HTTP 500s."""
    if text is None or not 0 < len(text) <= max_digits or not (text.isascii() and text.isdigit()):
        return None
    return int(text)


def client_address(request: Request, unknown: str = "unknown") -> str:
    """The peer's IP address (the rate-limit key), or ``unknown`` when the server does not say."""
    return request.client.host if request.client else unknown


def declared_length(request: Request) -> int | None:
    """The request's ``Content-Length`` (None when absent); a value that is not a plain decimal
    number is refused (``FormRefused``, ``BAD_ENCODING``: an HTTP 400, not a 500)."""
    declared = request.headers.get("content-length")
    if declared is None:
        return None
    size = decimal(declared.strip(), 19)
    if size is None:
        raise FormRefused("Content-Length is not a number", BAD_ENCODING)
    return size


async def read_body(request: Request, limit: int, *, require_length: bool = False) -> bytes:
    """The request body, refused (``FormRefused``, ``TOO_LARGE``) as soon as it exceeds ``limit``
    bytes or declares more; with ``require_length`` a missing ``Content-Length`` is refused too."""
    size = declared_length(request)
    if size is None and require_length:
        raise FormRefused(f"body must declare a length of at most {limit} bytes", TOO_LARGE)
    if size is not None and size > limit:
        raise FormRefused(f"body must declare a length of at most {limit} bytes", TOO_LARGE)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise FormRefused("form too large", TOO_LARGE)
    return bytes(body)


def parse_form(body: bytes, max_bytes: int, max_fields: int) -> dict[str, str]:
    """Strict ``application/x-www-form-urlencoded`` parsing: ASCII on the wire, UTF-8 inside, no NUL,
    at most ``max_bytes`` and ``max_fields`` (each page passes the size of the largest form it renders);
    the first value of a repeated field wins. Each refusal names its own cause."""
    if len(body) > max_bytes:
        raise FormRefused("form too large", TOO_LARGE)
    fields = body.count(b"&") + 1 if body else 0
    if fields > max_fields:
        raise FormRefused(f"form has {fields} fields, at most {max_fields}", TOO_MANY_FIELDS, n=max_fields)
    try:
        text = body.decode("ascii")
        pairs = urllib.parse.parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=False,
            encoding="utf-8",
            errors="strict",
            max_num_fields=max_fields,
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormRefused("form is not valid UTF-8 form data", BAD_ENCODING) from exc
    form: dict[str, str] = {}
    for key, value in pairs:
        if "\x00" in value:
            raise FormRefused("form contains NUL", BAD_ENCODING)
        form.setdefault(key, value)
    return form


async def read_form(request: Request, max_fields: int, max_bytes: int = MAX_FORM_BYTES) -> dict[str, str]:
    """A URL-encoded form body with a declared length, parsed by ``parse_form``; anything else
    (multipart, oversize, bad encoding) is refused with ``FormRefused``."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in ("application/x-www-form-urlencoded", ""):
        size = declared_length(request)
        if size is not None and size <= max_bytes:
            raise FormRefused("only URL-encoded forms are accepted", BAD_ENCODING)
    body = await read_body(request, max_bytes, require_length=True)
    return parse_form(body, max_bytes, max_fields)


class TokenBuckets:
    """Token buckets per key (``burst`` requests, refilled at ``per_s``), bounded in memory: beyond
    ``max_keys`` the least recently seen key is forgotten. Sans-I/O: time comes from the caller."""

    def __init__(self, burst: float, per_s: float, max_keys: int) -> None:
        self.burst = burst
        self.per_s = per_s
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, key: str, now: float) -> bool:
        """Take one token from ``key``'s bucket; False (and nothing taken) when it is empty."""
        tokens, at = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + max(0.0, now - at) * self.per_s)
        allowed = tokens >= 1.0
        self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return allowed


@dataclass(frozen=True)
class SecurityPolicy:
    """The security headers of one app. ``override`` replaces headers a handler set itself."""

    csp: str
    referrer: str = "no-referrer"
    no_store: bool = True
    override: bool = True


def inline_page_policy(nonce: str = "") -> SecurityPolicy:
    """The vessel pages' policy (captive page, catch log): no asset but the page itself, its inline
    styles and, when ``nonce`` is given, its own inline script."""
    script = f"'nonce-{nonce}'" if nonce else "'none'"
    return SecurityPolicy(
        csp=f"default-src 'none'; style-src 'unsafe-inline'; script-src {script}; connect-src 'self'; "
        "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )


def apply_security_headers(
    headers: MutableMapping[str, str], policy: SecurityPolicy, cache: bool = True
) -> None:
    """Content-Security-Policy, no caching (when ``policy.no_store`` and ``cache``), referrer policy,
    no MIME sniffing, no framing."""
    wanted = [("Content-Security-Policy", policy.csp)]
    if policy.no_store and cache:
        wanted.append(("Cache-Control", "no-store"))
    wanted += [
        ("Referrer-Policy", policy.referrer),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
    ]
    for name, value in wanted:
        if policy.override or name not in headers:
            headers[name] = value


def secured(response: Response, policy: SecurityPolicy) -> Response:
    """``response`` with ``policy``'s headers."""
    apply_security_headers(response.headers, policy)
    return response
