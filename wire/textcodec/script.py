"""Which script, and so which language model, a piece of text is written in.

Owns a cheap, deterministic guess from code point ranges: Myanmar (U+1000-109F, U+AA60-AA7F,
U+A9E0-A9FF) means Burmese, Khmer (U+1780-17FF, U+19E0-19FF) means Khmer, Thai (U+0E00-0E7F) means
Thai, anything else English. The guess only orders the candidates: the codec tries every model whose
script occurs and keeps the shortest result, so a wrong guess costs time, never bytes or correctness.
Must not do: dictionary lookups or anything slower than one pass over the text.
"""

from __future__ import annotations

from collections import Counter

LANGUAGES = ("my", "km", "th", "en")

_RANGES: tuple[tuple[int, int, str], ...] = (
    (0x1000, 0x109F, "my"),
    (0xAA60, 0xAA7F, "my"),
    (0xA9E0, 0xA9FF, "my"),
    (0x1780, 0x17FF, "km"),
    (0x19E0, 0x19FF, "km"),
    (0x0E00, 0x0E7F, "th"),
)


def char_language(ch: str) -> str | None:
    cp = ord(ch)
    for lo, hi, lang in _RANGES:
        if lo <= cp <= hi:
            return lang
    if ch.isalpha() and cp < 0x250:
        return "en"
    return None


def language_scores(text: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for ch in text:
        lang = char_language(ch)
        if lang is not None:
            counts[lang] += 1
    return counts


def detect_language(text: str) -> str:
    """The most frequent script's language; English when no letter of a known script occurs."""
    counts = language_scores(text)
    if not counts:
        return "en"
    return max(LANGUAGES, key=lambda lang: (counts[lang], lang == "en"))


def candidate_languages(text: str, hint: str | None = None) -> list[str]:
    """Languages worth trying for ``text``: the hint first, then every script present, most frequent
    first; English always last as the catch-all for digits, Latin and symbols."""
    counts = language_scores(text)
    ordered = [lang for lang, _ in counts.most_common() if lang != "en"]
    out: list[str] = []
    for lang in [hint, *ordered, "en"]:
        if lang in LANGUAGES and lang not in out:
            out.append(lang)
    return out
