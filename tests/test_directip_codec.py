"""DirectIP codec: real gateway vectors, hand-built byte layouts, bounds, and property tests.

Expected bytes here are written out by hand from the field tables of the Iridium SBD Developers Guide
(SBDG §6.2, §7.2) and from messages captured off the real gateway — never from our own encoder.
"""

from __future__ import annotations

import contextlib
import itertools
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.fuzz_targets import check_directip, check_stream
from firmware_profiles import load_profile
from shore.directip import (
    BadField,
    BadLength,
    BadRevision,
    DirectIpError,
    DuplicateElement,
    MissingHeader,
    MoHeader,
    MoLocation,
    MoMessage,
    MtConfirmation,
    MtFlags,
    MtMessage,
    PayloadTooLarge,
    TruncatedMessage,
    decode_mo,
    decode_mo_confirmation,
    decode_mt,
    decode_mt_confirmation,
    encode_mo,
    encode_mo_confirmation,
    encode_mt,
    encode_mt_confirmation,
    mt_status_text,
    salvage_mt_header,
)
from shore.directip_framing import MessageReader

# --------------------------------------------------------------------------------------------------
# Real MO messages from the Iridium gateway (gadomski/sbd-rs `data/`, MIT/Apache-2.0), byte for byte.

VECTOR_DIR = Path(__file__).parent / "vectors" / "directip"  # vendored: tests/vectors/directip/README.md

MO_VECTOR = bytes.fromhex(
    "01003801001c70ec076933303032333430363339303431393000004b0000559eba2c02001674657374206d657373616765"
    "2066726f6d2070657465"
)
MO_LOCATION_VECTOR = bytes.fromhex(
    "01005e01001c7bf6dc11333031343334303631373939343830000007000068c7502003000b022b7a26ac8dc400000002"
    "02002e5468616e6b7320666f7220796f757220616d617a696e67207362642d7273207265706f20406761646f6d736b6921"
)
NOT_DIRECTIP_VECTOR = b"not an sbd file\n"

LARGEST = load_profile("iridium-9523").limits  # the protocol's absolute payload maxima


def ie(iei: int, contents: bytes) -> bytes:
    """One information element, built by hand: IEI u8, length u16 big-endian, contents."""
    return bytes([iei]) + len(contents).to_bytes(2, "big") + contents


def msg(*elements: bytes) -> bytes:
    """A whole message, built by hand: revision 1, overall length u16, elements."""
    body = b"".join(elements)
    return b"\x01" + len(body).to_bytes(2, "big") + body


def mo_header_ie(imei: bytes = b"300234063904190", momsn: int = 75) -> bytes:
    # CDR 0x70ec0769, IMEI, session status 0, MOMSN, MTMSN 0, session time 0x559eba2c
    return ie(
        0x01,
        bytes.fromhex("70ec0769") + imei + b"\x00" + momsn.to_bytes(2, "big") + b"\x00\x00\x55\x9e\xba\x2c",
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("0-mo.sbd", MO_VECTOR),
        ("1-invalid.sbd", NOT_DIRECTIP_VECTOR),
        ("2-location.mo.sbd", MO_LOCATION_VECTOR),
    ],
)
def test_embedded_vectors_match_the_reference_files(name: str, expected: bytes) -> None:
    assert (VECTOR_DIR / name).read_bytes() == expected


def test_real_mo_message_decodes_as_documented() -> None:
    message = decode_mo(MO_VECTOR)
    assert message.header == MoHeader(
        cdr_reference=1894516585,
        imei="300234063904190",
        session_status=0,
        momsn=75,
        mtmsn=0,
        session_time=1436465708,
    )
    assert message.payload == b"test message from pete"
    assert message.location is None


