"""Iridium DirectIP codec: MO and MT messages and their confirmations, as bytes in and typed values out.

Owns the DirectIP byte layouts (Iridium SBD Developers Guide v3.0, §6.2 and §7.2) and nothing else:

* every message is ``protocol revision`` (u8, must be 1) + ``overall length`` (u16, bytes after these
  three) + information elements (IEs); every IE is ``IEI`` (u8) + ``IE length`` (u16) + contents;
  big-endian throughout;
* MO: header 0x01 (28 B), payload 0x02 (absent for mailbox checks and failed sessions), location 0x03
  (11 B — the guide's table says 20, which is wrong), confirmation 0x05 (1 B);
* MT: header 0x41 (21 B), payload 0x42, priority 0x46 (2 B), confirmation 0x44 (25 B).

Decoding is strict about structure and lenient about order: the overall length must match exactly,
every IE must lie inside the message, IEs may come in any order, unknown IEIs are skipped by their
length, a repeated known IE is rejected, and a payload-less MO message is a valid message. Every
problem with the bytes raises a subclass of :class:`DirectIpError` (a ``ValueError``); no other
exception escapes a ``decode_*`` function, whatever the input.

Payload sizes are checked here only against the protocol's absolute maxima (the largest Iridium SBD
buffers, taken from the ``iridium-9523`` firmware profile). A particular modem's smaller limits are the
caller's business: look them up with ``load_profile(name).limits``.

This module must not do I/O: no sockets, files, clocks or logging. The asyncio adapters live in
``shore.directip_server``; the emulated network side in ``simulators.iridium_network``.
``shore.directip_framing.MessageReader`` is the incremental, sans-I/O framer those adapters feed with
received bytes.
"""

from __future__ import annotations

import enum
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from firmware_profiles import load_profile

__all__ = [
    "IEI_MO_CONFIRMATION",
    "IEI_MO_HEADER",
    "IEI_MO_LOCATION",
    "IEI_MO_PAYLOAD",
    "IEI_MT_CONFIRMATION",
    "IEI_MT_HEADER",
    "IEI_MT_PAYLOAD",
    "IEI_MT_PRIORITY",
    "MAX_MESSAGE_LENGTH",
    "MO_PAYLOAD_MAX",
    "MT_PAYLOAD_MAX",
    "MT_PRIORITY_DEFAULT",
    "MT_STATUS_TEXT",
    "PROTOCOL_REVISION",
    "SESSION_STATUS_TEXT",
    "BadField",
    "BadLength",
    "BadRevision",
    "DirectIpError",
    "DuplicateElement",
    "MissingHeader",
    "MoHeader",
    "MoLocation",
    "MoMessage",
    "MtConfirmation",
    "MtFlags",
    "MtMessage",
    "PayloadTooLarge",
    "TruncatedMessage",
    "decode_mo",
    "decode_mo_confirmation",
    "decode_mt",
    "decode_mt_confirmation",
    "encode_mo",
    "encode_mo_confirmation",
    "encode_mt",
    "encode_mt_confirmation",
    "iter_elements",
    "mt_status_text",
    "salvage_mt_header",
]

# --------------------------------------------------------------------------------------------------
# Protocol constants

PROTOCOL_REVISION = 1

IEI_MO_HEADER = 0x01
IEI_MO_PAYLOAD = 0x02
IEI_MO_LOCATION = 0x03
IEI_MO_CONFIRMATION = 0x05
IEI_MT_HEADER = 0x41
IEI_MT_PAYLOAD = 0x42
IEI_MT_CONFIRMATION = 0x44
IEI_MT_PRIORITY = 0x46

PREAMBLE = struct.Struct(">BH")  # revision / IEI, length: the message preamble and every IE header
_MO_HEADER = struct.Struct(">I15sBHHI")  # CDR reference, IMEI, session status, MOMSN, MTMSN, session time
_MO_LOCATION = struct.Struct(">BBHBHI")  # flags, lat deg, lat 1/1000 min, lon deg, lon 1/1000 min, CEP km
_MT_HEADER = struct.Struct(">4s15sH")  # client message id, IMEI, disposition flags
_MT_CONFIRMATION = struct.Struct(">4s15sIh")  # client message id, IMEI, auto-ID reference, status (signed)
_MT_PRIORITY = struct.Struct(">H")
_MO_CONFIRMATION = struct.Struct(">B")

