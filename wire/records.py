"""Record kinds, their priority classes and their compact bodies (CBOR maps with integer keys).

Records are what people and systems hand to Seabridge; frames are how they travel. Each kind has a
fixed priority class. Times are whole seconds since ``TIME_EPOCH`` (2024-01-01T00:00:00Z), which keeps
them to four bytes for decades.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import cbor2

from .codec import decode_text, encode_text
from .crypto import PUBLIC_KEY_BYTES
from .errors import MalformedError
from .items import dumps, loads_one

TIME_EPOCH = 1_704_067_200  # 2024-01-01T00:00:00Z


class PriorityClass(IntEnum):
    """Highest first: lower value goes first."""

    DISTRESS = 0
    CONTROL = 1
    CREW = 2
    CATCH = 3
    TELEMETRY = 4


class Kind(IntEnum):
    SOS = 0
    EPOCH = 1  # crew sealing epoch announcement (control)
    CREW_MESSAGE = 2  # vessel to shore, sealed for the shore's crew key
    CREW_REPLY = 3  # shore to vessel, for one crew member
    CATCH = 4
    TELEMETRY = 5
    NOTICE = 6  # shore to vessel control/notice text
    ALERT = 7  # vessel to shore operational alert (budget 80 % / 100 %): control class
    CAPABILITIES = 8  # vessel to shore: the codecs (model versions) this gateway can decode
    MEMBER = 9  # vessel to shore: a member's handle, once per member and crew epoch (format 2)


KIND_CLASS: dict[Kind, PriorityClass] = {
    Kind.SOS: PriorityClass.DISTRESS,
    Kind.EPOCH: PriorityClass.CONTROL,
    Kind.NOTICE: PriorityClass.CONTROL,
    Kind.ALERT: PriorityClass.CONTROL,
    Kind.CAPABILITIES: PriorityClass.CONTROL,
    Kind.MEMBER: PriorityClass.CONTROL,
    Kind.CREW_MESSAGE: PriorityClass.CREW,
    Kind.CREW_REPLY: PriorityClass.CREW,
    Kind.CATCH: PriorityClass.CATCH,
    Kind.TELEMETRY: PriorityClass.TELEMETRY,
}


def to_wire_time(unix: float) -> int:
    return max(0, int(unix) - TIME_EPOCH)


def from_wire_time(value: int) -> float:
    return float(value + TIME_EPOCH)


def _map(body: Any, kind: str) -> dict[int, Any]:
    if not isinstance(body, dict) or not all(type(k) is int for k in body):
        raise MalformedError(f"{kind} body must be a map with integer keys")
    return body


def _field(body: dict[int, Any], key: int, typ: type | tuple[type, ...], what: str) -> Any:
    value = body.get(key)
    if not isinstance(value, typ) or isinstance(value, bool):
        raise MalformedError(f"field {what} missing or of the wrong type")
    if isinstance(value, int) and value < 0:
        raise MalformedError(f"field {what} must not be negative")
    return value


# --- crew message: the sealed content ------------------------------------------------------------

HOTLINE = "hotline"


@dataclass(frozen=True)
class CrewContent:
    """What a crew member wrote, and to whom. Only the shore's crew key can read it once sealed."""

    to: str  # "hotline" or a family contact label/number typed by the member
    text: str
    handle: str  # the member's pseudonymous handle (never a real name)

    def encode(self) -> bytes:
        return dumps({0: self.to, 1: encode_text(self.text), 2: self.handle})

    @classmethod
    def decode(cls, data: bytes) -> CrewContent:
        body = _map(loads_one(data), "crew content")
        return cls(
            to=_field(body, 0, str, "to"),
            text=decode_text(_field(body, 1, bytes, "text")),
            handle=_field(body, 2, str, "handle"),
        )


@dataclass(frozen=True)
class CrewMessage:
    member: int  # the gateway's member number (routes replies back)
    epoch: int
    sealed: bytes
    created: int  # wire time

    def body(self) -> dict[int, Any]:
        return {0: self.member, 1: self.epoch, 2: self.sealed, 3: self.created}

    @classmethod
    def from_body(cls, body: Any) -> CrewMessage:
        b = _map(body, "crew message")
        return cls(
            _field(b, 0, int, "member"),
            _field(b, 1, int, "epoch"),
            _field(b, 2, bytes, "sealed"),
            _field(b, 3, int, "created"),
        )