def test_real_mo_message_with_location_is_in_the_southern_hemisphere() -> None:
    # Flags byte 0x02: SBDG Table 6-8 bit 1 (NSI) set = south, bit 0 (EWI) clear = east.
    # The position (43°31.270'S 172°36.292'E) is Christchurch, New Zealand, which agrees.
    message = decode_mo(MO_LOCATION_VECTOR)
    assert message.header == MoHeader(2079775761, "301434061799480", 0, 7, 0, 1757892640)
    assert message.payload == b"Thanks for your amazing sbd-rs repo @gadomski!"
    assert message.location is not None
    assert message.location.latitude == pytest.approx(-43.52117, abs=1e-5)
    assert message.location.longitude == pytest.approx(172.60487, abs=1e-5)
    assert message.location.cep_km == 2


def test_real_messages_re_encode_to_the_same_bytes() -> None:
    assert encode_mo(decode_mo(MO_VECTOR)) == MO_VECTOR
    assert encode_mo(decode_mo(MO_LOCATION_VECTOR)) == MO_LOCATION_VECTOR


def test_text_file_is_rejected_as_bad_revision() -> None:
    with pytest.raises(BadRevision, match="revision 0x6e"):
        decode_mo(NOT_DIRECTIP_VECTOR)


# --------------------------------------------------------------------------------------------------
# Hand-built layouts from the SBDG tables


def test_encoder_matches_sbdg_mo_example() -> None:
    # SBDG Table 6-10: overall length 0x0068 = 31 (header IE) + 3 + 70 (payload).
    payload = bytes(range(70))
    expected = (
        bytes.fromhex("01 0068")
        + bytes.fromhex("01 001c 0012d687")
        + b"300034010123450"
        + bytes.fromhex("00 d431 3039 43b539e1")
        + bytes.fromhex("02 0046")
        + payload
    )
    header = MoHeader(0x0012D687, "300034010123450", 0, 0xD431, 0x3039, 0x43B539E1)
    message = MoMessage(header=header, payload=payload)
    assert encode_mo(message) == expected
    assert decode_mo(expected) == message


def test_encoder_matches_sbdg_mt_example() -> None:
    # SBDG Table 7.1-10: 01 0061 | 41 0015 "Msg1" "300034010123450" 0000 | 42 0046 <70 bytes>
    payload = bytes(range(100, 170))
    expected = bytes.fromhex("01 0061 41 0015") + b"Msg1" + b"300034010123450" + b"\x00\x00"
    expected += bytes.fromhex("42 0046") + payload
    message = MtMessage(client_message_id=b"Msg1", imei="300034010123450", payload=payload)
    assert encode_mt(message) == expected
    assert decode_mt(expected) == message


def test_mt_confirmation_matches_captured_example() -> None:
    # castelao/DirectIP mt_confirmation.isbd (the SBDG Table 7.1-11 lengths are misprinted).
    raw = bytes.fromhex("01 001c 44 0019 00000457") + b"300034010123450" + bytes.fromhex("00000000 002a")
    confirmation = decode_mt_confirmation(raw)
    assert confirmation == MtConfirmation(bytes.fromhex("00000457"), "300034010123450", 0, 42)
    assert confirmation.ok
    assert "position 42" in confirmation.status_text
    assert encode_mt_confirmation(confirmation) == raw


def test_negative_mt_status_is_signed() -> None:
    raw = bytes.fromhex("01 001c 44 0019 4d736731") + b"300034010123450" + bytes.fromhex("00000000 fffb")
    confirmation = decode_mt_confirmation(raw)
    assert confirmation.status == -5
    assert not confirmation.ok
    assert confirmation.status_text == "MT queue full"
    assert encode_mt_confirmation(confirmation) == raw


def test_mo_confirmation_bytes() -> None:
    assert encode_mo_confirmation(True) == bytes([0x01, 0x00, 0x04, 0x05, 0x00, 0x01, 0x01])
    assert encode_mo_confirmation(False) == bytes([0x01, 0x00, 0x04, 0x05, 0x00, 0x01, 0x00])
    assert decode_mo_confirmation(bytes.fromhex("01 0004 05 0001 01")) is True
    assert decode_mo_confirmation(bytes.fromhex("01 0004 05 0001 00")) is False
    with pytest.raises(BadField):
        decode_mo_confirmation(bytes.fromhex("01 0004 05 0001 02"))
    with pytest.raises(TruncatedMessage):
        decode_mo_confirmation(bytes.fromhex("01 0004 05 0001"))


