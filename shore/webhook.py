"""RockBLOCK-style HTTP webhook ingest: MO messages POSTed by the RockBLOCK / Ground Control service.

It owns the HTTP side of one network: request size and rate limits, the authenticity check (an RS256
JWT signed by the service, checked against a configured public key, and/or a shared secret in the URL
or a header), parsing the fields (``imei``, ``serial``, ``momsn``, ``transmit_time``,
``iridium_latitude``, ``iridium_longitude``, ``iridium_cep``, ``data`` as hex, ``device_type``,
``JWT``) in form-urlencoded or JSON bodies, and the answer: 200 once the delivery is durably handed
to the pipeline (the service retries anything else, so de-duplication on IMEI + MOMSN happens in the
pipeline). Every refusal is counted by reason and logged. It must not decrypt or interpret the frame.

``parse_mo`` and ``RateLimiter`` are sans-I/O; ``create_webhook_app`` is the thin Starlette adapter.
Body reading and the token buckets are ``common.web``'s, shared with the other web doors.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import json
import logging
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from common.clock import Clock
from common.web import FormRefused, TokenBuckets, client_address, read_body
from firmware_profiles import load_profile, profile_names

log = logging.getLogger("shore.webhook")

NETWORK = "rockblock"
MAX_BODY_BYTES = 16 * 1024  # the largest legitimate form (MAX_DATA_BYTES as hex + JWT) is ~10 KiB
# The largest SBD MO payload of any Iridium profile (the 9523's 1960 B); the pipeline checks the vessel's own.
MAX_DATA_BYTES = max(p.mo_max_bytes for p in map(load_profile, profile_names()) if p.family == "iridium-sbd")
JWT_MAX_LIFETIME_S = 3600.0  # a signed delivery is refused once older than this, whatever its exp says
JWT_LEEWAY_S = 60.0  # clock difference tolerated between the service and the shore
_IMEI = re.compile(r"^[0-9]{15}$")
_HEX = re.compile(r"^(?:[0-9a-fA-F]{2})*$")
# ASCII only: str.isdigit() and float() also take "²", "⓽" or "٣", which int() refuses or misreads.
_UINT = re.compile(r"^[0-9]{1,6}$")
_DECIMAL = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?$")
_TRANSMIT_TIME = re.compile(r"^[0-9]{2}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$")


class WebhookError(ValueError):
    """A refused webhook request; ``reason`` is the counted rejection reason, ``status`` the HTTP code."""

    def __init__(self, reason: str, detail: str, status: int = 400) -> None:
        super().__init__(detail)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class WebhookMo:
    imei: str
    momsn: int
    data: bytes
    transmit_time: float | None
    latitude: float | None
    longitude: float | None
    cep_km: float | None
    serial: str | None
    device_type: str | None


def _float(fields: Mapping[str, str], name: str, lo: float, hi: float) -> float | None:
    raw = fields.get(name)
    if raw is None or raw == "":
        return None
    if not _DECIMAL.fullmatch(raw):
        raise WebhookError("malformed-field", f"{name} is not a number")
    value = float(raw)
    if not lo <= value <= hi:
        raise WebhookError("malformed-field", f"{name} out of range")
    return value


def parse_transmit_time(raw: str) -> float:
    """``YY-MM-DD HH:MM:SS`` (UTC) as documented by the service, to Unix seconds."""
    if not _TRANSMIT_TIME.fullmatch(raw):
        raise WebhookError("malformed-field", "transmit_time is not YY-MM-DD HH:MM:SS")
    try:
        when = dt.datetime.strptime(raw, "%y-%m-%d %H:%M:%S").replace(tzinfo=dt.UTC)
    except ValueError:
        raise WebhookError("malformed-field", "transmit_time is not YY-MM-DD HH:MM:SS") from None
    return when.timestamp()


def parse_mo(fields: Mapping[str, str]) -> WebhookMo:
    """Validate the webhook fields. Raises :class:`WebhookError` on anything missing or malformed."""
    imei = fields.get("imei", "")
    if not _IMEI.fullmatch(imei):
        raise WebhookError("malformed-field", "imei must be 15 digits")
    momsn_raw = fields.get("momsn", "")
    if not _UINT.fullmatch(momsn_raw) or int(momsn_raw) > 65535:
        raise WebhookError("malformed-field", "momsn must be an integer 0..65535")
    data_hex = fields.get("data", "")
    if len(data_hex) > 2 * MAX_DATA_BYTES:
        raise WebhookError("oversize-frame", f"data longer than {MAX_DATA_BYTES} bytes", 413)
    if not _HEX.fullmatch(data_hex):
        raise WebhookError("malformed-field", "data is not hex")
    transmit = fields.get("transmit_time")
    serial = fields.get("serial")
    device = fields.get("device_type")
    return WebhookMo(
        imei=imei,
        momsn=int(momsn_raw),
        data=bytes.fromhex(data_hex),
        transmit_time=parse_transmit_time(transmit) if transmit else None,
        latitude=_float(fields, "iridium_latitude", -90.0, 90.0),
        longitude=_float(fields, "iridium_longitude", -180.0, 180.0),
        cep_km=_float(fields, "iridium_cep", 0.0, 10000.0),
        serial=serial[:16] if serial else None,
        device_type=device[:32] if device else None,
    )


class Authenticator:
    """The webhook's authenticity check. At least one of ``jwt_public_key`` (PEM) and ``shared_secret``
    must be set, otherwise every request is refused (``auth-not-configured``).

    A JWT must carry ``exp`` or ``iat`` (RockBLOCK's tokens carry ``iat``; a token with neither would be
    valid forever). It is refused once expired at ``now`` (the injected clock), once issued more than
    ``max_lifetime_s`` ago, and if its ``exp`` lies further than that in the future, so a captured token
    is replayable for a bounded window only (and a replay within it is the same delivery, which the
    pipeline de-duplicates on IMEI + MOMSN)."""

    def __init__(
        self,
        jwt_public_key: str | bytes | None = None,
        shared_secret: str | None = None,
        *,
        max_lifetime_s: float = JWT_MAX_LIFETIME_S,
        leeway_s: float = JWT_LEEWAY_S,
    ) -> None:
        self.jwt_public_key = jwt_public_key or None
        self.shared_secret = shared_secret or None
        self.max_lifetime_s = max_lifetime_s
        self.leeway_s = leeway_s

    @property
    def configured(self) -> bool:
        return self.jwt_public_key is not None or self.shared_secret is not None

    def check(self, fields: Mapping[str, str], token: str | None, now: float) -> None:
        if not self.configured:
            raise WebhookError("auth-not-configured", "no JWT key or shared secret configured", 401)
        if self.shared_secret is not None and (
            token is None or not hmac.compare_digest(token.encode(), self.shared_secret.encode())
        ):
            raise WebhookError("bad-secret", "shared secret missing or wrong", 401)
        if self.jwt_public_key is not None:
            raw = fields.get("JWT") or fields.get("jwt")
            if not raw:
                raise WebhookError("bad-signature", "JWT missing", 401)
            try:
                claims = jwt.decode(
                    raw,
                    self.jwt_public_key,
                    algorithms=["RS256"],
                    options={
                        "verify_aud": False,
                        "verify_exp": False,
                        "verify_iat": False,
                        "verify_nbf": False,
                    },
                )
            except jwt.PyJWTError as exc:
                raise WebhookError("bad-signature", f"JWT invalid: {exc}", 401) from None
            self._check_lifetime(claims, now)
            # The signed claims must be the delivery we are about to accept, not some other one.
            for name in ("imei", "momsn", "data"):
                if str(claims.get(name, "")).lower() != str(fields.get(name, "")).lower():
                    raise WebhookError("bad-signature", f"JWT claim {name} does not match the form", 401)

    def _check_lifetime(self, claims: Mapping[str, Any], now: float) -> None:
        times = {}
        for name in ("exp", "iat", "nbf"):
            value = claims.get(name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
                raise WebhookError("bad-signature", f"JWT {name} is not a number", 401)
            times[name] = float(value)
        if "exp" not in times and "iat" not in times:
            raise WebhookError("bad-signature", "JWT carries neither exp nor iat: it would never expire", 401)
        if "exp" in times and times["exp"] < now - self.leeway_s:
            raise WebhookError("expired-token", "JWT expired", 401)
        if "exp" in times and times["exp"] > now + self.max_lifetime_s + self.leeway_s:
            raise WebhookError("bad-signature", "JWT exp lies beyond the allowed lifetime", 401)
        if "nbf" in times and times["nbf"] > now + self.leeway_s:
            raise WebhookError("bad-signature", "JWT not valid yet", 401)
        if (
            "iat" in times
            and not now - self.max_lifetime_s - self.leeway_s <= times["iat"] <= now + self.leeway_s
        ):
            raise WebhookError("expired-token", "JWT issued outside the allowed lifetime", 401)


class RateLimiter:
    """Token buckets per key (the client address) and one global bucket; sans-I/O (time passed in).
    Keeps at most ``max_keys`` buckets (least recently used dropped); a request refused by its
    address's bucket takes nothing from the global one."""

    def __init__(
        self, rate_per_s: float, burst: float, global_rate_per_s: float, max_keys: int = 4096
    ) -> None:
        self.per_client = TokenBuckets(burst, rate_per_s, max_keys)
        self.overall = TokenBuckets(max(burst, global_rate_per_s), global_rate_per_s, 1)

    def allow(self, key: str, now: float) -> bool:
        return self.per_client.allow(key, now) and self.overall.allow("*", now)


