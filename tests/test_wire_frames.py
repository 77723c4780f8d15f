"""Frame format: round trips, size limits, authentication, replay and garbage handling."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.public import PrivateKey

from firmware_profiles import load_profile, profile_names
from wire.crypto import TAG_BYTES, link_key
from wire.errors import AuthenticationError, RemoteWireError, ReplayError
from wire.frame import Direction, frame_capacity, frame_overhead, open_frame, seal_frame
from wire.items import AckItem, FragmentItem, RecordItem, encode_ack_item, join_fragments
from wire.replay import ReplayWindow
from wire.units import cut_record, pack_units

VESSEL = PrivateKey.generate()
SHORE = PrivateKey.generate()
KEY = link_key(VESSEL, SHORE.public_key)

cbor_leaf = st.one_of(
    st.integers(-(2**63), 2**63 - 1), st.text(max_size=50), st.binary(max_size=50), st.none()
)
cbor_body = st.recursive(
    cbor_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.integers(0, 30), inner, max_size=5)
    ),
    max_leaves=20,
)


def test_both_ends_derive_the_same_link_key() -> None:
    assert link_key(SHORE, VESSEL.public_key) == KEY


def test_overhead_of_a_frame_is_within_the_budget() -> None:
    # header + counter varint + tag; 24 bytes is the documented ceiling for any counter below 2**35.
    assert frame_overhead(0) == 1 + 1 + TAG_BYTES
    assert frame_overhead(2**35 - 1) <= 24


@settings(max_examples=200)
@given(
    bodies=st.lists(st.tuples(st.integers(0, 6), cbor_body), min_size=1, max_size=12),
    counter=st.integers(0, 2**40),
    profile=st.sampled_from(profile_names()),
)
def test_records_round_trip_through_frames_never_over_the_limit(bodies, counter, profile) -> None:
    limit = min(load_profile(profile).mo_max_bytes, 2000)
    capacity = frame_capacity(limit, counter)
    units = []
    for rid, (kind, body) in enumerate(bodies, start=1000):
        units.extend(cut_record(rid, kind, body, capacity))
    received: dict[int, RecordItem] = {}
    fragments: dict[int, dict[int, bytes]] = {}
    pending = list(units)
    c = counter
    while pending:
        chosen = pack_units(pending, frame_capacity(limit, c))
        assert chosen, "a unit never fits a frame"
        frame = seal_frame(KEY, Direction.MO, c, [u.item for u in chosen], limit)
        assert len(frame) <= limit
        head, items = open_frame(KEY, frame, Direction.MO)
        assert head.counter == c
        for item in items:
            if isinstance(item, RecordItem):
                received[item.rid] = item
            elif isinstance(item, FragmentItem):
                fragments.setdefault(item.rid, {})[item.index] = item.chunk
                joined = join_fragments(item.count, fragments[item.rid])
                if joined is not None:
                    received[item.rid] = RecordItem(item.rid, joined.kind, joined.body)
        pending = [u for u in pending if u not in chosen]
        c += 1
    for rid, (kind, body) in enumerate(bodies, start=1000):
        assert received[rid].kind == kind
        assert received[rid].body == body


def test_a_changed_byte_anywhere_fails_authentication() -> None:
    frame = seal_frame(KEY, Direction.MO, 7, [encode_ack_item({1, 2, 3})], 340)
    for i in range(len(frame)):
        tampered = bytearray(frame)
        tampered[i] ^= 0x01
        with pytest.raises(RemoteWireError):
            open_frame(KEY, bytes(tampered), Direction.MO)


def test_frame_from_another_vessel_is_rejected() -> None:
    other = link_key(PrivateKey.generate(), SHORE.public_key)
    frame = seal_frame(other, Direction.MO, 1, [encode_ack_item({5})], 340)
    with pytest.raises(AuthenticationError):
        open_frame(KEY, frame, Direction.MO)


def test_frame_for_the_other_direction_is_rejected() -> None:
    frame = seal_frame(KEY, Direction.MT, 1, [encode_ack_item({5})], 270)
    with pytest.raises(RemoteWireError):
        open_frame(KEY, frame, Direction.MO)


@settings(max_examples=500)
@given(st.binary(max_size=400))
def test_any_bytes_into_the_decoder_give_a_typed_error(data: bytes) -> None:
    with pytest.raises(RemoteWireError):
        open_frame(KEY, data, Direction.MO)


def test_ack_item_round_trip() -> None:
    counters = {1, 2, 3, 10, 11, 400, 70000}
    frame = seal_frame(KEY, Direction.MT, 3, [encode_ack_item(counters)], 270)
    _, items = open_frame(KEY, frame, Direction.MT)
    assert items == [AckItem(frozenset(counters))]


@given(st.lists(st.integers(0, 5000), max_size=300))
def test_replay_window_accepts_each_counter_once(counters: list[int]) -> None:
    window = ReplayWindow(size=1024)
    accepted: list[int] = []
    for c in counters:
        try:
            window.record(c)
        except ReplayError:
            continue
        accepted.append(c)
    assert len(accepted) == len(set(accepted))
    for c in accepted:
        assert window.highest - c >= window.size or window.seen(c)