@dataclass(frozen=True)
class Epoch:
    number: int
    public_key: bytes

    def body(self) -> dict[int, Any]:
        return {0: self.number, 1: self.public_key}

    @classmethod
    def from_body(cls, body: Any) -> Epoch:
        b = _map(body, "epoch")
        key = _field(b, 1, bytes, "public_key")
        if len(key) != PUBLIC_KEY_BYTES:
            raise MalformedError("epoch public key must be 32 bytes")
        return cls(_field(b, 0, int, "number"), key)


@dataclass(frozen=True)
class CrewReply:
    member: int
    text: str
    sender: str  # "hotline" or a family relay label
    created: int

    def body(self, allowed: Iterable[int] | None = None) -> dict[int, Any]:
        """``allowed``: the codecs the receiving gateway announced (see ``Capabilities``)."""
        return {0: self.member, 1: encode_text(self.text, allowed), 2: self.sender, 3: self.created}

    @classmethod
    def from_body(cls, body: Any) -> CrewReply:
        b = _map(body, "crew reply")
        return cls(
            _field(b, 0, int, "member"),
            decode_text(_field(b, 1, bytes, "text")),
            _field(b, 2, str, "sender"),
            _field(b, 3, int, "created"),
        )


@dataclass(frozen=True)
class Sos:
    """A vessel distress alert, or an update of one (``update_of``: the alert's record id): another
    device confirmed it (``devices``, the count so far) or it was a false alarm. An update carries
    only what changed, so it costs a few bytes and rides with whatever is sent next."""

    created: int
    latitude_e5: int | None = None  # degrees x 1e5, signed
    longitude_e5: int | None = None
    note: str = ""
    update_of: int | None = None
    devices: int = 1  # devices that confirmed the alert so far
    false_alarm: bool = False

    def body(self) -> dict[int, Any]:
        out: dict[int, Any] = {0: self.created}
        if self.latitude_e5 is not None and self.longitude_e5 is not None:
            out[1] = self.latitude_e5
            out[2] = self.longitude_e5
        if self.note:
            out[3] = encode_text(self.note)
        if self.update_of is not None:
            out[4] = self.update_of
        if self.devices != 1:
            out[5] = self.devices
        if self.false_alarm:
            out[6] = 1
        return out

    @classmethod
    def from_body(cls, body: Any) -> Sos:
        b = _map(body, "sos")
        lat, lon = b.get(1), b.get(2)
        if (lat is None) != (lon is None) or any(v is not None and type(v) is not int for v in (lat, lon)):
            raise MalformedError("sos position must be two integers")
        note = decode_text(_field(b, 3, bytes, "note")) if 3 in b else ""
        update_of = _field(b, 4, int, "update_of") if 4 in b else None
        devices = _field(b, 5, int, "devices") if 5 in b else 1
        false_alarm = _field(b, 6, int, "false_alarm") == 1 if 6 in b else False
        return cls(_field(b, 0, int, "created"), lat, lon, note, update_of, devices, false_alarm)


# The covert alert a crew member sends with the captive page's "Clear screen" button: an ordinary
# sealed crew message to the hotline with this text, which the shore recognises as a personal-safety
# alert. One constant for both ends.
PERSONAL_ALERT_TEXT = "[personal safety alert] Please contact me quietly."


# --- telemetry and alerts from the gateway ----------------------------------------------------------

POSITION_SOURCES = ("gps", "idp-gnss", "iridium")


@dataclass(frozen=True)
class Telemetry:
    """A compact state report: position, queue depth, budget state and link statistics."""

    created: int  # wire time
    latitude_e5: int | None = None
    longitude_e5: int | None = None
    fix_source: int | None = None  # index into POSITION_SOURCES
    fix_age_s: int | None = None
    queue: tuple[tuple[int, int, int], ...] = ()  # (class, records, bytes) per class with a backlog
    budget_day_permille: int = 0
    budget_month_permille: int = 0
    link: tuple[int, ...] = ()  # sessions, failed sessions, frames sent, bytes sent, frames received

    def body(self) -> dict[int, Any]:
        out: dict[int, Any] = {0: self.created}
        if self.latitude_e5 is not None and self.longitude_e5 is not None:
            out[1] = self.latitude_e5
            out[2] = self.longitude_e5
            if self.fix_source is not None:
                out[3] = self.fix_source
            if self.fix_age_s is not None:
                out[4] = self.fix_age_s
        if self.queue:
            out[5] = [list(q) for q in self.queue]
        out[6] = self.budget_day_permille
        out[7] = self.budget_month_permille
        if self.link:
            out[8] = list(self.link)
        return out

    @classmethod
    def from_body(cls, body: Any) -> Telemetry:
        b = _map(body, "telemetry")
        lat, lon = b.get(1), b.get(2)
        if (lat is None) != (lon is None) or any(v is not None and type(v) is not int for v in (lat, lon)):
            raise MalformedError("telemetry position must be two integers")
        queue = b.get(5, [])
        if not isinstance(queue, list) or not all(
            isinstance(q, list) and len(q) == 3 and all(type(v) is int and v >= 0 for v in q) for q in queue
        ):
            raise MalformedError("telemetry queue must be a list of [class, records, bytes]")
        link = b.get(8, [])
        if not isinstance(link, list) or not all(type(v) is int and v >= 0 for v in link):
            raise MalformedError("telemetry link statistics must be non-negative integers")
        return cls(
            _field(b, 0, int, "created"),
            lat,
            lon,
            # A fix's source and age mean nothing without the fix (and are not written without one).
            _field(b, 3, int, "fix_source") if 3 in b and lat is not None else None,
            _field(b, 4, int, "fix_age_s") if 4 in b and lat is not None else None,
            tuple(tuple(q) for q in queue),  # type: ignore[misc]
            _field(b, 6, int, "budget_day_permille") if 6 in b else 0,
            _field(b, 7, int, "budget_month_permille") if 7 in b else 0,
            tuple(link),
        )


