"""The items a frame's plaintext is made of, and their CBOR encoding.

A frame's plaintext is a CBOR sequence (RFC 8742) of items, each a CBOR array whose first element
says what it is:

- ``[0, rid, kind, body]``           a whole record
- ``[1, rid, index, count, chunk]``  fragment ``index`` (0-based) of ``count`` of a large record;
  the chunks joined give the CBOR encoding of ``[kind, body]``
- ``[2, runs]``                      acknowledgement of the peer's frame counters (``ack.encode_ranges``)

``rid`` is the record id: unique per sender and direction, assigned when the record is accepted.
Items are encoded once, when a record is queued, so a resent item is byte-identical to the first send.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import cbor2

from .ack import decode_ranges, encode_ranges
from .ackpolicy import POLICY_ITEMS, CumAckItem, ResendItem, VoidItem, decode_policy_item
from .errors import LocalWireError, MalformedError, OversizeError, RemoteWireError, TruncatedError

ITEM_RECORD = 0
ITEM_FRAGMENT = 1
ITEM_ACK = 2

MAX_RECORD_BYTES = 64 * 1024
MAX_FRAGMENTS = 1024
MAX_PLAINTEXT_BYTES = 16 * 1024


@dataclass(frozen=True)
class RecordItem:
    rid: int
    kind: int
    body: Any


@dataclass(frozen=True)
class FragmentItem:
    rid: int
    index: int
    count: int
    chunk: bytes


@dataclass(frozen=True)
class AckItem:
    counters: frozenset[int]


Item = RecordItem | FragmentItem | AckItem | ResendItem | CumAckItem | VoidItem  # policy items: ackpolicy


def dumps(value: Any) -> bytes:
    return cbor2.dumps(value, canonical=True)


def encode_record_item(rid: int, kind: int, body: Any) -> bytes:
    return dumps([ITEM_RECORD, rid, kind, body])


def encode_fragment_item(rid: int, index: int, count: int, chunk: bytes) -> bytes:
    return dumps([ITEM_FRAGMENT, rid, index, count, chunk])


def encode_ack_item(counters: set[int] | frozenset[int]) -> bytes:
    if not counters:
        raise LocalWireError("an ack item needs at least one counter")
    return dumps([ITEM_ACK, encode_ranges(counters)])


def encode_record_payload(kind: int, body: Any) -> bytes:
    """The bytes a fragmented record is cut from."""
    return dumps([kind, body])


def _uint(value: Any, what: str) -> int:
    if type(value) is not int or value < 0:
        raise MalformedError(f"{what} must be a non-negative integer")
    return value


def _decode_item(value: Any) -> Item:
    if not isinstance(value, list) or not value:
        raise MalformedError("item is not a non-empty array")
    tag = value[0]
    if tag == ITEM_RECORD and len(value) == 4:
        return RecordItem(_uint(value[1], "rid"), _uint(value[2], "kind"), value[3])
    if tag == ITEM_FRAGMENT and len(value) == 5:
        rid, index, count = (_uint(v, n) for v, n in zip(value[1:4], ("rid", "index", "count"), strict=True))
        chunk = value[4]
        if not isinstance(chunk, bytes) or not chunk:
            raise MalformedError("fragment chunk must be non-empty bytes")
        if count < 2 or count > MAX_FRAGMENTS or index >= count:
            raise MalformedError("fragment index/count out of range")
        return FragmentItem(rid, index, count, chunk)
    if tag == ITEM_ACK and len(value) == 2:
        counters = decode_ranges(value[1])
        if not counters:  # the encoder never writes one: an empty ack is not a message
            raise MalformedError("ack item without counters")
        return AckItem(frozenset(counters))
    if type(tag) is int and tag in POLICY_ITEMS:
        return decode_policy_item(value)
    raise MalformedError(f"unknown item type or arity: {tag!r}/{len(value)}")


def loads_one(data: bytes) -> Any:
    """Decode exactly one CBOR value, with every decoder failure turned into a typed error."""
    items = _loads_sequence(data)
    if len(items) != 1:
        raise MalformedError("expected exactly one CBOR value")
    return items[0]


def _loads_sequence(data: bytes) -> list[Any]:
    if len(data) > MAX_PLAINTEXT_BYTES + MAX_RECORD_BYTES:
        raise OversizeError("CBOR input too large")
    fp = io.BytesIO(data)
    decoder = cbor2.CBORDecoder(fp)
    values: list[Any] = []
    while fp.tell() < len(data):
        try:
            values.append(decoder.decode())
        except cbor2.CBORDecodeEOF as exc:
            raise TruncatedError("CBOR value runs past the end") from exc
        except RemoteWireError:
            raise
        except (
            cbor2.CBORDecodeError,
            ValueError,
            TypeError,
            OverflowError,
            RecursionError,
            MemoryError,
            KeyError,
            IndexError,
            LookupError,
            AttributeError,
        ) as exc:
            raise MalformedError(f"not valid CBOR: {exc.__class__.__name__}") from exc
    return values


def decode_items(plaintext: bytes) -> list[Item]:
    """Parse a frame's plaintext; raise a ``RemoteWireError`` subclass on anything invalid."""
    if len(plaintext) > MAX_PLAINTEXT_BYTES:
        raise OversizeError("frame plaintext too large")
    return [_decode_item(v) for v in _loads_sequence(plaintext)]


def join_fragments(count: int, chunks: dict[int, bytes]) -> RecordItem | None:
    """Rebuild a record from its fragments; ``None`` while some are missing. ``rid`` is left 0."""
    if len(chunks) < count:
        return None
    if set(chunks) != set(range(count)):
        raise MalformedError("fragment indexes do not match the count")
    payload = b"".join(chunks[i] for i in range(count))
    if len(payload) > MAX_RECORD_BYTES:
        raise OversizeError("reassembled record too large")
    value = loads_one(payload)
    if not isinstance(value, list) or len(value) != 2:
        raise MalformedError("reassembled record is not [kind, body]")
    return RecordItem(0, _uint(value[0], "kind"), value[1])