IMEI_LENGTH = 15
_IMEI_DIGITS = re.compile(rb"[0-9]{15}")

# Location flag bits (SBDG Table 6-8): bit 1 NSI (1 = south), bit 0 EWI (1 = west); bits 7..2 must be 0.
_LOCATION_SOUTH = 0x02
_LOCATION_WEST = 0x01
_LOCATION_RESERVED = 0xFC
_THOUSANDTHS_PER_DEGREE = 60_000  # thousandths of a minute per degree

U16_MAX = 0xFFFF
_U32_MAX = 0xFFFF_FFFF

# The protocol's absolute payload maxima are the largest Iridium SBD buffers (9522B/9523 class).
_LARGEST_SBD_PROFILE = load_profile("iridium-9523").limits
MO_PAYLOAD_MAX: int = _LARGEST_SBD_PROFILE.mo_max_bytes
MT_PAYLOAD_MAX: int = _LARGEST_SBD_PROFILE.mt_max_bytes

# Largest overall length :class:`MessageReader` accepts by default: the largest legitimate MO or MT
# message plus room for IEs this codec does not know (e.g. MT location IEs).
_UNKNOWN_IE_ALLOWANCE = 1024
MAX_MESSAGE_LENGTH: int = (
    PREAMBLE.size
    + _MO_HEADER.size
    + PREAMBLE.size
    + max(MO_PAYLOAD_MAX, MT_PAYLOAD_MAX)
    + PREAMBLE.size
    + _MO_LOCATION.size
    + _UNKNOWN_IE_ALLOWANCE
)

MT_PRIORITY_DEFAULT = 5
MT_QUEUE_POSITION_MAX = 50

SESSION_STATUS_TEXT: dict[int, str] = {
    0: "session completed successfully",
    1: "MO completed, but the MT message queued at the gateway is too large",
    2: "MO completed, but the reported location was unacceptable",
    10: "session timed out before completion",
    12: "MO message too large for the transceiver",
    13: "RF link loss during the session",
    14: "protocol anomaly in the transceiver",
    15: "IMEI prohibited from accessing the gateway",
}

MT_STATUS_TEXT: dict[int, str] = {
    0: "accepted, no payload queued",
    -1: "invalid IMEI (not 15 digits)",
    -2: "unknown IMEI (not provisioned for DirectIP)",
    -3: "payload too large",
    -4: "payload expected but missing",
    -5: "MT queue full",
    -6: "MT resources unavailable",
    -7: "DirectIP protocol violation",
    -8: "ring alerts disabled for this IMEI",
    -9: "IMEI not attached (not set up for ring alerts)",
    -10: "source IP address rejected by the MT filter",
    -11: "MTMSN out of range (1-65535)",
    -12: "client certificate rejected",
}


def mt_status_text(status: int) -> str:
    """Human-readable meaning of an MT confirmation status."""
    if 1 <= status <= MT_QUEUE_POSITION_MAX:
        return f"accepted, position {status} in the MT queue"
    return MT_STATUS_TEXT.get(status, f"unknown MT status {status}")


# --------------------------------------------------------------------------------------------------
# Errors


class DirectIpError(ValueError):
    """Bytes that are not a valid DirectIP message, or values that cannot be encoded as one."""


class TruncatedMessage(DirectIpError):
    """Fewer bytes than the preamble or the overall length announce."""


class BadRevision(DirectIpError):
    """The protocol revision byte is not 1."""


class BadLength(DirectIpError):
    """An overall or IE length that does not fit: trailing bytes, an IE running past the end, a fixed-size
    IE of the wrong size, or an overall length above the reader's cap."""


class MissingHeader(DirectIpError):
    """The message has no header IE of the expected kind."""


class DuplicateElement(DirectIpError):
    """A known IE occurs more than once."""


class BadField(DirectIpError):
    """An IE is well framed but a field value is out of its range."""


class PayloadTooLarge(BadField):
    """A payload above the protocol's absolute maximum."""


# --------------------------------------------------------------------------------------------------
# Values


