"""The shore's durable state and archive: SQLite by default (one file, WAL, synchronous writes),
PostgreSQL (psycopg 3) when the archive location is a ``postgresql://`` URL.

It owns: the vessel registry (IMEI to public key, fleet, network, revocation), every frame received
(raw, with its fate), every record delivered (each exactly once per vessel and record id), the replay
windows, fragments awaiting their siblings, acks owed to each vessel, the crew sealing epochs, the
per-vessel MT outbox with its frames in flight, the MQTT publish outbox (a record is published until
the broker acknowledges it), the schema migrations and the retention of old rows per record class.
It does not parse frames or talk to networks.

Both back ends run the same SQL, written for SQLite with ``?`` placeholders; the PostgreSQL adapter
rewrites placeholders and ``INSERT OR IGNORE``. Transactions that touch one vessel's receive or MT
state first take that vessel's row lock (:meth:`Archive.lock_vessel`), so several relay workers can
share one PostgreSQL archive and any worker can process any frame.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from wire.replay import ReplayWindow
from wire.units import Unit

COUNTER_BLOCK = 64

# Each migration is a list of statements; ``meta.schema_version`` says how many have run.
# "{id}", "{blob}" and "{real}" are replaced per back end.
MIGRATIONS: list[list[str]] = [
    [
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE IF NOT EXISTS vessels (
            imei TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            fleet TEXT NOT NULL DEFAULT 'default',
            public_key {blob} NOT NULL,
            profile TEXT NOT NULL DEFAULT 'iridium-9603',
            revoked INTEGER NOT NULL DEFAULT 0,
            mt_counter_reserved BIGINT NOT NULL DEFAULT 0,
            rx_highest BIGINT NOT NULL DEFAULT -1,
            rx_bitmap TEXT NOT NULL DEFAULT '0',
            last_contact {real}
        )""",
        """CREATE TABLE IF NOT EXISTS frames_in (
            id {id},
            imei TEXT NOT NULL,
            momsn BIGINT NOT NULL,
            network TEXT NOT NULL,
            received {real} NOT NULL,
            raw {blob} NOT NULL,
            outcome TEXT NOT NULL,
            UNIQUE (imei, momsn, raw)
        )""",
        """CREATE TABLE IF NOT EXISTS records (
            id {id},
            imei TEXT NOT NULL,
            rid BIGINT NOT NULL,
            kind INTEGER NOT NULL,
            body {blob} NOT NULL,
            received {real} NOT NULL,
            published {real},
            UNIQUE (imei, rid)
        )""",
        """CREATE TABLE IF NOT EXISTS fragments (
            imei TEXT NOT NULL, rid BIGINT NOT NULL, idx INTEGER NOT NULL, count INTEGER NOT NULL,
            chunk {blob} NOT NULL, at {real} NOT NULL,
            PRIMARY KEY (imei, rid, idx)
        )""",
        "CREATE TABLE IF NOT EXISTS acks_owed (imei TEXT NOT NULL, counter BIGINT NOT NULL, PRIMARY KEY (imei, counter))",
        """CREATE TABLE IF NOT EXISTS epochs (
            imei TEXT NOT NULL, number BIGINT NOT NULL, public_key {blob} NOT NULL, PRIMARY KEY (imei, number)
        )""",
        """CREATE TABLE IF NOT EXISTS mt_records (
            id {id},
            imei TEXT NOT NULL,
            rid BIGINT NOT NULL,
            client_id TEXT,
            kind INTEGER NOT NULL,
            created {real} NOT NULL,
            state TEXT NOT NULL DEFAULT 'queued',
            delivered {real},
            UNIQUE (imei, rid),
            UNIQUE (imei, client_id)
        )""",
        """CREATE TABLE IF NOT EXISTS mt_units (
            imei TEXT NOT NULL, rid BIGINT NOT NULL, idx INTEGER NOT NULL, count INTEGER NOT NULL,
            item {blob} NOT NULL, class INTEGER NOT NULL, acked INTEGER NOT NULL DEFAULT 0, last_sent {real},
            PRIMARY KEY (imei, rid, idx)
        )""",
        """CREATE TABLE IF NOT EXISTS mt_frame_units (
            imei TEXT NOT NULL, counter BIGINT NOT NULL, rid BIGINT NOT NULL, idx INTEGER NOT NULL,
            PRIMARY KEY (imei, counter, rid, idx)
        )""",
        """CREATE TABLE IF NOT EXISTS events (
            id {id},
            topic TEXT NOT NULL,
            payload {blob} NOT NULL,
            retain INTEGER NOT NULL DEFAULT 0,
            created {real} NOT NULL,
            published {real}
        )""",
    ],
    [
        # 2: per-vessel network for MT delivery, silence alerts, outbox leases for several workers.
        "ALTER TABLE vessels ADD COLUMN network TEXT NOT NULL DEFAULT 'iridium-directip'",
        "ALTER TABLE vessels ADD COLUMN silent_alerted INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE events ADD COLUMN claimed {real}",
        "CREATE INDEX IF NOT EXISTS events_pending ON events (published, id)",
        "CREATE INDEX IF NOT EXISTS frames_in_outcome ON frames_in (outcome, received)",
        "CREATE INDEX IF NOT EXISTS records_received ON records (kind, received)",
    ],
    [
        # 3: high-water marks of polled networks (IDP), MT submissions awaiting a network status.
        "CREATE TABLE IF NOT EXISTS marks (source TEXT PRIMARY KEY, value TEXT NOT NULL, updated {real} NOT NULL)",
        """CREATE TABLE IF NOT EXISTS seen_ids (
            source TEXT NOT NULL, msg_id TEXT NOT NULL, at {real} NOT NULL, PRIMARY KEY (source, msg_id)
        )""",
        """CREATE TABLE IF NOT EXISTS mt_submissions (
            network TEXT NOT NULL, ref TEXT NOT NULL, imei TEXT NOT NULL, counter BIGINT NOT NULL,
            state TEXT NOT NULL DEFAULT 'submitted', at {real} NOT NULL, PRIMARY KEY (network, ref)
        )""",
    ],
    [
        # 4: when each ack became owed, so pure-ack MT frames can wait and carry several acks at once.
        "ALTER TABLE acks_owed ADD COLUMN owed_at {real} NOT NULL DEFAULT 0",
    ],
]