def test_mt_flags_and_priority_layout() -> None:
    # flags: flush 0x0001 | high priority 0x0010 | assign MTMSN 0x0020 = 0x0031; priority IE 0x46 = 2.
    # overall length 0x22 = 24 (header IE) + 5 (payload IE) + 5 (priority IE).
    expected = bytes.fromhex("01 0022 41 0015 00000102") + b"300034010123450" + bytes.fromhex("0031")
    expected += bytes.fromhex("42 0002 6869 46 0002 0002")
    message = MtMessage(
        client_message_id=bytes.fromhex("00000102"),
        imei="300034010123450",
        flags=MtFlags.FLUSH_MT_QUEUE | MtFlags.HIGH_PRIORITY | MtFlags.ASSIGN_MTMSN,
        payload=b"hi",
        priority=2,
    )
    assert encode_mt(message) == expected
    decoded = decode_mt(expected)
    assert decoded == message
    assert MtFlags.ASSIGN_MTMSN in decoded.flags
    assert MtFlags.SEND_RING_ALERT not in decoded.flags


def test_ring_alert_only_mt_has_no_payload() -> None:
    raw = bytes.fromhex("01 0018 41 0015 00000001") + b"300034010123450" + bytes.fromhex("0002")
    message = decode_mt(raw)
    assert message.flags == MtFlags.SEND_RING_ALERT
    assert message.payload is None
    assert encode_mt(message) == raw


@pytest.mark.parametrize(
    ("flags", "latitude", "longitude"),
    [
        (0x00, 43.52117, 172.60487),
        (0x01, 43.52117, -172.60487),
        (0x02, -43.52117, 172.60487),
        (0x03, -43.52117, -172.60487),
    ],
)
def test_location_flags_select_the_hemisphere(flags: int, latitude: float, longitude: float) -> None:
    location_ie = ie(0x03, bytes([flags]) + bytes.fromhex("2b 7a26 ac 8dc4 00000002"))
    message = decode_mo(msg(mo_header_ie(), location_ie))
    assert message.location is not None
    assert message.location.latitude == pytest.approx(latitude, abs=1e-5)
    assert message.location.longitude == pytest.approx(longitude, abs=1e-5)
    assert encode_mo(message) == msg(mo_header_ie(), location_ie)


def test_location_encoding_matches_the_vector() -> None:
    location = MoLocation(latitude=-(43 + 31.270 / 60), longitude=172 + 36.292 / 60, cep_km=2)
    message = MoMessage(header=decode_mo(MO_VECTOR).header, location=location)
    expected = msg(mo_header_ie(), ie(0x03, bytes.fromhex("02 2b 7a26 ac 8dc4 00000002")))
    assert encode_mo(message) == expected


# --------------------------------------------------------------------------------------------------
# Structure and bounds


def test_elements_may_come_in_any_order_and_unknown_ones_are_skipped() -> None:
    location_ie = ie(0x03, bytes.fromhex("00 0a 0000 14 0000 00000005"))
    raw = msg(ie(0x02, b"payload first"), ie(0x7F, b"\xff" * 5), location_ie, mo_header_ie(), ie(0x06, b""))
    message = decode_mo(raw)
    assert message.payload == b"payload first"
    assert message.header.imei == "300234063904190"
    assert message.location == MoLocation(10.0, 20.0, 5)


def test_payloadless_mo_is_a_valid_mailbox_check() -> None:
    message = decode_mo(msg(mo_header_ie()))
    assert message.payload is None
    assert message.location is None
    assert encode_mo(message) == msg(mo_header_ie())


