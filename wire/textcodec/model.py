"""Static context models over Unicode code points (PPM-style, trained once, never adapted at run time).

Owns the probability model a text codec drives the arithmetic coder with: for each context (the last
1..N characters) a frozen table of next-character counts and an escape count; when a character is not
in the longest known context the coder escapes to a shorter one, down to order 0 (every character seen
in training, plus the end-of-message symbol), and finally to a script-aware order -1 that codes any code
point: cheaply when it lies in the same 128-code-point block as the character before it (one byte per
letter for a small-alphabet script, as SCSU does), otherwise as one of the 0x110000 code points.

A message ends with the end symbol followed by a check value: ``check_bits`` bits of a keyed BLAKE2b of
the text under the model file's SHA-256. Decoding with any other model fails the check instead of
returning garbage.

Must not do: I/O beyond reading its own model bytes, adaptation (both ends must stay bit-identical),
or floating point in the coding path.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import LocalWireError, MalformedError, OversizeError
from .arith import MAX_TOTAL, ArithmeticDecoder, ArithmeticEncoder

MODEL_FORMAT = 1
END = -1  # end-of-message symbol, never a code point
BOS = "\x02"  # history before the first character
CODE_POINTS = 0x110000
_BLOCK = 128
_SAME_BLOCK = (0, 7, 8)  # order -1 flag: 7/8 "same block as the previous character"
_OTHER_BLOCK = (7, 8, 8)
MAX_MODEL_BYTES = 4 * 1024 * 1024


class ModelCheckError(MalformedError):
    """The check value did not match: wrong model version, or corrupted content."""

    reason = "codec-check"


@dataclass
class _Table:
    syms: list[int]
    cum: list[int]  # len(syms) + 1 cumulative counts; cum[-1] is where the escape starts
    total: int
    _index: dict[int, int] | None = None

    @property
    def index(self) -> dict[int, int]:
        if self._index is None:
            self._index = {s: i for i, s in enumerate(self.syms)}
        return self._index


@dataclass
class ContextModel:
    """One trained model: its name (for example ``cm1-my``), language, order and frozen tables."""

    name: str
    lang: str
    order: int
    check_bits: int
    digest: bytes  # SHA-256 of the model file the tables came from
    raw_tables: dict[str, list[Any]]
    _tables: dict[str, _Table | None] = field(default_factory=dict)

    # --- loading ---------------------------------------------------------------------------------

    @classmethod
    def from_bytes(cls, blob: bytes) -> ContextModel:
        if len(blob) > MAX_MODEL_BYTES:
            raise LocalWireError("model file too large")
        digest = hashlib.sha256(blob).digest()
        try:
            data = json.loads(gzip.decompress(blob))
        except (OSError, EOFError, ValueError) as exc:
            raise LocalWireError(f"model file unreadable: {exc}") from exc
        if data.get("format") != MODEL_FORMAT:
            raise LocalWireError("unsupported model file format")
        model = cls(
            name=str(data["name"]),
            lang=str(data["lang"]),
            order=int(data["order"]),
            check_bits=int(data["check_bits"]),
            digest=digest,
            raw_tables=data["tables"],
        )
        order0 = model._table("")
        if order0 is None or END not in order0.index:
            raise LocalWireError("model has no order-0 table with the end symbol")
        return model

    def _table(self, ctx: str) -> _Table | None:
        try:
            return self._tables[ctx]
        except KeyError:
            pass
        raw = self.raw_tables.get(ctx)
        table = None
        if raw is not None:
            syms, counts, escape = raw
            cum = [0]
            for c in counts:
                cum.append(cum[-1] + c)
            if escape < 1 or cum[-1] + escape > MAX_TOTAL or len(syms) != len(counts):
                raise LocalWireError(f"model table for context {ctx!r} is inconsistent")
            table = _Table(list(syms), cum, cum[-1] + escape)
        self._tables[ctx] = table
        return table

    # --- coding ----------------------------------------------------------------------------------

    def check_value(self, text: str) -> int:
        mac = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8, key=self.digest).digest()
        return int.from_bytes(mac, "big") >> (64 - self.check_bits)

    def _contexts(self, hist: str) -> Iterable[_Table]:
        for k in range(min(self.order, len(hist)), -1, -1):
            table = self._table(hist[len(hist) - k :] if k else "")
            if table is not None:
                yield table

    def encode_into(self, enc: ArithmeticEncoder, text: str) -> None:
        hist = BOS
        order = self.order
        for ch in [*text, None]:
            sym = END if ch is None else ord(ch)
            excluded: set[int] = set()
            for table in self._contexts(hist):
                if not excluded:
                    i = table.index.get(sym)
                    if i is not None:
                        enc.encode(table.cum[i], table.cum[i + 1], table.total)
                        break
                    enc.encode(table.cum[-1], table.total, table.total)
                    excluded.update(table.syms)
                    continue
                syms, cum = _without(table, excluded)
                if len(syms) == 0:
                    continue
                escape = table.total - table.cum[-1]
                total = cum[-1] + escape
                if sym in excluded or sym not in table.index:
                    enc.encode(cum[-1], total, total)
                    excluded.update(syms)
                    continue
                i = syms.index(sym)
                enc.encode(cum[i], cum[i + 1], total)
                break
            else:
                prev = ord(hist[-1])
                if prev // _BLOCK == sym // _BLOCK:
                    enc.encode(*_SAME_BLOCK)
                    enc.encode(sym % _BLOCK, sym % _BLOCK + 1, _BLOCK)
                else:
                    enc.encode(*_OTHER_BLOCK)
                    enc.encode_uniform(sym, CODE_POINTS)
            if ch is not None:
                hist = (hist + ch)[-order:]
        enc.encode_bits(self.check_value(text), self.check_bits)

    def decode_from(self, dec: ArithmeticDecoder, limit: int, max_chars: int | None = None) -> str:
        """Text from ``dec``: at most ``limit`` UTF-8 bytes and ``max_chars`` characters (a bound on
        work per input byte for hostile content), checked against the check value."""
        hist = BOS
        order = self.order
        out: list[str] = []
        size = 0
        while True:
            sym = None
            excluded: set[int] = set()
            for table in self._contexts(hist):
                if excluded:
                    syms, cum = _without(table, excluded)
                    if len(syms) == 0:
                        continue
                    total = cum[-1] + table.total - table.cum[-1]
                else:
                    syms, cum, total = table.syms, table.cum, table.total
                target = dec.target(total)
                escape_at = cum[-1]
                if target >= escape_at:
                    dec.consume(escape_at, total, total)
                    excluded.update(syms)
                    continue
                i = bisect_right(cum, target) - 1
                dec.consume(cum[i], cum[i + 1], total)
                sym = syms[i]
                break
            if sym is None:
                same = dec.target(8) < _SAME_BLOCK[1]
                if same:
                    dec.consume(*_SAME_BLOCK)
                    sym = (ord(hist[-1]) // _BLOCK) * _BLOCK + dec.decode_uniform(_BLOCK)
                else:
                    dec.consume(*_OTHER_BLOCK)
                    sym = dec.decode_uniform(CODE_POINTS)
                    if sym >= CODE_POINTS:
                        raise ModelCheckError("code point out of range: wrong model or corrupted content")
            if sym == END:
                break
            ch = chr(sym)
            size += 1 if sym < 0x80 else 2 if sym < 0x800 else 3 if sym < 0x10000 else 4
            if size > limit:
                raise OversizeError(f"text decodes beyond {limit} bytes")
            if max_chars is not None and len(out) >= max_chars:
                raise ModelCheckError("more characters than the content can carry: wrong model or corrupted")
            if dec.overrun_bits > 64:
                raise ModelCheckError("content ended before the end symbol: wrong model or corrupted")
            out.append(ch)
            hist = (hist + ch)[-order:]
        text = "".join(out)
        if dec.decode_bits(self.check_bits) != self.check_value(text):
            raise ModelCheckError(f"check value mismatch for model {self.name}: wrong model or corrupted")
        return text


def _without(table: _Table, excluded: set[int]) -> tuple[list[int], list[int]]:
    """The table's symbols and cumulative counts with ``excluded`` symbols left out (PPM exclusion)."""
    syms: list[int] = []
    cum = [0]
    tcum = table.cum
    for i, s in enumerate(table.syms):
        if s not in excluded:
            syms.append(s)
            cum.append(cum[-1] + tcum[i + 1] - tcum[i])
    return syms, cum


