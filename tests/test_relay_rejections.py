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
from wire.ackpolicy import CumAckItem, encode_void_item
from wire.frame import parse_header
from wire.items import encode_record_item
from wire.records import Kind, Sos, to_wire_time

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


def test_a_replayed_frame_under_new_momsns_is_rejected_and_never_owes_a_second_acknowledgement(
    setup,
) -> None:
    archive, relay, v = setup
    sos = encode_record_item(v.next_rid(), int(Kind.SOS), Sos(to_wire_time(1.7e9)).body())
    frame = v.frame([sos])
    counter = parse_header(frame).counter
    assert relay.handle_mo(v.imei, 1, frame, NET, 1.0) == "accepted"
    assert archive.acks_owed(v.imei) == [counter]  # an SOS is acknowledged at once
    mt = relay.build_mt(v.imei, 2.0)
    assert mt is not None and mt.acks == [counter] and mt.cause == "sos-ack"
    relay.mt_sent(mt, 2.0)
    for momsn in range(2, 12):  # a captured frame replayed under ten new MOMSNs
        assert relay.handle_mo(v.imei, momsn, frame, NET, 3.0 + momsn) == "replay"
    assert relay.rejections["replay"] == 10
    assert archive.acks_owed(v.imei) == []
    assert relay.build_mt(v.imei, 20.0) is None, "a replay made the shore owe a billed MT frame"
    assert relay.build_mt(v.imei, 20.0 + relay.ack_policy.cumulative_interval_s) is None
    assert len(_events(archive, "/up/sos")) == 1


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


def test_frames_are_acknowledged_by_exception_cumulatively_on_replies_and_alone_only_after_a_day(
    setup,
) -> None:
    archive, relay, v = setup
    interval = relay.ack_policy.cumulative_interval_s
    first, second = v.frame([v.catch_item(1)]), v.frame([v.catch_item(2)])
    assert relay.handle_mo(v.imei, 1, first, NET, 1000.0) == "accepted"
    assert relay.handle_mo(v.imei, 2, second, NET, 1200.0) == "accepted"
    assert relay.build_mt(v.imei, 1300.0) is None  # no MT frame per MO frame
    # A reply goes at once and carries the cumulative acknowledgement.
    relay.accept_reply(archive.vessel(v.imei), 1, "we hear you", "hotline", "r1", 1400.0)
    mt = relay.build_mt(v.imei, 1401.0)
    assert mt is not None and mt.units and mt.cause == "reply" and mt.acks == []
    assert mt.cumulative == CumAckItem(parse_header(second).counter)
    relay.mt_sent(mt, 1401.0)
    # Newer frames are acknowledged alone only once they waited the whole interval for a reply.
    third = v.frame([v.catch_item(3)])
    assert relay.handle_mo(v.imei, 3, third, NET, 2000.0) == "accepted"
    assert relay.build_mt(v.imei, 2000.0 + interval - 1) is None
    assert relay.vessels_with_mt(2000.0 + interval - 1) == []
    assert relay.vessels_with_mt(2000.0 + interval) == [v.imei]
    alone = relay.build_mt(v.imei, 2000.0 + interval)
    assert alone is not None and alone.cause == "ack" and not alone.units
    assert alone.cumulative == CumAckItem(parse_header(third).counter)
    relay.mt_sent(alone, 2000.0 + interval)
    assert relay.build_mt(v.imei, 2000.0 + 1.2 * interval) is None  # said once


def test_a_missing_frame_is_asked_for_alone_after_the_grace_period_unless_declared_void(setup) -> None:
    archive, relay, v = setup
    grace = relay.ack_policy.resend_grace_s
    frames = [v.frame([v.catch_item(i)]) for i in range(5)]
    counters = [parse_header(f).counter for f in frames]
    for i in (0, 1, 3):  # frame 2 is lost on the way; frame 4 will be declared void
        assert relay.handle_mo(v.imei, 10 + i, frames[i], NET, 100.0 + i) == "accepted"
    void = v.frame([encode_void_item([counters[4] + 1])], counter=counters[4] + 2)
    assert relay.handle_mo(v.imei, 20, void, NET, 110.0) == "accepted"
    assert relay.build_mt(v.imei, 100.0 + grace - 1) is None
    mt = relay.build_mt(v.imei, 110.0 + grace)
    # Frame 4 (never received, never declared) and frame 2 are asked for; the void one is not.
    assert mt is not None and mt.cause == "resend-request"
    assert mt.resend == frozenset({counters[2], counters[4]})
    relay.mt_sent(mt, 110.0 + grace)
    assert relay.build_mt(v.imei, 120.0 + grace) is None  # asked once
    # A reply carries a cumulative ack that still names the missing frames.
    relay.accept_reply(archive.vessel(v.imei), 1, "ok", "hotline", "r2", 130.0 + grace)
    reply = relay.build_mt(v.imei, 130.0 + grace)
    assert reply is not None and reply.cumulative is not None
    assert reply.cumulative.missing == frozenset({counters[2], counters[4]})
    assert reply.cumulative.upto == counters[4] + 2
