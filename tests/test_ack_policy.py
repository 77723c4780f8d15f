"""Acknowledgement by exception on the wire: the items round-trip, garbage ends in typed errors, and the
receipt ledger never acknowledges a counter it did not receive (or was told to stop waiting for)."""

from __future__ import annotations

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wire.ackpolicy import (
    CumAckItem,
    ReceiptLedger,
    ResendItem,
    VoidItem,
    encode_cumack_item,
    encode_resend_item,
    encode_void_item,
    first_runs,
)
from wire.errors import LocalWireError, MalformedError, RemoteWireError
from wire.items import decode_items

counters = st.frozensets(st.integers(0, 5000), min_size=1, max_size=40)


@settings(deadline=None)
@given(counters)
def test_resend_and_void_items_round_trip(cs: frozenset[int]) -> None:
    assert decode_items(encode_resend_item(cs)) == [ResendItem(cs)]
    assert decode_items(encode_void_item(cs)) == [VoidItem(cs)]


@settings(deadline=None)
@given(st.integers(0, 5000), st.data())
def test_cumulative_items_round_trip_and_a_usual_one_costs_a_few_bytes(
    upto: int, data: st.DataObject
) -> None:
    start = data.draw(st.integers(0, upto))
    missing = data.draw(st.frozensets(st.integers(start, upto), max_size=10))
    item = encode_cumack_item(upto, missing, start)
    assert decode_items(item) == [CumAckItem(upto, missing, start)]
    if not missing and start == 0 and upto < 65536:
        assert len(item) <= 6


def test_an_item_that_would_claim_outside_its_bounds_cannot_be_made() -> None:
    with pytest.raises(LocalWireError):
        encode_cumack_item(5, {6})
    with pytest.raises(LocalWireError):
        encode_resend_item(set())


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.integers(-3, 10**6), st.lists(st.integers(-2, 70000), max_size=6), st.binary(max_size=3)
        ),
        max_size=4,
    ),
    st.sampled_from([3, 4, 5]),
)
def test_any_policy_item_after_a_valid_mac_decodes_or_raises_a_typed_error(body: list, tag: int) -> None:
    raw = cbor2.dumps([tag, *body])
    try:
        [item] = decode_items(raw)
    except RemoteWireError as exc:
        assert isinstance(exc, MalformedError) or exc.reason in ("oversize", "truncated")
        return
    if isinstance(item, CumAckItem):
        assert item.start <= item.upto and all(item.start <= c <= item.upto for c in item.missing)
    else:
        assert item.counters


events = st.lists(
    st.tuples(st.sampled_from(["receive", "void", "ack", "time"]), st.integers(0, 60)), max_size=80
)


@settings(max_examples=300, deadline=None)
@given(events)
def test_the_ledger_never_acknowledges_a_counter_it_neither_received_nor_was_told_is_void(
    steps: list[tuple[str, int]],
) -> None:
    ledger = ReceiptLedger()
    got: set[int] = set()
    now = 0.0
    for what, n in steps:
        if what == "receive":
            first = ledger.receive(n, now)
            assert first == (n not in got), "a counter is new exactly once"
            got.add(n)
        elif what == "void":
            ledger.void({n}, now)
            got.add(n)
        elif what == "time":
            now += n * 10
        else:
            item = ledger.cumulative(now, grace_s=100.0)
            if item is not None:
                claimed = {c for c in range(item.start, item.upto + 1) if item.covers(c)}
                assert claimed <= got, f"claims {sorted(claimed - got)} it never had"
                assert item.missing <= set(range(item.start, item.upto + 1)) - got
                ledger.cumulative_sent(item, now)
        ledger = ReceiptLedger.from_json(ledger.to_json())  # the state survives storage
    # Once every gap is old, a cumulative ack speaks for everything received and names every gap.
    item = ledger.cumulative(now + 1000.0, grace_s=100.0)
    if got and item is not None:
        holes = set(range(item.start, max(got))) - got
        assert item.missing == first_runs(holes), "the lowest gaps, in at most MAX_RUNS runs"
        assert item.upto == (max(got) if item.missing == holes else max(item.missing))


def test_a_gap_is_asked_for_once_after_the_grace_period_and_closed_by_the_frame_or_a_void() -> None:
    ledger = ReceiptLedger()
    for c in (0, 1, 4):
        ledger.receive(c, 10.0)
    assert ledger.resend_due(50.0, grace_s=60.0) == frozenset()
    assert ledger.resend_due(70.0, grace_s=60.0) == frozenset({2, 3})
    ledger.resend_sent(frozenset({2, 3}))
    assert ledger.resend_due(500.0, grace_s=60.0) == frozenset()
    ledger.receive(2, 80.0)
    ledger.void({3}, 90.0)
    assert ledger.holes == {} and ledger.floor == 4
    assert ledger.cumulative(100.0, 60.0) == CumAckItem(4)


def test_a_standalone_ack_is_due_only_after_the_interval_and_a_replay_resets_nothing() -> None:
    ledger = ReceiptLedger()
    assert ledger.receive(0, 0.0)
    assert not ledger.standalone_ack_due(86399.0, 86400.0)
    assert ledger.standalone_ack_due(86400.0, 86400.0)
    item = ledger.cumulative(86400.0, 120.0)
    assert item is not None
    ledger.cumulative_sent(item, 86400.0)
    assert not ledger.receive(0, 90000.0), "a replay is not new"
    assert ledger.cumulative(90000.0, 120.0) is None, "and earns no second acknowledgement"
    assert not ledger.standalone_ack_due(10**7, 86400.0)


def test_a_jump_too_wide_to_track_is_never_claimed() -> None:
    ledger = ReceiptLedger()
    ledger.receive(0, 0.0)
    ledger.receive(5000, 0.0)
    item = ledger.cumulative(1000.0, 10.0)
    assert item is not None and item.start > 0 and not item.covers(1)


def test_the_vessels_owed_an_acknowledgement_are_found_by_a_prefix_search_of_the_marks(tmp_path) -> None:
    """The relay asks every MT poll which vessels are owed an acknowledgement alone: on SQLite that is
    a search of the marks' key, not a read of every mark (airtime counts pile up one per vessel-day)."""
    from shore import acks
    from shore.archive import Archive

    archive = Archive(tmp_path / "archive.sqlite3")
    try:
        with archive.tx() as db:
            for n in range(50):
                Archive.set_mark(db, f"airtime:30023401000{n:04d}:2026-12-07", "{}", 1.0)
            Archive.set_mark(db, acks.DUE + "300234010000001", repr(5.0), 1.0)
            Archive.set_mark(db, acks.DUE + "300234010000002", repr(50.0), 1.0)
            Archive.set_mark(db, "ACK-DUE:300234010000003", repr(1.0), 1.0)  # not the same key
        assert acks.vessels_due(archive, 10.0) == ["300234010000001"]
        statements: list[str] = []
        archive._db.set_trace_callback(statements.append)
        acks.vessels_due(archive, 10.0)
        archive._db.set_trace_callback(None)
        [query] = [s for s in statements if "marks" in s]
        plan = [row[3] for row in archive._db.execute("EXPLAIN QUERY PLAN " + query)]
        assert not any(step == "SCAN marks" for step in plan), plan
    finally:
        archive.close()
