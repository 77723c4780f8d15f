"""Wire format v2: round trips, limits, authentication, garbage after a valid tag, and the crew seal."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.public import PrivateKey

from firmware_profiles import load_profile, profile_names
from wire import codec
from wire.ackpolicy import CumAckItem, ResendItem, VoidItem
from wire.crypto import CrewEpoch, crew_epoch_key, link_key
from wire.errors import AuthenticationError, MalformedError, RemoteWireError
from wire.fill import fill_frame
from wire.frame import Direction
from wire.items import FragmentItem, RecordItem, join_fragments
from wire.records import Kind
from wire.v2 import crew as v2crew
from wire.v2.crew import FrameEpoch, open_crew, open_member, seal_crew, seal_member
from wire.v2.frame import EpochUnknownError, expand_counter, open_frame, seal_plaintext
from wire.versions import FORMATS, open_any, wire_format

VESSEL = PrivateKey.generate()
SHORE = PrivateKey.generate()
CREW = PrivateKey.generate()
KEY = link_key(VESSEL, SHORE.public_key)
EPOCH = CrewEpoch.start(5, CREW.public_key)
SHORE_EPOCH_KEY = crew_epoch_key(CREW, EPOCH.public_bytes)
BASE_RID = 900
NOW = 1_790_000_000.0
V2 = wire_format(2)

cbor_leaf = st.one_of(
    st.integers(-(2**63), 2**63 - 1), st.text(max_size=40), st.binary(max_size=40), st.none()
)
cbor_body = st.recursive(
    cbor_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.integers(0, 30), inner, max_size=5)
    ),
    max_leaves=20,
)
crew_text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=400)
addressee = st.one_of(st.just("hotline"), st.text(min_size=1, max_size=20).filter(lambda t: t != "hotline"))


def gateway_epoch(announced: bool = True) -> FrameEpoch:
    return FrameEpoch(EPOCH.number, EPOCH.key, BASE_RID, announced)


def shore_epochs(parity: int) -> FrameEpoch | None:
    return FrameEpoch(EPOCH.number, SHORE_EPOCH_KEY, BASE_RID) if parity == EPOCH.number & 1 else None


def crew_body(rid: int, text: str, to: str = "hotline", member: int = 42, created: float = NOW - 300) -> dict:
    return seal_crew(EPOCH.number, EPOCH.key, rid, member, created, to, codec.encode_text(text))


def send_all(fmt, units, limit, counter, epoch):
    """Pack units into frames with the shared fill function; yield each sealed frame."""
    pending = list(units)
    while pending:
        room = fmt.capacity(limit, counter)
        pairs = [(u, fmt.prepare(u.item, epoch, NOW)) for u in pending]
        fill = fill_frame([], pairs, room, lambda pair: pair[1], fmt.cost)
        assert fill.units, "a unit never fits a frame"
        frame = fmt.seal(KEY, Direction.MO, counter, [item for _, item in fill.units], limit, epoch)
        assert len(frame) <= limit
        yield counter, frame
        sent = [u for u, _ in fill.units]
        pending = [u for u in pending if u not in sent]
        counter += 1


def receive(frames, highest=-1):
    received: dict[int, RecordItem] = {}
    fragments: dict[int, dict[int, bytes]] = {}
    for counter, frame in frames:
        head, items = open_any(KEY, frame, Direction.MO, highest, shore_epochs, NOW + 60)
        assert head.counter == counter
        highest = max(highest, counter)
        for item in items:
            if isinstance(item, RecordItem):
                received[item.rid] = item
            elif isinstance(item, FragmentItem):
                fragments.setdefault(item.rid, {})[item.index] = item.chunk
                joined = join_fragments(item.count, fragments[item.rid])
                if joined is not None:
                    received[item.rid] = RecordItem(item.rid, joined.kind, joined.body)
    return received


@settings(max_examples=150, deadline=None)
@given(
    version=st.sampled_from(sorted(FORMATS)),
    bodies=st.lists(st.tuples(st.integers(0, 8).filter(lambda k: k != 2), cbor_body), max_size=8),
    texts=st.lists(st.tuples(crew_text, addressee), max_size=6),
    counter=st.integers(0, 2**35 - 100),
    profile=st.sampled_from(profile_names()),
    announced=st.booleans(),
)
def test_records_and_crew_messages_round_trip_never_over_the_limit(
    version, bodies, texts, counter, profile, announced
) -> None:
    fmt = wire_format(version)
    limit = min(load_profile(profile).mo_max_bytes, 2000)
    capacity = fmt.min_capacity(limit)
    units, expected = [], {}
    rid = BASE_RID + 1
    for kind, body in bodies:
        units += fmt.cut_record(rid, kind, body, capacity)
        expected[rid] = (kind, body)
        rid += 1
    for text, to in texts:
        units += fmt.cut_record(rid, Kind.CREW_MESSAGE, crew_body(rid, text, to), capacity)
        expected[rid] = (Kind.CREW_MESSAGE, (to, text))
        rid += 1
    received = receive(send_all(fmt, units, limit, counter, gateway_epoch(announced)), counter - 1)
    assert set(received) == set(expected)
    for rid, (kind, want) in expected.items():
        assert received[rid].kind == kind
        if kind == Kind.CREW_MESSAGE:
            to, coded, created = open_crew(SHORE_EPOCH_KEY, rid, received[rid].body)
            assert (to, codec.decode_text(coded)) == want
            assert NOW - 360 <= created <= NOW - 240 + 60  # minute resolution, age taken at sealing
        else:
            assert received[rid].body == want


counter_sets = st.frozensets(st.integers(0, 2**40), min_size=1, max_size=40)


@st.composite
def cumulative_acks(draw) -> CumAckItem:
    upto = draw(st.integers(0, 2**40))
    start = draw(st.one_of(st.just(0), st.integers(0, upto)))
    missing = draw(st.frozensets(st.integers(start, min(upto, start + 5000)), max_size=30))
    return CumAckItem(upto, missing, start)


@settings(max_examples=200, deadline=None)
@given(
    version=st.sampled_from(sorted(FORMATS)),
    resend=counter_sets,
    cumulative=cumulative_acks(),
    voids=counter_sets,
    acked=counter_sets,
    counter=st.integers(0, 2**35 - 1),
)
def test_acknowledgement_items_round_trip_in_either_version(
    version, resend, cumulative, voids, acked, counter
) -> None:
    fmt = wire_format(version)
    sent = [ResendItem(resend), cumulative, VoidItem(voids)]
    items = [fmt.encode_ack(acked)] + [fmt.encode_policy(i) for i in sent]
    frame = fmt.seal(KEY, Direction.MT, counter, items, 100_000)
    head, opened = open_any(KEY, frame, Direction.MT, counter - 1)
    assert head.counter == counter
    assert opened[1:] == sent
    assert opened[0].counters == acked
    if version == 2:  # the compact form is never larger than v1's CBOR
        assert all(len(fmt.encode_policy(i)) <= len(wire_format(1).encode_policy(i)) for i in sent)


def test_member_handle_travels_once_and_verifies() -> None:
    body = seal_member(EPOCH.number, EPOCH.key, BASE_RID + 1, 7, "blue-fish")
    for epoch in (None, gateway_epoch()):
        unit = V2.cut_record(BASE_RID + 1, Kind.MEMBER, body, 300)[0]
        item = V2.prepare(unit.item, epoch, NOW)
        frame = V2.seal(KEY, Direction.MO, 3, [item], 340, epoch)
        _, items = open_any(KEY, frame, Direction.MO, 2, shore_epochs, NOW)
        assert items[0].kind == Kind.MEMBER
        assert open_member(SHORE_EPOCH_KEY, BASE_RID + 1, items[0].body) == (7, EPOCH.number, "blue-fish")


@settings(max_examples=300)
@given(counter=st.integers(0, 2**62), behind=st.integers(-32767, 32768))
def test_counter_is_restored_from_its_low_bits_near_the_highest_accepted(counter, behind) -> None:
    highest = counter - 1 + behind
    if highest >= -1:
        assert expand_counter(counter % 65536, highest) == counter


@pytest.mark.parametrize("epoch", [None, gateway_epoch()], ids=["link", "crew-sealed"])
def test_any_single_byte_change_fails_authentication(epoch) -> None:
    body = crew_body(BASE_RID + 3, "I have not been paid for two months")
    item = V2.prepare(V2.cut_record(BASE_RID + 3, Kind.CREW_MESSAGE, body, 300)[0].item, epoch, NOW)
    frame = V2.seal(KEY, Direction.MO, 70_000, [V2.encode_ack({1, 2}), item], 340, epoch)
    open_any(KEY, frame, Direction.MO, 69_999, shore_epochs, NOW)
    for i in range(len(frame)):
        for bit in (0x01, 0x80):
            tampered = bytearray(frame)
            tampered[i] ^= bit
            with pytest.raises(RemoteWireError):
                open_any(KEY, bytes(tampered), Direction.MO, 69_999, shore_epochs, NOW)


@settings(max_examples=500)
@given(st.binary(max_size=400), st.integers(-1, 2**40))
def test_any_bytes_into_either_decoder_give_a_typed_error(data: bytes, highest: int) -> None:
    with pytest.raises(RemoteWireError):
        open_any(KEY, data, Direction.MO, highest, shore_epochs, NOW)


@settings(max_examples=800)
@given(plaintext=st.binary(max_size=300), crew_sealed=st.booleans())
def test_garbage_after_a_valid_tag_gives_typed_errors_not_crashes(
    plaintext: bytes, crew_sealed: bool
) -> None:
    epoch = gateway_epoch() if crew_sealed else None
    frame = seal_plaintext(KEY, Direction.MO, 10, plaintext, 2000, epoch)
    try:
        _, items = open_frame(KEY, frame, Direction.MO, 9, shore_epochs, NOW)
    except RemoteWireError:
        return
    for item in items:  # what the receiver decodes later ends in a value or a typed error, never a crash
        if not isinstance(item, RecordItem):
            continue
        try:
            if item.kind == Kind.CREW_MESSAGE:
                codec.decode_text(open_crew(SHORE_EPOCH_KEY, item.rid, item.body)[1])
            elif item.kind == Kind.MEMBER:
                open_member(SHORE_EPOCH_KEY, item.rid, item.body)
        except RemoteWireError:
            pass


@settings(max_examples=300)
@given(body=cbor_body, rid=st.integers(0, 2**40))
def test_garbage_format2_bodies_give_typed_errors(body, rid) -> None:
    for opener in (open_crew, open_member):
        with pytest.raises(RemoteWireError):
            opener(SHORE_EPOCH_KEY, rid, body if not isinstance(body, dict) else {**body, 5: 2})


def test_an_attached_crew_item_outside_a_crew_sealed_frame_is_refused() -> None:
    item = V2.prepare(
        V2.cut_record(BASE_RID + 1, 2, crew_body(BASE_RID + 1, "hi"), 300)[0].item, gateway_epoch(), NOW
    )
    frame = seal_plaintext(KEY, Direction.MO, 4, item, 340)  # sealed under the link key alone
    with pytest.raises(MalformedError):
        open_any(KEY, frame, Direction.MO, 3, shore_epochs, NOW)


def test_a_crew_sealed_frame_of_an_unannounced_epoch_waits_as_epoch_unknown() -> None:
    item = V2.prepare(
        V2.cut_record(BASE_RID + 1, 2, crew_body(BASE_RID + 1, "hi"), 300)[0].item, gateway_epoch(), NOW
    )
    frame = V2.seal(KEY, Direction.MO, 4, [item], 340, gateway_epoch())
    with pytest.raises(EpochUnknownError):
        open_any(KEY, frame, Direction.MO, 3, lambda parity: None, NOW)


def test_the_operator_cannot_alter_a_queued_crew_message() -> None:
    """With the disk and the link key, changing any stored field of a sealed message is detected: the
    gateway keeps the altered item in its sealed form and the shore's check of its tag fails."""
    rid = BASE_RID + 2
    body = crew_body(rid, "The captain keeps our passports", member=9)
    for key, value in ((0, 10), (3, body[3] + 60), (2, bytes([body[2][0] ^ 1]) + body[2][1:]), (1, 6)):
        altered = {**body, key: value}
        unit = V2.cut_record(rid, Kind.CREW_MESSAGE, altered, 300)[0]
        item = V2.prepare(unit.item, gateway_epoch(), NOW)
        assert item == unit.item  # not attached: its tag no longer verifies
        frame = V2.seal(KEY, Direction.MO, 8, [item], 340, gateway_epoch())
        _, items = open_any(KEY, frame, Direction.MO, 7, shore_epochs, NOW)
        with pytest.raises(AuthenticationError):
            open_crew(SHORE_EPOCH_KEY, rid, items[0].body)


