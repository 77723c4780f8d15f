"""Content codecs, chosen per piece of content by a leading codec byte.

Codec 0 is the raw form (UTF-8 for text). Codec 1 is raw DEFLATE (RFC 1951, no zlib header). The encoder
tries every codec it knows and keeps the shortest, so encoded content is never more than one byte
longer than its raw form. Decoding enforces a hard output limit (decompression bombs). Trained codecs
for the crews' languages get new codec numbers; numbers are never reused.
"""

from __future__ import annotations

import zlib

from .errors import MalformedError, OversizeError, TruncatedError, UnknownCodecError

CODEC_RAW = 0
CODEC_DEFLATE = 1
KNOWN_CODECS = (CODEC_RAW, CODEC_DEFLATE)

MAX_DECODED_BYTES = 64 * 1024


def _deflate(data: bytes) -> bytes:
    comp = zlib.compressobj(level=9, wbits=-15, memLevel=9)
    return comp.compress(data) + comp.flush()


def _inflate(data: bytes, limit: int) -> bytes:
    decomp = zlib.decompressobj(wbits=-15)
    try:
        out = decomp.decompress(data, limit + 1)
    except zlib.error as exc:
        raise MalformedError(f"bad deflate stream: {exc}") from exc
    if len(out) > limit:
        raise OversizeError(f"content inflates beyond {limit} bytes")
    if not decomp.eof:
        raise TruncatedError("deflate stream is incomplete")
    if decomp.unused_data:
        raise MalformedError("bytes after the end of the deflate stream")
    return out


def encode_bytes(data: bytes) -> bytes:
    """Shortest of the known codecs, prefixed by its codec byte (at most ``len(data) + 1`` bytes)."""
    best = bytes([CODEC_RAW]) + data
    if data:
        deflated = bytes([CODEC_DEFLATE]) + _deflate(data)
        if len(deflated) < len(best):
            best = deflated
    return best


def decode_bytes(encoded: bytes, limit: int = MAX_DECODED_BYTES) -> bytes:
    if not encoded:
        raise TruncatedError("empty content: codec byte missing")
    codec, body = encoded[0], encoded[1:]
    if codec == CODEC_RAW:
        if len(body) > limit:
            raise OversizeError(f"content longer than {limit} bytes")
        return bytes(body)
    if codec == CODEC_DEFLATE:
        return _inflate(body, limit)
    raise UnknownCodecError(f"unknown codec {codec}")


def encode_text(text: str) -> bytes:
    return encode_bytes(text.encode("utf-8"))


def decode_text(encoded: bytes, limit: int = MAX_DECODED_BYTES) -> str:
    raw = decode_bytes(encoded, limit)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedError("text content is not valid UTF-8") from exc