@dataclass(frozen=True)
class MoHeader:
    """MO header IE (0x01). ``session_time`` is Unix epoch seconds (UTC)."""

    cdr_reference: int
    imei: str
    session_status: int
    momsn: int
    mtmsn: int
    session_time: int

    @property
    def session_ok(self) -> bool:
        """True for the session statuses in which the MO transfer completed (0, 1, 2)."""
        return self.session_status in (0, 1, 2)


@dataclass(frozen=True)
class MoLocation:
    """MO location IE (0x03): decimal degrees (south and west negative) and CEP radius in km."""

    latitude: float
    longitude: float
    cep_km: int


@dataclass(frozen=True)
class MoMessage:
    """One MO delivery. ``payload`` is None for mailbox checks and failed sessions."""

    header: MoHeader
    payload: bytes | None = None
    location: MoLocation | None = None


class MtFlags(enum.IntFlag):
    """MT header disposition flags (SBDG Table 7.1-3)."""

    FLUSH_MT_QUEUE = 0x0001
    SEND_RING_ALERT = 0x0002
    UPDATE_LOCATION = 0x0008
    HIGH_PRIORITY = 0x0010
    ASSIGN_MTMSN = 0x0020


@dataclass(frozen=True)
class MtMessage:
    """One MT submission. ``client_message_id`` is 4 opaque bytes echoed in the confirmation (the MTMSN, as
    a big-endian u32, when ``ASSIGN_MTMSN`` is set). ``priority`` is the 0x46 IE value, if present."""

    client_message_id: bytes
    imei: str
    flags: MtFlags = field(default=MtFlags(0))
    payload: bytes | None = None
    priority: int | None = None


@dataclass(frozen=True)
class MtConfirmation:
    """MT confirmation IE (0x44). ``status`` 1..50 is the queue position, 0 success without payload,
    negative an error (see :data:`MT_STATUS_TEXT`). ``auto_id`` is 0 on error."""

    client_message_id: bytes
    imei: str
    auto_id: int
    status: int

    @property
    def ok(self) -> bool:
        return self.status >= 0

    @property
    def status_text(self) -> str:
        return mt_status_text(self.status)


# --------------------------------------------------------------------------------------------------
# Framing


def _as_bytes(data: bytes | bytearray | memoryview) -> bytes:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"expected bytes, got {type(data).__name__}")
    return bytes(data)


def _check_preamble(data: bytes) -> None:
    if len(data) < PREAMBLE.size:
        raise TruncatedMessage(f"{len(data)} bytes is shorter than the 3-byte DirectIP preamble")
    revision, overall = PREAMBLE.unpack_from(data)
    if revision != PROTOCOL_REVISION:
        raise BadRevision(f"protocol revision {revision:#04x}, expected {PROTOCOL_REVISION:#04x}")
    have = len(data) - PREAMBLE.size
    if have < overall:
        raise TruncatedMessage(f"overall length {overall} but only {have} bytes follow the preamble")
    if have > overall:
        raise BadLength(f"overall length {overall} but {have} bytes follow the preamble")


def iter_elements(data: bytes | bytearray | memoryview) -> Iterator[tuple[int, bytes]]:
    """Check the preamble of one whole message and yield its IEs as ``(iei, contents)`` in wire order."""
    raw = _as_bytes(data)
    _check_preamble(raw)
    offset = PREAMBLE.size
    while offset < len(raw):
        if len(raw) - offset < PREAMBLE.size:
            raise BadLength(f"{len(raw) - offset} stray bytes at offset {offset}, too short for an IE header")
        iei, length = PREAMBLE.unpack_from(raw, offset)
        start = offset + PREAMBLE.size
        end = start + length
        if end > len(raw):
            raise BadLength(
                f"IE {iei:#04x} at offset {offset} has length {length}, running past the message end"
            )
        yield iei, raw[start:end]
        offset = end


def _collect(data: bytes | bytearray | memoryview, known: frozenset[int]) -> dict[int, bytes]:
    found: dict[int, bytes] = {}
    for iei, contents in iter_elements(data):
        if iei not in known:
            continue  # unknown IEIs are skipped by length
        if iei in found:
            raise DuplicateElement(f"IE {iei:#04x} occurs more than once")
        found[iei] = contents
    return found


