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

By idea: the tables, row types and the PostgreSQL dialect adapter are in ``archive_schema``, the MT
side in ``archive_mt`` (mixed into ``Archive``), and the receive side of a batch of MO frames (one
transaction, a savepoint per frame) in ``frame_batch``.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from .archive_mt import MtQueues
from .archive_schema import (
    _DIALECT,
    FRAME_CLASS,
    MIGRATIONS,
    VESSEL_COLUMNS,
    PendingEvent,
    PgDb,
    QueuedFrame,
    Vessel,
    is_postgres_url,
    pg_sql,
    vessel_from_row,
)
from .frame_batch import EVENT_INSERT, MARK_UPSERT, FrameBatch

__all__ = [
    "FRAME_CLASS",
    "MIGRATIONS",
    "REJECTED_MAX_BYTES",
    "REJECTED_MAX_ROWS",
    "Archive",
    "PendingEvent",
    "QueuedFrame",
    "Vessel",
    "pg_sql",
]

# Rejected frames (failed authentication, replays, malformed) are kept for inspection only up to this
# much per vessel; beyond it they are counted and logged, not stored (docs/deploy.md, hardening).
REJECTED_MAX_BYTES = 256 * 1024
REJECTED_MAX_ROWS = 1000
_NOT_REJECTED = "('accepted', 'received', 'queued')"

T = TypeVar("T")
REGISTRY_CHECK_S = 1.0  # how stale another process's registry change may be in the vessel cache

log = logging.getLogger("shore.archive")


