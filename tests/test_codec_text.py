"""Trained text codecs: round trips, never-expands, wrong-model detection, version negotiation."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wire.codec import (
    CODEC_DEFLATE,
    CODEC_PRESET_V1,
    CODEC_RAW,
    CODEC_TEXT_V1,
    TEXT_MODEL_SETS,
    TextModelSet,
    codec_mask,
    codecs_from_mask,
    decode_bytes,
    decode_model_text,
    decode_text,
    encode_model_text,
    encode_text,
    load_model,
    preset_table,
    supported_codecs,
)
from wire.errors import LocalWireError, OversizeError, RemoteWireError
from wire.textcodec import ContextModel, ModelCheckError, detect_language, train
from wire.textcodec.arith import ArithmeticDecoder, ArithmeticEncoder

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
LANGS = ("my", "km", "th", "en")

# Text weighted towards the crews' scripts, plus anything Unicode allows.
crew_text = st.one_of(
    st.text(),
    st.text(st.characters(min_codepoint=0x1000, max_codepoint=0x109F), max_size=60),
    st.text(st.characters(min_codepoint=0x1780, max_codepoint=0x17FF), max_size=60),
    st.text(st.characters(min_codepoint=0x0E00, max_codepoint=0x0E7F), max_size=60),
    st.text(st.sampled_from("ကျွန်တော် နေကောင်းပါတယ်။ ខ្ញុំសុខសប្បាយ พี่สบายดี I am fine 123 🐟"), max_size=80),
)


@settings(max_examples=300, deadline=None)
@given(crew_text)
def test_any_text_round_trips_and_never_expands_by_more_than_one_byte(text: str) -> None:
    for allowed in (None, [CODEC_RAW], [CODEC_DEFLATE], [CODEC_TEXT_V1]):
        encoded = encode_text(text, allowed=allowed)
        assert decode_text(encoded) == text
        assert len(encoded) <= len(text.encode("utf-8")) + 1
        if allowed is not None:
            assert encoded[0] in {CODEC_RAW, *allowed}


@settings(max_examples=200, deadline=None)
@given(crew_text, st.sampled_from(LANGS))
def test_every_language_model_round_trips_any_text(text: str, lang: str) -> None:
    for codec in TEXT_MODEL_SETS:
        body = encode_model_text(codec, lang, text)
        assert decode_model_text(codec, body) == text


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_model_content_gives_a_typed_error_or_checked_text(body: bytes) -> None:
    with contextlib.suppress(RemoteWireError):
        decode_bytes(bytes([CODEC_TEXT_V1]) + body)


def _held_out(lang: str) -> list[str]:
    return (CORPUS / f"{lang}.test.txt").read_text(encoding="utf-8").splitlines()


@pytest.mark.parametrize("lang", LANGS)
def test_held_out_messages_shrink_below_a_quarter_of_utf8(lang: str) -> None:
    texts = _held_out(lang)
    coded = sum(len(encode_text(t)) for t in texts)
    raw = sum(len(t.encode()) for t in texts)
    assert coded / raw < 0.25


def test_decoding_with_another_model_fails_the_check_instead_of_returning_garbage() -> None:
    text = "ကျွန်တော် နေကောင်းပါတယ်။ ဒီနေ့ ပင်လယ် ငြိမ်ပါတယ်။"
    body = encode_model_text(CODEC_TEXT_V1, "my", text)
    # Same stream, read with the Khmer model: the language index is part of the stream, so splice it.
    enc = ArithmeticEncoder()
    load_model(CODEC_TEXT_V1, "my").encode_into(enc, text)
    stream = enc.finish()
    for other in ("km", "th", "en"):
        with pytest.raises(ModelCheckError):
            load_model(CODEC_TEXT_V1, other).decode_from(ArithmeticDecoder(stream), 64 * 1024)
    assert decode_model_text(CODEC_TEXT_V1, body) == text


def test_a_model_with_identical_tables_but_another_file_fails_the_check() -> None:
    messages = ["hello crew", "hello shore", "all fine here"]
    first = ContextModel.from_bytes(train(messages, name="t1-en", lang="en", order=3))
    second = ContextModel.from_bytes(train(messages, name="t2-en", lang="en", order=3))
    enc = ArithmeticEncoder()
    first.encode_into(enc, "hello crew")
    stream = enc.finish()
    assert first.decode_from(ArithmeticDecoder(stream), 1000) == "hello crew"
    with pytest.raises(ModelCheckError):
        second.decode_from(ArithmeticDecoder(stream), 1000)


def test_a_changed_model_file_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    real = TEXT_MODEL_SETS[CODEC_TEXT_V1]
    fake = TextModelSet(codec=250, version=1, languages=real.languages, sha256={"en": "00" * 32})
    monkeypatch.setitem(TEXT_MODEL_SETS, 250, fake)
    with pytest.raises(LocalWireError):
        load_model(250, "en")


def test_decoded_size_is_bounded() -> None:
    text = "ကျွန်တော် နေကောင်းပါတယ်။" * 20
    encoded = encode_text(text, allowed=[CODEC_TEXT_V1])
    assert encoded[0] == CODEC_TEXT_V1
    with pytest.raises(OversizeError):
        decode_text(encoded, limit=100)


def test_encoding_only_uses_codecs_the_receiver_announced() -> None:
    text = "พี่สบายดี วันนี้ทะเลสงบ ตอนนี้เรืออยู่ใกล้สงขลา"
    assert encode_text(text)[0] == CODEC_TEXT_V1
    assert encode_text(text, allowed=[CODEC_RAW, CODEC_DEFLATE])[0] in (CODEC_RAW, CODEC_DEFLATE)
    assert encode_text(text, allowed=[])[0] == CODEC_RAW


def test_supported_codecs_lists_every_decodable_version() -> None:
    codecs = supported_codecs()
    assert codecs[:2] == [CODEC_RAW, CODEC_DEFLATE]
    assert set(TEXT_MODEL_SETS) <= set(codecs)


def test_unknown_codec_number_is_a_typed_error() -> None:
    with pytest.raises(RemoteWireError):
        decode_text(bytes([200, 1, 2, 3]))


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("ကျွန်တော် နေကောင်းပါတယ်", "my"),
        ("ខ្ញុំសុខសប្បាយ", "km"),
        ("พี่สบายดี", "th"),
        ("I am fine", "en"),
        ("1234 !?", "en"),
        ("OK ပါ ပါ ပါ", "my"),
    ],
)
def test_script_detection_names_the_language(text: str, lang: str) -> None:
    assert detect_language(text) == lang


@pytest.mark.parametrize("lang", LANGS)
def test_preset_phrases_travel_as_two_bytes(lang: str) -> None:
    table = preset_table(CODEC_PRESET_V1)
    for phrase in table.phrases(lang):
        encoded = encode_text(phrase)
        assert encoded[0] == CODEC_PRESET_V1
        assert len(encoded) == 2
        assert decode_text(encoded) == phrase
    assert encode_text(table.phrases(lang)[0], allowed=[CODEC_RAW, CODEC_TEXT_V1])[0] != CODEC_PRESET_V1


def test_unknown_preset_index_is_a_typed_error() -> None:
    with pytest.raises(RemoteWireError):
        decode_text(bytes([CODEC_PRESET_V1, 0x7F]))
    with pytest.raises(RemoteWireError):
        decode_text(bytes([CODEC_PRESET_V1]))


def test_announced_codec_set_survives_its_wire_form_and_drops_unknown_numbers() -> None:
    mask = codec_mask([*supported_codecs(), 200])
    assert codecs_from_mask(mask) == frozenset(supported_codecs())
    assert codecs_from_mask(codec_mask([CODEC_DEFLATE])) == {CODEC_RAW, CODEC_DEFLATE}
    with pytest.raises(RemoteWireError):
        codecs_from_mask(-1)