def _frame(elements: list[tuple[int, bytes]]) -> bytes:
    body = b"".join(PREAMBLE.pack(iei, len(contents)) + contents for iei, contents in elements)
    if len(body) > U16_MAX:
        raise BadLength(f"message body of {len(body)} bytes does not fit the u16 overall length")
    return PREAMBLE.pack(PROTOCOL_REVISION, len(body)) + body


def _fixed(iei: int, contents: bytes, layout: struct.Struct) -> tuple[Any, ...]:
    if len(contents) != layout.size:
        raise BadLength(f"IE {iei:#04x} has length {len(contents)}, expected {layout.size}")
    return layout.unpack(contents)


def _check_uint(name: str, value: int, maximum: int, minimum: int = 0) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise BadField(f"{name} {value!r} is outside {minimum}..{maximum}")


def _imei_bytes(imei: str, *, digits_only: bool) -> bytes:
    if not isinstance(imei, str):
        raise BadField(f"IMEI must be a str, got {type(imei).__name__}")
    try:
        raw = imei.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise BadField(f"IMEI {imei!r} is not 15 single-byte characters") from exc
    if len(raw) != IMEI_LENGTH:
        raise BadField(f"IMEI {imei!r} is not {IMEI_LENGTH} characters long")
    if digits_only and not _IMEI_DIGITS.fullmatch(raw):
        raise BadField(f"IMEI {imei!r} is not {IMEI_LENGTH} ASCII digits")
    return raw


def _payload_bytes(name: str, payload: bytes | None, maximum: int) -> bytes | None:
    if payload is None:
        return None
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise BadField(f"{name} must be bytes or None, got {type(payload).__name__}")
    raw = bytes(payload)
    if not raw:
        raise BadField(f"{name} must be None or 1..{maximum} bytes, got an empty payload")
    if len(raw) > maximum:
        raise PayloadTooLarge(f"{name} of {len(raw)} bytes exceeds the DirectIP maximum of {maximum}")
    return raw


def _decode_payload(name: str, contents: bytes | None, maximum: int) -> bytes | None:
    if contents is None:
        return None
    if not contents:
        raise BadLength(f"{name} IE has length 0 (must be 1..{maximum})")
    if len(contents) > maximum:
        raise PayloadTooLarge(f"{name} of {len(contents)} bytes exceeds the DirectIP maximum of {maximum}")
    return contents


# --------------------------------------------------------------------------------------------------
# MO


def _decode_location(contents: bytes) -> MoLocation:
    flags, lat_deg, lat_th, lon_deg, lon_th, cep = _fixed(IEI_MO_LOCATION, contents, _MO_LOCATION)
    if flags & _LOCATION_RESERVED:
        raise BadField(f"location flags {flags:#04x} set reserved / format bits")
    if lat_th >= _THOUSANDTHS_PER_DEGREE or lon_th >= _THOUSANDTHS_PER_DEGREE:
        raise BadField(f"location minutes out of range ({lat_th}, {lon_th} thousandths)")
    lat_units = lat_deg * _THOUSANDTHS_PER_DEGREE + lat_th
    lon_units = lon_deg * _THOUSANDTHS_PER_DEGREE + lon_th
    if lat_units > 90 * _THOUSANDTHS_PER_DEGREE or lon_units > 180 * _THOUSANDTHS_PER_DEGREE:
        raise BadField(f"location {lat_deg}°/{lon_deg}° is outside the globe")
    latitude = lat_deg + lat_th / _THOUSANDTHS_PER_DEGREE
    longitude = lon_deg + lon_th / _THOUSANDTHS_PER_DEGREE
    if flags & _LOCATION_SOUTH:
        latitude = -latitude
    if flags & _LOCATION_WEST:
        longitude = -longitude
    return MoLocation(latitude=latitude, longitude=longitude, cep_km=cep)


def _split_degrees(value: float, limit: int, name: str) -> tuple[int, int]:
    if not isinstance(value, int | float) or not -limit <= value <= limit:
        raise BadField(f"{name} {value!r} is outside -{limit}..{limit}")
    units = round(abs(value) * _THOUSANDTHS_PER_DEGREE)
    return divmod(units, _THOUSANDTHS_PER_DEGREE)