MoSink = Callable[[WebhookMo], Awaitable[str]]


async def _read_bounded(request: Request, limit: int) -> bytes:
    try:
        return await read_body(request, limit)
    except FormRefused:
        raise WebhookError("oversize-request", f"body larger than {limit} bytes", 413) from None


def _fields(body: bytes, content_type: str) -> dict[str, str]:
    if "json" in content_type:
        try:
            data: Any = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise WebhookError("malformed-json", "body is not JSON") from None
        if not isinstance(data, dict):
            raise WebhookError("malformed-json", "body is not a JSON object")
        return {str(k): "" if v is None else str(v) for k, v in data.items() if isinstance(k, str)}
    try:
        pairs = parse_qsl(
            body.decode("ascii"), keep_blank_values=True, max_num_fields=32, strict_parsing=False
        )
    except (UnicodeDecodeError, ValueError):
        raise WebhookError("malformed-form", "body is not a form") from None
    return dict(pairs)


def create_webhook_app(
    sink: MoSink,
    auth: Authenticator,
    limiter: RateLimiter,
    clock: Clock,
    *,
    rejections: Counter[str] | None = None,
    path: str = "/rockblock/mo",
    answer_within_s: float = 2.5,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> Starlette:
    """The webhook endpoint at ``path``. ``sink`` hands a parsed delivery to the pipeline and returns
    its outcome; if it takes longer than ``answer_within_s`` the answer is 503 (the service retries)."""
    counted = rejections if rejections is not None else Counter()

    def refuse(reason: str, detail: str, status: int, peer: str) -> PlainTextResponse:
        counted[reason] += 1
        log.warning("webhook from %s refused (%s): %s", peer, reason, detail)
        return PlainTextResponse(f"FAILED,{reason}", status_code=status)

    async def receive(request: Request) -> PlainTextResponse:
        peer = client_address(request, "?")
        if not limiter.allow(peer, clock.now()):
            return refuse("rate-limited", "too many requests", 429, peer)
        try:
            body = await _read_bounded(request, max_body_bytes)
            fields = _fields(body, request.headers.get("content-type", ""))
            token = request.headers.get("x-seabridge-token") or request.query_params.get("token")
            auth.check(fields, token, clock.now())
            mo = parse_mo(fields)
        except WebhookError as exc:
            return refuse(exc.reason, str(exc), exc.status, peer)
        try:
            outcome = await asyncio.wait_for(sink(mo), answer_within_s)
        except TimeoutError:
            return refuse("slow-pipeline", f"IMEI {mo.imei} MOMSN {mo.momsn} not stored in time", 503, peer)
        log.info("webhook MO %s MOMSN %d: %s", mo.imei, mo.momsn, outcome)
        return PlainTextResponse("OK")

    return Starlette(routes=[Route(path, receive, methods=["POST"])])
