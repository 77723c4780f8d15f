"""Every released text model version still decodes (and encodes) its committed test vectors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wire.codec import PRESET_TABLES, TEXT_MODEL_SETS, decode_text, encode_model_text

VECTORS = Path(__file__).resolve().parent / "vectors" / "codecs"
FILES = sorted(VECTORS.glob("cm*.json"))
PRESET_FILES = sorted(VECTORS.glob("presets-v*.json"))


def test_every_released_model_version_has_vectors() -> None:
    versions = {json.loads(p.read_text(encoding="utf-8"))["codec"] for p in FILES}
    assert versions == set(TEXT_MODEL_SETS)
    presets = {json.loads(p.read_text(encoding="utf-8"))["codec"] for p in PRESET_FILES}
    assert presets == set(PRESET_TABLES)


@pytest.mark.parametrize("path", PRESET_FILES, ids=[p.name for p in PRESET_FILES])
def test_preset_vectors_decode(path: Path) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert PRESET_TABLES[data["codec"]] == (data["version"], data["sha256"])
    for vector in data["chosen"]:
        encoded = bytes.fromhex(vector["encoded"])
        assert encoded[0] == data["codec"]
        assert decode_text(encoded) == vector["text"]


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_vectors_decode_and_encode_bit_exactly(path: Path) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    codec = data["codec"]
    assert TEXT_MODEL_SETS[codec].sha256 == data["sha256"]
    for vector in data["per_language"]:
        encoded = bytes.fromhex(vector["encoded"])
        assert decode_text(encoded) == vector["text"]
        assert bytes([codec]) + encode_model_text(codec, vector["lang"], vector["text"]) == encoded
    for vector in data["chosen"]:
        assert decode_text(bytes.fromhex(vector["encoded"])) == vector["text"]