class Archive(MtQueues):
    """The archive. ``location`` is a SQLite file path or a ``postgresql://`` connection URL."""

    def __init__(
        self,
        location: Path | str,
        *,
        rejected_max_bytes: int = REJECTED_MAX_BYTES,
        rejected_max_rows: int = REJECTED_MAX_ROWS,
    ) -> None:
        self.location = str(location)
        self.rejected_max_bytes = rejected_max_bytes
        self.rejected_max_rows = rejected_max_rows
        self._lock = threading.RLock()
        self._mt_counters: dict[str, tuple[int, int]] = {}
        self._vessels: dict[str, Vessel] = {}  # registry cache, see ``vessel``
        self._registry_version: str | None = None
        self._registry_checked = float("-inf")
        self.epoch_keys: dict[tuple[str, int], bytes] = {}  # crew epoch keys (never change once stored)
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

    def rejected_room(self, db: Any, imei: str, size: int) -> bool:
        """Inside a transaction: True if one more rejected frame of ``size`` bytes fits the vessel's
        cap of kept rejected frames (``rejected_max_rows`` / ``rejected_max_bytes``); False means it
        is counted and logged by the caller, not stored."""
        rows, total = db.execute(
            f"SELECT COUNT(*), COALESCE(SUM(LENGTH(raw)), 0) FROM frames_in WHERE imei = ? "
            f"AND outcome NOT IN {_NOT_REJECTED}",
            (imei,),
        ).fetchone()
        if int(rows) < self.rejected_max_rows and int(total) + size <= self.rejected_max_bytes:
            return True
        log.warning(
            "rejected frame from IMEI %s (%d B) not archived: %d rows / %d B kept (cap %d / %d)",
            imei, size, rows, total, self.rejected_max_rows, self.rejected_max_bytes,
        )
        return False

    def close(self) -> None:
        with self._lock:
            if self.dialect == "postgresql":
                self._pg.close()
            else:
                self._db.close()

    def _reconnect_if_lost(self) -> None:
        """After the PostgreSQL server restarted or dropped us, the next call connects again (the call
        that met the broken connection failed, and its transaction was rolled back)."""
        if self.connection_lost():
            import psycopg

            log.warning("PostgreSQL connection lost; connecting again")
            self._pg = psycopg.connect(self.location, autocommit=True)
            self._db = PgDb(self._pg)

    def connection_lost(self) -> bool:
        """True when the PostgreSQL connection broke (the next call connects again)."""
        return self.dialect == "postgresql" and (self._pg.closed or self._pg.broken)

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

    def in_batch(self, work: Callable[[FrameBatch], T]) -> T:
        """Run ``work`` in one transaction with a :class:`FrameBatch` (group commit). On PostgreSQL the
        statements are pipelined: they go out without waiting, and a read or the commit syncs. If the
        transaction fails, caches filled inside it are dropped and the error goes to the caller."""
        with self._lock:
            self._reconnect_if_lost()
            batch = FrameBatch(self._db, self.dialect, self.epoch_keys)
            try:
                if self.dialect == "postgresql":
                    with self._pg.pipeline(), self._pg.transaction():
                        result = work(batch)
                else:
                    with self.tx():
                        result = work(batch)
            except BaseException:
                self._vessels.clear()
                raise
            batch.committed()
            self.epoch_keys.update(batch.epochs)
            self._vessels.update(batch.vessels)
            return result

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
            self._registry_changed(db)

    def revoke_vessel(self, imei: str) -> bool:
        with self.tx() as db:
            changed = db.execute("UPDATE vessels SET revoked = 1 WHERE imei = ?", (imei,)).rowcount == 1
            self._registry_changed(db)
            return changed

    def _registry_changed(self, db: Any) -> None:
        """Bump the registry version (other processes drop their vessel cache when they see it change)
        and drop this process's cache now."""
        db.execute(
            "INSERT INTO marks (source, value, updated) VALUES ('registry-version', '1', 0) ON CONFLICT (source) "
            "DO UPDATE SET value = CAST(CAST(marks.value AS BIGINT) + 1 AS TEXT)"
        )
        self._vessels.clear()
        self._registry_checked = float("-inf")

    @staticmethod
    def _vessel(row: tuple[Any, ...]) -> Vessel:
        return vessel_from_row(row)

    def vessel(self, imei: str) -> Vessel | None:
        """The registry entry of ``imei``, from a cache. A change made through this archive is seen at
        once; one made by another process within ``REGISTRY_CHECK_S`` (the cache checks the registry
        version at most that often). The frame pipeline reads the rows afresh under their lock, so
        revocation is exact there. ``last_contact`` may be older than the archive's."""
        with self._lock:
            now = time.monotonic()
            if now - self._registry_checked >= REGISTRY_CHECK_S:
                self._registry_checked = now
                version = self.get_mark("registry-version")
                if version != self._registry_version:
                    self._vessels.clear()
                    self._registry_version = version
            cached = self._vessels.get(imei)
            if cached is not None:
                return cached
            rows = self.query(f"SELECT {VESSEL_COLUMNS} FROM vessels WHERE imei = ?", (imei,))
            if not rows:
                return None  # unknown IMEIs are not cached: a registration is seen at once
            found = self._vessels[imei] = self._vessel(rows[0])
            return found

    def vessel_by_name(self, name: str) -> Vessel | None:
        rows = self.query(f"SELECT {VESSEL_COLUMNS} FROM vessels WHERE name = ?", (name,))
        return self._vessel(rows[0]) if rows else None

    def vessels(self) -> list[Vessel]:
        return [self._vessel(r) for r in self.query(f"SELECT {VESSEL_COLUMNS} FROM vessels ORDER BY name")]

    # --- receive side -----------------------------------------------------------------------------

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
    def owe_ack(db: Any, imei: str, counter: int, now: float = 0.0) -> None:
        _write(
            db,
            "INSERT OR IGNORE INTO acks_owed (imei, counter, owed_at) VALUES (?, ?, ?)",
            (imei, counter, now),
        )

    @staticmethod
    def add_event(db: Any, topic: str, payload: bytes, now: float, retain: bool = False) -> None:
        """Queue an event for the broker in ``db``'s transaction. In a batch, a retained event is
        superseded by a later one on its topic (only the last state is written)."""
        if retain and isinstance(db, FrameBatch):
            db.retained_event(topic, payload, now)
        else:
            _write(db, EVENT_INSERT, (topic, payload, int(retain), now))

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
                f"SELECT {VESSEL_COLUMNS} FROM vessels WHERE revoked = 0 AND silent_alerted = 0 "
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
        """Write a mark in ``db``'s transaction (a batch keeps it and saves it once at its end)."""
        if isinstance(db, FrameBatch):
            db.set_mark(source, value, now)
        else:
            db.execute(MARK_UPSERT, (source, value, now))

    @staticmethod
    def read_mark(db: Any, source: str) -> str | None:
        """A mark as ``db``'s transaction sees it (a batch answers from what it loaded or wrote)."""
        if isinstance(db, FrameBatch):
            return db.mark(source)
        row = db.execute("SELECT value FROM marks WHERE source = ?", (source,)).fetchone()
        return None if row is None else str(row[0])

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


def _write(db: Any, sql: str, args: tuple[Any, ...]) -> None:
    """A write whose result is not read: a batch may hold it and send it with others of its kind."""
    defer = getattr(db, "defer", None)
    if defer is not None:
        defer(sql, args)
    else:
        db.execute(sql, args)
