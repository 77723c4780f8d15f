"""The shore's durable state and archive (SQLite; one file, WAL, synchronous writes).

It owns: the vessel registry (IMEI to public key, fleet, revocation), every frame received (raw, with
its fate), every record delivered (each exactly once per vessel and record id), the replay windows,
fragments awaiting their siblings, acks owed to each vessel, the crew sealing epochs, the per-vessel
MT outbox with its frames in flight, and the MQTT publish outbox (a record is published until the
broker acknowledges it). It does not parse frames or talk to networks.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seabridge.wire.replay import ReplayWindow
from seabridge.wire.units import Unit

COUNTER_BLOCK = 64

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS vessels (
    imei TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    fleet TEXT NOT NULL DEFAULT 'default',
    public_key BLOB NOT NULL,
    profile TEXT NOT NULL DEFAULT 'iridium-9603',
    revoked INTEGER NOT NULL DEFAULT 0,
    mt_counter_reserved INTEGER NOT NULL DEFAULT 0,
    rx_highest INTEGER NOT NULL DEFAULT -1,
    rx_bitmap TEXT NOT NULL DEFAULT '0',
    last_contact REAL
);
CREATE TABLE IF NOT EXISTS frames_in (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    imei TEXT NOT NULL,
    momsn INTEGER NOT NULL,
    network TEXT NOT NULL,
    received REAL NOT NULL,
    raw BLOB NOT NULL,
    outcome TEXT NOT NULL,
    UNIQUE (imei, momsn, raw)
);
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    imei TEXT NOT NULL,
    rid INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    body BLOB NOT NULL,
    received REAL NOT NULL,
    published REAL,
    UNIQUE (imei, rid)
);
CREATE TABLE IF NOT EXISTS fragments (
    imei TEXT NOT NULL, rid INTEGER NOT NULL, idx INTEGER NOT NULL, count INTEGER NOT NULL,
    chunk BLOB NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (imei, rid, idx)
);
CREATE TABLE IF NOT EXISTS acks_owed (imei TEXT NOT NULL, counter INTEGER NOT NULL, PRIMARY KEY (imei, counter));
CREATE TABLE IF NOT EXISTS epochs (
    imei TEXT NOT NULL, number INTEGER NOT NULL, public_key BLOB NOT NULL, PRIMARY KEY (imei, number)
);
CREATE TABLE IF NOT EXISTS mt_records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    imei TEXT NOT NULL,
    rid INTEGER NOT NULL,
    client_id TEXT,
    kind INTEGER NOT NULL,
    created REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued',
    delivered REAL,
    UNIQUE (imei, rid),
    UNIQUE (imei, client_id)
);
CREATE TABLE IF NOT EXISTS mt_units (
    imei TEXT NOT NULL, rid INTEGER NOT NULL, idx INTEGER NOT NULL, count INTEGER NOT NULL,
    item BLOB NOT NULL, class INTEGER NOT NULL, acked INTEGER NOT NULL DEFAULT 0, last_sent REAL,
    PRIMARY KEY (imei, rid, idx)
);
CREATE TABLE IF NOT EXISTS mt_frame_units (
    imei TEXT NOT NULL, counter INTEGER NOT NULL, rid INTEGER NOT NULL, idx INTEGER NOT NULL,
    PRIMARY KEY (imei, counter, rid, idx)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    retain INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    published REAL
);
"""


@dataclass(frozen=True)
class Vessel:
    imei: str
    name: str
    fleet: str
    public_key: bytes
    profile: str
    revoked: bool
    last_contact: float | None


@dataclass(frozen=True)
class PendingEvent:
    id: int
    topic: str
    payload: bytes
    retain: bool


