"""The pipeline refuses what it must (unknown, revoked, forged, replayed, oversized, bombs), counts
each refusal by reason, and keeps delivering good frames afterwards; each record is delivered once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from relay_kit import ShoreKeys, VesselSender, bomb_text, make_relay

from shore.archive import Archive
from shore.relay import Relay
from wire.frame import parse_header
from wire.records import Kind

NET = "iridium-directip"


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Archive, Relay, VesselSender]:
    keys = ShoreKeys(tmp_path / "keys")
    archive, relay = make_relay(tmp_path, keys)
    vessel = VesselSender(keys, "300234010000001", "Sea Star")
    vessel.register(archive)
    yield archive, relay, vessel
    archive.close()


def _events(archive: Archive, suffix: str) -> list[dict]:
    return [
        json.loads(p)
        for t, p in archive.query("SELECT topic, payload FROM events ORDER BY id")
        if t.endswith(suffix)
    ]


def test_a_good_frame_is_accepted_and_its_records_published_once(setup) -> None:
    archive, relay, v = setup
    frame = v.frame([v.epoch_item(), v.crew_item("hello shore"), v.catch_item(1)])
    assert relay.handle_mo(v.imei, 1, frame, NET, 100.0) == "accepted"
    assert relay.handle_mo(v.imei, 1, frame, NET, 101.0) == "duplicate"
    crew = _events(archive, "/up/crew")
    assert [m["text"] for m in crew] == ["hello shore"]
    assert len(_events(archive, "/up/catch/trip-start")) == 1
    assert relay.rejections["duplicate-delivery"] == 1
    assert relay.frames_in[NET] == 2


def test_an_unknown_imei_is_rejected_and_counted(setup) -> None:
    archive, relay, v = setup
    assert relay.handle_mo("300234099999999", 1, v.frame([v.catch_item(1)]), NET, 1.0) == "unknown-vessel"
    assert relay.rejections["unknown-vessel"] == 1
    assert archive.query("SELECT COUNT(*) FROM records")[0][0] == 0


def test_a_revoked_vessel_is_rejected_and_counted(setup) -> None:
    archive, relay, v = setup
    assert archive.revoke_vessel(v.imei)
    assert relay.handle_mo(v.imei, 1, v.frame([v.catch_item(1)]), NET, 1.0) == "revoked-vessel"
    assert relay.rejections["revoked-vessel"] == 1
    assert archive.query("SELECT COUNT(*) FROM records")[0][0] == 0


def test_a_frame_sealed_with_another_key_is_a_counted_forgery(setup, tmp_path: Path) -> None:
    archive, relay, v = setup
    impostor = VesselSender(ShoreKeys(tmp_path / "other"), v.imei, v.name)
    assert relay.handle_mo(v.imei, 1, impostor.frame([impostor.catch_item(1)]), NET, 1.0) == "bad-mac"
    assert relay.rejections["bad-mac"] == 1
    assert archive.query("SELECT outcome FROM frames_in") == [("bad-mac",)]


def test_a_flipped_bit_anywhere_is_a_counted_rejection(setup) -> None:
    archive, relay, v = setup
    frame = bytearray(v.frame([v.catch_item(1)]))
    for i in range(len(frame)):
        bad = bytearray(frame)
        bad[i] ^= 0x01
        outcome = relay.handle_mo(v.imei, 1000 + i, bytes(bad), NET, 1.0)
        assert outcome in ("bad-mac", "malformed", "truncated", "unsupported-version", "replay"), outcome
    assert archive.query("SELECT COUNT(*) FROM records")[0][0] == 0
    assert relay.handle_mo(v.imei, 1, bytes(frame), NET, 2.0) == "accepted"


def test_a_replayed_frame_under_a_new_momsn_is_rejected_and_the_ack_owed_again(setup) -> None:
    archive, relay, v = setup
    frame = v.frame([v.catch_item(1)])
    assert relay.handle_mo(v.imei, 1, frame, NET, 1.0) == "accepted"
    archive.query("DELETE FROM acks_owed")
    assert relay.handle_mo(v.imei, 2, frame, NET, 2.0) == "replay"
    assert relay.rejections["replay"] == 1
    assert archive.acks_owed(v.imei) == [0]
    assert len(_events(archive, "/up/catch/trip-start")) == 1


def test_an_old_counter_below_the_window_is_a_replay(setup) -> None:
    _archive, relay, v = setup
    old = v.frame([v.catch_item(1)], counter=0)
    assert relay.handle_mo(v.imei, 1, v.frame([v.catch_item(2)], counter=100_000), NET, 1.0) == "accepted"
    assert relay.handle_mo(v.imei, 2, old, NET, 2.0) == "replay"


def test_an_oversized_frame_is_refused_before_decryption(setup) -> None:
    _archive, relay, v = setup
    assert relay.handle_mo(v.imei, 1, b"\x00" * (v.limit + 1), NET, 1.0) == "oversize-frame"
    assert relay.rejections["oversize-frame"] == 1


def test_a_decompression_bomb_is_refused_and_the_relay_carries_on(setup) -> None:
    archive, relay, v = setup
    assert relay.handle_mo(v.imei, 1, v.frame([v.epoch_item()]), NET, 1.0) == "accepted"
    # The bomb's compressed head alone (200 B) inflates far past the 64 KiB output limit.
    relay.handle_mo(v.imei, 3, v.frame([v.crew_item("", raw_text=bomb_text()[:200])]), NET, 1.0)
    assert relay.rejections["oversize"] + relay.rejections["truncated"] + relay.rejections["malformed"] >= 1
    assert _events(archive, "/up/crew") == []
    assert relay.handle_mo(v.imei, 2, v.frame([v.crew_item("still here")]), NET, 2.0) == "accepted"
    assert [m["text"] for m in _events(archive, "/up/crew")] == ["still here"]


def test_fragments_reassemble_once_and_partial_records_are_capped(setup) -> None:
    archive, relay, v = setup
    parts = v.fragments(int(Kind.NOTICE), {0: 7, 1: "x" * 600}, 3)
    for i, part in enumerate(reversed(parts)):
        assert relay.handle_mo(v.imei, 10 + i, v.frame([part]), NET, 1.0) == "accepted"
    assert len(_events(archive, "/up/notice")) == 1
    assert archive.query("SELECT COUNT(*) FROM fragments")[0][0] == 0
    relay.max_fragment_bytes = 300
    big = v.fragments(int(Kind.NOTICE), {0: 8, 1: "y" * 900}, 4)
    assert relay.handle_mo(v.imei, 20, v.frame([big[0]]), NET, 2.0) == "accepted"
    # Over the cap: the frame is refused whole and not acknowledged, so the vessel sends it again.
    capped = v.frame([big[1]])
    counter = parse_header(capped).counter
    assert relay.handle_mo(v.imei, 21, capped, NET, 2.0) == "fragment-cap"
    assert relay.rejections["fragment-cap"] == 1
    assert counter not in archive.acks_owed(v.imei)
    assert archive.expire_fragments(older_than=10.0) >= 1
    assert archive.query("SELECT COUNT(*) FROM fragments")[0][0] == 0
    # Once stale partials are gone, the resent fragments are taken.
    relay.max_fragment_bytes = 64 * 1024
    for i, part in enumerate(big):
        assert relay.handle_mo(v.imei, 30 + i, v.frame([part]), NET, 20.0) == "accepted"
    assert len(_events(archive, "/up/notice")) == 2


def test_a_silent_vessel_raises_one_alert_until_heard_again(setup) -> None:
    archive, relay, v = setup
    relay.handle_mo(v.imei, 1, v.frame([v.catch_item(1)]), NET, 1000.0)
    assert relay.check_silence(1000.0 + 3599, 3600) == []
    assert [x.name for x in relay.check_silence(1000.0 + 3601, 3600)] == [v.name]
    assert relay.check_silence(1000.0 + 9000, 3600) == []
    alerts = _events(archive, "/evt/alert")
    assert len(alerts) == 1 and alerts[0]["alert"] == "silent"
    relay.handle_mo(v.imei, 2, v.frame([v.catch_item(2)]), NET, 20000.0)
    assert len(relay.check_silence(30000.0, 3600)) == 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(garbage=st.binary(max_size=400), momsn=st.integers(0, 65535))
def test_any_bytes_from_a_known_vessel_end_in_an_outcome_never_an_exception(setup, garbage, momsn) -> None:
    archive, relay, v = setup
    outcome = relay.handle_mo(v.imei, momsn, garbage, NET, 1.0)
    assert isinstance(outcome, str) and outcome
    assert archive.query("SELECT COUNT(*) FROM records")[0][0] == 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(range(6)), dups=st.lists(st.integers(0, 5), max_size=6))
def test_reordered_and_duplicated_deliveries_publish_each_record_exactly_once(setup, order, dups) -> None:
    archive, relay, v = setup
    base = archive.query("SELECT COUNT(*) FROM records")[0][0]
    frames = [(v.next_momsn(), v.frame([v.catch_item(i)])) for i in range(6)]
    for i in list(order) + list(dups):
        momsn, frame = frames[i]
        relay.handle_mo(v.imei, momsn, frame, NET, 1.0)
    assert archive.query("SELECT COUNT(*) FROM records")[0][0] == base + 6
    ids = [e["msg_id"] for e in _events(archive, "/up/catch/trip-start")]
    assert len(ids) == len(set(ids))


def test_ack_only_frames_wait_to_acknowledge_several_mo_frames_but_replies_do_not(setup) -> None:
    archive, relay, v = setup
    relay.ack_delay_s = 300.0
    first, second = v.frame([v.catch_item(1)]), v.frame([v.catch_item(2)])
    assert relay.handle_mo(v.imei, 1, first, NET, 1000.0) == "accepted"
    assert relay.build_mt(v.imei, 1100.0) is None  # held: nothing but an ack to send
    assert relay.handle_mo(v.imei, 2, second, NET, 1200.0) == "accepted"
    frame = relay.build_mt(v.imei, 1300.0)  # the oldest ack has waited long enough
    assert frame is not None and frame.acks == sorted(
        {parse_header(first).counter, parse_header(second).counter}
    )
    relay.mt_sent(frame, 1300.0)
    # A reply does not wait, and carries whatever acks are owed.
    assert relay.handle_mo(v.imei, 3, v.frame([v.catch_item(3)]), NET, 1400.0) == "accepted"
    relay.accept_reply(archive.vessel(v.imei), 1, "we hear you", "hotline", "r1", 1401.0)
    frame = relay.build_mt(v.imei, 1402.0)
    assert frame is not None and frame.units and len(frame.acks) == 1
