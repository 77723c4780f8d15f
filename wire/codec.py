"""Content codecs, chosen per piece of content by a leading codec byte.

Owns the codec numbers and the choice between codecs. Must not do I/O other than reading its own
packaged model files, and must never return text it cannot vouch for.

Codec numbers (never reused, never redefined):

- 0 raw: the content itself (UTF-8 for text).
- 1 deflate: raw DEFLATE (RFC 1951, no zlib header).
- 2 text model set v1 (``cm1``): static order-5 context models for Burmese, Khmer, Thai and English
  with arithmetic coding (``wire.textcodec``). The body is one arithmetic-coded stream: the language
  (one of four, equally likely), the characters, an end symbol and a 16-bit check value keyed by the
  SHA-256 of the model file. Decoding with a different model fails the check (``ModelCheckError``).
- 3 preset phrases v1 (``wire.presets``): the content is exactly one phrase of preset table v1, sent
  as one varint (row and language); two bytes with the codec byte.
- 4 text model set v2 (``cm2``): the same coder and stream as codec 2, with models trained on the same
  text for new wording (order 3, far more escape probability): sentences the models never saw code
  shorter; the encoder keeps whichever of codecs 2 and 4 is shorter.

The encoder tries every codec the receiver has (``allowed``) and keeps the shortest, so encoded content
is never more than one byte longer than its raw form. Raw is always allowed. Decoding enforces a hard
output limit (decompression bombs). Model files are package data whose SHA-256 is pinned below; a
changed file is refused when first used.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources

from .errors import LocalWireError, MalformedError, OversizeError, TruncatedError, UnknownCodecError
from .presets import PresetTable, load_presets
from .textcodec.arith import ArithmeticDecoder, ArithmeticEncoder
from .textcodec.model import ContextModel, ModelCheckError
from .textcodec.script import candidate_languages

log = logging.getLogger(__name__)

CODEC_RAW = 0
CODEC_DEFLATE = 1
CODEC_TEXT_V1 = 2
CODEC_PRESET_V1 = 3
CODEC_TEXT_V2 = 4

MAX_DECODED_BYTES = 64 * 1024
MAX_TEXT_CHARS_FOR_MODELS = 16 * 1024  # longer text is left to deflate (time bound)
# A model-coded body carries at most this many characters per byte (plus slack), on both ends: it
# bounds the decoder's work on hostile input; text that would exceed it is left to deflate.
MAX_CHARS_PER_BYTE = 16
_CHARS_SLACK_BYTES = 8


@dataclass(frozen=True)
class TextModelSet:
    """One released version of the trained text models: its codec number and pinned files."""

    codec: int
    version: int
    languages: tuple[str, ...]  # index order is part of the wire format
    sha256: dict[str, str]

    def filename(self, lang: str) -> str:
        return f"cm{self.version}-{lang}.json.gz"


TEXT_MODEL_SETS: dict[int, TextModelSet] = {
    CODEC_TEXT_V1: TextModelSet(
        codec=CODEC_TEXT_V1,
        version=1,
        languages=("my", "km", "th", "en"),
        sha256={
            "my": "5aa867ab04b584f449cbdeb8eb763ca5bbe2f37d46942d0ab5f2923b1f818f64",
            "km": "95e8003aa61444967110696fa10cbf0a51b9802af22e461abbb00fb2a7f7f4eb",
            "th": "80e6939d50c3ce8a13e026d51b3a23b4a96f8562b97b7663cccdee373f3e2aaa",
            "en": "7dcba8363cc4f120bfc1c711ac2f6c4dcf765c47e4573db1b8816cf6983b7395",
        },
    ),
    CODEC_TEXT_V2: TextModelSet(
        codec=CODEC_TEXT_V2,
        version=2,
        languages=("my", "km", "th", "en"),
        sha256={
            "my": "6df1b637a959b23aa85c7a78c3f6cc81e58c16d3f37d28aa827ef7de865b494e",
            "km": "f245bc249aa1d664dc51a3ccc593e419a35230b65f6221a7d008e190da8ed495",
            "th": "ddcb9864bc0eb4bde1fe7207c828bba58dc9a5bfcff9f49d3e0a3d60c0d31451",
            "en": "d2d48d7506fc7b75afc58ffd1ed7d755538229dc2a57dc1fac84ac524a37a96c",
        },
    ),
}

# Preset phrase tables: codec number -> (table version, pinned SHA-256 of presets-v<N>.json).
PRESET_TABLES: dict[int, tuple[int, str]] = {
    CODEC_PRESET_V1: (1, "6b80436af7a735e14d4612e6f7c16c5b01d22927b3bd74d5278c1d1576f3fe39"),
}

KNOWN_CODECS = (CODEC_RAW, CODEC_DEFLATE, *TEXT_MODEL_SETS, *PRESET_TABLES)


def preset_table(codec: int = CODEC_PRESET_V1) -> PresetTable:
    """The preset phrase table of preset codec ``codec`` (the captive page shows its phrases)."""
    version, digest = PRESET_TABLES[codec]
    return load_presets(version, digest)


_models: dict[tuple[int, str], ContextModel] = {}
_models_lock = threading.Lock()


def supported_codecs() -> list[int]:
    """Every codec number this build can decode (and so may announce to the peer), ascending."""
    return sorted(KNOWN_CODECS)


def codec_mask(codecs: Iterable[int]) -> int:
    """The set of codecs as one integer, bit ``n`` for codec ``n`` (what a gateway announces)."""
    mask = 0
    for c in codecs:
        if not 0 <= c <= 255:
            raise LocalWireError(f"codec number {c} out of range")
        mask |= 1 << c
    return mask


def codecs_from_mask(mask: int) -> frozenset[int]:
    """The announced codecs; unknown numbers are kept out (we cannot encode with them anyway)."""
    if mask < 0 or mask >= 1 << 256:
        raise MalformedError("codec mask out of range")
    return frozenset(c for c in KNOWN_CODECS if mask >> c & 1) | {CODEC_RAW}


def load_model(codec: int, lang: str) -> ContextModel:
    """The model of ``lang`` in text codec ``codec``, loaded once and checked against its pinned hash."""
    key = (codec, lang)
    with _models_lock:
        model = _models.get(key)
        if model is not None:
            return model
        mset = TEXT_MODEL_SETS.get(codec)
        if mset is None or lang not in mset.sha256:
            raise LocalWireError(f"no text model {lang!r} in codec {codec}")
        resource = resources.files("wire.models") / mset.filename(lang)
        blob = resource.read_bytes()
        if hashlib.sha256(blob).hexdigest() != mset.sha256[lang]:
            raise LocalWireError(f"model file {mset.filename(lang)} does not match its pinned SHA-256")
        model = ContextModel.from_bytes(blob)
        _models[key] = model
        return model


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


# The model codecs are pure functions of their arguments and cost milliseconds in pure Python; the
# same short texts recur (canned phrases, a fleet simulation), so recent results are remembered.
@functools.lru_cache(maxsize=1024)
def encode_model_text(codec: int, lang: str, text: str) -> bytes:
    """Body (without the codec byte) of ``text`` coded with one language model of ``codec``."""
    mset = TEXT_MODEL_SETS[codec]
    enc = ArithmeticEncoder()
    enc.encode_uniform(mset.languages.index(lang), len(mset.languages))
    load_model(codec, lang).encode_into(enc, text)
    body = enc.finish()
    if len(text) > _max_chars(body):
        raise LocalWireError("text too repetitive for the model codec's characters-per-byte bound")
    return body


def _max_chars(body: bytes) -> int:
    return MAX_CHARS_PER_BYTE * (len(body) + _CHARS_SLACK_BYTES)


@functools.lru_cache(maxsize=1024)
def decode_model_text(codec: int, body: bytes, limit: int = MAX_DECODED_BYTES) -> str:
    mset = TEXT_MODEL_SETS[codec]
    if len(body) > limit:
        raise OversizeError(f"content longer than {limit} bytes")
    dec = ArithmeticDecoder(body)
    lang = mset.languages[dec.decode_uniform(len(mset.languages))]
    return load_model(codec, lang).decode_from(dec, limit, _max_chars(body) + 1)


def _allowed(allowed: Iterable[int] | None) -> frozenset[int]:
    if allowed is None:
        return frozenset(KNOWN_CODECS)
    return frozenset(allowed) | {CODEC_RAW}


def encode_bytes(data: bytes, allowed: Iterable[int] | None = None) -> bytes:
    """Shortest of the allowed byte codecs, prefixed by its codec byte (at most ``len(data) + 1``)."""
    best = bytes([CODEC_RAW]) + data
    if data and CODEC_DEFLATE in _allowed(allowed):
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
    if codec in TEXT_MODEL_SETS:
        return decode_model_text(codec, bytes(body), limit).encode("utf-8", "surrogatepass")
    if codec in PRESET_TABLES:
        text = preset_table(codec).decode(bytes(body)).encode("utf-8")
        if len(text) > limit:
            raise OversizeError(f"content longer than {limit} bytes")
        return text
    raise UnknownCodecError(f"unknown codec {codec}")


def encode_text(text: str, allowed: Iterable[int] | None = None, lang: str | None = None) -> bytes:
    """Shortest encoding of ``text`` among the ``allowed`` codecs (default: all this build knows).

    ``allowed`` is what the receiver announced; raw is always allowed. ``lang`` is a hint (``my``,
    ``km``, ``th``, ``en``) tried first; every language whose script occurs in the text is tried too.
    """
    data = text.encode("utf-8")
    ok = _allowed(allowed)
    best = encode_bytes(data, ok)
    if not text or len(text) > MAX_TEXT_CHARS_FOR_MODELS:
        return best
    for codec in sorted(ok & PRESET_TABLES.keys(), reverse=True):
        index = preset_table(codec).encode(text)
        if index is not None and len(index) + 1 < len(best):
            return bytes([codec]) + index
    for codec in sorted(ok & TEXT_MODEL_SETS.keys(), reverse=True):
        mset = TEXT_MODEL_SETS[codec]
        for candidate in candidate_languages(text, lang):
            if candidate not in mset.languages:
                continue
            try:
                coded = bytes([codec]) + encode_model_text(codec, candidate, text)
            except LocalWireError:
                continue
            if len(coded) < len(best):
                best = coded
    return best


def decode_text(encoded: bytes, limit: int = MAX_DECODED_BYTES) -> str:
    raw = decode_bytes(encoded, limit)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedError("text content is not valid UTF-8") from exc


__all__ = [
    "CODEC_DEFLATE",
    "CODEC_PRESET_V1",
    "CODEC_RAW",
    "CODEC_TEXT_V1",
    "CODEC_TEXT_V2",
    "KNOWN_CODECS",
    "MAX_DECODED_BYTES",
    "PRESET_TABLES",
    "TEXT_MODEL_SETS",
    "ModelCheckError",
    "TextModelSet",
    "codec_mask",
    "codecs_from_mask",
    "decode_bytes",
    "decode_model_text",
    "decode_text",
    "encode_bytes",
    "encode_model_text",
    "encode_text",
    "load_model",
    "preset_table",
    "supported_codecs",
]
