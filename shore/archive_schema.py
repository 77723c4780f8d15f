"""The archive's schema and SQL dialects: the migrations, the row types it hands out, and the adapter
that lets PostgreSQL (psycopg 3) run the archive's SQLite-dialect statements.

It owns table definitions and row shapes only; it must not open connections or hold state.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

COUNTER_BLOCK = 64

MT_UNACKED_INDEX = "mt_units_unacked"

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
    [
        # 5: the records still waiting to be published (read once per batch of frames).
        "CREATE INDEX IF NOT EXISTS records_unpublished ON records (imei) WHERE published IS NULL",
    ],
    [
        # 6: rejected frames kept per vessel are counted against a cap on every rejection.
        "CREATE INDEX IF NOT EXISTS frames_in_rejected ON frames_in (imei) "
        "WHERE outcome NOT IN ('accepted', 'received', 'queued')",
    ],
    [
        # 7: the MT loop asks often which vessels have MT units not yet acknowledged: without an index
        # that read every reply ever sent (a millisecond a call after a month of a hundred vessels).
        f"CREATE INDEX IF NOT EXISTS {MT_UNACKED_INDEX} ON mt_units (acked, imei)",
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
        self._types: dict[str, dict[str, str]] = {}  # table -> column -> PostgreSQL type

    def _sql(self, sql: str) -> str:
        out = self._cache.get(sql)
        if out is None:
            out = self._cache[sql] = pg_sql(sql)
        return out

    def execute(self, sql: str, args: Any = ()) -> Any:
        return self.conn.execute(self._sql(sql), tuple(args))

    def settle_rollback(self) -> None:
        """After a rollback to a savepoint in pipeline mode: psycopg, reading that result, forgets its
        prepared statements and sends DEALLOCATE ALL with the next statement, after it — so a statement
        it prepares as that next one is deallocated at once and fails on its next use. Read the result
        now and let an unprepared statement carry the DEALLOCATE ALL."""
        with self.conn.pipeline() as pipeline:
            pipeline.sync()
            self.conn.execute("SELECT 1", prepare=False)
            pipeline.sync()

    def executemany(self, sql: str, args: Any) -> Any:
        """Many rows of one statement. An INSERT, an upsert or an UPDATE by key goes as one statement
        whose parameters are one array per column (``unnest``): its text is the same for any number of
        rows, so it is parsed and prepared once, and the rows travel in one round trip. Any other
        statement goes row by row (pipelined)."""
        rows = [tuple(row) for row in args]
        cur = self.conn.cursor()
        many = None if len(rows) < 2 else self._unnest(sql, rows)
        if many is None:
            cur.executemany(self._sql(sql), rows)
            return cur
        statement, columns = many
        cur.execute(statement, columns)  # already in psycopg's form: arrays as binary parameters
        return cur

    def _unnest(self, sql: str, rows: list[tuple[Any, ...]]) -> tuple[str, list[list[Any]]] | None:
        """The one-statement form of ``sql`` over ``rows`` and its column arrays; None if ``sql`` has
        no such form. Rows that name the same key are reduced to the last one, which is what running
        them in order leaves (each sets plain values, never a value computed from the row)."""
        insert = _INSERT_VALUES.match(sql)
        if insert is not None:
            ignore, table, names, conflict, update = insert.groups()
            cols = [c.strip() for c in names.split(",")]
            if conflict is not None:
                keys = [cols.index(k.strip()) for k in conflict.split(",")]
                rows = list({tuple(row[i] for i in keys): row for row in rows}.values())
            arrays = self._arrays(table, cols)
            statement = f"INSERT INTO {table} ({', '.join(cols)}) SELECT * FROM unnest({arrays})"
            if ignore:
                statement += " ON CONFLICT DO NOTHING"
            elif conflict is not None:
                statement += f" ON CONFLICT ({conflict}) DO UPDATE SET {update}"
            return statement, self._columns(table, cols, rows)
        update = _UPDATE_BY_KEY.match(sql)
        if update is None:
            return None
        table, assignments, where = update.groups()
        sets = [_ASSIGN.match(a) for a in assignments.split(",")]
        keys = [_KEY_EQ.match(k) for k in re.split(r"\s+AND\s+", where.strip(), flags=re.IGNORECASE)]
        if not all(sets) or not all(keys):
            return None
        params = [m.group(1) for m in sets if m and m.group(2) == "?"] + [m.group(1) for m in keys if m]
        if len(params) != len(rows[0]):
            return None
        first_key = len(params) - len(keys)
        rows = list({row[first_key:]: row for row in rows}.values())
        aliases = [f"p{i}" for i in range(len(params))]
        arrays = self._arrays(table, params)
        values = iter(aliases)
        set_sql = ", ".join(
            f"{m.group(1)} = u.{next(values)}" if m.group(2) == "?" else f"{m.group(1)} = {m.group(2)}"
            for m in sets
            if m
        )
        where_sql = " AND ".join(f"{table}.{m.group(1)} = u.{next(values)}" for m in keys if m)
        statement = f"UPDATE {table} SET {set_sql} FROM unnest({arrays}) AS u({', '.join(aliases)}) WHERE {where_sql}"
        return statement, self._columns(table, params, rows)

    def _arrays(self, table: str, columns: list[str]) -> str:
        """One binary parameter per column (``%b``): psycopg sends a binary array without quoting and
        escaping every element, which costs five times less CPU than a text array."""
        types = self._column_types(table)
        return ", ".join(f"%b::{types[name]}[]" for name in columns)

    def _columns(self, table: str, names: list[str], rows: list[tuple[Any, ...]]) -> list[list[Any]]:
        types = self._column_types(table)
        columns = [list(column) for column in zip(*rows, strict=True)]
        for name, column in zip(names, columns, strict=True):
            if types[name] == "double precision":  # one element type per array: 1 and 2.5 both float
                column[:] = [None if v is None else float(v) for v in column]
        return columns

    def _column_types(self, table: str) -> dict[str, str]:
        types = self._types.get(table)
        if types is None:
            rows = self.conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = %s AND table_schema = current_schema()",
                (table,),
            ).fetchall()
            types = self._types[table] = {name: data_type for name, data_type in rows}
        return types


_INSERT_VALUES = re.compile(
    r"^\s*INSERT (OR IGNORE )?INTO (\w+) \(([^)]*)\) VALUES \([?, ]+\)"
    r"(?:\s+ON CONFLICT \(([^)]*)\) DO UPDATE SET ((?:\s*\w+ = excluded\.\w+,?)+))?\s*$",
    re.IGNORECASE,
)
_UPDATE_BY_KEY = re.compile(r"^\s*UPDATE (\w+) SET (.+?) WHERE (.+?)\s*$", re.IGNORECASE | re.DOTALL)
_ASSIGN = re.compile(r"^\s*(\w+) = (\?|-?\d+|NULL)\s*$", re.IGNORECASE)
_KEY_EQ = re.compile(r"^\s*(\w+) = \?\s*$")


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


VESSEL_COLUMNS = "imei, name, fleet, public_key, profile, revoked, last_contact, network"


def vessel_from_row(row: tuple[Any, ...]) -> Vessel:
    return Vessel(
        row[0], row[1], row[2], bytes(row[3]), row[4], bool(row[5]), row[6], row[7] or "iridium-directip"
    )