def _encode_location(location: MoLocation) -> bytes:
    lat_deg, lat_th = _split_degrees(location.latitude, 90, "latitude")
    lon_deg, lon_th = _split_degrees(location.longitude, 180, "longitude")
    _check_uint("CEP radius", location.cep_km, _U32_MAX)
    flags = (_LOCATION_SOUTH if location.latitude < 0 else 0) | (
        _LOCATION_WEST if location.longitude < 0 else 0
    )
    return _MO_LOCATION.pack(flags, lat_deg, lat_th, lon_deg, lon_th, location.cep_km)


def decode_mo(data: bytes | bytearray | memoryview) -> MoMessage:
    """Decode one whole DirectIP MO message (header required; payload and location optional)."""
    found = _collect(data, frozenset({IEI_MO_HEADER, IEI_MO_PAYLOAD, IEI_MO_LOCATION}))
    if IEI_MO_HEADER not in found:
        raise MissingHeader("MO message without an MO header IE (0x01)")
    cdr, imei_raw, status, momsn, mtmsn, session_time = _fixed(
        IEI_MO_HEADER, found[IEI_MO_HEADER], _MO_HEADER
    )
    if not _IMEI_DIGITS.fullmatch(imei_raw):
        raise BadField(f"MO header IMEI {imei_raw!r} is not 15 ASCII digits")
    header = MoHeader(
        cdr_reference=int(cdr),
        imei=imei_raw.decode("ascii"),
        session_status=int(status),
        momsn=int(momsn),
        mtmsn=int(mtmsn),
        session_time=int(session_time),
    )
    payload = _decode_payload("MO payload", found.get(IEI_MO_PAYLOAD), MO_PAYLOAD_MAX)
    location = _decode_location(found[IEI_MO_LOCATION]) if IEI_MO_LOCATION in found else None
    return MoMessage(header=header, payload=payload, location=location)


def encode_mo(message: MoMessage) -> bytes:
    """Encode an MO message as the Iridium gateway sends it: header, location (if any), payload (if any)."""
    h = message.header
    _check_uint("CDR reference", h.cdr_reference, _U32_MAX)
    _check_uint("session status", h.session_status, 0xFF)
    _check_uint("MOMSN", h.momsn, U16_MAX)
    _check_uint("MTMSN", h.mtmsn, U16_MAX)
    _check_uint("session time", h.session_time, _U32_MAX)
    imei = _imei_bytes(h.imei, digits_only=True)
    elements = [
        (
            IEI_MO_HEADER,
            _MO_HEADER.pack(h.cdr_reference, imei, h.session_status, h.momsn, h.mtmsn, h.session_time),
        )
    ]
    if message.location is not None:
        elements.append((IEI_MO_LOCATION, _encode_location(message.location)))
    payload = _payload_bytes("MO payload", message.payload, MO_PAYLOAD_MAX)
    if payload is not None:
        elements.append((IEI_MO_PAYLOAD, payload))
    return _frame(elements)


def encode_mo_confirmation(success: bool) -> bytes:
    """The vendor server's MO confirmation: ``01 00 04 05 00 01 01`` (success) or ``… 00`` (failure)."""
    return _frame([(IEI_MO_CONFIRMATION, _MO_CONFIRMATION.pack(1 if success else 0))])


def decode_mo_confirmation(data: bytes | bytearray | memoryview) -> bool:
    """True for an MO confirmation with status 1, False for status 0."""
    found = _collect(data, frozenset({IEI_MO_CONFIRMATION}))
    if IEI_MO_CONFIRMATION not in found:
        raise MissingHeader("no MO confirmation IE (0x05)")
    (status,) = _fixed(IEI_MO_CONFIRMATION, found[IEI_MO_CONFIRMATION], _MO_CONFIRMATION)
    if status not in (0, 1):
        raise BadField(f"MO confirmation status {status}, expected 0 or 1")
    return status == 1


# --------------------------------------------------------------------------------------------------
# MT