def test_the_operator_cannot_read_a_queued_crew_message() -> None:
    body = crew_body(BASE_RID + 2, "hotline please call me, the captain keeps our passports")
    stored = b"".join(V2.cut_record(BASE_RID + 2, 2, body, 300)[0].item for _ in range(1))
    assert codec.encode_text("hotline please call me, the captain keeps our passports")[1:] not in stored
    with pytest.raises(AuthenticationError):  # the link key, which the operator has, does not open it
        open_crew(KEY, BASE_RID + 2, body)


def test_lone_crew_message_overhead_is_at_most_16_bytes() -> None:
    coded = codec.encode_text("ကျွန်တော် နေကောင်းပါတယ်")
    rid = BASE_RID + 1000  # a gateway some weeks into its run: a 2-byte delta
    unit = V2.cut_record(rid, 2, crew_body(rid, "ကျွန်တော် နေကောင်းပါတယ်", created=NOW - 600), 300)[0]
    frame = V2.seal(
        KEY, Direction.MO, 100_000, [V2.prepare(unit.item, gateway_epoch(), NOW)], 340, gateway_epoch()
    )
    assert len(frame) - len(coded) <= 16


def test_both_formats_open_through_one_entry_point() -> None:
    for fmt in FORMATS.values():
        frame = fmt.seal(KEY, Direction.MT, 12, [fmt.encode_ack({3, 4})], 270)
        head, items = open_any(KEY, frame, Direction.MT, 11)
        assert head.counter == 12 and items[0].counters == frozenset({3, 4})
    assert v2crew.FORMAT == 2