# --- training --------------------------------------------------------------------------------------


def train(
    messages: Iterable[str],
    *,
    name: str,
    lang: str,
    order: int,
    min_count: int = 2,
    check_bits: int = 16,
    escape_scale: float = 1.0,
    deterministic_escape: float | None = None,
) -> bytes:
    """Model file bytes (gzip'd JSON, deterministic) trained on ``messages``."""
    counts: dict[str, Counter[int]] = defaultdict(Counter)
    for text in messages:
        hist = BOS
        for ch in [*text, None]:
            sym = END if ch is None else ord(ch)
            for k in range(min(order, len(hist)), -1, -1):
                counts[hist[len(hist) - k :] if k else ""][sym] += 1
            if ch is not None:
                hist = (hist + ch)[-order:]
    tables: dict[str, list[Any]] = {}
    for ctx in sorted(counts):
        counter = counts[ctx]
        keep = {s: c for s, c in counter.items() if ctx == "" or c >= min_count}
        if not keep:
            continue
        dropped = sum(c for s, c in counter.items() if s not in keep)
        distinct = len(keep)
        # Counts are stored four times over so escapes can be fractions of a count.
        if distinct == 1 and deterministic_escape is not None:
            escape = max(1, round(4 * (deterministic_escape + dropped)))
        else:
            escape = max(1, round(4 * (escape_scale * distinct + dropped)))
        syms = sorted(keep)
        freq = [4 * keep[s] for s in syms]
        total = sum(freq) + escape
        limit = MAX_TOTAL - 1
        if len(syms) > limit // 2:
            raise LocalWireError(f"context {ctx!r} has too many distinct symbols for one table")
        while total > limit:
            freq = [max(1, c * limit // total) for c in freq]
            escape = max(1, escape * limit // total)
            total = sum(freq) + escape
        tables[ctx] = [syms, freq, escape]
    data = {
        "format": MODEL_FORMAT,
        "name": name,
        "lang": lang,
        "order": order,
        "check_bits": check_bits,
        "tables": tables,
    }
    raw = json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()
    return gzip.compress(raw, compresslevel=9, mtime=0)