def decode_mt(data: bytes | bytearray | memoryview) -> MtMessage:
    """Decode one whole DirectIP MT message.

    The IMEI is returned as sent (15 single-byte characters, possibly not digits) so that a gateway can
    answer "invalid IMEI" instead of dropping the message; disposition flags and priority are not
    judged here either.
    """
    found = _collect(data, frozenset({IEI_MT_HEADER, IEI_MT_PAYLOAD, IEI_MT_PRIORITY}))
    if IEI_MT_HEADER not in found:
        raise MissingHeader("MT message without an MT header IE (0x41)")
    client_id, imei_raw, flags = _fixed(IEI_MT_HEADER, found[IEI_MT_HEADER], _MT_HEADER)
    priority: int | None = None
    if IEI_MT_PRIORITY in found:
        (value,) = _fixed(IEI_MT_PRIORITY, found[IEI_MT_PRIORITY], _MT_PRIORITY)
        priority = int(value)
    payload = _decode_payload("MT payload", found.get(IEI_MT_PAYLOAD), MT_PAYLOAD_MAX)
    return MtMessage(
        client_message_id=client_id,
        imei=imei_raw.decode("latin-1"),
        flags=MtFlags(flags),
        payload=payload,
        priority=priority,
    )


def encode_mt(message: MtMessage) -> bytes:
    """Encode an MT message: header, payload (if any), priority (if any)."""
    client_id = message.client_message_id
    if not isinstance(client_id, bytes) or len(client_id) != 4:
        raise BadField(f"client message id must be 4 bytes, got {client_id!r}")
    imei = _imei_bytes(message.imei, digits_only=True)
    _check_uint("disposition flags", int(message.flags), U16_MAX)
    elements = [(IEI_MT_HEADER, _MT_HEADER.pack(client_id, imei, int(message.flags)))]
    payload = _payload_bytes("MT payload", message.payload, MT_PAYLOAD_MAX)
    if payload is not None:
        elements.append((IEI_MT_PAYLOAD, payload))
    if message.priority is not None:
        _check_uint("priority", message.priority, U16_MAX)
        elements.append((IEI_MT_PRIORITY, _MT_PRIORITY.pack(message.priority)))
    return _frame(elements)


def encode_mt_confirmation(confirmation: MtConfirmation) -> bytes:
    """Encode the gateway's MT confirmation. The IMEI is echoed as received (15 single-byte characters)."""
    client_id = confirmation.client_message_id
    if not isinstance(client_id, bytes) or len(client_id) != 4:
        raise BadField(f"client message id must be 4 bytes, got {client_id!r}")
    imei = _imei_bytes(confirmation.imei, digits_only=False)
    _check_uint("auto-ID reference", confirmation.auto_id, _U32_MAX)
    _check_uint("MT status", confirmation.status, 0x7FFF, minimum=-0x8000)
    contents = _MT_CONFIRMATION.pack(client_id, imei, confirmation.auto_id, confirmation.status)
    return _frame([(IEI_MT_CONFIRMATION, contents)])


def decode_mt_confirmation(data: bytes | bytearray | memoryview) -> MtConfirmation:
    """Decode the gateway's answer to one MT message."""
    found = _collect(data, frozenset({IEI_MT_CONFIRMATION}))
    if IEI_MT_CONFIRMATION not in found:
        raise MissingHeader("no MT confirmation IE (0x44)")
    client_id, imei_raw, auto_id, status = _fixed(
        IEI_MT_CONFIRMATION, found[IEI_MT_CONFIRMATION], _MT_CONFIRMATION
    )
    return MtConfirmation(
        client_message_id=client_id,
        imei=imei_raw.decode("latin-1"),
        auto_id=int(auto_id),
        status=int(status),
    )


def salvage_mt_header(data: bytes | bytearray | memoryview) -> tuple[bytes, str] | None:
    """Best effort ``(client_message_id, imei)`` from bytes that failed to decode, for an error confirmation.

    Walks the IEs without checking the overall length; returns None if no well-sized MT header is found.
    """
    raw = _as_bytes(data)
    offset = PREAMBLE.size
    while offset + PREAMBLE.size <= len(raw):
        iei, length = PREAMBLE.unpack_from(raw, offset)
        start = offset + PREAMBLE.size
        if iei == IEI_MT_HEADER and length == _MT_HEADER.size and start + length <= len(raw):
            client_id, imei_raw, _flags = _MT_HEADER.unpack_from(raw, start)
            return client_id, imei_raw.decode("latin-1")
        offset = start + length
    return None