def test_failed_session_status_is_kept() -> None:
    header = bytearray(mo_header_ie())
    header[3 + 4 + 15] = 13  # session status: RF link loss
    message = decode_mo(msg(bytes(header)))
    assert message.header.session_status == 13
    assert not message.header.session_ok


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"", TruncatedMessage),
        (b"\x01\x00", TruncatedMessage),
        (b"\x02\x00\x00", BadRevision),
        (MO_VECTOR[:-1], TruncatedMessage),
        (MO_VECTOR + b"\x00", BadLength),
        (msg(ie(0x02, b"no header")), MissingHeader),
        (msg(mo_header_ie(), mo_header_ie()), DuplicateElement),
        (msg(mo_header_ie(), ie(0x02, b"a"), ie(0x02, b"b")), DuplicateElement),
        (msg(mo_header_ie()[:-1]), BadLength),  # header IE announces 28 bytes, the message ends first
        (msg(ie(0x01, b"\x00" * 27)), BadLength),  # header IE of the wrong size
        (msg(mo_header_ie(), b"\x02\x00"), BadLength),  # stray bytes too short for an IE header
        (msg(mo_header_ie(), ie(0x02, b"")), BadLength),  # empty payload IE
        (msg(mo_header_ie(), ie(0x03, b"\x00" * 20)), BadLength),  # the guide's misprinted location length
        (msg(mo_header_ie(imei=b"30023406390419X")), BadField),
        (msg(mo_header_ie(imei=b"../../etc/passw")), BadField),
        (
            msg(mo_header_ie(), ie(0x03, bytes.fromhex("04 2b 7a26 ac 8dc4 00000002"))),
            BadField,
        ),  # reserved bit
        (msg(mo_header_ie(), ie(0x03, bytes.fromhex("00 2b ea60 ac 8dc4 00000002"))), BadField),  # 60.000'
        (msg(mo_header_ie(), ie(0x03, bytes.fromhex("00 5a 0001 00 0000 00000002"))), BadField),  # 90°0.001'
        (msg(mo_header_ie(), ie(0x03, bytes.fromhex("00 00 0000 b5 0000 00000002"))), BadField),  # 181°
    ],
)
def test_malformed_mo_raises_a_typed_error(raw: bytes, error: type[DirectIpError]) -> None:
    with pytest.raises(error):
        decode_mo(raw)


def test_errors_are_value_errors() -> None:
    for error in (
        TruncatedMessage,
        BadRevision,
        BadLength,
        MissingHeader,
        DuplicateElement,
        BadField,
        PayloadTooLarge,
    ):
        assert issubclass(error, DirectIpError)
    assert issubclass(DirectIpError, ValueError)


def test_mo_payload_size_is_bounded_by_the_protocol_maximum() -> None:
    largest = b"\xaa" * LARGEST.mo_max_bytes
    assert decode_mo(msg(mo_header_ie(), ie(0x02, largest))).payload == largest
    with pytest.raises(PayloadTooLarge):
        decode_mo(msg(mo_header_ie(), ie(0x02, largest + b"\xaa")))
    header = decode_mo(MO_VECTOR).header
    with pytest.raises(PayloadTooLarge):
        encode_mo(MoMessage(header=header, payload=largest + b"\xaa"))


def test_mt_payload_size_is_bounded_by_the_protocol_maximum() -> None:
    header = ie(0x41, b"Msg1" + b"300034010123450" + b"\x00\x00")
    largest = b"\x55" * LARGEST.mt_max_bytes
    assert decode_mt(msg(header, ie(0x42, largest))).payload == largest
    with pytest.raises(PayloadTooLarge):
        decode_mt(msg(header, ie(0x42, largest + b"\x55")))
    with pytest.raises(PayloadTooLarge):
        encode_mt(MtMessage(b"Msg1", "300034010123450", payload=largest + b"\x55"))


def test_mt_decoder_keeps_an_invalid_imei_for_the_gateway_to_judge() -> None:
    raw = msg(ie(0x41, b"Msg1" + b"30003401012345X" + b"\x00\x00"), ie(0x42, b"x"))
    assert decode_mt(raw).imei == "30003401012345X"
    with pytest.raises(BadField):
        encode_mt(MtMessage(b"Msg1", "30003401012345X", payload=b"x"))


