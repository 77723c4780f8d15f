"""Inmarsat IsatData Pro (IDP) messaging API: return-message poller and forward (MT) submitter.

It owns the shore's conversation with the IDP messaging API v1 (``get_return_messages.json``,
``submit_messages.json``, ``get_forward_statuses.json``): strict, bounded parsing of its JSON (any
malformed answer is a typed :class:`IdpApiError` with a counted reason, never a crash), the
high-water mark (``NextStartUTC``) and the message ids already handed on, both persisted in the
archive so a restart neither skips nor repeats a message, and the SIN byte that frames Seabridge
traffic (from the firmware profile). It must not decrypt frames: return messages go to a sink (the
relay pipeline, or the scale-out ingest), which is idempotent on (mobile id, message id, bytes).

The parsers are sans-I/O; :class:`IdpClient` is the thin HTTP adapter (httpx) and :class:`IdpPoller`
the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from common.clock import Clock

from .archive import Archive

log = logging.getLogger("shore.idp")

NETWORK = "inmarsat-idp"
MAX_MESSAGES_PER_PAGE = 2000
MAX_PAGES_PER_POLL = 20
MAX_RAW_BYTES = 10000  # the larger of the return (6400) and forward (10000) limits, SIN/MIN included
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

# Forward message states (API ``State``).
FORWARD_STATES = {
    0: "submitted",
    1: "delivered",
    2: "error",
    3: "delivery-failed",
    4: "timed-out",
    5: "cancelled",
}


class IdpApiError(ValueError):
    """A malformed or failed API answer; ``reason`` is the counted rejection reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True)
class ReturnMessage:
    id: int
    mobile_id: str
    raw: bytes  # SIN, then (for Seabridge traffic) the frame
    message_utc: str


@dataclass(frozen=True)
class ReturnPage:
    more: bool
    next_start_utc: str
    messages: list[ReturnMessage]


@dataclass(frozen=True)
class Submission:
    error_id: int
    forward_id: int
    user_message_id: int
    destination_id: str


@dataclass(frozen=True)
class ForwardStatus:
    forward_id: int
    state: int
    is_closed: bool
    error_id: int