_DIALECT = {
    "sqlite": {"id": "INTEGER PRIMARY KEY AUTOINCREMENT", "blob": "BLOB", "real": "REAL"},
    "postgresql": {"id": "BIGSERIAL PRIMARY KEY", "blob": "BYTEA", "real": "DOUBLE PRECISION"},
}

# Retention classes: which record kinds each class covers is decided by the caller (the relay knows
# the kinds); the archive only deletes rows older than the configured age.
FRAME_CLASS = "frames"


class Db(Protocol):
    """The part of a DB-API connection the archive uses (sqlite3.Connection or the PostgreSQL adapter)."""

    def execute(self, sql: str, args: Any = ...) -> Any: ...

    def executemany(self, sql: str, args: Any) -> Any: ...


_INSERT_OR_IGNORE = re.compile(r"^\s*INSERT OR IGNORE INTO", re.IGNORECASE)


def pg_sql(sql: str) -> str:
    """Rewrite the archive's SQLite dialect for PostgreSQL (placeholders, INSERT OR IGNORE)."""
    out = sql.replace("%", "%%").replace("?", "%s")
    if _INSERT_OR_IGNORE.match(out):
        out = _INSERT_OR_IGNORE.sub("INSERT INTO", out) + " ON CONFLICT DO NOTHING"
    return out


