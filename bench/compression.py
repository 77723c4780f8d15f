"""Bytes per crew message and ratio to UTF-8, per language, for Seabridge's codecs and common baselines.

Runs on the repository's corpus (``corpus/<lang>.test.txt``, the held-out half; dictionaries and
models come from the ``.train.txt`` half only). Every figure is measured in the same run. Seabridge's
numbers include the codec byte; the baselines are counted without any framing byte (in their favour).

Columns: ``seabridge`` = ``encode_text`` (shortest of raw, deflate, presets and both trained model
sets); ``sb cm1`` = the same with only the first model set (codec 2), the baseline of model set v2;
``zlib`` = raw deflate level 9; ``zstd`` = level 19 without and with a dictionary trained per language
(frame header fields that a fixed protocol would not send are switched off); ``brotli`` = quality 11
with its built-in dictionary; ``deflate+dict`` = raw deflate with a 32 KiB preset dictionary built from
the training half; ``remap+dict`` = an SCSU-like one-byte-per-letter remap, then deflate with a preset
dictionary of remapped training text.

The corpus is generated from sentence templates, so the held-out half shares most sentences with the
training half and every trained method (ours and the dictionary baselines) does far better on it than
on real traffic. The second table is the honest one for new wording: single sentences built only from
templates the training half never contains.
"""

from __future__ import annotations

import time
import zlib
from collections import Counter
from collections.abc import Callable

import brotli
import zstandard

from bench._corpus import LANGS, load, unseen
from wire.codec import CODEC_DEFLATE, CODEC_PRESET_V1, CODEC_RAW, CODEC_TEXT_V1, encode_text

CM1_ONLY = (CODEC_RAW, CODEC_DEFLATE, CODEC_TEXT_V1, CODEC_PRESET_V1)

ZDICT_BYTES = 32 * 1024
ZSTD_DICT_BYTES = 16 * 1024


def _deflate(data: bytes, zdict: bytes | None = None) -> bytes:
    comp = (
        zlib.compressobj(9, zlib.DEFLATED, -15, 9, zdict=zdict)
        if zdict
        else zlib.compressobj(9, zlib.DEFLATED, -15, 9)
    )
    return comp.compress(data) + comp.flush()


def _preset_dictionary(samples: list[bytes]) -> bytes:
    """Most frequent training messages and sentences, most frequent last (closest to the data)."""
    pieces: Counter[bytes] = Counter()
    for s in samples:
        pieces[s] += 1
        for part in s.replace("။".encode(), b"\n").replace(b". ", b"\n").split(b"\n"):
            if len(part) > 8:
                pieces[part] += 1
    out = b""
    for piece, _ in pieces.most_common():
        if len(out) + len(piece) > ZDICT_BYTES:
            break
        out = piece + out
    return out


def _remap(text: str) -> bytes:
    """SCSU-like: ASCII as is; letters of the current 128-code-point window as 0x80+offset; a window
    change is 0x01 followed by the window number (2 bytes); a code point outside any window 0x02 + 3 bytes."""
    out = bytearray()
    window = -1
    for ch in text:
        cp = ord(ch)
        if cp < 0x80 and cp not in (1, 2):
            out.append(cp)
            continue
        block = cp >> 7
        if block != window and block < 0x10000:
            out += bytes([1]) + block.to_bytes(2, "big")
            window = block
        if block == window:
            out.append(0x80 | (cp & 0x7F))
        else:
            out += bytes([2]) + cp.to_bytes(3, "big")
    return bytes(out)


def _measure(lang: str, never_seen: bool = False) -> dict[str, float]:
    train = load(lang, "train")
    test = unseen(lang) if never_seen else load(lang, "test")
    train_b = [t.encode() for t in train]
    zdict = _preset_dictionary(train_b)
    remap_dict = _preset_dictionary([_remap(t) for t in train])
    zd = zstandard.train_dictionary(ZSTD_DICT_BYTES, train_b)
    params = {"write_checksum": False, "write_content_size": False, "write_dict_id": False}
    zstd_plain = zstandard.ZstdCompressor(level=19, **params)
    zstd_dict = zstandard.ZstdCompressor(level=19, dict_data=zd, **params)
    codecs: dict[str, Callable[[str], int]] = {
        "seabridge": lambda t: len(encode_text(t)),
        "sb cm1": lambda t: len(encode_text(t, allowed=CM1_ONLY)),
        "zlib": lambda t: len(_deflate(t.encode())),
        "zstd": lambda t: len(zstd_plain.compress(t.encode())),
        "zstd+dict": lambda t: len(zstd_dict.compress(t.encode())),
        "brotli": lambda t: len(brotli.compress(t.encode(), quality=11)),
        "deflate+dict": lambda t: len(_deflate(t.encode(), zdict)),
        "remap+dict": lambda t: len(_deflate(_remap(t), remap_dict)),
    }
    raw = sum(len(t.encode()) for t in test)
    row: dict[str, float] = {"messages": len(test), "utf8": raw / len(test)}
    for name, fn in codecs.items():
        row[name] = sum(fn(t) for t in test) / raw
    return row


def main() -> None:
    _table("held-out half of corpus/; bytes per message, then (ratio to UTF-8); lower is better", False)
    print()
    _table("single sentences from held-out templates only (never seen in training)", True)


def _table(title: str, unseen: bool) -> None:
    names = ("seabridge", "sb cm1", "zlib", "zstd", "zstd+dict", "brotli", "deflate+dict", "remap+dict")
    print(title)
    print(f"{'lang':<5}{'msgs':>5}{'utf8':>7} " + " ".join(f"{n:>14}" for n in names))
    totals: dict[str, float] = dict.fromkeys(names, 0.0)
    total_raw = 0.0
    started = time.perf_counter()
    for lang in LANGS:
        row = _measure(lang, unseen)
        utf8 = row["utf8"]
        total_raw += utf8 * row["messages"]
        cells = []
        for n in names:
            totals[n] += row[n] * utf8 * row["messages"]
            cells.append(f"{row[n] * utf8:7.1f} ({row[n]:.3f})")
        print(f"{lang:<5}{int(row['messages']):>5}{utf8:>7.1f} " + " ".join(f"{c:>14}" for c in cells))
    print(
        f"{'all':<5}{'':>5}{'':>7} "
        + " ".join(f"{'(' + format(totals[n] / total_raw, '.3f') + ')':>14}" for n in names)
    )
    print(f"measured in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
