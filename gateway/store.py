"""The gateway's durable store: one SQLite file in WAL mode with synchronous writes.

It owns everything the vessel must not lose across a power cut: accepted records and their
transmission units, frames in flight, the frame-counter reservation, the state of the shore-to-
vessel direction (replay window, delivered record ids, fragments, acks owed) and the crew inbox.

Every method that accepts something from a person commits before it returns, so an HTTP 2xx is only
sent for data already on disk. It does not talk to the modem, the network or the clock: callers pass
``now``.

What the file says about the crew (docs/captive-page.md, "What the vessel's disk reveals"): a queued
record never names its member on disk. Which member queued which record, and each member's bytes sent
(allowances), are kept in this process's memory only (``remember_member``); the crew accounts re-learn
a member's own records from receipts only that member's key opens. Every connection runs with
``PRAGMA secure_delete=ON``, so deleted or overwritten values are zeroed, not left in free pages.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from wire.ackpolicy import ReceiptLedger
from wire.frame import frame_capacity
from wire.items import dumps
from wire.records import KIND_CLASS, Kind, PriorityClass
from wire.replay import ReplayWindow
from wire.units import Unit
from wire.versions import wire_format

from .store_acks import AckStore

COUNTER_BLOCK = 64
STORE_FILE = "gateway.sqlite3"  # the store's file inside the vessel's data_dir
MAX_COUNTER = 2**35 - 1  # largest MO frame counter

# Plain SQL rather than sqlite-utils declarations: record ids need AUTOINCREMENT (never reused, even
# after a crash), and every statement on these tables runs inside an explicit transaction.
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    rid INTEGER PRIMARY KEY AUTOINCREMENT,
    kind INTEGER NOT NULL,
    class INTEGER NOT NULL,
    member INTEGER,
    created REAL NOT NULL,
    expires REAL,
    state TEXT NOT NULL DEFAULT 'queued',   -- queued | sent | delivered | expired
    state_reason TEXT,
    size INTEGER NOT NULL,
    sent_at REAL,
    delivered_at REAL
);
CREATE TABLE IF NOT EXISTS units (
    rid INTEGER NOT NULL REFERENCES records(rid),
    idx INTEGER NOT NULL,
    count INTEGER NOT NULL,
    item BLOB NOT NULL,
    acked INTEGER NOT NULL DEFAULT 0,
    last_sent REAL,
    PRIMARY KEY (rid, idx)
);
CREATE INDEX IF NOT EXISTS units_pending ON units (acked, rid);
-- Records still to send, by expiry: every turn looks for expired ones, and delivered records stay.
CREATE INDEX IF NOT EXISTS records_expiring ON records (state, expires);
CREATE TABLE IF NOT EXISTS frames (
    counter INTEGER PRIMARY KEY,
    sent_at REAL NOT NULL,
    size INTEGER NOT NULL,
    acked_at REAL
);
CREATE TABLE IF NOT EXISTS frame_units (
    counter INTEGER NOT NULL,
    rid INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    PRIMARY KEY (counter, rid, idx)
);
CREATE TABLE IF NOT EXISTS rx_delivered (rid INTEGER PRIMARY KEY, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS rx_fragments (
    rid INTEGER NOT NULL, idx INTEGER NOT NULL, count INTEGER NOT NULL, chunk BLOB NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (rid, idx)
);
CREATE TABLE IF NOT EXISTS acks_owed (counter INTEGER PRIMARY KEY);  -- unused since acks by exception
CREATE TABLE IF NOT EXISTS voids_owed (counter INTEGER PRIMARY KEY);  -- counters the shore need not wait for
CREATE TABLE IF NOT EXISTS spend (
    period TEXT PRIMARY KEY,            -- 'd:YYYY-MM-DD' or 'm:YYYY-MM' (UTC)
    bytes INTEGER NOT NULL DEFAULT 0,   -- bytes on the air (frame sizes)
    units INTEGER NOT NULL DEFAULT 0,   -- billing units charged by the profile's billing model
    sessions INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS member_usage (
    period TEXT NOT NULL,
    member INTEGER NOT NULL,
    bytes INTEGER NOT NULL DEFAULT 0,   -- item bytes of this member's records sent for the first time
    PRIMARY KEY (period, member)
);
CREATE TABLE IF NOT EXISTS inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    member INTEGER NOT NULL,
    sender TEXT NOT NULL,
    text TEXT NOT NULL,
    created REAL NOT NULL,
    received REAL NOT NULL,
    shore_rid INTEGER NOT NULL UNIQUE
);
"""