@dataclass(frozen=True)
class Alert:
    """An operational alert, e.g. ``budget`` / ``day`` / 800 permille used."""

    created: int  # wire time
    topic: str  # "budget"
    period: str  # "day" or "month"
    level_permille: int  # 800 or 1000
    used: float
    limit: float
    unit: str  # "bytes", "units" or a currency code

    def body(self) -> dict[int, Any]:
        return {
            0: self.created,
            1: self.topic,
            2: self.period,
            3: self.level_permille,
            4: self.used,
            5: self.limit,
            6: self.unit,
        }

    @classmethod
    def from_body(cls, body: Any) -> Alert:
        b = _map(body, "alert")
        return cls(
            _field(b, 0, int, "created"),
            _field(b, 1, str, "topic"),
            _field(b, 2, str, "period"),
            _field(b, 3, int, "level_permille"),
            float(_field(b, 4, (int, float), "used")),
            float(_field(b, 5, (int, float), "limit")),
            _field(b, 6, str, "unit"),
        )


@dataclass(frozen=True)
class Capabilities:
    """What a gateway can decode, announced when it starts with a set different from the last one.
    The shore encodes traffic to that vessel only with these codecs (raw and DEFLATE always work)."""

    codecs_mask: int  # bit n set = codec n (``codec.codec_mask``)
    software: str = ""
    wire_versions: int = 0  # bit n set = wire format version n (``versions.versions_mask``); 0: v1 only

    def body(self) -> dict[int, Any]:
        out: dict[int, Any] = {0: self.codecs_mask}
        if self.software:
            out[1] = self.software[:32]
        if self.wire_versions:
            out[2] = self.wire_versions
        return out

    @classmethod
    def from_body(cls, body: Any) -> Capabilities:
        b = _map(body, "capabilities")
        software = b.get(1, "")
        if not isinstance(software, str) or len(software) > 32:
            raise MalformedError("software must be short text")
        versions = _field(b, 2, int, "wire_versions") if 2 in b else 0
        return cls(_field(b, 0, int, "codecs_mask"), software, versions)


CONTENT_SIZE_CLASS = 32  # sealed v1 crew content is a multiple of this many bytes (plus the seal's tag)
_PAD_KEY = 3  # CBOR map key of the padding in the crew content (the shore ignores unknown keys)


def pad_content(plain: bytes) -> bytes:
    """Encoded crew content (a CBOR map) padded with zero bytes under key 3 to the next multiple of
    ``CONTENT_SIZE_CLASS`` bytes (one more class when the padding's own length prefix overshoots), so
    that its size tells only a size class, on the vessel's disk and on the air."""
    fields = cbor2.loads(plain)
    target = -(-(len(plain) + 2) // CONTENT_SIZE_CLASS) * CONTENT_SIZE_CLASS
    for size in (target, target + CONTENT_SIZE_CLASS):
        for header in (1, 2, 3):  # bytes the padding's own length prefix takes
            out = dumps({**fields, _PAD_KEY: bytes(max(0, size - len(plain) - 1 - header))})
            if len(out) == size:
                return out
    raise AssertionError(f"no padding reaches a size class from {len(plain)} bytes")


def padded_content(content: CrewContent) -> bytes:
    """``content`` encoded and padded to its size class (``pad_content``)."""
    return pad_content(content.encode())
