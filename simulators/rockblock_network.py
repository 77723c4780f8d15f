"""Emulated RockBLOCK-style Iridium service: MO by HTTP webhook to the shore, MT by an HTTP send API.

This module owns the network side for vessels whose modem is on a RockBLOCK-style account instead of
a DirectIP provisioning (chosen per vessel: each modem emulator is given either an ``IridiumNetwork``
or a ``RockBlockNetwork``). It satisfies the modem emulator's ``SatelliteNetwork`` protocol:

* **MO path.** Every successful session with an MO payload becomes one webhook delivery: an HTTP POST,
  form-urlencoded, to ``webhook_url`` with the fields ``imei``, ``serial``, ``momsn``,
  ``transmit_time`` (UTC, ``YY-MM-DD HH:MM:SS``), ``iridium_latitude``, ``iridium_longitude``,
  ``iridium_cep`` (km), ``data`` (hex), ``device_type`` (``ROCKBLOCK``) and ``JWT``. The ``JWT`` is an
  RS256 token signed with an RSA key this emulator generates at start (``public_key_pem`` verifies it);
  its claims are the other fields, as strings, plus ``iss`` (``Rock 7``) and ``iat``, the way the real
  service signs a copy of the fields. With ``delivery_format="HTTP_JSON"`` the same fields go as one JSON
  object (the delivery group's ``HTTP_JSON`` setting). Mailbox checks (no payload) are not delivered. A delivery that does not get HTTP 200 within
  ``timeout_s`` is retried after 1, 5, 10, 20, 30, 60, 120, 240, 360 s and then every 360 s until it
  is ``lifetime_s`` old (the service's own schedule is not published; this one mirrors DirectIP's),
  each delay multiplied by ``retry_scale``. Deliveries stay in order per IMEI; the shore de-duplicates
  on IMEI + MOMSN.
* **MT path.** ``POST /rockblock/MT`` with ``imei``, ``username``, ``password``, ``data`` (hex) and
  optional ``flush=yes`` (form or query parameters) answers ``OK,<id>`` or ``FAILED,<code>,<text>``:
  10 bad credentials, 11 IMEI not on this account, 14 data not hex, 15 data too long (profile
  ``mt_max_bytes``), 16 no data, 99 system error (here: the MT queue of ``mt_queue_max`` is full).
  A queued MT rings the modem (``ring_alert``).

It must not read the wall clock (the injected ``Clock`` gives time), must not interpret payloads, and
must not import the gateway or the shore relay. Request bodies and queues are bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from common.clock import Clock
from firmware_profiles import ModemProfile, load_profile
from simulators.http_server import HttpServer
from simulators.iridium_modem import IridiumModemEmulator, MtDelivery
from simulators.iridium_network import MO_LIFETIME_S, MO_RETRY_REPEAT_S, MO_RETRY_SCHEDULE_S

MT_PATH = "/rockblock/MT"
MAX_BODY_BYTES = 16 * 1024
DELIVERY_QUEUE_MAX = 10_000
DEVICE_TYPE = "ROCKBLOCK"
JWT_LIFETIME_S = 600  # exp - iat of each signed POST (every attempt is signed afresh)
#: The ``iss`` claim of the real service's webhook JWT.
JWT_ISSUER = "Rock 7"
#: Delivery formats of a RockBLOCK delivery group: form-urlencoded (``HTTP_POST``) or a JSON object
#: with the same fields (``HTTP_JSON``).
DELIVERY_FORMATS = ("HTTP_POST", "HTTP_JSON")

FAILED_CREDENTIALS = (10, "Invalid login credentials")
FAILED_IMEI = (11, "No RockBLOCK with this IMEI found on your account")
FAILED_HEX = (14, "Could not decode hex data")
FAILED_TOO_LONG = (15, "Data too long")
FAILED_NO_DATA = (16, "Data not provided")
FAILED_SYSTEM = (99, "System error: MT queue full")

_IMEI = re.compile(r"^[0-9]{15}$")


def _failed(reason: tuple[int, str]) -> str:
    return f"FAILED,{reason[0]},{reason[1]}"


_HEX = re.compile(r"^(?:[0-9a-fA-F]{2})*$")


def transmit_time_text(t: float) -> str:
    """``YY-MM-DD HH:MM:SS`` in UTC, as the webhook's ``transmit_time``."""
    return datetime.fromtimestamp(t, UTC).strftime("%y-%m-%d %H:%M:%S")


