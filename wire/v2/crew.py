"""Crew content in wire format v2: sealed once under the RAM-only epoch key, sent with 4-5 bytes of head.

When a crew message is accepted, the gateway encrypts its content (destination and coded text) under
the epoch key and computes an 8-byte epoch tag over the message's identity (epoch, record id, member,
minute of creation) and the ciphertext. That is all the disk ever holds: a *format-2 body*, a CBOR map
that travels as is inside a v1 frame, compactly as a ``crew-sealed`` item (type 4) inside a v2 frame,
and, when the frame itself is sealed under the epoch key, as a ``crew`` item (type 3) without the
tag, with the record id as a delta from the epoch's base and the time as minutes before the frame.
The member's handle travels the same way, once per member and epoch (types 5 and 6).

Nothing here reads a clock: ``now`` (unix seconds) is the frame's time, the sender's clock when it
seals, the receiver's receive time when it opens.
"""

from __future__ import annotations

import hmac
import struct
from dataclasses import dataclass
from typing import Any

from ..errors import MalformedError
from ..varint import encode_varint
from .crypto import CREW_ENC, CREW_MAC, TAG_BYTES, check_tag, derive, stream_xor, tag
from .items import (
    ITEM_CREW,
    ITEM_CREW_SEALED,
    ITEM_MEMBER,
    ITEM_MEMBER_SEALED,
    Reader,
    make_item,
)

FORMAT = 2
KIND_CREW_MESSAGE = 2  # wire.records.Kind.CREW_MESSAGE (records imports codecs; this module must not)
KIND_MEMBER = 9  # wire.records.Kind.MEMBER
ADDRESSED = 0xFF  # first content byte of a message not for the hotline (codec numbers stay below it)
TIME_EPOCH = 1_704_067_200  # wire.records.TIME_EPOCH


@dataclass
class FrameEpoch:
    """A crew epoch as both ends use it for v2 frames: its number, key and base record id (the id of
    its EPOCH record). ``announced``: the sender knows the EPOCH record has left, so frames may be
    sealed under this epoch (the receiver needs it to open them)."""

    number: int
    key: bytes
    base_rid: int
    announced: bool = False


def _keys(epoch_key: bytes) -> tuple[bytes, bytes]:
    return derive(epoch_key, CREW_ENC), derive(epoch_key, CREW_MAC)


def _nonce(rid: int) -> bytes:
    return b"SB2C" + struct.pack(">Q", rid) + bytes(12)


def _ids(*values: int) -> bytes:
    return b"".join(encode_varint(v) for v in values)


def wire_minute(unix: float) -> int:
    return max(0, int(unix) - TIME_EPOCH) // 60


def encode_content(to: str, coded_text: bytes) -> bytes:
    """The sealed plaintext: the coded text alone for the hotline, else a marker and the address."""
    if to == "hotline":
        if coded_text[:1] == bytes([ADDRESSED]):
            raise MalformedError("codec byte 0xFF is reserved")
        return coded_text
    address = to.encode("utf-8")
    return bytes([ADDRESSED]) + encode_varint(len(address)) + address + coded_text


def decode_content(content: bytes) -> tuple[str, bytes]:
    if content[:1] != bytes([ADDRESSED]):
        return "hotline", content
    r = Reader(content[1:])
    address = r.take(r.uint())
    try:
        return address.decode("utf-8"), r.rest()
    except UnicodeDecodeError as exc:
        raise MalformedError("address is not UTF-8") from exc


def seal_crew(
    epoch: int, epoch_key: bytes, rid: int, member: int, created: float, to: str, coded_text: bytes
) -> dict[int, Any]:
    """The format-2 body of a crew message, sealed under the epoch key (created: unix seconds)."""
    enc, mac = _keys(epoch_key)
    minute = wire_minute(created)
    ciphertext = stream_xor(enc, _nonce(rid), encode_content(to, coded_text))
    t = tag(mac, b"crew", _ids(epoch, rid, member, minute), ciphertext)
    return {0: member, 1: epoch, 2: ciphertext, 3: minute * 60, 4: t, 5: FORMAT}


def seal_member(epoch: int, epoch_key: bytes, rid: int, member: int, handle: str) -> dict[int, Any]:
    """The format-2 body binding a member number to a handle for one epoch."""
    _, mac = _keys(epoch_key)
    name = handle.encode("utf-8")
    return {0: member, 1: epoch, 2: handle, 4: tag(mac, b"member", _ids(epoch, rid, member), name), 5: FORMAT}


def is_format2(body: Any) -> bool:
    return isinstance(body, dict) and body.get(5) == FORMAT


def _uint(body: dict[int, Any], key: int) -> int:
    value = body.get(key)
    if type(value) is not int or value < 0:
        raise MalformedError(f"field {key} must be a non-negative integer")
    return value


def _bytes(body: dict[int, Any], key: int, size: int | None = None) -> bytes:
    value = body.get(key)
    if not isinstance(value, bytes) or (size is not None and len(value) != size):
        raise MalformedError(f"field {key} must be bytes" + ("" if size is None else f" of {size}"))
    return value


def _crew_fields(body: Any) -> tuple[int, int, bytes, int, bytes]:
    if not is_format2(body):
        raise MalformedError("not a format-2 crew body")
    created = _uint(body, 3)
    if created % 60:
        raise MalformedError("format-2 times are whole minutes")
    return _uint(body, 0), _uint(body, 1), _bytes(body, 2), created // 60, _bytes(body, 4, TAG_BYTES)


def _member_fields(body: Any) -> tuple[int, int, str, bytes]:
    if not is_format2(body) or not isinstance(body.get(2), str):
        raise MalformedError("not a format-2 member body")
    return _uint(body, 0), _uint(body, 1), body[2], _bytes(body, 4, TAG_BYTES)


