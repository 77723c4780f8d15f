"""Unsigned LEB128 varints (7 bits per byte, low group first), used for frame counters."""

from __future__ import annotations

from .errors import LocalWireError, MalformedError, TruncatedError

MAX_VARINT_BYTES = 9  # enough for any counter below 2**63


def encode_varint(value: int) -> bytes:
    if value < 0 or value >= 1 << 63:
        raise LocalWireError(f"varint out of range: {value}")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode_varint(data: bytes, offset: int = 0) -> tuple[int, int]:
    """Return ``(value, next_offset)``. Rejects truncation, over-long and non-minimal encodings."""
    value = 0
    for i in range(MAX_VARINT_BYTES):
        pos = offset + i
        if pos >= len(data):
            raise TruncatedError("varint runs past the end of the data")
        byte = data[pos]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            if i > 0 and byte == 0:
                raise MalformedError("non-minimal varint")
            return value, pos + 1
    raise MalformedError("varint longer than 9 bytes")


def varint_size(value: int) -> int:
    return len(encode_varint(value))
