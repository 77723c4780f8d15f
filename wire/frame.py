"""Frames: what one satellite message carries, sealed for one direction of one vessel's link.

Layout (all of it, byte by byte, is in ``docs/wire-format.md``)::

    header (1 byte)   bits 7..5 format version (1), bit 4 direction (0 = vessel to shore, 1 = shore to
                      vessel), bits 3..0 key slot (0..15, lets keys rotate)
    counter (varint)  frame counter of this direction, never reused under one key
    ciphertext        XChaCha20-Poly1305 over the plaintext items; last 16 bytes are the tag

The nonce is implicit (header + counter) and the header and counter are the associated data.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from .crypto import TAG_BYTES, aead_open, aead_seal, frame_nonce
from .errors import LocalWireError, MalformedError, OversizeError, TruncatedError, UnsupportedVersionError
from .items import Item, decode_items
from .varint import decode_varint, encode_varint, varint_size

FORMAT_VERSION = 1
MAX_FRAME_BYTES = 16 * 1024


class Direction(IntEnum):
    MO = 0  # mobile originated: vessel to shore
    MT = 1  # mobile terminated: shore to vessel


def make_header(direction: Direction, key_slot: int = 0) -> int:
    if not 0 <= key_slot <= 15:
        raise LocalWireError("key slot must be 0..15")
    return FORMAT_VERSION << 5 | int(direction) << 4 | key_slot


def frame_overhead(counter: int) -> int:
    """Bytes a frame spends beyond its items: header, counter varint and the AEAD tag."""
    return 1 + varint_size(counter) + TAG_BYTES


def frame_capacity(limit: int, counter: int) -> int:
    """Plaintext bytes available for items in a frame of at most ``limit`` bytes."""
    room = limit - frame_overhead(counter)
    if room <= 0:
        raise LocalWireError(f"a frame limit of {limit} bytes leaves no room for items")
    return room


def seal_frame(
    key: bytes, direction: Direction, counter: int, items: list[bytes], limit: int, key_slot: int = 0
) -> bytes:
    """Build a frame from already-encoded items; refuse to exceed ``limit`` bytes."""
    header = make_header(direction, key_slot)
    prefix = bytes([header]) + encode_varint(counter)
    plaintext = b"".join(items)
    if len(prefix) + len(plaintext) + TAG_BYTES > limit:
        raise LocalWireError(
            f"frame of {len(prefix) + len(plaintext) + TAG_BYTES} bytes exceeds the limit of {limit}"
        )
    return prefix + aead_seal(key, frame_nonce(header, counter), plaintext, prefix)


@dataclass(frozen=True)
class FrameHeader:
    direction: Direction
    key_slot: int
    counter: int
    body_offset: int


def parse_header(frame: bytes) -> FrameHeader:
    """Read the clear part of a frame (no key needed)."""
    if len(frame) > MAX_FRAME_BYTES:
        raise OversizeError("frame larger than any modem allows")
    if not frame:
        raise TruncatedError("empty frame")
    header = frame[0]
    if header >> 5 != FORMAT_VERSION:
        raise UnsupportedVersionError(f"frame format version {header >> 5} is not supported")
    counter, offset = decode_varint(frame, 1)
    if len(frame) - offset < TAG_BYTES:
        raise TruncatedError("frame shorter than its authentication tag")
    return FrameHeader(Direction(header >> 4 & 1), header & 0x0F, counter, offset)


def open_frame(key: bytes, frame: bytes, expect: Direction) -> tuple[FrameHeader, list[Item]]:
    """Verify and decrypt a frame and parse its items. Raises ``RemoteWireError`` subclasses."""
    head = parse_header(frame)
    if head.direction != expect:
        raise MalformedError(f"frame is for direction {head.direction.name}, expected {expect.name}")
    prefix = frame[: head.body_offset]
    plaintext = aead_open(key, frame_nonce(frame[0], head.counter), frame[head.body_offset :], prefix)
    return head, decode_items(plaintext)