@pytest.mark.parametrize(
    "message",
    [
        MtMessage(b"Msg", "300034010123450", payload=b"x"),  # client id not 4 bytes
        MtMessage(b"Msg1", "30003401012345", payload=b"x"),  # IMEI too short
        MtMessage(b"Msg1", "300034010123450", payload=b""),  # empty payload (use None)
        MtMessage(b"Msg1", "300034010123450", payload=b"x", priority=0x10000),
    ],
)
def test_encoder_refuses_values_it_cannot_represent(message: MtMessage) -> None:
    with pytest.raises(BadField):
        encode_mt(message)


def test_mt_missing_header_and_bad_priority_length() -> None:
    with pytest.raises(MissingHeader):
        decode_mt(msg(ie(0x42, b"x")))
    with pytest.raises(BadLength):
        decode_mt(msg(ie(0x41, b"Msg1" + b"300034010123450" + b"\x00\x00"), ie(0x46, b"\x01")))


def test_salvage_finds_the_header_of_an_oversized_mt() -> None:
    raw = msg(
        ie(0x41, b"Msg1" + b"300034010123450" + b"\x00\x00"), ie(0x42, b"\x55" * (LARGEST.mt_max_bytes + 1))
    )
    assert salvage_mt_header(raw) == (b"Msg1", "300034010123450")
    assert salvage_mt_header(b"garbage") is None


def test_status_texts_cover_the_documented_codes() -> None:
    assert mt_status_text(0) == "accepted, no payload queued"
    assert mt_status_text(1) == "accepted, position 1 in the MT queue"
    assert mt_status_text(50) == "accepted, position 50 in the MT queue"
    for status in range(-12, 0):
        assert not mt_status_text(status).startswith("unknown MT status"), status
    assert mt_status_text(-13) == "unknown MT status -13"
    assert mt_status_text(-2) == "unknown IMEI (not provisioned for DirectIP)"


# --------------------------------------------------------------------------------------------------
# Incremental reader


def test_reader_returns_whole_messages_from_byte_at_a_time_input() -> None:
    reader = MessageReader()
    stream = MO_VECTOR + MO_LOCATION_VECTOR
    out: list[bytes] = []
    for i in range(len(stream)):
        reader.feed(stream[i : i + 1])
        while (message := reader.next_message()) is not None:
            out.append(message)
    assert out == [MO_VECTOR, MO_LOCATION_VECTOR]
    assert reader.buffered == 0
    reader.end_of_stream()


def test_reader_rejects_garbage_and_oversized_lengths_early() -> None:
    reader = MessageReader()
    with pytest.raises(BadRevision):
        reader.feed(b"n")
    with pytest.raises(BadRevision):  # stays failed
        reader.next_message()
    with pytest.raises(BadRevision):
        reader.feed(b"\x01\x00\x00")
    capped = MessageReader(max_length=100)
    capped.feed(b"\x01\x00")
    with pytest.raises(BadLength):
        capped.feed(b"\x65")  # overall length 101
    following = MessageReader()
    following.feed(MO_VECTOR + b"\x02")  # a whole message, then the start of garbage
    assert following.next_message() == MO_VECTOR
    with pytest.raises(BadRevision):
        following.next_message()


def test_reader_reports_a_truncated_stream() -> None:
    reader = MessageReader()
    reader.feed(MO_VECTOR[:10])
    assert reader.next_message() is None
    assert reader.missing == len(MO_VECTOR) - 10
    with pytest.raises(TruncatedMessage):
        reader.end_of_stream()


# --------------------------------------------------------------------------------------------------
# Properties

DECODERS = (decode_mo, decode_mt, decode_mo_confirmation, decode_mt_confirmation)
KNOWN_IEIS = (0x01, 0x02, 0x03, 0x05, 0x41, 0x42, 0x44, 0x46)


@st.composite
def element_soup(draw: st.DrawFn) -> bytes:
    """A valid preamble around IEs of known and unknown kinds, some with lying lengths."""
    parts = []
    for _ in range(draw(st.integers(0, 5))):
        iei = draw(st.one_of(st.sampled_from(KNOWN_IEIS), st.integers(0, 255)))
        contents = draw(st.binary(max_size=40))
        size = draw(st.one_of(st.just(len(contents)), st.integers(0, 0xFFFF)))
        parts.append(bytes([iei]) + size.to_bytes(2, "big") + contents)
    body = b"".join(parts)
    overall = draw(st.one_of(st.just(len(body)), st.integers(0, 0xFFFF)))
    return b"\x01" + overall.to_bytes(2, "big") + body