def open_crew(epoch_key: bytes, rid: int, body: Any) -> tuple[str, bytes, float]:
    """Verify and decrypt a format-2 crew body: ``(to, coded text, created unix seconds)``."""
    member, epoch, ciphertext, minute, t = _crew_fields(body)
    enc, mac = _keys(epoch_key)
    check_tag(mac, t, b"crew", _ids(epoch, rid, member, minute), ciphertext)
    to, coded = decode_content(stream_xor(enc, _nonce(rid), ciphertext))
    return to, coded, float(TIME_EPOCH + minute * 60)


def open_member(epoch_key: bytes, rid: int, body: Any) -> tuple[int, int, str]:
    """Verify a format-2 member body: ``(member, epoch, handle)``."""
    member, epoch, handle, t = _member_fields(body)
    check_tag(_keys(epoch_key)[1], t, b"member", _ids(epoch, rid, member), handle.encode("utf-8"))
    return member, epoch, handle


def body_epoch(body: Any) -> int:
    """The epoch a format-2 body belongs to."""
    if not is_format2(body):
        raise MalformedError("not a format-2 body")
    return _uint(body, 1)


# --- compact items --------------------------------------------------------------------------------


def sealed_item(rid: int, kind: int, body: Any) -> bytes | None:
    """The compact v2 item of a format-2 crew or member body (its own tag); None for anything else."""
    if kind == KIND_CREW_MESSAGE and is_format2(body):
        member, epoch, ciphertext, minute, t = _crew_fields(body)
        return make_item(ITEM_CREW_SEALED, epoch, rid, member, minute, tail=ciphertext + t)
    if kind == KIND_MEMBER and is_format2(body):
        member, epoch, handle, t = _member_fields(body)
        return make_item(ITEM_MEMBER_SEALED, epoch, rid, member, tail=handle.encode("utf-8") + t)
    return None


def attach(item: bytes, epoch: FrameEpoch | None, now: float) -> bytes:
    """The form ``item`` takes in a frame sealed under ``epoch``: a sealed crew or member item of that
    epoch loses its tag (the frame's covers it), its record id becomes a delta from the epoch's base
    and its time minutes before ``now``. Anything else, or an item whose tag does not verify (altered
    on disk), is returned unchanged, so the shore sees and refuses the alteration."""
    if (
        epoch is None
        or not epoch.announced
        or not item
        or item[0] not in (ITEM_CREW_SEALED, ITEM_MEMBER_SEALED)
    ):
        return item
    r = Reader(item[1:])
    number, rid, member = r.uint(), r.uint(), r.uint()
    if number != epoch.number or rid <= epoch.base_rid:
        return item
    _, mac = _keys(epoch.key)
    if item[0] == ITEM_CREW_SEALED:
        minute = r.uint()
        rest = r.rest()
        ciphertext, t = rest[:-TAG_BYTES], rest[-TAG_BYTES:]
        if not hmac.compare_digest(tag(mac, b"crew", _ids(number, rid, member, minute), ciphertext), t):
            return item
        age = max(0, wire_minute(now) - minute)
        return make_item(ITEM_CREW, rid - epoch.base_rid, member, age, tail=ciphertext)
    rest = r.rest()
    name, t = rest[:-TAG_BYTES], rest[-TAG_BYTES:]
    if not hmac.compare_digest(tag(mac, b"member", _ids(number, rid, member), name), t):
        return item
    return make_item(ITEM_MEMBER, rid - epoch.base_rid, member, tail=name)


def decode_crew_item(
    item_type: int, body: bytes, epoch: FrameEpoch | None, now: float
) -> tuple[int, int, Any]:
    """``(rid, kind, format-2 body)`` of a crew item (types 3..6). An attached item (3, 5) is only
    valid in a frame sealed under ``epoch``; the receiver re-tags it with the epoch key so that every
    format-2 body it keeps carries a tag it can check again later."""
    r = Reader(body)
    if item_type in (ITEM_CREW_SEALED, ITEM_MEMBER_SEALED):
        number, rid, member = r.uint(), r.uint(), r.uint()
        minute = r.uint() if item_type == ITEM_CREW_SEALED else 0
        rest = r.rest()
        if len(rest) < TAG_BYTES:
            raise MalformedError("sealed crew item shorter than its tag")
        payload, t = rest[:-TAG_BYTES], rest[-TAG_BYTES:]
        if item_type == ITEM_CREW_SEALED:
            return rid, KIND_CREW_MESSAGE, {0: member, 1: number, 2: payload, 3: minute * 60, 4: t, 5: FORMAT}
        return rid, KIND_MEMBER, {0: member, 1: number, 2: _text(payload), 4: t, 5: FORMAT}
    if epoch is None:
        raise MalformedError("an attached crew item outside a frame sealed under an epoch")
    delta, member = r.uint(), r.uint()
    if delta == 0:
        raise MalformedError("attached crew item with record id delta 0")
    rid = epoch.base_rid + delta
    if item_type == ITEM_CREW:
        minute = max(0, wire_minute(now) - r.uint())
        ciphertext = r.rest()
        _, mac = _keys(epoch.key)
        t = tag(mac, b"crew", _ids(epoch.number, rid, member, minute), ciphertext)
        return (
            rid,
            KIND_CREW_MESSAGE,
            {0: member, 1: epoch.number, 2: ciphertext, 3: minute * 60, 4: t, 5: FORMAT},
        )
    handle = _text(r.rest())
    return rid, KIND_MEMBER, seal_member(epoch.number, epoch.key, rid, member, handle)


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedError("handle is not UTF-8") from exc