class Archive:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._mt_counters: dict[str, tuple[int, int]] = {}

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # --- registry ----------------------------------------------------------------------------------

    def register_vessel(
        self, imei: str, name: str, public_key: bytes, fleet: str = "default", profile: str = "iridium-9603"
    ) -> None:
        with self.tx() as db:
            db.execute(
                """INSERT INTO vessels (imei, name, fleet, public_key, profile) VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT (imei) DO UPDATE SET name = excluded.name, fleet = excluded.fleet,
                   public_key = excluded.public_key, profile = excluded.profile, revoked = 0""",
                (imei, name, fleet, public_key, profile),
            )

    def revoke_vessel(self, imei: str) -> bool:
        with self.tx() as db:
            return db.execute("UPDATE vessels SET revoked = 1 WHERE imei = ?", (imei,)).rowcount == 1

    def vessel(self, imei: str) -> Vessel | None:
        rows = self.query(
            "SELECT imei, name, fleet, public_key, profile, revoked, last_contact FROM vessels WHERE imei = ?",
            (imei,),
        )
        return Vessel(*rows[0][:4], rows[0][4], bool(rows[0][5]), rows[0][6]) if rows else None

    def vessel_by_name(self, name: str) -> Vessel | None:
        rows = self.query("SELECT imei FROM vessels WHERE name = ?", (name,))
        return self.vessel(rows[0][0]) if rows else None

    def vessels(self) -> list[Vessel]:
        return [
            v for (imei,) in self.query("SELECT imei FROM vessels ORDER BY name") if (v := self.vessel(imei))
        ]

    # --- receive side -----------------------------------------------------------------------------

    def log_frame(self, imei: str, momsn: int, network: str, raw: bytes, outcome: str, now: float) -> bool:
        """Archive a received frame; False if this exact delivery (IMEI, MOMSN, bytes) was seen before."""
        with self.tx() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO frames_in (imei, momsn, network, received, raw, outcome) VALUES (?, ?, ?, ?, ?, ?)",
                (imei, momsn, network, now, raw, outcome),
            )
            return cur.rowcount == 1

    def set_frame_outcome(self, imei: str, momsn: int, raw: bytes, outcome: str) -> None:
        with self.tx() as db:
            db.execute(
                "UPDATE frames_in SET outcome = ? WHERE imei = ? AND momsn = ? AND raw = ?",
                (outcome, imei, momsn, raw),
            )

    @staticmethod
    def window(db: sqlite3.Connection, imei: str) -> ReplayWindow:
        row = db.execute("SELECT rx_highest, rx_bitmap FROM vessels WHERE imei = ?", (imei,)).fetchone()
        return ReplayWindow(int(row[0]), int(row[1]))

    @staticmethod
    def save_window(db: sqlite3.Connection, imei: str, window: ReplayWindow, now: float) -> None:
        db.execute(
            "UPDATE vessels SET rx_highest = ?, rx_bitmap = ?, last_contact = ? WHERE imei = ?",
            (window.highest, str(window.bitmap), now, imei),
        )

    @staticmethod
    def add_record(db: sqlite3.Connection, imei: str, rid: int, kind: int, body: bytes, now: float) -> bool:
        cur = db.execute(
            "INSERT OR IGNORE INTO records (imei, rid, kind, body, received) VALUES (?, ?, ?, ?, ?)",
            (imei, rid, kind, body, now),
        )
        return cur.rowcount == 1

    @staticmethod
    def add_fragment(
        db: sqlite3.Connection, imei: str, rid: int, idx: int, count: int, chunk: bytes, now: float
    ) -> dict[int, bytes]:
        db.execute(
            "INSERT OR IGNORE INTO fragments (imei, rid, idx, count, chunk, at) VALUES (?, ?, ?, ?, ?, ?)",
            (imei, rid, idx, count, chunk, now),
        )
        rows = db.execute(
            "SELECT idx, chunk FROM fragments WHERE imei = ? AND rid = ? AND count = ?", (imei, rid, count)
        ).fetchall()
        return {r[0]: bytes(r[1]) for r in rows}

    @staticmethod
    def drop_fragments(db: sqlite3.Connection, imei: str, rid: int) -> None:
        db.execute("DELETE FROM fragments WHERE imei = ? AND rid = ?", (imei, rid))

    @staticmethod
    def record_delivered(db: sqlite3.Connection, imei: str, rid: int) -> bool:
        return (
            db.execute("SELECT 1 FROM records WHERE imei = ? AND rid = ?", (imei, rid)).fetchone() is not None
        )

    @staticmethod
    def owe_ack(db: sqlite3.Connection, imei: str, counter: int) -> None:
        db.execute("INSERT OR IGNORE INTO acks_owed (imei, counter) VALUES (?, ?)", (imei, counter))

    @staticmethod
    def add_epoch(db: sqlite3.Connection, imei: str, number: int, public_key: bytes) -> None:
        db.execute(
            "INSERT OR IGNORE INTO epochs (imei, number, public_key) VALUES (?, ?, ?)",
            (imei, number, public_key),
        )

    def epoch_key(self, imei: str, number: int) -> bytes | None:
        rows = self.query("SELECT public_key FROM epochs WHERE imei = ? AND number = ?", (imei, number))
        return bytes(rows[0][0]) if rows else None

    @staticmethod
    def add_event(
        db: sqlite3.Connection, topic: str, payload: bytes, now: float, retain: bool = False
    ) -> None:
        db.execute(
            "INSERT INTO events (topic, payload, retain, created) VALUES (?, ?, ?, ?)",
            (topic, payload, int(retain), now),
        )

    def pending_events(self, limit: int = 100) -> list[PendingEvent]:
        rows = self.query(
            "SELECT id, topic, payload, retain FROM events WHERE published IS NULL ORDER BY id LIMIT ?",
            (limit,),
        )
        return [PendingEvent(r[0], r[1], bytes(r[2]), bool(r[3])) for r in rows]

    def event_published(self, event_id: int, now: float) -> None:
        with self.tx() as db:
            db.execute("UPDATE events SET published = ? WHERE id = ?", (now, event_id))

    # --- MT (shore to vessel) side ----------------------------------------------------------------

    def next_mt_counter(self, imei: str) -> int:
        with self._lock:
            nxt, limit = self._mt_counters.get(imei, (None, None))  # type: ignore[assignment]
            if nxt is None or nxt >= limit:
                with self.tx() as db:
                    reserved = db.execute(
                        "SELECT mt_counter_reserved FROM vessels WHERE imei = ?", (imei,)
                    ).fetchone()[0]
                    start = reserved if nxt is None else nxt
                    limit = start + COUNTER_BLOCK
                    db.execute("UPDATE vessels SET mt_counter_reserved = ? WHERE imei = ?", (limit, imei))
                nxt = start
            self._mt_counters[imei] = (nxt + 1, limit)
            return nxt

    def mt_accept(
        self, imei: str, client_id: str | None, kind: int, cls: int, now: float, make_units: Any
    ) -> tuple[int, bool]:
        """Queue an MT record; returns (rid, created). A repeated ``client_id`` is not queued twice."""
        with self.tx() as db:
            if client_id is not None:
                row = db.execute(
                    "SELECT rid FROM mt_records WHERE imei = ? AND client_id = ?", (imei, client_id)
                ).fetchone()
                if row:
                    return int(row[0]), False
            rid = int(
                db.execute(
                    "SELECT COALESCE(MAX(rid), 0) + 1 FROM mt_records WHERE imei = ?", (imei,)
                ).fetchone()[0]
            )
            db.execute(
                "INSERT INTO mt_records (imei, rid, client_id, kind, created) VALUES (?, ?, ?, ?, ?)",
                (imei, rid, client_id, kind, now),
            )
            units: list[Unit] = make_units(rid)
            db.executemany(
                "INSERT INTO mt_units (imei, rid, idx, count, item, class) VALUES (?, ?, ?, ?, ?, ?)",
                [(imei, u.rid, u.index, u.count, u.item, cls) for u in units],
            )
            return rid, True

    def mt_pending(self, imei: str, now: float, resend_after_s: float) -> list[Unit]:
        rows = self.query(
            """SELECT rid, idx, count, item FROM mt_units WHERE imei = ? AND acked = 0
               AND (last_sent IS NULL OR last_sent <= ?) ORDER BY class, rid, idx""",
            (imei, now - resend_after_s),
        )
        return [Unit(r[0], r[1], r[2], bytes(r[3])) for r in rows]

    def acks_owed(self, imei: str) -> list[int]:
        return [
            r[0] for r in self.query("SELECT counter FROM acks_owed WHERE imei = ? ORDER BY counter", (imei,))
        ]

    def vessels_with_mt(self, now: float, resend_after_s: float) -> list[str]:
        rows = self.query(
            """SELECT DISTINCT imei FROM mt_units WHERE acked = 0 AND (last_sent IS NULL OR last_sent <= ?)
               UNION SELECT DISTINCT imei FROM acks_owed""",
            (now - resend_after_s,),
        )
        return [r[0] for r in rows]

    def mt_frame_sent(self, imei: str, counter: int, units: list[Unit], acks: list[int], now: float) -> None:
        with self.tx() as db:
            db.executemany(
                "INSERT OR IGNORE INTO mt_frame_units (imei, counter, rid, idx) VALUES (?, ?, ?, ?)",
                [(imei, counter, u.rid, u.index) for u in units],
            )
            db.executemany(
                "UPDATE mt_units SET last_sent = ? WHERE imei = ? AND rid = ? AND idx = ?",
                [(now, imei, u.rid, u.index) for u in units],
            )
            db.executemany("DELETE FROM acks_owed WHERE imei = ? AND counter = ?", [(imei, c) for c in acks])
            db.executemany(
                "UPDATE mt_records SET state = 'sent' WHERE imei = ? AND rid = ? AND state = 'queued'",
                [(imei, rid) for rid in {u.rid for u in units}],
            )

    @staticmethod
    def mt_frames_acked(
        db: sqlite3.Connection, imei: str, counters: frozenset[int], now: float
    ) -> list[tuple[int, str | None]]:
        """Mark MT frames acknowledged by the vessel; return (rid, client_id) of records now delivered."""
        delivered: list[tuple[int, str | None]] = []
        for counter in counters:
            for rid, idx in db.execute(
                "SELECT rid, idx FROM mt_frame_units WHERE imei = ? AND counter = ?", (imei, counter)
            ).fetchall():
                db.execute(
                    "UPDATE mt_units SET acked = 1 WHERE imei = ? AND rid = ? AND idx = ?", (imei, rid, idx)
                )
                left = db.execute(
                    "SELECT COUNT(*) FROM mt_units WHERE imei = ? AND rid = ? AND acked = 0", (imei, rid)
                ).fetchone()[0]
                if left == 0:
                    cur = db.execute(
                        "UPDATE mt_records SET state = 'delivered', delivered = ? WHERE imei = ? AND rid = ? "
                        "AND state != 'delivered'",
                        (now, imei, rid),
                    )
                    if cur.rowcount:
                        client = db.execute(
                            "SELECT client_id FROM mt_records WHERE imei = ? AND rid = ?", (imei, rid)
                        ).fetchone()[0]
                        delivered.append((rid, client))
            db.execute("DELETE FROM mt_frame_units WHERE imei = ? AND counter = ?", (imei, counter))
        return delivered