@dataclass(frozen=True)
class QueuedUnit:
    unit: Unit
    cls: int
    member: int | None = None
    created: float = 0.0
    first_send: bool = True  # never sent before (a resend is not charged to the member again)
    allowance: bool = True  # held by its member's allowance (not the covert alert: it never waits on one)

    @property
    def size(self) -> int:
        return len(self.unit.item)


@dataclass(frozen=True)
class Spend:
    bytes: int = 0
    units: int = 0
    sessions: int = 0


@dataclass(frozen=True)
class MessageStatus:
    rid: int
    created: float
    state: str
    reason: str | None
    size: int


@dataclass(frozen=True)
class InboxEntry:
    sender: str
    text: str
    created: float
    received: float


class GatewayStore(AckStore):
    """Durable state of one vessel gateway (thread-safe; one connection guarded by a lock)."""

    def __init__(self, path: Path | str, frame_capacity: int, wire_version: int = 1) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.frame_capacity = frame_capacity
        self.wire = wire_format(wire_version)  # units are cut in this format (either goes out in any)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA secure_delete=ON")
        self._db.executescript(SCHEMA)
        self._member_of: dict[int, int] = {}  # rid -> member, this process only (never on disk)
        self._unlisted: set[int] = set()  # the member's, but in no list or allowance (the covert alert)
        self._usage: dict[tuple[str, int], int] = {}  # (period, member) -> first-send bytes, memory only
        self.handles: dict[int, str] = {}  # member -> nickname, learned at sign-in (accounts), memory only
        self._unlink_members()
        self._counter_next, self._counter_limit = self._resume_counter()

    def _unlink_members(self) -> None:
        """Files written before records stopped naming members: forget the links (zeroed, as
        ``secure_delete`` overwrites them) and fold the write-ahead log into the file."""
        with self._lock:
            linked = self._db.execute(
                "SELECT EXISTS (SELECT 1 FROM records WHERE member IS NOT NULL) "
                "OR EXISTS (SELECT 1 FROM member_usage)"
            ).fetchone()[0]
        if linked:
            with self.transaction() as db:
                db.execute("UPDATE records SET member = NULL WHERE member IS NOT NULL")
                db.execute("DELETE FROM member_usage")
            self.fold_wal()

    def fold_wal(self) -> None:
        """Fold the write-ahead log into the file and empty it: no old page image lingers in it."""
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction on the store's connection (``BEGIN IMMEDIATE``): it commits when the
        block ends and rolls back if the block raises. Components that own tables in this file
        (accounts, catch log) run their own SQL inside it; nothing else may touch the connection.

        Raw ``sqlite3`` on purpose: the explicit transaction is what makes an accepted record and its
        side rows durable together, and helpers that commit on their own would break it."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, db: sqlite3.Connection, key: str, value: Any) -> None:
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, str(value)))

    # --- frame counters: never reused, even across a crash ----------------------------------------

    def _resume_counter(self) -> tuple[int, int]:
        with self.transaction() as db:
            reserved = int(self._meta("mo_counter_reserved") or 0)
            # Everything below the last reservation may have been used: start past it, and tell the
            # shore not to wait for the counters of that block no sent frame is recorded under (a frame
            # sent just before a crash left its units unsent in the store, so they go again anyway).
            db.executemany(
                "INSERT OR IGNORE INTO voids_owed (counter) SELECT ? WHERE ? NOT IN (SELECT counter FROM frames)",
                [(c, c) for c in range(max(0, reserved - COUNTER_BLOCK), reserved)],
            )
        return reserved, reserved

    def peek_counter(self) -> int:
        """The counter ``next_counter`` will hand out next (nothing reserved)."""
        with self._lock:
            return self._counter_next

    def next_counter(self) -> int:
        with self._lock:
            if self._counter_next >= self._counter_limit:
                limit = self._counter_next + COUNTER_BLOCK
                with self.transaction() as db:
                    self._set_meta(db, "mo_counter_reserved", limit)
                self._counter_limit = limit
            value = self._counter_next
            self._counter_next += 1
            return value

    def next_epoch(self) -> int:
        with self.transaction() as db:
            epoch = int(self._meta("crew_epoch") or 0) + 1
            self._set_meta(db, "crew_epoch", epoch)
        return epoch

    # --- accepting records -----------------------------------------------------------------------

    def accept(
        self,
        kind: Kind,
        make_body: Callable[[int], Any],
        now: float,
        member: int | None = None,
        lifetime_s: float | None = None,
    ) -> int:
        """Queue a record durably and return its id. ``make_body(rid)`` builds the body (sealing
        needs the id). The record and all its units are on disk when this returns."""
        return self.accept_with_rows(kind, lambda _db, rid: make_body(rid), now, member, lifetime_s)

    def accept_with_rows(
        self,
        kind: Kind,
        work: Callable[[sqlite3.Connection, int], Any],
        now: float,
        member: int | None = None,
        lifetime_s: float | None = None,
        listed: bool = True,
    ) -> int:
        """Like ``accept``, but ``work(db, rid)`` may also write the caller's own rows on ``db``: they
        commit with the record, and an exception from ``work`` rolls both back. A record not ``listed``
        is scheduled as its member's but shown in no member's list and charged to no allowance."""
        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO records (kind, class, created, expires, size) VALUES (?, ?, ?, ?, 0)",
                (int(kind), int(KIND_CLASS[kind]), now, None if lifetime_s is None else now + lifetime_s),
            )
            rid = int(cur.lastrowid or 0)
            body = work(db, rid)
            units = self.wire.cut_record(rid, int(kind), body, self.frame_capacity)
            db.execute("UPDATE records SET size = ? WHERE rid = ?", (len(dumps(body)), rid))
            db.executemany(
                "INSERT INTO units (rid, idx, count, item) VALUES (?, ?, ?, ?)",
                [(u.rid, u.index, u.count, u.item) for u in units],
            )
        if member is not None:
            self.remember_member(rid, member, listed)
        return rid

    def remember_member(self, rid: int, member: int, listed: bool = True) -> None:
        """``rid`` is ``member``'s, in memory only: anonymous after a restart until its member signs in."""
        with self._lock:
            self._member_of[rid] = member
            if not listed:
                self._unlisted.add(rid)
    def pending_units(
        self, now: float, resend_after_s: float, per_queue: int | None = None
    ) -> list[QueuedUnit]:
        """Units to send, highest class first then oldest first; a unit sent but not acknowledged
        becomes due again ``resend_after_s`` after its last send. With ``per_queue``, only the oldest
        that many units of each (class, member) queue: enough to fill a frame, without reading a
        whole backlog for every frame. Members are not on disk, so the crew class is read whole."""
        due = """SELECT u.rid, u.idx, u.count, u.item, r.class, NULL AS member, r.created, u.last_sent
                 FROM units u JOIN records r ON r.rid = u.rid
                 WHERE u.acked = 0 AND r.state IN ('queued', 'sent')
                   AND (u.last_sent IS NULL OR u.last_sent <= ?)"""
        with self._lock:
            if per_queue is None:
                rows = self._db.execute(
                    due + " ORDER BY r.class, u.rid, u.idx", (now - resend_after_s,)
                ).fetchall()
            else:
                rows = self._db.execute(
                    f"""SELECT rid, idx, count, item, class, member, created, last_sent FROM (
                          SELECT d.*, ROW_NUMBER() OVER (
                              PARTITION BY d.class ORDER BY d.rid, d.idx) AS n
                          FROM ({due}) d)
                        WHERE n <= ? OR class = ? ORDER BY class, rid, idx""",
                    (now - resend_after_s, per_queue, int(PriorityClass.CREW)),
                ).fetchall()
            member_of, unlisted = self._member_of, self._unlisted
            return [
                QueuedUnit(
                    Unit(r[0], r[1], r[2], bytes(r[3])),
                    r[4],
                    member_of.get(r[0]),
                    r[6],
                    r[7] is None,
                    r[0] not in unlisted,
                )
                for r in rows
            ]

    def expire(self, now: float, resend_after_s: float = 0.0) -> list[int]:
        """Give up on records whose lifetime ended; the reason is kept for the sender to see. A record
        the network accepted is given up only once ``resend_after_s`` passed since its last send without
        an acknowledgement (the shore acknowledges by exception, so it has most likely arrived)."""
        with self.transaction() as db:
            rows = db.execute(
                "SELECT rid FROM records r WHERE expires IS NOT NULL AND expires < ? AND (state = 'queued' "
                "OR (state = 'sent' AND NOT EXISTS (SELECT 1 FROM units u WHERE u.rid = r.rid AND u.acked = 0 "
                "AND u.last_sent > ?))) ORDER BY rid",
                (now, now - resend_after_s),
            ).fetchall()
            for (rid,) in rows:
                db.execute(
                    "UPDATE records SET state = 'expired', state_reason = 'lifetime ended before delivery' "
                    "WHERE rid = ?",
                    (rid,),
                )
        return [r[0] for r in rows]

    # --- frames out and acknowledgements in -------------------------------------------------------

    def frame_sent(
        self,
        counter: int,
        units: list[Unit],
        size: int,
        voids_sent: list[int],
        now: float,
        periods: tuple[str, ...] = (),
        billing_units: int = 0,
        ledger: ReceiptLedger | None = None,
    ) -> None:
        """The modem handed the frame to the network (``+SBDIX`` MO status 0–4: "sent via satellite"):
        remember what it carried, the void declarations and acknowledgements it made (``ledger``, the
        receipt ledger after the cumulative ack it carried), and charge its cost (``billing_units``) and
        each member's first-send bytes to ``periods``, all in one transaction."""
        usage: list[tuple[int, int]] = []
        with self.transaction() as db:
            if ledger is not None:
                self._set_meta(db, "mt_ledger", ledger.to_json())
            if periods:
                self._charge(db, periods, size, billing_units)
                for unit in units:
                    member = None if unit.rid in self._unlisted else self._member_of.get(unit.rid)
                    row = db.execute(
                        "SELECT last_sent FROM units WHERE rid = ? AND idx = ?", (unit.rid, unit.index)
                    ).fetchone()
                    if member is not None and row is not None and row[0] is None:
                        usage.append((member, len(unit.item)))
            db.execute(
                "INSERT OR REPLACE INTO frames (counter, sent_at, size) VALUES (?, ?, ?)",
                (counter, now, size),
            )
            db.executemany(
                "INSERT OR IGNORE INTO frame_units (counter, rid, idx) VALUES (?, ?, ?)",
                [(counter, u.rid, u.index) for u in units],
            )
            db.executemany(
                "UPDATE units SET last_sent = ? WHERE rid = ? AND idx = ?",
                [(now, u.rid, u.index) for u in units],
            )
            db.executemany(
                "UPDATE records SET state = 'sent', sent_at = ? WHERE rid = ? AND state = 'queued'",
                [(now, rid) for rid in {u.rid for u in units}],
            )
            db.executemany("DELETE FROM voids_owed WHERE counter = ?", [(c,) for c in voids_sent])
        for member, nbytes in usage:  # allowances: in memory only, so they start afresh after a restart
            for period in periods:
                self._usage[period, member] = self._usage.get((period, member), 0) + nbytes

    @staticmethod
    def _charge(
        db: sqlite3.Connection, periods: tuple[str, ...], nbytes: int, billing_units: int, sessions: int = 1
    ) -> None:
        for period in periods:
            db.execute(
                "INSERT INTO spend (period, bytes, units, sessions) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (period) DO UPDATE SET bytes = bytes + excluded.bytes, "
                "units = units + excluded.units, sessions = sessions + excluded.sessions",
                (period, nbytes, billing_units, sessions),
            )

    def charge_session(
        self, periods: tuple[str, ...], nbytes: int, billing_units: int, sessions: int = 1
    ) -> None:
        """Charge airtime that carried no frame of ours: a mailbox check, or a frame received."""
        with self.transaction() as db:
            self._charge(db, periods, nbytes, billing_units, sessions)

    def spend(self, period: str) -> Spend:
        with self._lock:
            row = self._db.execute(
                "SELECT bytes, units, sessions FROM spend WHERE period = ?", (period,)
            ).fetchone()
        return Spend(*row) if row else Spend()

    def member_usage(self, member: int, period: str) -> int:
        with self._lock:
            return self._usage.get((period, member), 0)

    def usage_by_member(self, period: str) -> dict[int, int]:
        with self._lock:
            return {m: n for (p, m), n in self._usage.items() if p == period}

    def accept_if_changed(self, key: str, value: str, kind: Kind, body: Any, now: float) -> int | None:
        """Queue a record when ``value`` differs from the one stored under ``key`` (then store it), in
        one transaction: announcements go out once per change, even across crashes."""
        with self._lock:
            if self._meta(key) == value:
                return None
            rid = self.accept(kind, lambda _rid: body, now)
            with self.transaction() as db:
                self._set_meta(db, key, value)
            return rid

    def setting(self, key: str, make: Callable[[], str]) -> str:
        """A value kept in the file for good (``make()`` the first time), e.g. a component's salt."""
        with self.transaction() as db:
            value = self._meta(key)
            if value is None:
                value = make()
                self._set_meta(db, key, value)
        return value

    def meta_flag(self, key: str) -> bool:
        """True if ``key`` was set before; sets it durably now (used for once-per-period alerts)."""
        with self.transaction() as db:
            if self._meta(key) is not None:
                return True
            self._set_meta(db, key, 1)
        return False

    def queue_depth(self) -> dict[int, tuple[int, int]]:
        """Per priority class: (records not yet delivered, unacknowledged unit bytes)."""
        with self._lock:
            rows = self._db.execute(
                """SELECT r.class, COUNT(DISTINCT r.rid), COALESCE(SUM(LENGTH(u.item)), 0)
                   FROM records r JOIN units u ON u.rid = r.rid
                   WHERE r.state IN ('queued', 'sent') AND u.acked = 0 GROUP BY r.class"""
            ).fetchall()
        return {r[0]: (r[1], r[2]) for r in rows}

    def oldest_waiting(self) -> float | None:
        with self._lock:
            row = self._db.execute(
                "SELECT MIN(created) FROM records WHERE state IN ('queued', 'sent')"
            ).fetchone()
        return row[0] if row else None

    # --- shore-to-vessel direction ----------------------------------------------------------------

    def rx_window(self) -> ReplayWindow:
        with self._lock:
            highest = int(self._meta("mt_window_highest") or -1)
            bitmap = int(self._meta("mt_window_bitmap") or 0)
        return ReplayWindow(highest, bitmap)

    def rx_frame(
        self,
        window: ReplayWindow,
        ledger: ReceiptLedger,
        deliver: Callable[[sqlite3.Connection], None],
    ) -> None:
        """Record an accepted shore frame (replay window, receipt ledger) and apply its effects in one
        transaction."""
        with self.transaction() as db:
            self._set_meta(db, "mt_window_highest", window.highest)
            self._set_meta(db, "mt_window_bitmap", window.bitmap)
            self._set_meta(db, "mt_ledger", ledger.to_json())
            deliver(db)

    @staticmethod
    def rx_first_delivery(db: sqlite3.Connection, rid: int, now: float) -> bool:
        cur = db.execute("INSERT OR IGNORE INTO rx_delivered (rid, at) VALUES (?, ?)", (rid, now))
        return cur.rowcount == 1

    @staticmethod
    def rx_add_fragment(
        db: sqlite3.Connection, rid: int, idx: int, count: int, chunk: bytes, now: float
    ) -> dict[int, bytes]:
        db.execute(
            "INSERT OR IGNORE INTO rx_fragments (rid, idx, count, chunk, at) VALUES (?, ?, ?, ?, ?)",
            (rid, idx, count, chunk, now),
        )
        rows = db.execute(
            "SELECT idx, chunk FROM rx_fragments WHERE rid = ? AND count = ?", (rid, count)
        ).fetchall()
        return {r[0]: bytes(r[1]) for r in rows}

    @staticmethod
    def rx_drop_fragments(db: sqlite3.Connection, rid: int) -> None:
        db.execute("DELETE FROM rx_fragments WHERE rid = ?", (rid,))

    @staticmethod
    def inbox_add(
        db: sqlite3.Connection,
        member: int,
        sender: str,
        text: str,
        created: float,
        now: float,
        shore_rid: int,
    ) -> None:
        db.execute(
            "INSERT OR IGNORE INTO inbox (member, sender, text, created, received, shore_rid) VALUES (?, ?, ?, ?, ?, ?)",
            (member, sender, text, created, now, shore_rid),
        )

    # --- what people see --------------------------------------------------------------------------

    def member_messages(self, member: int) -> list[MessageStatus]:
        with self._lock:
            mine = [rid for rid, m in self._member_of.items() if m == member and rid not in self._unlisted]
            mine = sorted(mine, reverse=True)[:50]
            marks = ",".join("?" * len(mine))
            rows = self._db.execute(
                f"SELECT rid, created, state, state_reason, size FROM records WHERE rid IN ({marks}) AND kind = ? "
                "ORDER BY rid DESC",
                (*mine, int(Kind.CREW_MESSAGE)),
            ).fetchall()
        return [MessageStatus(*r) for r in rows]

    def inbox(self, member: int) -> list[InboxEntry]:
        with self._lock:
            rows = self._db.execute(
                "SELECT sender, text, created, received FROM inbox WHERE member = ? ORDER BY id DESC LIMIT 100",
                (member,),
            ).fetchall()
        return [InboxEntry(*r) for r in rows]

    def record_states(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM records GROUP BY state").fetchall()
        return {r[0]: r[1] for r in rows}

    # --- components' own tables (accounts, PIN lockouts, catch log) ---------------------------------

    @contextmanager
    def schema(self) -> Iterator[sqlite_utils.Database]:
        """This file as a ``sqlite_utils.Database``, for a component to create or migrate its own
        tables when it starts (declared as column dicts; ``if_not_exists`` keeps existing files)."""
        with self._lock:
            yield sqlite_utils.Database(self._db)

    def add_schema(
        self, sql: str, functions: dict[str, tuple[int, Callable[..., Any]]] | None = None
    ) -> None:
        """Create a component's own tables (idempotent SQL) and register SQL functions its temporary
        triggers call, on this store's connection."""
        with self._lock:
            for name, (nargs, fn) in (functions or {}).items():
                self._db.create_function(name, nargs, fn)
            self._db.executescript(sql)


def open_store(data_dir: Path, mo_frame_limit: int, wire_version: int = 1) -> GatewayStore:
    """The vessel's store in ``data_dir``. Units are cut for the smallest frame the counter range will
    see (the largest counter varint), in wire format ``wire_version``."""
    if wire_version == 1:
        return GatewayStore(data_dir / STORE_FILE, frame_capacity(mo_frame_limit, MAX_COUNTER))
    capacity = wire_format(wire_version).min_capacity(mo_frame_limit)
    return GatewayStore(data_dir / STORE_FILE, capacity, wire_version)
