"""Preset crew messages: short phrases every phone can send with one tap, travelling as an index.

Owns the preset tables (package data ``wire/models/presets-v<N>.json``, one phrase per language per
row) and their wire form: the codec byte of the preset version, then one varint ``row * L + language``
(``L`` languages in the table's order), so a preset costs two bytes inside the crew content whatever
its length. ``wire.codec`` uses it automatically when a text is exactly a preset phrase; the captive
page lists ``phrases(lang)`` as buttons.

Tables are immutable once released (their SHA-256 is pinned in ``wire.codec``); new phrases make a new
version with a new codec number. Must not do: fuzzy matching (the receiver must get the exact text).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

from .errors import LocalWireError, MalformedError
from .varint import decode_varint, encode_varint


@dataclass(frozen=True, eq=False)
class PresetTable:
    version: int
    languages: tuple[str, ...]
    rows: tuple[dict[str, str], ...]
    lookup: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        nlang = len(self.languages)
        for r, row in enumerate(self.rows):
            for li, lang in enumerate(self.languages):
                self.lookup.setdefault(row[lang], r * nlang + li)

    def phrases(self, lang: str) -> list[str]:
        """The phrases in ``lang``, in row order (what a phone shows as buttons)."""
        return [row[lang] for row in self.rows]

    def encode(self, text: str) -> bytes | None:
        """The varint body for ``text`` when it is exactly a phrase of this table, else None."""
        code = self.lookup.get(text)
        return None if code is None else encode_varint(code)

    def decode(self, body: bytes) -> str:
        if len(body) > 3:
            raise MalformedError("preset index longer than three bytes")
        code, end = decode_varint(body, 0)
        if end != len(body):
            raise MalformedError("bytes after the preset index")
        row, lang = divmod(code, len(self.languages))
        if row >= len(self.rows):
            raise MalformedError(f"preset {row} is not in preset table version {self.version}")
        return self.rows[row][self.languages[lang]]


@cache
def load_presets(version: int, sha256: str) -> PresetTable:
    """Preset table ``version``, checked against its pinned SHA-256."""
    blob = (resources.files("wire.models") / f"presets-v{version}.json").read_bytes()
    if hashlib.sha256(blob).hexdigest() != sha256:
        raise LocalWireError(f"presets-v{version}.json does not match its pinned SHA-256")
    data = json.loads(blob)
    langs = tuple(data["languages"])
    rows = tuple(dict(row) for row in data["presets"])
    if data["version"] != version or any(set(row) != set(langs) for row in rows):
        raise LocalWireError(f"presets-v{version}.json is inconsistent")
    return PresetTable(version, langs, rows)