@given(st.one_of(st.binary(max_size=200), element_soup()))
def test_any_bytes_decode_or_raise_a_directip_error(raw: bytes) -> None:
    for decode in DECODERS:
        with contextlib.suppress(DirectIpError):
            decode(raw)
    # ... and whatever decodes, encodes and decodes again to the same message (bench.fuzz_targets).
    assert check_directip(raw) in ("refused", "decoded-1", "decoded-2", "decoded-3", "decoded-4")


@given(st.lists(st.binary(max_size=60), max_size=8), st.integers(1, 0xFFFF))
def test_reader_never_raises_anything_but_directip_errors(chunks: list[bytes], cap: int) -> None:
    reader = MessageReader(max_length=cap)
    try:
        for chunk in chunks:
            reader.feed(chunk)
            while (message := reader.next_message()) is not None:
                assert len(message) <= cap + 3
        reader.end_of_stream()
    except DirectIpError:
        pass
    # The same chunks against a reference framer: the same messages, the same failure.
    stream = b"".join(chunks)
    cuts = list(itertools.accumulate(len(c) for c in chunks))[:-1]
    assert check_stream((stream, cuts, cap)).split("-")[0] in ("messages", "error")


imeis = st.text(alphabet="0123456789", min_size=15, max_size=15)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFF_FFFF)


@st.composite
def locations(draw: st.DrawFn) -> MoLocation:
    lat_units = draw(st.integers(0, 90 * 60_000))
    lon_units = draw(st.integers(0, 180 * 60_000))
    latitude = lat_units // 60_000 + (lat_units % 60_000) / 60_000
    longitude = lon_units // 60_000 + (lon_units % 60_000) / 60_000
    if draw(st.booleans()):
        latitude = -latitude
    if draw(st.booleans()):
        longitude = -longitude
    return MoLocation(latitude, longitude, draw(u32))


mo_messages = st.builds(
    MoMessage,
    header=st.builds(MoHeader, u32, imeis, st.integers(0, 255), u16, u16, u32),
    payload=st.none() | st.binary(min_size=1, max_size=LARGEST.mo_max_bytes),
    location=st.none() | locations(),
)
mt_messages = st.builds(
    MtMessage,
    client_message_id=st.binary(min_size=4, max_size=4),
    imei=imeis,
    flags=u16.map(MtFlags),
    payload=st.none() | st.binary(min_size=1, max_size=LARGEST.mt_max_bytes),
    priority=st.none() | u16,
)
mt_confirmations = st.builds(
    MtConfirmation,
    client_message_id=st.binary(min_size=4, max_size=4),
    imei=imeis,
    auto_id=u32,
    status=st.integers(-0x8000, 0x7FFF),
)


@given(mo_messages)
def test_mo_round_trip(message: MoMessage) -> None:
    raw = encode_mo(message)
    assert decode_mo(raw) == message
    assert struct.unpack(">BH", raw[:3]) == (1, len(raw) - 3)


@given(mt_messages)
def test_mt_round_trip(message: MtMessage) -> None:
    assert decode_mt(encode_mt(message)) == message


@given(mt_confirmations)
def test_mt_confirmation_round_trip(confirmation: MtConfirmation) -> None:
    assert decode_mt_confirmation(encode_mt_confirmation(confirmation)) == confirmation


@given(st.lists(st.one_of(mo_messages.map(encode_mo), mt_messages.map(encode_mt)), max_size=4), st.data())
def test_reader_splits_any_chunking_of_a_stream(messages: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(messages)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    reader = MessageReader()
    out: list[bytes] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        reader.feed(stream[start:end])
        while (message := reader.next_message()) is not None:
            out.append(message)
    reader.end_of_stream()
    assert out == messages
