"""The archive on PostgreSQL: migrations from empty and idempotent re-runs, the same pipeline
behaviour as on SQLite (exactly-once records, replay rejection, fragments), concurrent workers on
one vessel, retention per record class, and the SQLite archive migrating forward."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from relay_kit import ShoreKeys, VesselSender, make_relay

from firmware_profiles import load_profile
from shore import acks, airtime
from shore.archive import MIGRATIONS, Archive, pg_sql
from shore.relay import Delivery, Relay
from wire.ackpolicy import ReceiptLedger
from wire.records import Kind

NET = "iridium-directip"


def test_sqlite_dialect_is_rewritten_for_postgresql() -> None:
    assert pg_sql("SELECT a FROM t WHERE b = ? AND c = ?") == "SELECT a FROM t WHERE b = %s AND c = %s"
    assert (
        pg_sql("INSERT OR IGNORE INTO t (a) VALUES (?)")
        == "INSERT INTO t (a) VALUES (%s) ON CONFLICT DO NOTHING"
    )
    assert pg_sql("SELECT '100%'") == "SELECT '100%%'"


def test_migrations_run_once_and_record_the_schema_version(pg_url: str) -> None:
    archive = Archive(pg_url)
    assert archive.dialect == "postgresql"
    assert archive.schema_version == len(MIGRATIONS)
    archive.close()
    again = Archive(pg_url)
    assert again.migrate() == len(MIGRATIONS)
    again.close()


def test_an_old_sqlite_archive_is_migrated_forward(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    for statement in MIGRATIONS[0]:
        db.execute(statement.format(id="INTEGER PRIMARY KEY AUTOINCREMENT", blob="BLOB", real="REAL"))
    db.execute("INSERT INTO vessels (imei, name, public_key) VALUES ('1', 'Old', x'00')")
    db.commit()
    db.close()
    archive = Archive(path)
    assert archive.schema_version == len(MIGRATIONS)
    assert archive.vessel("1").network == "iridium-directip"
    archive.close()


@pytest.fixture
def pg(tmp_path: Path, pg_url: str):
    keys = ShoreKeys(tmp_path / "keys")
    archive, relay = make_relay(tmp_path, keys, pg_url)
    vessel = VesselSender(keys, "300234010000011", "Pg Vessel")
    vessel.register(archive)
    yield archive, relay, vessel, keys, pg_url
    archive.close()


def test_the_pipeline_on_postgresql_delivers_once_and_rejects_replays(pg) -> None:
    archive, relay, v, _keys, _url = pg
    frame = v.frame([v.epoch_item(), v.crew_item("hola"), v.catch_item(1)])
    assert relay.handle_mo(v.imei, 1, frame, NET, 10.0) == "accepted"
    assert relay.handle_mo(v.imei, 1, frame, NET, 11.0) == "duplicate"
    assert relay.handle_mo(v.imei, 2, frame, NET, 12.0) == "replay"
    assert archive.query("SELECT COUNT(*) FROM records")[0][0] == 3
    topics = [t for (t,) in archive.query("SELECT topic FROM events ORDER BY id")]
    assert sum(t.endswith("/up/crew") for t in topics) == 1
    assert archive.acks_owed(v.imei) == [], "no MT frame per MO frame: acknowledged by exception"
    parts = v.fragments(int(Kind.CATCH), {0: 2, 1: "z" * 500}, 3)
    for i, part in enumerate(parts):
        assert relay.handle_mo(v.imei, 10 + i, v.frame([part]), NET, 13.0) == "accepted"
    assert archive.query("SELECT COUNT(*) FROM records")[0][0] == 4
    pending = archive.pending_events()
    assert pending and pending[0].created == 10.0
    archive.event_published(pending[0].id, 20.0)
    assert archive.depths()["events"] == len(pending) - 1
    # The next reply carries the cumulative acknowledgement of every frame received.
    relay.accept_reply(archive.vessel(v.imei), 1, "ok", "hotline", "r1", 21.0)
    mt = relay.build_mt(v.imei, 21.0 + relay.ack_policy.reorder_grace_s)
    assert mt is not None and mt.cumulative is not None and mt.cumulative.upto == 3
    assert not mt.cumulative.missing


def test_two_workers_racing_on_one_vessel_deliver_every_record_exactly_once(pg) -> None:
    archive, _relay, v, keys, url = pg
    frames = [(v.next_momsn(), v.frame([v.catch_item(i)])) for i in range(40)]
    relays = [Relay(Archive(url), keys.link, keys.crew) for _ in range(2)]
    outcomes: list[str] = []

    def work(relay: Relay) -> None:
        for momsn, frame in frames:  # both workers get every frame, as after a redelivery
            outcomes.append(relay.handle_mo(v.imei, momsn, frame, NET, 1.0))

    threads = [threading.Thread(target=work, args=(r,)) for r in relays]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert outcomes.count("accepted") == 40 and outcomes.count("duplicate") == 40
    assert archive.query("SELECT COUNT(*) FROM records")[0][0] == 40
    catch = archive.query("SELECT COUNT(*) FROM events WHERE topic LIKE ?", ("%/up/catch/trip-start",))[0][0]
    assert catch == 40
    for r in relays:
        r.archive.close()


def test_mt_counters_reserved_by_two_processes_never_collide(pg) -> None:
    archive, _relay, v, _keys, url = pg
    other = Archive(url)
    seen = [archive.next_mt_counter(v.imei) for _ in range(70)] + [
        other.next_mt_counter(v.imei) for _ in range(70)
    ]
    assert len(seen) == len(set(seen))
    other.close()


def test_retention_deletes_each_record_class_after_its_own_age(pg) -> None:
    archive, relay, v, _keys, _url = pg
    relay.handle_mo(
        v.imei, 1, v.frame([v.epoch_item(), v.crew_item("old news"), v.catch_item(1)]), NET, 1000.0
    )
    archive.query("UPDATE records SET published = 1000")
    deleted = archive.prune(
        now=1000.0 + 86400 * 2, keep_s={int(Kind.CREW_MESSAGE): 86400.0}, frames_keep_s=None
    )
    assert deleted["records"] == 1
    kinds = sorted(k for (k,) in archive.query("SELECT kind FROM records"))
    assert kinds == [int(Kind.EPOCH), int(Kind.CATCH)]
    deleted = archive.prune(now=1000.0 + 86400 * 2, keep_s={}, frames_keep_s=86400.0)
    assert deleted["frames_in"] == 1


def test_marks_and_seen_ids_persist_across_connections(pg) -> None:
    archive, _relay, _v, _keys, url = pg
    with archive.tx() as db:
        Archive.set_mark(db, "idp:x", "2026-11-25 10:00:00", 1.0)
        assert Archive.first_sight(db, "idp:x", "77", 1.0)
        assert not Archive.first_sight(db, "idp:x", "77", 1.0)
    other = Archive(url)
    assert other.get_mark("idp:x") == "2026-11-25 10:00:00"
    other.close()


def test_the_archive_connects_again_after_postgresql_drops_it(pg) -> None:
    archive, relay, v, _keys, pg_url = pg
    assert relay.handle_mo(v.imei, 1, v.frame([v.catch_item(1)]), NET, 100.0) == "accepted"
    pid = archive.query("SELECT pg_backend_pid()")[0][0]
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    # The call that meets the dead connection fails (and the network retries it) ...
    with pytest.raises(psycopg.OperationalError):
        archive.query("SELECT 1")
    # ... the next one works on a new connection (health recovers without a restart), and nothing
    # was lost or doubled.
    assert archive.ping()
    assert relay.handle_mo(v.imei, 2, v.frame([v.catch_item(2)]), NET, 101.0) == "accepted"
    assert archive.query("SELECT COUNT(*) FROM records")[0][0] == 2


# --- group commit: a batch of frames in one transaction, a savepoint per frame ----------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def archive_location(request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    if request.param == "sqlite":
        return tmp_path / "archive.sqlite3"
    return str(request.getfixturevalue("pg_url"))


def test_a_frame_that_fails_mid_batch_rolls_back_alone_and_the_others_commit(
    tmp_path: Path, archive_location: str | Path
) -> None:
    keys = ShoreKeys(tmp_path / "keys")
    archive = Archive(archive_location)
    relay = Relay(archive, keys.link, keys.crew, max_fragment_bytes=60)
    vessel = VesselSender(keys, "300234010000777", "Batch Tester")
    vessel.register(archive)
    first = vessel.frame([vessel.catch_item(1)])
    # A record, then fragments over the vessel's cap: the frame is refused whole after it wrote.
    doomed_counter = vessel.counter
    doomed = vessel.frame([vessel.catch_item(2), *vessel.fragments(int(Kind.TELEMETRY), {0: "x" * 120}, 3)])
    last = vessel.frame([vessel.catch_item(3)])
    batch = [
        Delivery(vessel.imei, 1, first, "test", 100.0),
        Delivery(vessel.imei, 2, doomed, "test", 101.0),
        Delivery(vessel.imei, 3, last, "test", 102.0),
        Delivery(vessel.imei, 1, first, "test", 103.0),  # the network repeats a delivery in the batch
    ]
    try:
        assert relay.handle_batch(batch) == ["accepted", "fragment-cap", "accepted", "duplicate"]
        # Records 1 and 4 (the last frame's); record 2 and fragmented record 3 went with their frame.
        assert sorted(r[0] for r in archive.query("SELECT rid FROM records")) == [1, 4]
        assert archive.query("SELECT COUNT(*) FROM fragments")[0][0] == 0
        topics = [r[0] for r in archive.query("SELECT topic FROM events ORDER BY id")]
        assert sum(t.endswith("/up/catch/trip-start") for t in topics) == 2
        outcomes = dict(archive.query("SELECT momsn, outcome FROM frames_in"))
        assert outcomes == {1: "accepted", 2: "fragment-cap", 3: "accepted"}
        # The marks every frame writes (kept in memory through the batch, saved once at its end)
        # count the two frames that stayed and nothing of the refused one.
        units = load_profile(vessel.profile).billing.units
        assert airtime.units_since(archive, vessel.imei, 102.0, 1) == units(len(first)) + units(len(last))
        ledger = ReceiptLedger.from_json(archive.get_mark(acks.LEDGER + vessel.imei))
        assert set(ledger.holes) == {doomed_counter}, "the refused frame is a hole, its neighbours are received"
        # The refused frame's counter was rolled back with it: the vessel's resend is accepted.
        resent = vessel.frame([vessel.catch_item(2)], counter=doomed_counter)
        assert relay.handle_mo(vessel.imei, 4, resent, "test", 104.0) == "accepted"
        # The three frames that carried records are received without a gap (the refused frame's
        # counter was not): the next reply's cumulative acknowledgement covers all of them.
        assert archive.query("SELECT COUNT(*) FROM acks_owed")[0][0] == 0, "acknowledged by exception"
        relay.accept_reply(archive.vessel(vessel.imei), 1, "ok", "hotline", "r1", 105.0)
        mt = relay.build_mt(vessel.imei, 105.0 + relay.ack_policy.reorder_grace_s)
        assert mt is not None and mt.cumulative is not None
        assert mt.cumulative.upto == vessel.counter - 1 and not mt.cumulative.missing
    finally:
        archive.close()


def test_a_revoked_vessel_is_refused_by_a_worker_whose_registry_cache_is_warm(
    tmp_path: Path, archive_location: str | Path
) -> None:
    keys = ShoreKeys(tmp_path / "keys")
    worker_archive = Archive(archive_location)
    relay = Relay(worker_archive, keys.link, keys.crew)
    vessel = VesselSender(keys, "300234010000778", "Cache Tester")
    vessel.register(worker_archive)
    admin = Archive(archive_location)  # another process: the registry command line
    try:
        assert (
            relay.handle_mo(vessel.imei, 1, vessel.frame([vessel.catch_item(1)]), "test", 1.0) == "accepted"
        )
        assert worker_archive.vessel(vessel.imei) is not None  # cached now
        assert admin.revoke_vessel(vessel.imei)
        frame = vessel.frame([vessel.catch_item(2)])
        assert relay.handle_mo(vessel.imei, 2, frame, "test", 2.0) == "revoked-vessel"
    finally:
        admin.close()
        worker_archive.close()


def test_many_outbox_events_written_at_once_keep_their_order_on_postgresql(pg_url: str) -> None:
    archive = Archive(pg_url)
    try:
        with archive.tx() as db:
            rows = [(f"t/{i}", bytes([i]), i % 2, i if i % 3 else i + 0.5) for i in range(70)]
            db.executemany("INSERT INTO events (topic, payload, retain, created) VALUES (?, ?, ?, ?)", rows)
        stored = archive.query("SELECT topic, payload, retain, created FROM events ORDER BY id")
        assert [(t, bytes(p), r, c) for t, p, r, c in stored] == [(t, p, r, float(c)) for t, p, r, c in rows]
    finally:
        archive.close()


_MARKS = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "ledger:1", "ledger:2"]),
        st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=8),
        st.floats(0, 1e6),
    ),
    min_size=2,
    max_size=12,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(marks=_MARKS, windows=st.lists(st.tuples(st.integers(-1, 2**40), st.integers(0, 3)), min_size=2, max_size=8))
def test_many_rows_in_one_statement_leave_what_running_them_one_by_one_leaves(
    pg_url: str, marks: list[tuple[str, str, float]], windows: list[tuple[int, int]]
) -> None:
    """Upserts and updates by key sent as one statement over column arrays (repeated keys included)
    leave the same rows as the same statements run one after the other."""
    upsert = (
        "INSERT INTO marks (source, value, updated) VALUES (?, ?, ?) "
        "ON CONFLICT (source) DO UPDATE SET value = excluded.value, updated = excluded.updated"
    )
    update = "UPDATE vessels SET rx_highest = ?, rx_bitmap = ?, silent_alerted = 0 WHERE imei = ?"
    imeis = [f"30023406000000{i}" for i in range(4)]
    results = []
    for many in (True, False):
        archive = Archive(pg_url)
        try:
            with archive.tx() as db:
                db.execute("DELETE FROM marks")
                db.execute("DELETE FROM vessels")
            for imei in imeis:
                archive.register_vessel(imei, f"unnest-{imei}", b"k" * 32)
            rows = [(highest, str(highest % 7), imeis[i]) for highest, i in windows]
            with archive.tx() as db:
                if many:
                    db.executemany(upsert, marks)
                    db.executemany(update, rows)
                else:
                    for row in marks:
                        db.execute(upsert, row)
                    for row in rows:
                        db.execute(update, row)
            results.append(
                (
                    archive.query("SELECT source, value, updated FROM marks ORDER BY source"),
                    archive.query("SELECT imei, rx_highest, rx_bitmap FROM vessels ORDER BY imei"),
                )
            )
        finally:
            archive.close()
    assert results[0] == results[1]


def test_statements_without_a_one_statement_form_still_run_row_by_row(pg_url: str) -> None:
    archive = Archive(pg_url)
    try:
        for imei in ("300234060000001", "300234060000002"):
            archive.register_vessel(imei, f"rows-{imei}", b"k" * 32)
        with archive.tx() as db:  # a condition that is not a key: no column-array form
            db.executemany(
                "UPDATE vessels SET rx_highest = ? WHERE imei = ? AND rx_highest < 5",
                [(3, "300234060000001"), (9, "300234060000002")],
            )
        assert archive.query("SELECT rx_highest FROM vessels ORDER BY imei") == [(3,), (9,)]
    finally:
        archive.close()


def test_a_batch_publishes_each_vessels_last_link_state_once_after_its_other_events(
    tmp_path: Path, archive_location: str | Path
) -> None:
    keys = ShoreKeys(tmp_path / "keys")
    archive = Archive(archive_location)
    relay = Relay(archive, keys.link, keys.crew)
    one = VesselSender(keys, "300234010000781", "State One")
    two = VesselSender(keys, "300234010000782", "State Two")
    one.register(archive)
    two.register(archive)
    batch = [
        Delivery(one.imei, 1, one.frame([one.catch_item(1)]), "test", 10.0),
        Delivery(two.imei, 1, two.frame([two.catch_item(1)]), "test", 11.0),
        Delivery(one.imei, 2, one.frame([one.catch_item(2)]), "test", 12.0),
    ]
    try:
        assert relay.handle_batch(batch) == ["accepted"] * 3
        events = archive.query("SELECT topic, payload, retain FROM events ORDER BY id")
        links = [(t, json.loads(bytes(p))) for t, p, r in events if t.endswith("/state/link")]
        # The retained link state is what a subscriber keeps: one per vessel, the latest contact.
        assert [(t.split("/")[3], e["momsn"], e["last_contact"]) for t, e in links] == [
            ("state-one", 2, 12.0),
            ("state-two", 1, 11.0),
        ]
        assert all(r == 1 for t, _p, r in events if t.endswith("/state/link"))
        # Every catch event is kept, and each comes before the state that follows its frame.
        catch = [i for i, (t, _p, _r) in enumerate(events) if "/up/catch/" in t]
        assert len(catch) == 3 and max(catch) < min(i for i, (t, _p, _r) in enumerate(events) if "/state/" in t)
        # A later batch writes the state again: a retained message is not lost to coalescing.
        assert relay.handle_mo(two.imei, 2, two.frame([two.catch_item(2)]), "test", 13.0) == "accepted"
        last = archive.query("SELECT payload FROM events WHERE topic LIKE '%state-two/state/link' ORDER BY id")
        assert [json.loads(bytes(p))["momsn"] for (p,) in last] == [1, 2]
    finally:
        archive.close()


def test_a_batch_mark_is_read_back_as_written_and_a_failed_frame_leaves_it_as_it_was(tmp_path: Path) -> None:
    """Marks in a batch (object or plain value) are seen as last written by the batch itself, saved
    once at its end, and a frame that fails leaves them as they were before it."""
    archive = Archive(tmp_path / "archive.sqlite3")

    def counts(value: str | None) -> dict[str, int]:
        return json.loads(value) if value else {}

    def dump(value: dict[str, int]) -> str:
        return json.dumps(value, sort_keys=True)

    def work(batch) -> None:
        with batch.frame():
            batch.mark_object("n", counts, dump, dict, 1.0)["a"] = 1
        assert batch.mark("n") == '{"a": 1}'
        with pytest.raises(RuntimeError), batch.frame():
            batch.mark_object("n", counts, dump, dict, 2.0)["a"] = 99
            batch.set_mark("plain", "lost", 2.0)
            raise RuntimeError("the frame fails")
        assert batch.mark("n") == '{"a": 1}' and batch.mark("plain") is None
        with batch.frame():
            batch.set_mark("n", '{"a": 5}', 3.0)  # a plain write replaces the object
            batch.mark_object("n", counts, dump, dict, 3.0)["b"] = 2
        batch.finish()

    try:
        archive.in_batch(work)
        assert archive.get_mark("n") == '{"a": 5, "b": 2}'
        assert archive.get_mark("plain") is None
    finally:
        archive.close()
