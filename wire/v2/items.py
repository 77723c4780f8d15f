"""The items of a v2 frame: one head byte, varint fields, and a tail that runs to the item's end.

Head byte: bit 7 set = another item follows and this item's length (a varint, head excluded) comes
right after the head; bit 7 clear = this is the last item and it runs to the end of the plaintext.
Bits 6..0: the item type. A lone item therefore costs no length at all.

    0 record     rid, kind, CBOR body (as in v1)
    1 fragment   rid, index, count, chunk
    2 ack        the peer's frame counters as runs: first, length, gap, length, ...
    3..6         crew items (``wire.v2.crew``)

Items are stored as "head byte (bit 7 clear) + body"; ``join_items`` sets bit 7 and inserts the
lengths when a frame is built, so a stored item fits any position in any frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..ack import decode_ranges, encode_ranges
from ..errors import LocalWireError, MalformedError, OversizeError, TruncatedError
from ..items import (
    MAX_FRAGMENTS,
    MAX_PLAINTEXT_BYTES,
    AckItem,
    FragmentItem,
    RecordItem,
    dumps,
    loads_one,
)
from ..varint import decode_varint, encode_varint, varint_size

ITEM_RECORD = 0
ITEM_FRAGMENT = 1
ITEM_ACK = 2
ITEM_CREW = 3  # crew message, authenticated by the frame's epoch tag
ITEM_CREW_SEALED = 4  # crew message carrying its own epoch tag
ITEM_MEMBER = 5  # member handle, authenticated by the frame's epoch tag
ITEM_MEMBER_SEALED = 6  # member handle carrying its own epoch tag
MORE = 0x80
TYPE_MASK = 0x7F


def make_item(item_type: int, *fields: int, tail: bytes = b"") -> bytes:
    if not 0 <= item_type <= TYPE_MASK:
        raise LocalWireError("item type must be 0..127")
    return bytes([item_type]) + b"".join(encode_varint(f) for f in fields) + tail


def item_cost(item: bytes) -> int:
    """Bytes ``item`` takes in a frame when another item follows it (a lone item costs ``len``)."""
    return len(item) + varint_size(len(item) - 1)


def join_items(items: Sequence[bytes]) -> bytes:
    out = bytearray()
    for i, item in enumerate(items):
        if not item or item[0] & MORE:
            raise LocalWireError("a stored item starts with a head byte whose bit 7 is clear")
        if i == len(items) - 1:
            out += item
        else:
            out.append(item[0] | MORE)
            out += encode_varint(len(item) - 1)
            out += item[1:]
    return bytes(out)


def split_items(plaintext: bytes) -> list[tuple[int, bytes]]:
    """``(type, body)`` per item; raises ``RemoteWireError`` on any framing fault."""
    if len(plaintext) > MAX_PLAINTEXT_BYTES:
        raise OversizeError("frame plaintext too large")
    out: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(plaintext):
        head = plaintext[pos]
        pos += 1
        if head & MORE:
            length, pos = decode_varint(plaintext, pos)
            if pos + length > len(plaintext):
                raise TruncatedError("item runs past the end of the frame")
            out.append((head & TYPE_MASK, plaintext[pos : pos + length]))
            pos += length
        else:
            out.append((head, plaintext[pos:]))
            pos = len(plaintext)
    return out


class Reader:
    """Varint fields from the front of an item body, then the tail."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def uint(self) -> int:
        value, self.pos = decode_varint(self.data, self.pos)
        return value

    def rest(self) -> bytes:
        tail = self.data[self.pos :]
        self.pos = len(self.data)
        return tail

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise TruncatedError("item shorter than its fields")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out


def encode_record_item(rid: int, kind: int, body: Any) -> bytes:
    return make_item(ITEM_RECORD, rid, kind, tail=dumps(body))


def encode_fragment_item(rid: int, index: int, count: int, chunk: bytes) -> bytes:
    return make_item(ITEM_FRAGMENT, rid, index, count, tail=chunk)


def encode_ack_item(counters: set[int] | frozenset[int]) -> bytes:
    if not counters:
        raise LocalWireError("an ack item needs at least one counter")
    return make_item(ITEM_ACK, *encode_ranges(counters))


def decode_basic_item(item_type: int, body: bytes) -> RecordItem | FragmentItem | AckItem:
    """Decode a record, fragment or ack item body (types 0..2)."""
    r = Reader(body)
    if item_type == ITEM_RECORD:
        rid, kind = r.uint(), r.uint()
        return RecordItem(rid, kind, loads_one(r.rest()))
    if item_type == ITEM_FRAGMENT:
        rid, index, count = r.uint(), r.uint(), r.uint()
        chunk = r.rest()
        if not chunk:
            raise MalformedError("fragment chunk must not be empty")
        if count < 2 or count > MAX_FRAGMENTS or index >= count:
            raise MalformedError("fragment index/count out of range")
        return FragmentItem(rid, index, count, chunk)
    if item_type == ITEM_ACK:
        runs: list[int] = []
        while r.pos < len(body):
            runs.append(r.uint())
        return AckItem(frozenset(decode_ranges(runs)))
    raise MalformedError(f"unknown item type {item_type}")
