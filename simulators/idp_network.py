"""Emulated IsatData Pro network: the satellite side of IDP modems and the IDP Messaging API over HTTP.

This module owns what the IDP gateway does with a mailbox's traffic:

* **Return (MO) path.** Modem emulators hand each transmitted message to :meth:`IdpNetwork.return_message`;
  it is stored with a growing ``ID``, ``MessageUTC``/``ReceiveUTC`` and ``OTAMessageSize`` (the raw
  length, SIN and MIN included) for the shore to poll with ``get_return_messages.json``.
* **Forward (MT) path.** ``submit_messages.json`` queues forward messages per mobile with a growing
  ``ForwardMessageID``; the modem pulls them (``next_forward``/``forward_result``) when its link lets it,
  and the message's ``State`` moves from 0 (submitted) to 1 (received), 3 (delivery failed, the modem's
  queue was full), 4 (timed out after ``forward_lifetime_s``) or 5 (cancelled with
  ``submit_cancelations.json``, possible while it is still submitted). A terminal in low-power mode
  (wakeup interval S51 above 5 s) listens only at its wakeup slots: the submission reports
  ``TerminalWakeupPeriod`` and ``ScheduledSendUTC``, and refuses more than 5000 bytes (21797).
  ``get_forward_statuses.json`` and ``get_forward_messages.json`` report them.
* **The HTTP API**, shaped like the IDP Messaging API v1 (reference inmarsat.md §5): paths
  ``<base>/get_return_messages.json/``, ``submit_messages.json/``, ``get_forward_statuses.json/``,
  ``get_forward_messages.json/``, ``get_mobiles_paged.json/``, ``info_utc_time.json/``; authentication
  with the mailbox ``access_id``/``password`` (query parameters on GET, ``accessID``/``password`` in the
  POST body); times as ``YYYY-MM-DD hh:mm:ss`` UTC; errors as ``ErrorID`` (0 none, 17 bad timestamp,
  116 cannot parse, 16897 unknown destination, 21785 authentication, 21786 invalid parameter).

High-water marks: ``get_return_messages`` takes ``start_utc`` (messages received at or after that
second) or ``from_id`` (messages with ``ID`` at or above it) and returns at most ``page_size`` messages.
``More`` says whether more remain; ``NextStartUTC``/``NextStartID`` are the values to ask with next:
the first message not returned, or after the last one returned when nothing remains (``NextStartUTC``
then repeats the last message's second, so a client polling by time de-duplicates by ``ID`` as with
the real service). With no message at all they are ``""`` and ``-1``.

It must not read the wall clock (the injected ``Clock`` gives time), must not know what a payload
means, and must not import the gateway or the shore relay. Request sizes are bounded.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from common.clock import Clock
from firmware_profiles import ModemProfile, load_profile
from simulators.http_server import HttpServer
from simulators.idp_modem import IdpModemEmulator

API_BASE = "/GLGW/GWServices_v1/RestMessages.svc/"

ERR_NONE = 0
ERR_TIMESTAMP = 17
ERR_PARSE = 116
ERR_UNKNOWN_DESTINATION = 16897
ERR_AUTH = 21785
ERR_PARAMETER = 21786
ERR_QUEUE_FULL = 21795
ERR_LOW_POWER_TOO_LONG = 21797
ERR_CANNOT_CANCEL = 17685

STATE_SUBMITTED = 0
STATE_RECEIVED = 1
STATE_ERROR = 2
STATE_DELIVERY_FAILED = 3
STATE_TIMED_OUT = 4
STATE_CANCELLED = 5

#: A forward message to a terminal in low-power mode (wakeup interval above 5 s) is at most this long.
LOW_POWER_MAX_BYTES = 5000
#: How long a forward message waits for its terminal before it times out (state 4). The sources read
#: give no figure; a week, like the order of Iridium's 5-day MT lifetime.
FORWARD_LIFETIME_S = 7 * 86400.0

MAX_BODY_BYTES = 1 << 20
MAX_IDS_PER_REQUEST = 100
MAX_SUBMISSIONS_PER_REQUEST = 50
RETURN_STORE_MAX = 100_000
FORWARD_QUEUE_MAX = 1_000  # per mobile, submitted and not yet delivered


def utc_text(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")


def parse_utc(text: str) -> float:
    """``YYYY-MM-DD hh:mm:ss`` UTC → Unix seconds; ValueError otherwise."""
    return datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()


@dataclass
class ReturnMessage:
    id: int
    mobile_id: str
    raw: bytes
    received: float

    def as_json(self, region: str) -> dict[str, Any]:
        return {
            "ID": self.id,
            "MessageUTC": utc_text(self.received),
            "ReceiveUTC": utc_text(self.received),
            "SIN": self.raw[0],
            "MobileID": self.mobile_id,
            "RawPayload": list(self.raw),
            "RegionName": region,
            "OTAMessageSize": len(self.raw),
        }


@dataclass
class ForwardMessage:
    id: int
    mobile_id: str
    raw: bytes
    user_id: int
    created: float
    state: int = STATE_SUBMITTED
    state_time: float = 0.0
    error_id: int = 0

    @property
    def closed(self) -> bool:
        return self.state != STATE_SUBMITTED

    def status_json(self) -> dict[str, Any]:
        return {
            "ErrorID": self.error_id,
            "ForwardMessageID": self.id,
            "IsClosed": self.closed,
            "ReferenceNumber": self.id % 10_000,
            "StateUTC": utc_text(self.state_time or self.created),
            "State": self.state,
        }


class IdpNetwork:
    """The emulated IDP network and its Messaging API. ``attach`` modems, ``await start()``.

    Args:
        clock: time for message timestamps.
        access_id, password: the mailbox credentials the API accepts (generated when not given).
        host, port: where the HTTP API listens (port 0 = an ephemeral port).
        page_size: most return messages in one ``get_return_messages`` answer.
        region: the ``RegionName`` reported with each return message.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        access_id: str | None = None,
        password: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        page_size: int = 100,
        forward_lifetime_s: float = FORWARD_LIFETIME_S,
        region: str = "AORWSC",
        log: logging.Logger | None = None,
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be positive")
        self._clock = clock
        self.access_id = access_id or f"7000{secrets.randbelow(10**4):04d}"
        self.password = password or secrets.token_hex(8)
        self.page_size = page_size
        self.forward_lifetime_s = forward_lifetime_s
        self.region = region
        self._log = log or logging.getLogger(__name__)
        self._mobiles: dict[str, ModemProfile] = {}
        self._modems: dict[str, IdpModemEmulator] = {}
        self._registered: dict[str, float] = {}
        self.returns: deque[ReturnMessage] = deque(maxlen=RETURN_STORE_MAX)
        self._next_return_id = 10_000_001
        self.forwards: dict[int, ForwardMessage] = {}
        self._forward_queues: dict[str, deque[int]] = {}
        self._next_forward_id = 5_000_001
        self.app = self._build_app()
        self._http = HttpServer(self.app, host=host, port=port, name="idp-api")

    # -- registry ---------------------------------------------------------------------------

    def register_mobile(self, mobile_id: str, profile_name: str = "inmarsat-idp") -> None:
        self._mobiles[mobile_id] = load_profile(profile_name)
        self._forward_queues.setdefault(mobile_id, deque())
        self._registered.setdefault(mobile_id, self._clock.now())

    def attach(self, modem: IdpModemEmulator) -> None:
        """Provision ``modem``'s mobile ID; wake it when a forward message is submitted for it."""
        self._mobiles[modem.mobile_id] = modem.profile
        self._modems[modem.mobile_id] = modem
        self._forward_queues.setdefault(modem.mobile_id, deque())
        self._registered.setdefault(modem.mobile_id, self._clock.now())

    # -- satellite side (IdpSatelliteNetwork) -------------------------------------------------

    def return_message(self, mobile_id: str, raw: bytes, now: float) -> None:
        if mobile_id not in self._mobiles:
            raise LookupError(f"mobile {mobile_id} is not provisioned")
        message = ReturnMessage(self._next_return_id, mobile_id, bytes(raw), now)
        self._next_return_id += 1
        self.returns.append(message)
        self._log.info("return message %d from %s, %d B", message.id, mobile_id, len(raw))

    def next_forward(self, mobile_id: str, now: float) -> tuple[int, bytes] | None:
        self.expire_forwards(now)
        queue = self._forward_queues.get(mobile_id)
        while queue:
            message = self.forwards.get(queue[0])
            if message is not None and message.state == STATE_SUBMITTED:
                return message.id, message.raw
            queue.popleft()
        return None

    def forward_result(self, mobile_id: str, reference: int, delivered: bool, now: float) -> None:
        message = self.forwards.get(reference)
        queue = self._forward_queues.get(mobile_id)
        if queue and queue[0] == reference:
            queue.popleft()
        if message is None:
            return
        message.state = STATE_RECEIVED if delivered else STATE_DELIVERY_FAILED
        message.state_time = now
        self._log.info("forward message %d to %s: state %d", reference, mobile_id, message.state)

    # -- operations behind the API (callable directly too) ------------------------------------

    def expire_forwards(self, now: float) -> None:
        """Forward messages still submitted after ``forward_lifetime_s`` time out (state 4)."""
        for message in self.forwards.values():
            if message.state == STATE_SUBMITTED and now - message.created > self.forward_lifetime_s:
                message.state, message.state_time = STATE_TIMED_OUT, now

    def cancel(self, ids: list[int]) -> list[dict[str, Any]]:
        """Cancel forward messages not yet received (state 5); one submission record per ID."""
        now = self._clock.now()
        self.expire_forwards(now)
        records = []
        for fid in ids:
            message = self.forwards.get(fid)
            error = ERR_CANNOT_CANCEL if message is None or message.state != STATE_SUBMITTED else ERR_NONE
            if message is not None and error == ERR_NONE:
                message.state, message.state_time = STATE_CANCELLED, now
            dest = message.mobile_id if message is not None else ""
            records.append(
                {"ErrorID": error, "ForwardMessageID": fid, "DestinationID": dest, "StateUTC": utc_text(now)}
            )
        return records

    def submit(self, mobile_id: str, raw: bytes, user_id: int = 0) -> dict[str, Any]:
        """Queue a forward message; the submission record as the API returns it."""
        now = self._clock.now()
        profile = self._mobiles.get(mobile_id)
        record: dict[str, Any] = {
            "ErrorID": ERR_NONE,
            "ForwardMessageID": 0,
            "UserMessageID": user_id,
            "DestinationID": mobile_id,
            "OTAMessageSize": len(raw),
            "StateUTC": utc_text(now),
            "TerminalWakeupPeriod": 0,
            "ScheduledSendUTC": utc_text(now),
        }
        if profile is None:
            record["ErrorID"] = ERR_UNKNOWN_DESTINATION
            return record
        if not raw or len(raw) > profile.limits.mt_max_bytes:
            record["ErrorID"] = ERR_PARAMETER
            return record
        modem = self._modems.get(mobile_id)
        if modem is not None:
            record["TerminalWakeupPeriod"] = modem.sregs.get(51, 0)
            record["ScheduledSendUTC"] = utc_text(modem.next_wakeup_slot(now))
            if modem.wakeup_interval_s > 5 and len(raw) > LOW_POWER_MAX_BYTES:
                record["ErrorID"] = ERR_LOW_POWER_TOO_LONG
                return record
        queue = self._forward_queues.setdefault(mobile_id, deque())
        if len(queue) >= FORWARD_QUEUE_MAX:
            record["ErrorID"] = ERR_QUEUE_FULL
            return record
        message = ForwardMessage(self._next_forward_id, mobile_id, bytes(raw), user_id, now)
        self._next_forward_id += 1
        self.forwards[message.id] = message
        queue.append(message.id)
        record["ForwardMessageID"] = message.id
        if modem is not None:
            modem.forward_waiting(now)
        return record

    def return_page(
        self, *, start_utc: float | None = None, from_id: int | None = None, mobile_id: str | None = None
    ) -> dict[str, Any]:
        """One ``get_return_messages`` answer for a high-water mark (see the module docstring)."""
        if from_id is not None:
            matching = [m for m in self.returns if m.id >= from_id]
        else:
            assert start_utc is not None
            matching = [m for m in self.returns if int(m.received) >= int(start_utc)]
        if mobile_id:
            matching = [m for m in matching if m.mobile_id == mobile_id]
        page = matching[: self.page_size]
        more = len(matching) > len(page)
        if more:
            nxt = matching[len(page)]
            next_utc, next_id = utc_text(nxt.received), nxt.id
        elif page:
            next_utc, next_id = utc_text(page[-1].received), page[-1].id + 1
        else:
            next_utc, next_id = "", -1
        return {
            "ErrorID": ERR_NONE,
            "More": more,
            "NextStartUTC": next_utc,
            "NextStartID": next_id,
            "Messages": [m.as_json(self.region) for m in page] or None,
        }

    # -- HTTP ---------------------------------------------------------------------------------

    def _build_app(self) -> Starlette:
        ops = {
            "get_return_messages": self._api_get_return_messages,
            "submit_messages": self._api_submit_messages,
            "get_forward_statuses": self._api_get_forward_statuses,
            "get_forward_messages": self._api_get_forward_messages,
            "submit_cancelations": self._api_submit_cancelations,
            "get_mobiles_paged": self._api_get_mobiles,
            "info_utc_time": self._api_utc_time,
        }
        routes = []
        for name, handler in ops.items():
            methods = ["POST"] if name == "submit_messages" else ["GET"]
            for suffix in (".json/", ".json"):
                routes.append(Route(f"{API_BASE}{name}{suffix}", handler, methods=methods))
        return Starlette(routes=routes)

    def _authorised(self, access_id: object, password: object) -> bool:
        ok_id = secrets.compare_digest(str(access_id or ""), self.access_id)
        ok_pw = secrets.compare_digest(str(password or ""), self.password)
        return ok_id and ok_pw

    @staticmethod
    def _error(error_id: int, **extra: Any) -> JSONResponse:
        return JSONResponse({"ErrorID": error_id, **extra})

    async def _api_get_return_messages(self, request: Request) -> Response:
        q = request.query_params
        if not self._authorised(q.get("access_id"), q.get("password")):
            return self._error(ERR_AUTH, More=False, NextStartUTC="", NextStartID=-1, Messages=None)
        from_id: int | None = None
        start: float | None = None
        try:
            if q.get("from_id"):
                from_id = int(q["from_id"])
            elif q.get("start_utc"):
                start = parse_utc(q["start_utc"])
            else:
                return self._error(ERR_PARAMETER)
        except ValueError:
            return self._error(ERR_TIMESTAMP if "start_utc" in q else ERR_PARAMETER)
        return JSONResponse(self.return_page(start_utc=start, from_id=from_id, mobile_id=q.get("mobile_id")))

    async def _api_submit_messages(self, request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return self._error(ERR_PARSE)
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return self._error(ERR_PARSE)
        if not isinstance(data, dict):
            return self._error(ERR_PARSE)
        if not self._authorised(data.get("accessID"), data.get("password")):
            return JSONResponse({"SubmitForwardMessages_JResult": {"ErrorID": ERR_AUTH, "Submissions": None}})
        messages = data.get("messages")
        if not isinstance(messages, list) or len(messages) > MAX_SUBMISSIONS_PER_REQUEST:
            return JSONResponse(
                {"SubmitForwardMessages_JResult": {"ErrorID": ERR_PARSE, "Submissions": None}}
            )
        submissions = []
        for item in messages:
            submissions.append(self._submit_item(item))
        return JSONResponse(
            {"SubmitForwardMessages_JResult": {"ErrorID": ERR_NONE, "Submissions": submissions}}
        )

    def _submit_item(self, item: object) -> dict[str, Any]:
        bad = {"ErrorID": ERR_PARSE, "ForwardMessageID": 0, "UserMessageID": 0, "DestinationID": ""}
        if not isinstance(item, dict):
            return bad
        dest = item.get("DestinationID")
        raw = item.get("RawPayload")
        user = item.get("UserMessageID", 0)
        if not isinstance(dest, str) or not isinstance(user, int):
            return bad
        if not isinstance(raw, list) or not all(isinstance(b, int) and 0 <= b <= 255 for b in raw):
            return {**bad, "DestinationID": dest, "UserMessageID": user}
        return self.submit(dest, bytes(raw), user)

    def _forward_ids(self, request: Request) -> list[int] | None:
        text = request.query_params.get("fwIDs", "")
        try:
            ids = [int(part) for part in text.split(",") if part.strip()]
        except ValueError:
            return None
        return ids if len(ids) <= MAX_IDS_PER_REQUEST else None

    async def _api_submit_cancelations(self, request: Request) -> Response:
        q = request.query_params
        if not self._authorised(q.get("access_id"), q.get("password")):
            return self._error(ERR_AUTH, Submissions=None)
        ids = self._forward_ids(request)
        if not ids:
            return self._error(ERR_PARAMETER, Submissions=None)
        return JSONResponse({"ErrorID": ERR_NONE, "Submissions": self.cancel(ids)})

    async def _api_get_forward_statuses(self, request: Request) -> Response:
        q = request.query_params
        if not self._authorised(q.get("access_id"), q.get("password")):
            return self._error(ERR_AUTH, More=False, NextStartUTC="", Statuses=None)
        self.expire_forwards(self._clock.now())
        ids = self._forward_ids(request)
        if ids is None:
            return self._error(ERR_PARAMETER)
        chosen = [self.forwards[i] for i in ids if i in self.forwards]
        if not ids and q.get("start_utc"):
            try:
                start = parse_utc(q["start_utc"])
            except ValueError:
                return self._error(ERR_TIMESTAMP)
            chosen = [m for m in self.forwards.values() if int(m.state_time or m.created) >= int(start)]
            chosen = chosen[: self.page_size]
        statuses = [m.status_json() for m in chosen]
        return JSONResponse(
            {
                "ErrorID": ERR_NONE,
                "More": False,
                "NextStartUTC": utc_text(self._clock.now()),
                "Statuses": statuses or None,
            }
        )

    async def _api_get_forward_messages(self, request: Request) -> Response:
        q = request.query_params
        if not self._authorised(q.get("access_id"), q.get("password")):
            return self._error(ERR_AUTH, Messages=None)
        ids = self._forward_ids(request)
        if ids is None:
            return self._error(ERR_PARAMETER)
        messages = []
        for i in ids:
            m = self.forwards.get(i)
            if m is None:
                continue
            messages.append(
                {
                    "ID": m.id,
                    "DestinationID": m.mobile_id,
                    "CreateUTC": utc_text(m.created),
                    "StatusUTC": utc_text(m.state_time or m.created),
                    "State": m.state,
                    "ErrorID": m.error_id,
                    "IsClosed": m.closed,
                    "ReferenceNumber": m.id % 10_000,
                    "RawPayload": list(m.raw),
                }
            )
        return JSONResponse({"ErrorID": ERR_NONE, "Messages": messages or None})

    async def _api_get_mobiles(self, request: Request) -> Response:
        q = request.query_params
        if not self._authorised(q.get("access_id"), q.get("password")):
            return self._error(ERR_AUTH, Mobiles=None)
        mobiles = [
            {"ID": mid, "Description": "", "LastRegistrationUTC": utc_text(t), "RegionName": self.region}
            for mid, t in sorted(self._registered.items())
        ]
        return JSONResponse({"ErrorID": ERR_NONE, "Mobiles": mobiles or None})

    async def _api_utc_time(self, request: Request) -> Response:
        return JSONResponse(utc_text(self._clock.now()))

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL of the API (ends with ``/``); valid after :meth:`start`."""
        return self._http.url(API_BASE)

    async def start(self) -> None:
        await self._http.start()
        self._log.info("IDP network API on %s (access id %s)", self.url, self.access_id)

    async def stop(self) -> None:
        await self._http.stop()

    async def __aenter__(self) -> IdpNetwork:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