class PgDb:
    """A psycopg 3 connection that accepts the archive's SQLite-dialect SQL."""

    dialect = "postgresql"

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self._cache: dict[str, str] = {}

    def _sql(self, sql: str) -> str:
        out = self._cache.get(sql)
        if out is None:
            out = self._cache[sql] = pg_sql(sql)
        return out

    def execute(self, sql: str, args: Any = ()) -> Any:
        return self.conn.execute(self._sql(sql), tuple(args))

    def executemany(self, sql: str, args: Any) -> Any:
        cur = self.conn.cursor()
        cur.executemany(self._sql(sql), list(args))
        return cur


def is_postgres_url(location: str | Path) -> bool:
    return str(location).startswith(("postgresql://", "postgres://"))


@dataclass(frozen=True)
class Vessel:
    imei: str
    name: str
    fleet: str
    public_key: bytes
    profile: str
    revoked: bool
    last_contact: float | None
    network: str = "iridium-directip"


@dataclass(frozen=True)
class PendingEvent:
    id: int
    topic: str
    payload: bytes
    retain: bool
    created: float = 0.0


@dataclass(frozen=True)
class QueuedFrame:
    imei: str
    momsn: int
    network: str
    raw: bytes
    received: float


_VESSEL_COLUMNS = "imei, name, fleet, public_key, profile, revoked, last_contact, network"


log = logging.getLogger("shore.archive")


