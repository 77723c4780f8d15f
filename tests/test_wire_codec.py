"""Content codecs and sealed crew content."""

from __future__ import annotations

import contextlib
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nacl.public import PrivateKey

from wire.codec import decode_bytes, decode_text, encode_bytes, encode_text
from wire.crypto import CrewEpoch, open_crew
from wire.errors import AuthenticationError, OversizeError, RemoteWireError
from wire.records import CrewContent


@given(st.text())
def test_any_text_round_trips_and_never_grows_more_than_one_byte(text: str) -> None:
    encoded = encode_text(text)
    assert decode_text(encoded) == text
    assert len(encoded) <= len(text.encode("utf-8")) + 1


@given(st.binary(max_size=2000))
def test_any_bytes_round_trip(data: bytes) -> None:
    assert decode_bytes(encode_bytes(data)) == data


def test_repetitive_text_is_compressed() -> None:
    text = "ကျွန်ုပ်တို့ ကျန်းမာပါသည်။ " * 6
    assert len(encode_text(text)) < len(text.encode()) // 2


def test_decompression_bomb_is_refused() -> None:
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = bytes([1]) + comp.compress(bytes(10_000_000)) + comp.flush()
    with pytest.raises(OversizeError):
        decode_bytes(bomb)


@given(st.binary(max_size=300))
def test_garbage_content_gives_a_typed_error(data: bytes) -> None:
    with contextlib.suppress(RemoteWireError):
        decode_text(data)


def test_crew_content_opens_only_with_the_shore_crew_key() -> None:
    crew = PrivateKey.generate()
    epoch = CrewEpoch.start(3, crew.public_key)
    content = CrewContent(to="hotline", text="Captain keeps our passports", handle="blue-fish")
    sealed = epoch.seal(42, content.encode())
    assert b"passports" not in sealed
    opened = open_crew(crew, 3, epoch.public_bytes, 42, sealed)
    assert CrewContent.decode(opened) == content
    with pytest.raises(AuthenticationError):
        open_crew(PrivateKey.generate(), 3, epoch.public_bytes, 42, sealed)
    with pytest.raises(AuthenticationError):
        open_crew(crew, 3, epoch.public_bytes, 43, sealed)  # bound to its record id