def utc_text(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime(_TIME_FORMAT)


def _load(body: bytes, limit: int) -> Any:
    if len(body) > limit:
        raise IdpApiError("idp-oversize", f"answer of {len(body)} B exceeds {limit} B")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise IdpApiError("malformed-json", "answer is not JSON") from None


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise IdpApiError("malformed-json", f"{what} is not an object")
    return value


def _int(
    obj: dict[str, Any], key: str, *, lo: int = -(2**63), hi: int = 2**63 - 1, default: int | None = None
) -> int:
    value = obj.get(key, default)
    if type(value) is not int or not lo <= value <= hi:
        raise IdpApiError("malformed-json", f"{key} is not an integer in range")
    return value


def _str(obj: dict[str, Any], key: str, *, max_len: int = 64, default: str | None = None) -> str:
    value = obj.get(key, default)
    if value is None:
        value = ""
    if not isinstance(value, str) or len(value) > max_len:
        raise IdpApiError("malformed-json", f"{key} is not a short string")
    return value


def _check_error(obj: dict[str, Any]) -> None:
    error = _int(obj, "ErrorID", default=0)
    if error != 0:
        raise IdpApiError(f"idp-error-{error}", f"API answered ErrorID {error}")


def _raw(value: Any) -> bytes:
    if not isinstance(value, list) or not value or len(value) > MAX_RAW_BYTES:
        raise IdpApiError("malformed-json", "RawPayload is not a list of 1..10000 bytes")
    if not all(type(b) is int and 0 <= b <= 255 for b in value):
        raise IdpApiError("malformed-json", "RawPayload holds a value that is not a byte")
    return bytes(value)


def parse_return_messages(body: bytes, limit: int = 4 * 1024 * 1024) -> ReturnPage:
    """Parse a ``get_return_messages`` answer. Raises :class:`IdpApiError`."""
    obj = _obj(_load(body, limit), "answer")
    _check_error(obj)
    more = obj.get("More", False)
    if not isinstance(more, bool):
        raise IdpApiError("malformed-json", "More is not a boolean")
    messages_raw = obj.get("Messages")
    if messages_raw is None:
        messages_raw = []
    if not isinstance(messages_raw, list) or len(messages_raw) > MAX_MESSAGES_PER_PAGE:
        raise IdpApiError("malformed-json", "Messages is not a list of bounded length")
    messages = []
    for entry in messages_raw:
        m = _obj(entry, "message")
        messages.append(
            ReturnMessage(
                id=_int(m, "ID", lo=0),
                mobile_id=_str(m, "MobileID", max_len=32),
                raw=_raw(m.get("RawPayload")),
                message_utc=_str(m, "MessageUTC", max_len=32, default=""),
            )
        )
    return ReturnPage(more, _str(obj, "NextStartUTC", max_len=32, default=""), messages)


def parse_submit(body: bytes) -> list[Submission]:
    obj = _obj(_load(body, 1024 * 1024), "answer")
    result = _obj(obj.get("SubmitForwardMessages_JResult"), "SubmitForwardMessages_JResult")
    _check_error(result)
    subs = result.get("Submissions")
    if not isinstance(subs, list) or len(subs) > MAX_MESSAGES_PER_PAGE:
        raise IdpApiError("malformed-json", "Submissions is not a list")
    out = []
    for entry in subs:
        s = _obj(entry, "submission")
        out.append(
            Submission(
                error_id=_int(s, "ErrorID", default=0),
                forward_id=_int(s, "ForwardMessageID", default=0),
                user_message_id=_int(s, "UserMessageID", default=0),
                destination_id=_str(s, "DestinationID", max_len=32, default=""),
            )
        )
    return out


def parse_forward_statuses(body: bytes) -> list[ForwardStatus]:
    obj = _obj(_load(body, 1024 * 1024), "answer")
    _check_error(obj)
    statuses = obj.get("Statuses") or []
    if not isinstance(statuses, list) or len(statuses) > MAX_MESSAGES_PER_PAGE:
        raise IdpApiError("malformed-json", "Statuses is not a list")
    out = []
    for entry in statuses:
        s = _obj(entry, "status")
        closed = s.get("IsClosed", False)
        if not isinstance(closed, bool):
            raise IdpApiError("malformed-json", "IsClosed is not a boolean")
        out.append(
            ForwardStatus(
                forward_id=_int(s, "ForwardMessageID", lo=0),
                state=_int(s, "State", lo=0, hi=5),
                is_closed=closed,
                error_id=_int(s, "ErrorID", default=0),
            )
        )
    return out


class IdpClient:
    """HTTP adapter for the messaging API (mailbox access id + password)."""

    def __init__(
        self,
        base_url: str,
        access_id: str,
        password: str,
        *,
        timeout_s: float = 20.0,
        max_bytes: int = 4 << 20,
    ) -> None:
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.access_id = access_id
        self.password = password
        self.max_bytes = max_bytes
        self._http = httpx.AsyncClient(timeout=timeout_s)

    async def close(self) -> None:
        await self._http.aclose()

    async def _get(self, op: str, params: dict[str, str]) -> bytes:
        params = {"access_id": self.access_id, "password": self.password, **params}
        try:
            async with self._http.stream("GET", self.base_url + op, params=params) as r:
                body = bytearray()
                async for chunk in r.aiter_bytes():
                    body += chunk
                    if len(body) > self.max_bytes:
                        raise IdpApiError("idp-oversize", f"answer exceeds {self.max_bytes} B")
                if r.status_code != 200:
                    raise IdpApiError("idp-http-error", f"{op}: HTTP {r.status_code}")
                return bytes(body)
        except httpx.HTTPError as exc:
            raise IdpApiError("idp-unreachable", f"{op}: {exc}") from None

    async def get_return_messages(self, start_utc: str) -> ReturnPage:
        body = await self._get(
            "get_return_messages.json/",
            {"start_utc": start_utc, "include_raw_payload": "true", "include_type": "true"},
        )
        return parse_return_messages(body, self.max_bytes)

    async def submit_messages(self, messages: list[tuple[str, int, bytes]]) -> list[Submission]:
        """Submit forward messages ``(destination mobile id, user message id, raw payload incl. SIN)``."""
        payload = {
            "accessID": self.access_id,
            "password": self.password,
            "messages": [
                {"DestinationID": dest, "UserMessageID": uid, "RawPayload": list(raw)}
                for dest, uid, raw in messages
            ],
        }
        try:
            r = await self._http.post(self.base_url + "submit_messages.json/", json=payload)
        except httpx.HTTPError as exc:
            raise IdpApiError("idp-unreachable", f"submit_messages: {exc}") from None
        if r.status_code != 200:
            raise IdpApiError("idp-http-error", f"submit_messages: HTTP {r.status_code}")
        return parse_submit(r.content)

    async def get_forward_statuses(self, forward_ids: list[int]) -> list[ForwardStatus]:
        body = await self._get("get_forward_statuses.json/", {"fwIDs": ",".join(str(i) for i in forward_ids)})
        return parse_forward_statuses(body)


ReturnSink = Callable[[str, int, bytes], Awaitable[str]]


class IdpPoller:
    """Polls return messages, hands Seabridge frames (after the SIN byte) to ``sink``, and persists
    the high-water mark and the ids handed on after each page."""

    def __init__(
        self,
        client: IdpClient,
        archive: Archive,
        sink: ReturnSink,
        clock: Clock,
        *,
        sin: int,
        poll_s: float = 20.0,
        start_utc: str = "",
        rejections: Counter[str] | None = None,
    ) -> None:
        self.client = client
        self.archive = archive
        self.sink = sink
        self.clock = clock
        self.sin = sin
        self.poll_s = poll_s
        self.start_utc = start_utc
        self.source = f"idp:{client.access_id}"
        self.rejections: Counter[str] = rejections if rejections is not None else Counter()
        self.handed_on = 0
        self.last_poll_ok: float | None = None

    def _reject(self, reason: str, detail: str) -> None:
        self.rejections[reason] += 1
        log.warning("IDP input refused (%s): %s", reason, detail)

    def _seen(self, msg_id: int) -> bool:
        rows = self.archive.query(
            "SELECT 1 FROM seen_ids WHERE source = ? AND msg_id = ?", (self.source, str(msg_id))
        )
        return bool(rows)

    def _remember(self, msg_ids: list[int], mark: str | None) -> None:
        now = self.clock.now()
        with self.archive.tx() as db:
            for msg_id in msg_ids:
                Archive.first_sight(db, self.source, str(msg_id), now)
            if mark:
                Archive.set_mark(db, self.source, mark, now)

    async def poll_once(self) -> int:
        """One poll (following ``More`` for a bounded number of pages). Returns messages handed on."""
        mark = await asyncio.to_thread(self.archive.get_mark, self.source)
        if mark is None:
            mark = self.start_utc or utc_text(self.clock.now())
        handed = 0
        for _page in range(MAX_PAGES_PER_POLL):
            try:
                page = await self.client.get_return_messages(mark)
            except IdpApiError as exc:
                self._reject(exc.reason, str(exc))
                return handed
            done: list[int] = []
            for message in page.messages:
                if await asyncio.to_thread(self._seen, message.id):
                    continue
                if message.raw[0] != self.sin:
                    log.debug("IDP message %d has SIN %d, not ours", message.id, message.raw[0])
                    self.rejections["idp-foreign-sin"] += 1
                elif len(message.raw) < 2:
                    self._reject("truncated", f"IDP message {message.id} has no frame")
                else:
                    outcome = await self.sink(message.mobile_id, message.id, message.raw[1:])
                    log.info("IDP %s message %d: %s", message.mobile_id, message.id, outcome)
                    handed += 1
                done.append(message.id)
            next_mark = page.next_start_utc or mark
            await asyncio.to_thread(self._remember, done, next_mark)
            mark = next_mark
            if not page.more:
                break
        self.handed_on += handed
        self.last_poll_ok = self.clock.now()
        return handed

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                await self.poll_once()
            except Exception:  # the loop must survive anything one poll throws
                log.exception("IDP poll failed")
                self.rejections["idp-poll-failed"] += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self.poll_s)