class Archive:
    """The archive. ``location`` is a SQLite file path or a ``postgresql://`` connection URL."""

    def __init__(self, location: Path | str) -> None:
        self.location = str(location)
        self._lock = threading.RLock()
        self._mt_counters: dict[str, tuple[int, int]] = {}
        self._db: Any
        if is_postgres_url(location):
            import psycopg  # only needed when PostgreSQL is configured

            self.dialect = "postgresql"
            self.path = None
            self._pg = psycopg.connect(self.location, autocommit=True)
            self._db = PgDb(self._pg)
        else:
            self.dialect = "sqlite"
            self.path = Path(location)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=10000")
        self.migrate()

    # --- connection and schema --------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self.dialect == "postgresql":
                self._pg.close()
            else:
                self._db.close()

    def _reconnect_if_lost(self) -> None:
        """After the PostgreSQL server restarted or dropped us, the next call connects again (the call
        that met the broken connection failed, and its transaction was rolled back)."""
        if self.dialect == "postgresql" and (self._pg.closed or self._pg.broken):
            import psycopg

            log.warning("PostgreSQL connection lost; connecting again")
            self._pg = psycopg.connect(self.location, autocommit=True)
            self._db = PgDb(self._pg)

    @contextmanager
    def tx(self) -> Iterator[Any]:
        """One transaction; yields a connection with ``execute``/``executemany``."""
        with self._lock:
            self._reconnect_if_lost()
            if self.dialect == "postgresql":
                with self._pg.transaction():
                    yield self._db
                return
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            self._reconnect_if_lost()
            cur = self._db.execute(sql, args)
            if cur.description is None:  # a statement without rows (PostgreSQL refuses fetchall)
                return []
            return [tuple(r) for r in cur.fetchall()]

    @property
    def schema_version(self) -> int:
        rows = self.query("SELECT value FROM meta WHERE key = 'schema_version'")
        return int(rows[0][0]) if rows else 0

    def migrate(self) -> int:
        """Run the migrations this archive has not seen yet; returns the schema version."""
        words = _DIALECT[self.dialect]
        with self.tx() as db:
            if self.dialect == "postgresql":
                # Several workers may start at once: one migrates, the others wait for it.
                db.execute("SELECT pg_advisory_xact_lock(715001)")
            db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            version = int(row[0]) if row else 0
            if version == 0 and self._has_table(db, "vessels"):
                version = 1  # an archive from before migrations were recorded
            for number, statements in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in statements:
                    db.execute(statement.format(**words))
                version = number
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(version),),
            )
        return version

    def _has_table(self, db: Any, name: str) -> bool:
        if self.dialect == "postgresql":
            sql = "SELECT 1 FROM information_schema.tables WHERE table_name = ? AND table_schema = current_schema()"
        else:
            sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
        return db.execute(sql, (name,)).fetchone() is not None

    @staticmethod
    def lock_vessel(db: Any, imei: str) -> None:
        """Serialise transactions on one vessel's state across relay workers (PostgreSQL row lock).
        SQLite needs nothing: ``BEGIN IMMEDIATE`` already serialises writers."""
        if getattr(db, "dialect", "sqlite") == "postgresql":
            db.execute("SELECT 1 FROM vessels WHERE imei = ? FOR UPDATE", (imei,))

    # --- registry ----------------------------------------------------------------------------------

    def register_vessel(
        self,
        imei: str,
        name: str,
        public_key: bytes,
        fleet: str = "default",
        profile: str = "iridium-9603",
        network: str = "iridium-directip",
    ) -> None:
        with self.tx() as db:
            db.execute(
                """INSERT INTO vessels (imei, name, fleet, public_key, profile, network) VALUES (?, ?, ?, ?, ?, ?)
                   ON CONFLICT (imei) DO UPDATE SET name = excluded.name, fleet = excluded.fleet,
                   public_key = excluded.public_key, profile = excluded.profile, network = excluded.network,
                   revoked = 0""",
                (imei, name, fleet, public_key, profile, network),
            )

    def revoke_vessel(self, imei: str) -> bool:
        with self.tx() as db:
            return db.execute("UPDATE vessels SET revoked = 1 WHERE imei = ?", (imei,)).rowcount == 1

    @staticmethod
    def _vessel(row: tuple[Any, ...]) -> Vessel:
        return Vessel(
            row[0], row[1], row[2], bytes(row[3]), row[4], bool(row[5]), row[6], row[7] or "iridium-directip"
        )

    def vessel(self, imei: str) -> Vessel | None:
        rows = self.query(f"SELECT {_VESSEL_COLUMNS} FROM vessels WHERE imei = ?", (imei,))
        return self._vessel(rows[0]) if rows else None

    def vessel_by_name(self, name: str) -> Vessel | None:
        rows = self.query(f"SELECT {_VESSEL_COLUMNS} FROM vessels WHERE name = ?", (name,))
        return self._vessel(rows[0]) if rows else None

    def vessels(self) -> list[Vessel]:
        return [self._vessel(r) for r in self.query(f"SELECT {_VESSEL_COLUMNS} FROM vessels ORDER BY name")]

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
            Archive.frame_outcome(db, imei, momsn, raw, outcome)

    @staticmethod
    def frame_outcome(db: Any, imei: str, momsn: int, raw: bytes, outcome: str) -> None:
        db.execute(
            "UPDATE frames_in SET outcome = ? WHERE imei = ? AND momsn = ? AND raw = ?",
            (outcome, imei, momsn, raw),
        )

    @staticmethod
    def claim_frame(db: Any, imei: str, momsn: int, network: str, raw: bytes, now: float) -> bool:
        """Inside a vessel-locked transaction: True if this delivery is new or still only queued by an
        ingest endpoint (so the caller processes it), False if it was processed before."""
        row = db.execute(
            "SELECT outcome FROM frames_in WHERE imei = ? AND momsn = ? AND raw = ?", (imei, momsn, raw)
        ).fetchone()
        if row is None:
            db.execute(
                "INSERT INTO frames_in (imei, momsn, network, received, raw, outcome) VALUES (?, ?, ?, ?, ?, ?)",
                (imei, momsn, network, now, raw, "received"),
            )
            return True
        return row[0] == "queued"

    def enqueue_frame(self, imei: str, momsn: int, network: str, raw: bytes, now: float) -> bool:
        """Scale-out ingest: store a raw delivery for the workers. False if it was stored before and
        already processed (a network retry of something done)."""
        with self.tx() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO frames_in (imei, momsn, network, received, raw, outcome) VALUES (?, ?, ?, ?, ?, ?)",
                (imei, momsn, network, now, raw, "queued"),
            )
            if cur.rowcount == 1:
                return True
            row = db.execute(
                "SELECT outcome FROM frames_in WHERE imei = ? AND momsn = ? AND raw = ?", (imei, momsn, raw)
            ).fetchone()
            return row is not None and row[0] == "queued"

    def queued_frames(self, older_than: float, limit: int = 100) -> list[QueuedFrame]:
        """Frames an ingest endpoint stored that no worker has processed since ``older_than``."""
        rows = self.query(
            "SELECT imei, momsn, network, raw, received FROM frames_in WHERE outcome = 'queued' "
            "AND received <= ? ORDER BY id LIMIT ?",
            (older_than, limit),
        )
        return [QueuedFrame(r[0], int(r[1]), r[2], bytes(r[3]), float(r[4])) for r in rows]

    @staticmethod
    def window(db: Any, imei: str) -> ReplayWindow:
        row = db.execute("SELECT rx_highest, rx_bitmap FROM vessels WHERE imei = ?", (imei,)).fetchone()
        return ReplayWindow(int(row[0]), int(row[1]))

    @staticmethod
    def save_window(db: Any, imei: str, window: ReplayWindow, now: float) -> None:
        db.execute(
            "UPDATE vessels SET rx_highest = ?, rx_bitmap = ?, last_contact = ?, silent_alerted = 0 WHERE imei = ?",
            (window.highest, str(window.bitmap), now, imei),
        )

    @staticmethod
    def add_record(db: Any, imei: str, rid: int, kind: int, body: bytes, now: float) -> bool:
        cur = db.execute(
            "INSERT OR IGNORE INTO records (imei, rid, kind, body, received) VALUES (?, ?, ?, ?, ?)",
            (imei, rid, kind, body, now),
        )
        return cur.rowcount == 1

    @staticmethod
    def add_fragment(
        db: Any, imei: str, rid: int, idx: int, count: int, chunk: bytes, now: float
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
    def fragment_bytes(db: Any, imei: str) -> int:
        row = db.execute(
            "SELECT COALESCE(SUM(LENGTH(chunk)), 0) FROM fragments WHERE imei = ?", (imei,)
        ).fetchone()
        return int(row[0])

    @staticmethod
    def drop_fragments(db: Any, imei: str, rid: int) -> None:
        db.execute("DELETE FROM fragments WHERE imei = ? AND rid = ?", (imei, rid))

    def expire_fragments(self, older_than: float) -> int:
        """Drop partial records whose newest fragment is older than ``older_than``; returns rows dropped."""
        with self.tx() as db:
            return int(
                db.execute(
                    "DELETE FROM fragments WHERE (imei, rid) IN (SELECT imei, rid FROM fragments "
                    "GROUP BY imei, rid HAVING MAX(at) < ?)",
                    (older_than,),
                ).rowcount
            )

    @staticmethod
    def record_delivered(db: Any, imei: str, rid: int) -> bool:
        return (
            db.execute("SELECT 1 FROM records WHERE imei = ? AND rid = ?", (imei, rid)).fetchone() is not None
        )

    @staticmethod
    def owe_ack(db: Any, imei: str, counter: int, now: float = 0.0) -> None:
        db.execute(
            "INSERT OR IGNORE INTO acks_owed (imei, counter, owed_at) VALUES (?, ?, ?)", (imei, counter, now)
        )

    @staticmethod
    def add_epoch(db: Any, imei: str, number: int, public_key: bytes) -> None:
        db.execute(
            "INSERT OR IGNORE INTO epochs (imei, number, public_key) VALUES (?, ?, ?)",
            (imei, number, public_key),
        )

    def epoch_key(self, imei: str, number: int) -> bytes | None:
        rows = self.query("SELECT public_key FROM epochs WHERE imei = ? AND number = ?", (imei, number))
        return bytes(rows[0][0]) if rows else None

    @staticmethod
    def add_event(db: Any, topic: str, payload: bytes, now: float, retain: bool = False) -> None:
        db.execute(
            "INSERT INTO events (topic, payload, retain, created) VALUES (?, ?, ?, ?)",
            (topic, payload, int(retain), now),
        )

    def pending_events(self, limit: int = 100) -> list[PendingEvent]:
        rows = self.query(
            "SELECT id, topic, payload, retain, created FROM events WHERE published IS NULL ORDER BY id LIMIT ?",
            (limit,),
        )
        return [PendingEvent(r[0], r[1], bytes(r[2]), bool(r[3]), float(r[4])) for r in rows]

    def event_published(self, event_id: int, now: float) -> None:
        self.events_published([(event_id, now)])

    def events_published(self, marks: list[tuple[int, float]]) -> None:
        """Mark events the broker acknowledged, ``(event id, when)``, in one transaction."""
        with self.tx() as db:
            db.executemany("UPDATE events SET published = ? WHERE id = ?", [(at, i) for i, at in marks])

    # --- alerts, marks, retention ------------------------------------------------------------------

    def silent_vessels(self, now: float, silent_after_s: float) -> list[Vessel]:
        """Vessels heard from before but silent for longer than ``silent_after_s``, not yet alerted;
        marks them alerted (a new contact clears the mark)."""
        with self.tx() as db:
            rows = db.execute(
                f"SELECT {_VESSEL_COLUMNS} FROM vessels WHERE revoked = 0 AND silent_alerted = 0 "
                "AND last_contact IS NOT NULL AND last_contact < ?",
                (now - silent_after_s,),
            ).fetchall()
            db.executemany("UPDATE vessels SET silent_alerted = 1 WHERE imei = ?", [(r[0],) for r in rows])
        return [self._vessel(tuple(r)) for r in rows]

    def get_mark(self, source: str) -> str | None:
        rows = self.query("SELECT value FROM marks WHERE source = ?", (source,))
        return rows[0][0] if rows else None

    @staticmethod
    def set_mark(db: Any, source: str, value: str, now: float) -> None:
        db.execute(
            "INSERT INTO marks (source, value, updated) VALUES (?, ?, ?) "
            "ON CONFLICT (source) DO UPDATE SET value = excluded.value, updated = excluded.updated",
            (source, value, now),
        )

    @staticmethod
    def first_sight(db: Any, source: str, msg_id: str, now: float) -> bool:
        """True the first time ``msg_id`` is seen from ``source`` (polled-network de-duplication)."""
        cur = db.execute(
            "INSERT OR IGNORE INTO seen_ids (source, msg_id, at) VALUES (?, ?, ?)", (source, msg_id, now)
        )
        return cur.rowcount == 1

    def prune(self, now: float, keep_s: dict[int, float], frames_keep_s: float | None) -> dict[str, int]:
        """Retention: delete records of each kind older than ``keep_s[kind]`` seconds (published ones
        only), and frames older than ``frames_keep_s``. Returns rows deleted per table."""
        deleted = {"records": 0, "frames_in": 0, "events": 0}
        with self.tx() as db:
            for kind, seconds in keep_s.items():
                cur = db.execute(
                    "DELETE FROM records WHERE kind = ? AND received < ? AND published IS NOT NULL",
                    (kind, now - seconds),
                )
                deleted["records"] += max(cur.rowcount, 0)
            if frames_keep_s is not None:
                cur = db.execute(
                    "DELETE FROM frames_in WHERE received < ? AND outcome != 'queued'", (now - frames_keep_s,)
                )
                deleted["frames_in"] += max(cur.rowcount, 0)
            # Published events carry record content too: they follow the shortest record retention.
            shortest = min([*keep_s.values(), *([frames_keep_s] if frames_keep_s else [])], default=None)
            if shortest is not None:
                cur = db.execute(
                    "DELETE FROM events WHERE published IS NOT NULL AND published < ?", (now - shortest,)
                )
                deleted["events"] += max(cur.rowcount, 0)
        return deleted

    def depths(self) -> dict[str, int]:
        """Queue depths for metrics and health."""
        one = self.query(
            """SELECT (SELECT COUNT(*) FROM events WHERE published IS NULL),
                      (SELECT COUNT(*) FROM mt_units WHERE acked = 0),
                      (SELECT COUNT(*) FROM fragments),
                      (SELECT COUNT(*) FROM frames_in WHERE outcome = 'queued'),
                      (SELECT COUNT(*) FROM acks_owed)"""
        )[0]
        return {
            "events": int(one[0]),
            "mt_units": int(one[1]),
            "fragments": int(one[2]),
            "frames_queued": int(one[3]),
            "acks_owed": int(one[4]),
        }

    def ping(self) -> bool:
        try:
            self.query("SELECT 1")
        except Exception:  # health reports any database failure as unhealthy
            return False
        return True

    # --- MT submissions to networks that report delivery later (IDP forward messages) -------------

    def add_submission(self, network: str, ref: str, imei: str, counter: int, now: float) -> None:
        with self.tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO mt_submissions (network, ref, imei, counter, at) VALUES (?, ?, ?, ?, ?)",
                (network, ref, imei, counter, now),
            )

    def open_submissions(self, network: str, limit: int = 100) -> list[tuple[str, str, int]]:
        """(ref, imei, frame counter) of submissions whose network status is not final yet."""
        rows = self.query(
            "SELECT ref, imei, counter FROM mt_submissions WHERE network = ? AND state = 'submitted' "
            "ORDER BY at LIMIT ?",
            (network, limit),
        )
        return [(r[0], r[1], int(r[2])) for r in rows]

    def close_submission(self, network: str, ref: str, state: str, failed: bool) -> None:
        """Record a final network status; a failed submission makes its units due for resending now."""
        with self.tx() as db:
            row = db.execute(
                "SELECT imei, counter FROM mt_submissions WHERE network = ? AND ref = ?", (network, ref)
            ).fetchone()
            db.execute(
                "UPDATE mt_submissions SET state = ? WHERE network = ? AND ref = ?", (state, network, ref)
            )
            if row is not None and failed:
                Archive.lock_vessel(db, row[0])
                for rid, idx in db.execute(
                    "SELECT rid, idx FROM mt_frame_units WHERE imei = ? AND counter = ?", (row[0], row[1])
                ).fetchall():
                    db.execute(
                        "UPDATE mt_units SET last_sent = NULL WHERE imei = ? AND rid = ? AND idx = ? AND acked = 0",
                        (row[0], rid, idx),
                    )

    # --- MT (shore to vessel) side ----------------------------------------------------------------

    def next_mt_counter(self, imei: str) -> int:
        with self._lock:
            nxt, limit = self._mt_counters.get(imei, (None, None))  # type: ignore[assignment]
            if nxt is None or nxt >= limit:
                with self.tx() as db:
                    Archive.lock_vessel(db, imei)
                    reserved = db.execute(
                        "SELECT mt_counter_reserved FROM vessels WHERE imei = ?", (imei,)
                    ).fetchone()[0]
                    # Another worker may have reserved past our block meanwhile: never reuse.
                    start = max(int(reserved), nxt or 0)
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
            Archive.lock_vessel(db, imei)
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

    def oldest_ack_owed(self, imei: str) -> float | None:
        rows = self.query("SELECT MIN(owed_at) FROM acks_owed WHERE imei = ?", (imei,))
        return None if not rows or rows[0][0] is None else float(rows[0][0])

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
        db: Any, imei: str, counters: frozenset[int], now: float
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
