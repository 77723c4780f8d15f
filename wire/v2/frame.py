"""Frames of wire format v2: 11 bytes of overhead whatever the counter.

Layout (``docs/wire-format.md`` has every byte)::

    header (1 byte)    bits 7..5 format version (2); bit 4 direction (0 = vessel to shore);
                       bit 3 crew-sealed (the tag is under the link key and the crew epoch key);
                       bit 2 epoch parity (crew-sealed frames); bits 1..0 key slot
    counter (2 bytes)  the low 16 bits of the frame counter, big-endian; the receiver restores
                       the rest from the highest counter it has accepted (``expand_counter``)
    ciphertext         XChaCha20 of the items under the link's encryption subkey
    tag (8 bytes)      keyed BLAKE2b over header, full counter and ciphertext

The nonce is implicit (header + full counter), so the two directions and the two formats never share
one, and the full counter is authenticated although only 16 bits of it travel.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence

from ..errors import (
    AuthenticationError,
    LocalWireError,
    MalformedError,
    OversizeError,
    RemoteWireError,
    TruncatedError,
    UnsupportedVersionError,
)
from ..frame import MAX_FRAME_BYTES, Direction, FrameHeader
from ..items import Item, RecordItem
from .ackitems import POLICY_ITEMS_V2, decode_policy_item_v2
from .crew import FrameEpoch, decode_crew_item
from .crypto import FRAME_CREW_MAC, FRAME_ENC, FRAME_MAC, TAG_BYTES, check_tag, derive, stream_xor, tag
from .items import ITEM_ACK, ITEM_MEMBER_SEALED, decode_basic_item, join_items, split_items

FORMAT_VERSION = 2
COUNTER_BYTES = 2
COUNTER_SPAN = 1 << (8 * COUNTER_BYTES)
OVERHEAD = 1 + COUNTER_BYTES + TAG_BYTES

EpochLookup = Callable[[int], FrameEpoch | None]


class EpochUnknownError(RemoteWireError):
    """A crew-sealed frame names an epoch the receiver has not been told about (yet)."""

    reason = "epoch-unknown"


def make_header(direction: Direction, epoch: FrameEpoch | None = None, key_slot: int = 0) -> int:
    if not 0 <= key_slot <= 3:
        raise LocalWireError("v2 key slot must be 0..3")
    crew = 0 if epoch is None else 0b1000 | (epoch.number & 1) << 2
    return FORMAT_VERSION << 5 | int(direction) << 4 | crew | key_slot


def frame_overhead(counter: int = 0) -> int:
    """Bytes a v2 frame spends beyond its items, for any counter: header, 2 counter bytes, tag."""
    return OVERHEAD


def frame_capacity(limit: int, counter: int = 0) -> int:
    room = limit - OVERHEAD
    if room <= 0:
        raise LocalWireError(f"a frame limit of {limit} bytes leaves no room for items")
    return room


def expand_counter(low: int, highest: int) -> int:
    """The counter whose low 16 bits are ``low`` nearest above ``highest`` (the highest accepted):
    within 32 767 behind or 32 768 ahead of the next expected counter."""
    if highest < 0:
        return low
    expected = highest + 1
    counter = expected + ((low - expected + COUNTER_SPAN // 2) % COUNTER_SPAN) - COUNTER_SPAN // 2
    return counter if counter >= 0 else counter + COUNTER_SPAN


def _nonce(header: int, counter: int) -> bytes:
    return b"SB2" + bytes([header]) + struct.pack(">Q", counter) + bytes(12)


def _mac_key(link_key: bytes, epoch: FrameEpoch | None) -> bytes:
    return derive(link_key, FRAME_MAC) if epoch is None else derive(link_key, FRAME_CREW_MAC, epoch.key)


def seal_frame(
    link_key: bytes,
    direction: Direction,
    counter: int,
    items: Sequence[bytes],
    limit: int,
    epoch: FrameEpoch | None = None,
    key_slot: int = 0,
) -> bytes:
    """Build a v2 frame from stored items (already in the form they travel: see ``crew.attach``)."""
    return seal_plaintext(link_key, direction, counter, join_items(items), limit, epoch, key_slot)


def seal_plaintext(
    link_key: bytes,
    direction: Direction,
    counter: int,
    plaintext: bytes,
    limit: int,
    epoch: FrameEpoch | None = None,
    key_slot: int = 0,
) -> bytes:
    """Seal already-joined items (``seal_frame`` joins them; tests seal arbitrary plaintext)."""
    if not 0 <= counter < 1 << 63:
        raise LocalWireError("counter out of range")
    header = make_header(direction, epoch, key_slot)
    prefix = bytes([header]) + (counter % COUNTER_SPAN).to_bytes(COUNTER_BYTES, "big")
    ciphertext = stream_xor(derive(link_key, FRAME_ENC), _nonce(header, counter), plaintext)
    size = len(prefix) + len(ciphertext) + TAG_BYTES
    if size > limit:
        raise LocalWireError(f"frame of {size} bytes exceeds the limit of {limit}")
    full = struct.pack(">Q", counter)
    return prefix + ciphertext + tag(_mac_key(link_key, epoch), prefix[:1], full, ciphertext)


def parse_header(frame: bytes, highest: int) -> FrameHeader:
    if len(frame) > MAX_FRAME_BYTES:
        raise OversizeError("frame larger than any modem allows")
    if not frame:
        raise TruncatedError("empty frame")
    if frame[0] >> 5 != FORMAT_VERSION:
        raise UnsupportedVersionError(f"frame format version {frame[0] >> 5} is not version 2")
    if len(frame) < OVERHEAD:
        raise TruncatedError("frame shorter than its header and tag")
    low = int.from_bytes(frame[1 : 1 + COUNTER_BYTES], "big")
    return FrameHeader(Direction(frame[0] >> 4 & 1), frame[0] & 0b11, expand_counter(low, highest), 3)


def open_frame(
    link_key: bytes,
    frame: bytes,
    expect: Direction,
    highest: int,
    epochs: EpochLookup | None = None,
    now: float = 0.0,
) -> tuple[FrameHeader, list[Item]]:
    """Verify, decrypt and parse a v2 frame. ``highest``: the highest counter accepted from this
    peer (-1 for none); ``epochs(parity)``: the receiver's latest epoch of that parity (crew-sealed
    frames); ``now``: the frame's time (crew items carry their age). Raises ``RemoteWireError``."""
    head = parse_header(frame, highest)
    if head.direction != expect:
        raise MalformedError(f"frame is for direction {head.direction.name}, expected {expect.name}")
    epoch = None
    if frame[0] & 0b1000:
        epoch = epochs(frame[0] >> 2 & 1) if epochs is not None else None
        if epoch is None:
            raise EpochUnknownError("frame sealed under a crew epoch this receiver does not know")
    ciphertext = frame[3:-TAG_BYTES]
    try:
        check_tag(
            _mac_key(link_key, epoch),
            frame[-TAG_BYTES:],
            frame[:1],
            struct.pack(">Q", head.counter),
            ciphertext,
        )
    except AuthenticationError as exc:
        raise AuthenticationError("frame failed authentication") from exc
    plaintext = stream_xor(derive(link_key, FRAME_ENC), _nonce(frame[0], head.counter), ciphertext)
    return head, decode_items(plaintext, epoch, now)


def decode_items(plaintext: bytes, epoch: FrameEpoch | None, now: float) -> list[Item]:
    out: list[Item] = []
    for item_type, body in split_items(plaintext):
        if item_type <= ITEM_ACK:
            out.append(decode_basic_item(item_type, body))
        elif item_type <= ITEM_MEMBER_SEALED:
            out.append(RecordItem(*decode_crew_item(item_type, body, epoch, now)))
        elif item_type in POLICY_ITEMS_V2:
            out.append(decode_policy_item_v2(item_type, body))
        else:
            raise MalformedError(f"unknown item type {item_type}")
    return out
