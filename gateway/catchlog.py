"""The captain's catch and sustainability log: trips, hauls with species lines, ETP interactions,
discards with a reason, crew rest hours, and FLUX-style corrections and deletions.

It owns the captain role's login (PIN hashed and locked out through ``gateway.pins``, opaque bearer
tokens stored only as hashes), its own tables in the gateway store's file, the trip state (one open
trip, event sequence numbers, revisions), and queueing each accepted event as a ``Kind.CATCH`` record
in the same transaction as its rows, so a refused request changes nothing. The rules (code lists,
validation, the compact record) live in ``gateway.catch_rules``.

It must not talk to the network or the modem; time comes from the injected clock.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from common.clock import Clock
from wire.records import Kind

from .catch_rules import (
    CODELISTS,
    EVENT_TYPES,
    FATES,
    MAX_EVENTS_PER_TRIP,
    MAX_LINES,
    PURPOSE_DELETE,
    PURPOSE_ORIGINAL,
    PURPOSE_REPLACE,
    VALIDATORS,
    CatchInputError,
    encode_event,
    pick_list,
    validate_trip_start,
)
from .pins import PinLockout, new_pin_hash, pin_matches
from .store import GatewayStore

# The rules' names the page and API modules import from here.
__all__ = [
    "CODELISTS",
    "EVENT_TYPES",
    "FATES",
    "MAX_LINES",
    "Captain",
    "CaptainLocked",
    "CatchInputError",
    "CatchLog",
    "pick_list",
]

log = logging.getLogger("gateway.catchlog")

SESSION_IDLE_S = 24 * 3600.0

# AUTOINCREMENT and UNIQUE: plain SQL says it best; the other tables are declared below.
SCHEMA = """
CREATE TABLE IF NOT EXISTS catch_captains (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    handle TEXT NOT NULL UNIQUE,
    pin_salt BLOB NOT NULL,
    pin_hash BLOB NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS catch_trips (
    trip INTEGER PRIMARY KEY AUTOINCREMENT,
    captain INTEGER NOT NULL,
    start TEXT NOT NULL,            -- validated trip start, JSON
    ended INTEGER NOT NULL DEFAULT 0,
    next_seq INTEGER NOT NULL DEFAULT 1
);
"""


def _create_tables(store: GatewayStore) -> None:
    with store.schema() as db:
        db.executescript(SCHEMA)
        db["catch_sessions"].create(
            {"token_hash": bytes, "captain": int, "created": float, "seen": float},
            pk="token_hash",
            not_null={"captain", "created", "seen"},
            if_not_exists=True,
        )
        db["catch_events"].create(
            {
                "trip": int,
                "seq": int,
                "revision": int,
                "type": str,
                "purpose": int,  # FLUX: 9 original, 5 replacement, 3 deletion
                "data": str,  # validated event, JSON
                "rid": int,  # the queued record
                "created": float,
            },
            pk=("trip", "seq", "revision"),
            not_null={"trip", "seq", "revision", "type", "purpose", "data", "rid", "created"},
            if_not_exists=True,
        )


class CaptainLocked(Exception):
    def __init__(self, seconds: int) -> None:
        super().__init__(f"locked for {seconds} s")
        self.seconds = seconds


# --- the log ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Captain:
    id: int
    handle: str
    token: str


def _token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


class CatchLog:
    """The catch log of one vessel, persisted in the gateway store (thread-safe)."""

    def __init__(
        self, store: GatewayStore, clock: Clock, on_accept: Callable[[], None] = lambda: None
    ) -> None:
        self.store = store
        self.clock = clock
        self.on_accept = on_accept
        self._lock = threading.Lock()
        _create_tables(store)
        self.lockout = PinLockout(store, "catch_failures")

    # --- captain role ----------------------------------------------------------------------------

    @staticmethod
    def check_pin(pin: str) -> str:
        if not (pin.isascii() and pin.isdigit() and 6 <= len(pin) <= 12):
            raise CatchInputError("pin", "problem_pin_format", "6 to 12 digits")
        return pin

    def add_captain(self, handle: str, pin: str) -> int:
        handle = handle.strip()
        if not handle or len(handle) > 32:
            raise CatchInputError("handle", "problem_required", "1 to 32 characters")
        salt, pin_hash = new_pin_hash(self.check_pin(pin))
        with self.store.transaction() as db:
            cur = db.execute(
                "INSERT INTO catch_captains (handle, pin_salt, pin_hash, created) VALUES (?, ?, ?, ?)",
                (handle, salt, pin_hash, self.clock.now()),
            )
        return int(cur.lastrowid or 0)

    def set_pin(self, handle: str, pin: str) -> bool:
        """Give captain ``handle`` a new PIN, end its sessions and clear its lockout (False: no such
        captain)."""
        handle = handle.strip()
        salt, pin_hash = new_pin_hash(self.check_pin(pin))
        with self.store.transaction() as db:
            row = db.execute("SELECT id FROM catch_captains WHERE handle = ?", (handle,)).fetchone()
            if row is None:
                return False
            db.execute(
                "UPDATE catch_captains SET pin_salt = ?, pin_hash = ? WHERE id = ?", (salt, pin_hash, row[0])
            )
            db.execute("DELETE FROM catch_sessions WHERE captain = ?", (row[0],))
        self.lockout.cleared(handle)
        return True

    def captain_names(self) -> list[str]:
        with self.store.transaction() as db:
            return [str(r[0]) for r in db.execute("SELECT handle FROM catch_captains ORDER BY handle")]

    def login(self, handle: str, pin: str) -> Captain | None:
        now = self.clock.now()
        handle = handle.strip()[:32]
        pin = pin[:12]
        wait = self.lockout.locked_for(handle, now)
        if wait:
            raise CaptainLocked(wait)
        with self.store.transaction() as db:
            row = db.execute(
                "SELECT id, pin_salt, pin_hash FROM catch_captains WHERE handle = ?", (handle,)
            ).fetchone()
        if row is None or not pin_matches(pin, row[1], row[2]):
            failures = self.lockout.failed(handle, now)
            log.warning("wrong captain PIN (%d in a row)", failures)
            return None
        self.lockout.cleared(handle)
        token = secrets.token_urlsafe(24)
        with self.store.transaction() as db:
            db.execute(
                "INSERT INTO catch_sessions (token_hash, captain, created, seen) VALUES (?, ?, ?, ?)",
                (_token_hash(token), row[0], now, now),
            )
        return Captain(int(row[0]), handle, token)

    def captain(self, token: str) -> Captain | None:
        if not token or len(token) > 64:
            return None
        now = self.clock.now()
        with self.store.transaction() as db:
            row = db.execute(
                "SELECT s.captain, s.seen, c.handle FROM catch_sessions s JOIN catch_captains c ON c.id = s.captain "
                "WHERE s.token_hash = ?",
                (_token_hash(token),),
            ).fetchone()
            if row is None:
                return None
            if now - row[1] > SESSION_IDLE_S:
                db.execute("DELETE FROM catch_sessions WHERE token_hash = ?", (_token_hash(token),))
                return None
            db.execute("UPDATE catch_sessions SET seen = ? WHERE token_hash = ?", (now, _token_hash(token)))
        return Captain(int(row[0]), str(row[2]), token)

    def logout(self, token: str) -> None:
        with self.store.transaction() as db:
            db.execute("DELETE FROM catch_sessions WHERE token_hash = ?", (_token_hash(token),))

    # --- trips and events ------------------------------------------------------------------------

    def _queue(self, work: Callable[[sqlite3.Connection, int], dict[int, Any]]) -> tuple[int, int]:
        """Queue one catch record; ``work(db, rid)`` checks state, writes our rows and returns the
        body, inside the store's own transaction: the record and the log rows commit together, and a
        refusal raised by ``work`` rolls everything back."""
        sizes: list[int] = []

        def make_body(db: sqlite3.Connection, rid: int) -> dict[int, Any]:
            body = work(db, rid)
            sizes.append(len(_dumps(body)))
            return body

        with self._lock:
            rid = self.store.accept_with_rows(Kind.CATCH, make_body, self.clock.now())
        self.on_accept()
        return rid, sizes[0]

    def start_trip(self, captain: Captain, data: dict[str, Any]) -> dict[str, Any]:
        start = validate_trip_start(data)
        now = self.clock.now()
        made: dict[str, int] = {}

        def work(db: sqlite3.Connection, rid: int) -> dict[int, Any]:
            open_trip = db.execute("SELECT trip FROM catch_trips WHERE ended = 0").fetchone()
            if open_trip is not None:
                raise CatchInputError("trip", "problem_trip_state", f"trip {open_trip[0]} has not ended yet")
            cur = db.execute(
                "INSERT INTO catch_trips (captain, start) VALUES (?, ?)", (captain.id, json.dumps(start))
            )
            trip = made["trip"] = int(cur.lastrowid or 0)
            db.execute(
                "INSERT INTO catch_events (trip, seq, revision, type, purpose, data, rid, created) "
                "VALUES (?, 0, 0, 'trip_start', ?, ?, ?, ?)",
                (trip, PURPOSE_ORIGINAL, json.dumps(start), rid, now),
            )
            return encode_event(trip, 0, "trip_start", start, start, PURPOSE_ORIGINAL)

        rid, size = self._queue(work)
        log.info("trip %d started (record %d)", made["trip"], rid)
        return {"trip": made["trip"], "seq": 0, "rid": rid, "bytes": size}

    def _trip(self, db: Any, trip: int) -> tuple[dict[str, Any], bool, int]:
        row = db.execute("SELECT start, ended, next_seq FROM catch_trips WHERE trip = ?", (trip,)).fetchone()
        if row is None:
            raise CatchInputError("trip", "problem_not_found", f"no trip {trip}")
        return json.loads(row[0]), bool(row[1]), int(row[2])

    def add_event(self, captain: Captain, trip: int, etype: str, data: dict[str, Any]) -> dict[str, Any]:
        if etype not in VALIDATORS or etype == "trip_start":
            raise CatchInputError(
                "type", "problem_code", f"unknown event type {etype[:20]!r}", value=etype[:20]
            )
        event = VALIDATORS[etype](data)
        now = self.clock.now()
        made: dict[str, int] = {}

        def work(db: sqlite3.Connection, rid: int) -> dict[int, Any]:
            start, ended, seq = self._trip(db, trip)
            if ended:
                raise CatchInputError("trip", "problem_trip_state", f"trip {trip} has ended")
            if seq > MAX_EVENTS_PER_TRIP:
                raise CatchInputError("trip", "problem_trip_state", "too many events in one trip")
            body = encode_event(trip, seq, etype, event, start, PURPOSE_ORIGINAL)
            made["seq"] = seq
            db.execute(
                "INSERT INTO catch_events (trip, seq, revision, type, purpose, data, rid, created) "
                "VALUES (?, ?, 0, ?, ?, ?, ?, ?)",
                (trip, seq, etype, PURPOSE_ORIGINAL, json.dumps(event), rid, now),
            )
            db.execute(
                "UPDATE catch_trips SET next_seq = ?, ended = ? WHERE trip = ?",
                (seq + 1, 1 if etype == "trip_end" else 0, trip),
            )
            return body

        rid, size = self._queue(work)
        log.info("trip %d event %d (%s) queued as record %d", trip, made["seq"], etype, rid)
        return {"trip": trip, "seq": made["seq"], "rid": rid, "bytes": size}

    def correct(self, captain: Captain, trip: int, seq: int, data: dict[str, Any] | None) -> dict[str, Any]:
        """Replace (``data`` given) or delete (``data`` None) an earlier event, as FLUX does."""
        now = self.clock.now()
        made: dict[str, int] = {}

        def work(db: sqlite3.Connection, rid: int) -> dict[int, Any]:
            start, _ended, _next = self._trip(db, trip)
            row = db.execute(
                "SELECT type, purpose, revision FROM catch_events WHERE trip = ? AND seq = ? "
                "ORDER BY revision DESC LIMIT 1",
                (trip, seq),
            ).fetchone()
            if row is None:
                raise CatchInputError("seq", "problem_not_found", f"no event {seq} in trip {trip}")
            etype, last_purpose, revision = row
            if last_purpose == PURPOSE_DELETE:
                raise CatchInputError("seq", "problem_trip_state", "that event was deleted")
            if etype in ("trip_start", "trip_end") and data is None:
                raise CatchInputError(
                    "seq", "problem_trip_state", "a trip's start or end can be corrected, not deleted"
                )
            if data is None:
                purpose, event = PURPOSE_DELETE, {}
            else:
                purpose, event = PURPOSE_REPLACE, VALIDATORS[etype](data)
                if etype == "trip_start":
                    start = event
                    db.execute("UPDATE catch_trips SET start = ? WHERE trip = ?", (json.dumps(start), trip))
            body = encode_event(trip, seq, etype, event, start, purpose)
            made.update(revision=revision + 1, purpose=purpose)
            db.execute(
                "INSERT INTO catch_events (trip, seq, revision, type, purpose, data, rid, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (trip, seq, revision + 1, etype, purpose, json.dumps(event), rid, now),
            )
            return body

        rid, size = self._queue(work)
        what = "deleted" if made["purpose"] == PURPOSE_DELETE else "corrected"
        log.info("trip %d event %d %s (record %d)", trip, seq, what, rid)
        return {"trip": trip, "seq": seq, "rid": rid, "bytes": size, **made}

    def trips(self) -> list[dict[str, Any]]:
        with self.store.transaction() as db:
            rows = db.execute(
                "SELECT trip, start, ended, next_seq FROM catch_trips ORDER BY trip DESC LIMIT 50"
            ).fetchall()
        return [{"trip": r[0], "start": json.loads(r[1]), "ended": bool(r[2]), "events": r[3]} for r in rows]

    def open_trip(self) -> int | None:
        with self.store.transaction() as db:
            row = db.execute("SELECT trip FROM catch_trips WHERE ended = 0 ORDER BY trip DESC").fetchone()
        return int(row[0]) if row else None

    def events(self, trip: int) -> list[dict[str, Any]]:
        """The trip's events as they stand now (latest revision), each with its record's state."""
        with self.store.transaction() as db:
            self._trip(db, trip)
            rows = db.execute(
                "SELECT e.seq, e.revision, e.type, e.purpose, e.data, e.rid, r.state FROM catch_events e "
                "LEFT JOIN records r ON r.rid = e.rid WHERE e.trip = ? ORDER BY e.seq, e.revision",
                (trip,),
            ).fetchall()
        latest: dict[int, dict[str, Any]] = {}
        for seq, revision, etype, purpose, data, rid, state in rows:
            latest[seq] = {
                "seq": seq,
                "revision": revision,
                "type": etype,
                "purpose": purpose,
                "deleted": purpose == PURPOSE_DELETE,
                "data": json.loads(data),
                "rid": rid,
                "state": state,
            }
        return list(latest.values())


def _dumps(body: dict[int, Any]) -> bytes:
    from wire.items import dumps

    return dumps(body)