@dataclass(frozen=True)
class WebhookAttempt:
    imei: str
    momsn: int
    attempt: int
    at: float
    status: int | None  # HTTP status, None when no answer
    delivered: bool


@dataclass
class _Delivery:
    fields: dict[str, str]
    imei: str
    momsn: int
    created: float
    due: float
    attempts: int = 0


@dataclass
class _Device:
    profile: ModemProfile
    serial: str
    mt: deque[tuple[int, bytes]] = field(default_factory=deque)
    mtmsn: int = 0
    location: tuple[float, float, float] | None = None  # latitude, longitude, CEP km
    modem: IridiumModemEmulator | None = None


class RockBlockNetwork:
    """The emulated RockBLOCK-style service. ``attach`` modems (or ``register_imei``), ``await start()``.

    Args:
        clock: time for transmit times, retries and lifetimes.
        webhook_url: where MO deliveries are POSTed ("" = keep them in ``delivered`` only, no HTTP).
        username, password: the account credentials the MT API accepts (generated when not given).
        host, port: where the MT API listens (port 0 = an ephemeral port).
        retry_scale: factor on the retry delays and the lifetime (1.0 = real time).
        timeout_s: how long a webhook POST may take before it counts as failed (real time).
    """

    def __init__(
        self,
        *,
        clock: Clock,
        webhook_url: str = "",
        imeis: dict[str, str] | None = None,
        username: str | None = None,
        password: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        retry_scale: float = 1.0,
        timeout_s: float = 3.0,
        log: logging.Logger | None = None,
        delivery_format: str = "HTTP_POST",
    ) -> None:
        if retry_scale <= 0 or timeout_s <= 0:
            raise ValueError("retry_scale and timeout_s must be positive")
        if delivery_format not in DELIVERY_FORMATS:
            raise ValueError(f"delivery_format is one of {', '.join(DELIVERY_FORMATS)}")
        self.delivery_format = delivery_format
        self._clock = clock
        self.webhook_url = webhook_url
        self.username = username or f"fleet{secrets.randbelow(10**4):04d}"
        self.password = password or secrets.token_hex(8)
        self.retry_scale = retry_scale
        self.timeout_s = timeout_s
        self._log = log or logging.getLogger(__name__)
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_key_pem: bytes = self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self._devices: dict[str, _Device] = {}
        self._queue: deque[_Delivery] = deque()
        self._wake = asyncio.Event()
        self._mt_id = 0
        self.attempts: deque[WebhookAttempt] = deque(maxlen=10_000)
        self.delivered: deque[dict[str, str]] = deque(maxlen=10_000)
        self.stats: dict[str, int] = dict.fromkeys(
            (
                "sessions",
                "mo_queued",
                "mo_delivered",
                "mo_failed_attempts",
                "mo_expired",
                "mt_accepted",
                "mt_rejected",
            ),
            0,
        )
        self.app = Starlette(routes=[Route(MT_PATH, self._api_mt, methods=["POST"])])
        self._http = HttpServer(self.app, host=host, port=port, name="rockblock-mt-api")
        self._deliverer: asyncio.Task[None] | None = None
        for imei, profile_name in (imeis or {}).items():
            self.register_imei(imei, profile_name)

    # -- registry -------------------------------------------------------------------------------

    def register_imei(self, imei: str, profile_name: str, serial: str | None = None) -> None:
        if not _IMEI.match(imei):
            raise ValueError(f"IMEI {imei!r} is not 15 digits")
        device = self._devices.get(imei)
        profile = load_profile(profile_name)
        if device is None:
            self._devices[imei] = _Device(profile, serial or str(10000 + len(self._devices)))
        else:
            device.profile = profile

    def attach(self, modem: IridiumModemEmulator) -> None:
        """Put ``modem``'s IMEI on this account; ring it when an MT message is queued."""
        self.register_imei(modem.imei, modem.profile.name)
        self._devices[modem.imei].modem = modem

    def set_location(self, imei: str, latitude: float, longitude: float, cep_km: float) -> None:
        self._devices[imei].location = (latitude, longitude, cep_km)

    def queued_mt(self, imei: str) -> list[bytes]:
        return [p for _, p in self._devices[imei].mt]

    def pending_mo(self) -> int:
        return len(self._queue)

    # -- SatelliteNetwork -----------------------------------------------------------------------

    def session(
        self, imei: str, mo_payload: bytes | None, momsn: int, now: float, *, take_mt: bool = True
    ) -> MtDelivery:
        device = self._devices.get(imei)
        if device is None:
            raise LookupError(f"IMEI {imei} is not on this account")
        self.stats["sessions"] += 1
        if mo_payload:
            self._enqueue(imei, device, bytes(mo_payload), momsn, now)
        if not device.mt or not take_mt:
            return MtDelivery(queued=len(device.mt))
        mtmsn, payload = device.mt.popleft()
        return MtDelivery(payload=payload, mtmsn=mtmsn, queued=len(device.mt))

    def _enqueue(self, imei: str, device: _Device, payload: bytes, momsn: int, now: float) -> None:
        lat, lon, cep = device.location or (0.0, 0.0, 0.0)
        fields = {
            "imei": imei,
            "serial": device.serial,
            "momsn": str(momsn & 0xFFFF),
            "transmit_time": transmit_time_text(now),
            "iridium_latitude": f"{lat:.4f}",
            "iridium_longitude": f"{lon:.4f}",
            "iridium_cep": f"{cep:.1f}",
            "data": payload.hex(),
            "device_type": DEVICE_TYPE,
        }
        fields["JWT"] = self.sign(fields, now)
        if len(self._queue) >= DELIVERY_QUEUE_MAX:
            dropped = self._queue.popleft()
            self._log.warning("webhook queue full: dropped IMEI %s MOMSN %d", dropped.imei, dropped.momsn)
        self._queue.append(_Delivery(fields, imei, momsn & 0xFFFF, self._clock.now(), self._clock.now()))
        self.stats["mo_queued"] += 1
        self._wake.set()

    def sign(self, fields: dict[str, str], now: float) -> str:
        """The ``JWT`` field: RS256 over the other fields (strings) plus ``iss`` ("Rock 7"), ``iat`` and ``exp``."""
        claims: dict[str, Any] = {k: v for k, v in fields.items() if k != "JWT"}
        claims["iss"] = JWT_ISSUER
        claims["iat"] = int(now)
        claims["exp"] = int(now) + JWT_LIFETIME_S
        return jwt.encode(claims, self._key, algorithm="RS256")

    # -- webhook delivery -----------------------------------------------------------------------

    def retry_delay(self, failures: int) -> float:
        index = failures - 1
        base = MO_RETRY_SCHEDULE_S[index] if index < len(MO_RETRY_SCHEDULE_S) else MO_RETRY_REPEAT_S
        return base * self.retry_scale

    async def _deliver_loop(self) -> None:
        lifetime = MO_LIFETIME_S * self.retry_scale
        async with httpx.AsyncClient(timeout=self.timeout_s) as http:
            while True:
                if not self._queue:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                item = self._queue[0]
                wait = item.due - self._clock.now()
                if wait > 0:
                    self._wake.clear()
                    sleeper = asyncio.ensure_future(self._clock.sleep(wait))
                    waker = asyncio.ensure_future(self._wake.wait())
                    await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
                    sleeper.cancel()
                    waker.cancel()
                    continue
                if self._clock.now() - item.created > lifetime:
                    self._queue.popleft()
                    self.stats["mo_expired"] += 1
                    self._log.warning("webhook for IMEI %s MOMSN %d expired", item.imei, item.momsn)
                    continue
                if await self._attempt(http, item):
                    if self._queue and self._queue[0] is item:
                        self._queue.popleft()
                else:
                    item.due = self._clock.now() + self.retry_delay(item.attempts)

    async def _attempt(self, http: httpx.AsyncClient, item: _Delivery) -> bool:
        item.attempts += 1
        status: int | None = None
        if not self.webhook_url:
            delivered = True
        else:
            item.fields["JWT"] = self.sign(item.fields, self._clock.now())
            try:
                if self.delivery_format == "HTTP_JSON":
                    response = await http.post(self.webhook_url, json=item.fields)
                else:
                    response = await http.post(self.webhook_url, data=item.fields)
                status = response.status_code
                delivered = status == 200
            except httpx.HTTPError as exc:
                delivered = False
                self._log.info("webhook IMEI %s MOMSN %d: %s", item.imei, item.momsn, type(exc).__name__)
        self.attempts.append(
            WebhookAttempt(item.imei, item.momsn, item.attempts, self._clock.now(), status, delivered)
        )
        if delivered:
            self.stats["mo_delivered"] += 1
            self.delivered.append(item.fields)
        else:
            self.stats["mo_failed_attempts"] += 1
            self._log.info(
                "webhook IMEI %s MOMSN %d attempt %d: HTTP %s", item.imei, item.momsn, item.attempts, status
            )
        return delivered

    # -- MT API ---------------------------------------------------------------------------------

    def queue_mt(self, imei: str, payload: bytes, *, flush: bool = False) -> tuple[bool, str]:
        """What the MT API does after authentication: ``(True, "OK,<id>")`` or ``(False, "FAILED,...")``."""
        device = self._devices.get(imei)
        if device is None:
            return False, _failed(FAILED_IMEI)
        if not payload:
            return False, _failed(FAILED_NO_DATA)
        if len(payload) > device.profile.limits.mt_max_bytes:
            return False, _failed(FAILED_TOO_LONG)
        if flush:
            device.mt.clear()
        limit = device.profile.limits.mt_queue_max
        if limit and len(device.mt) >= limit:
            return False, _failed(FAILED_SYSTEM)
        device.mtmsn = device.mtmsn % 0xFFFF + 1
        device.mt.append((device.mtmsn, bytes(payload)))
        self._mt_id += 1
        if device.modem is not None:
            device.modem.ring_alert(self._clock.now())
        return True, f"OK,{self._mt_id}"

    async def _api_mt(self, request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return PlainTextResponse(_failed(FAILED_TOO_LONG))
        params: dict[str, str] = dict(request.query_params)
        with contextlib.suppress(UnicodeDecodeError):
            params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        ok_user = secrets.compare_digest(params.get("username", ""), self.username)
        ok_pass = secrets.compare_digest(params.get("password", ""), self.password)
        result: tuple[bool, str]
        if not (ok_user and ok_pass):
            result = (False, _failed(FAILED_CREDENTIALS))
        elif not _HEX.match(params.get("data", "")):
            result = (False, _failed(FAILED_HEX))
        else:
            result = self.queue_mt(
                params.get("imei", ""),
                bytes.fromhex(params.get("data", "")),
                flush=params.get("flush") == "yes",
            )
        self.stats["mt_accepted" if result[0] else "mt_rejected"] += 1
        return PlainTextResponse(result[1])

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def mt_url(self) -> str:
        return self._http.url(MT_PATH)

    async def start(self) -> None:
        await self._http.start()
        self._deliverer = asyncio.create_task(self._deliver_loop(), name="rockblock-webhook")
        self._log.info(
            "RockBLOCK-style service: MT API %s, webhook %s", self.mt_url, self.webhook_url or "(none)"
        )

    async def stop(self) -> None:
        deliverer, self._deliverer = self._deliverer, None
        if deliverer is not None:
            deliverer.cancel()
            await asyncio.gather(deliverer, return_exceptions=True)
        await self._http.stop()

    async def __aenter__(self) -> RockBlockNetwork:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
