"""The gateway store's public API for components that keep their own tables in its file, and the one
PIN lockout shared by crew accounts and the captain's role."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.accounts import Members
from gateway.pins import LOCK_AFTER_FAILURES, LOCK_BASE_S, LOCK_MAX_S, PinLockout
from gateway.store import GatewayStore
from wire.records import Kind


class Refused(Exception):
    pass


def _store(tmp_path: Path) -> GatewayStore:
    store = GatewayStore(tmp_path / "gw.sqlite3", frame_capacity=300)
    with store.schema() as db:
        db["notes"].create({"id": int, "text": str}, pk="id", if_not_exists=True)
    return store


def _notes(store: GatewayStore) -> list[str]:
    with store.transaction() as db:
        return [r[0] for r in db.execute("SELECT text FROM notes ORDER BY id")]


def test_a_transaction_commits_when_the_block_ends(tmp_path: Path) -> None:
    store = _store(tmp_path)
    with store.transaction() as db:
        db.execute("INSERT INTO notes (text) VALUES ('kept')")
    store.close()
    assert _notes(GatewayStore(tmp_path / "gw.sqlite3", frame_capacity=300)) == ["kept"]


def test_a_transaction_rolls_back_when_the_block_raises(tmp_path: Path) -> None:
    store = _store(tmp_path)
    with pytest.raises(Refused), store.transaction() as db:
        db.execute("INSERT INTO notes (text) VALUES ('lost')")
        raise Refused
    assert _notes(store) == []
    with store.transaction() as db:  # the connection is usable again
        db.execute("INSERT INTO notes (text) VALUES ('next')")
    assert _notes(store) == ["next"]


def test_a_refusal_while_writing_own_rows_queues_no_record(tmp_path: Path) -> None:
    store = _store(tmp_path)

    def refuse(db, rid: int) -> dict:
        db.execute("INSERT INTO notes (text) VALUES (?)", (f"row for {rid}",))
        raise Refused

    with pytest.raises(Refused):
        store.accept_with_rows(Kind.CATCH, refuse, now=1.0)
    assert _notes(store) == []
    assert store.record_states() == {}

    def accept(db, rid: int) -> dict:
        db.execute("INSERT INTO notes (text) VALUES (?)", (f"row for {rid}",))
        return {0: rid}

    rid = store.accept_with_rows(Kind.CATCH, accept, now=2.0)
    assert _notes(store) == [f"row for {rid}"]
    assert store.record_states() == {"queued": 1}


def test_wrong_pins_lock_a_handle_for_a_time_that_doubles_up_to_an_hour(tmp_path: Path) -> None:
    lockout = PinLockout(_store(tmp_path), "test_failures")
    now = 1000.0
    for n in range(1, LOCK_AFTER_FAILURES):
        assert lockout.failed("bosun", now) == n
        assert lockout.locked_for("bosun", now) == 0
    lockout.failed("bosun", now)
    assert lockout.locked_for("bosun", now) == LOCK_BASE_S
    assert lockout.locked_for("bosun", now + LOCK_BASE_S) == 0
    lockout.failed("bosun", now)
    assert lockout.locked_for("bosun", now) == 2 * LOCK_BASE_S
    for _ in range(20):
        lockout.failed("bosun", now)
    assert lockout.locked_for("bosun", now) == LOCK_MAX_S
    assert lockout.locked_for("cook", now) == 0


def test_the_right_pin_clears_the_count_and_lockouts_do_not_cross_tables(tmp_path: Path) -> None:
    store = _store(tmp_path)
    crew, captain = PinLockout(store, "crew_failures"), PinLockout(store, "captain_failures")
    for _ in range(LOCK_AFTER_FAILURES):
        crew.failed("bosun", 0.0)
    assert crew.locked_for("bosun", 0.0) > 0
    assert captain.locked_for("bosun", 0.0) == 0
    crew.cleared("bosun")
    assert crew.locked_for("bosun", 0.0) == 0
    assert crew.failed("bosun", 0.0) == 1


def test_a_lockout_survives_a_restart(tmp_path: Path) -> None:
    store = _store(tmp_path)
    for _ in range(LOCK_AFTER_FAILURES):
        PinLockout(store, "crew_failures").failed("bosun", 0.0)
    store.close()
    again = PinLockout(GatewayStore(tmp_path / "gw.sqlite3", frame_capacity=300), "crew_failures")
    assert again.locked_for("bosun", 0.0) == LOCK_BASE_S


def test_a_handle_is_claimed_once_and_then_needs_its_pin(tmp_path: Path) -> None:
    members = Members(_store(tmp_path))
    member = members.claim_or_login("bosun", "1234", 1.0)
    assert member is not None
    assert members.claim_or_login("bosun", "1234", 2.0) == member
    assert members.claim_or_login("bosun", "9999", 3.0) is None
    assert members.handle(member) == "bosun"
    token = members.open_session(member, 4.0)
    assert members.session_member(token) == member
    members.close_session(token)
    assert members.session_member(token) is None
