"""The vessel's distress alert (SOS): one open alert at a time, each further device that confirms it
attached to it as a small update record, and the false alarm.

A repeated SOS while one is open never queues a second full distress record: the first confirmation
queues the alert, a confirmation from another device queues an update (``wire.records.Sos`` with
``update_of``: the device count and a position, never a note: a few bytes) that replaces any update
still waiting, and a device that already confirmed adds nothing. Owns the ``sos_alerts`` and ``sos_devices`` tables of the gateway store.
Devices are opaque keys chosen by the caller (the captive page passes a keyed hash, never an address
or a member id). It does not rate-limit (the page does) and reads the time only from its clock.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass

from common.clock import Clock
from wire.records import Kind, Sos, to_wire_time

from .store import GatewayStore

SOS_OPEN_S = 6 * 3600.0  # a confirmation within this long of the last one joins the open alert
MAX_NOTE_CHARS = 200

SCHEMA = """
CREATE TABLE IF NOT EXISTS sos_alerts (
    rid INTEGER PRIMARY KEY,            -- the alert's own record id
    opened REAL NOT NULL,
    last REAL NOT NULL,                 -- last confirmation
    devices INTEGER NOT NULL,
    false_alarm INTEGER NOT NULL DEFAULT 0,
    update_rid INTEGER                  -- the latest update record, if any
);
CREATE TABLE IF NOT EXISTS sos_devices (
    rid INTEGER NOT NULL, device TEXT NOT NULL, PRIMARY KEY (rid, device)
);
"""


@dataclass(frozen=True)
class SosRaised:
    rid: int  # the alert's record id (the first confirmation's)
    devices: int  # devices that confirmed it so far
    joined: bool  # True: this confirmation joined an alert already open


@dataclass(frozen=True)
class SosStatus:
    rid: int
    opened: float
    devices: int
    state: str  # the alert record's state: queued | sent | delivered | expired
    false_alarm: bool


def _position(latitude: float | None, longitude: float | None) -> tuple[int | None, int | None]:
    if latitude is None or longitude is None:
        return None, None
    return round(latitude * 1e5), round(longitude * 1e5)


class Distress:
    """Distress alerts over a ``GatewayStore`` (thread-safe; call from worker threads)."""

    def __init__(self, store: GatewayStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self._lock = threading.Lock()
        store.add_schema(SCHEMA)

    def _open(self, db: sqlite3.Connection, now: float) -> tuple[int, int, int | None] | None:
        row = db.execute(
            "SELECT rid, devices, update_rid FROM sos_alerts WHERE false_alarm = 0 AND last >= ? "
            "ORDER BY rid DESC LIMIT 1",
            (now - SOS_OPEN_S,),
        ).fetchone()
        return None if row is None else (int(row[0]), int(row[1]), row[2])

    @staticmethod
    def _supersede(db: sqlite3.Connection, update_rid: int | None, new_rid: int) -> None:
        """An update still waiting is replaced by the newer one (it says everything the old one did)."""
        if update_rid is not None:
            db.execute(
                "UPDATE records SET state = 'expired', state_reason = ? WHERE rid = ? AND state = 'queued'",
                (f"replaced by update {new_rid}", update_rid),
            )

    def raise_alert(
        self, device: str, note: str = "", latitude: float | None = None, longitude: float | None = None
    ) -> SosRaised:
        """``device`` confirms a distress alert: a new alert, or this device joins the open one."""
        note = note[:MAX_NOTE_CHARS]
        lat, lon = _position(latitude, longitude)
        with self._lock:
            now = self.clock.now()
            with self.store.transaction() as db:
                found = self._open(db, now)
                if found is not None:
                    rid, devices, update_rid = found
                    db.execute("UPDATE sos_alerts SET last = ? WHERE rid = ?", (now, rid))
                    known = db.execute(
                        "SELECT 1 FROM sos_devices WHERE rid = ? AND device = ?", (rid, device)
                    ).fetchone()
                    if known:
                        return SosRaised(rid, devices, True)
            if found is None:
                alert = Sos(to_wire_time(now), lat, lon, note)

                def opened(db: sqlite3.Connection, new: int) -> dict:
                    db.execute(
                        "INSERT INTO sos_alerts (rid, opened, last, devices) VALUES (?, ?, ?, 1)", (new, now, now)
                    )
                    db.execute("INSERT INTO sos_devices (rid, device) VALUES (?, ?)", (new, device))
                    return alert.body()

                return SosRaised(self.store.accept_with_rows(Kind.SOS, opened, now), 1, False)
            devices += 1
            # Only what changed: the count and a position; the first confirmation's note stands.
            update = Sos(to_wire_time(now), lat, lon, update_of=rid, devices=devices)

            def joined(db: sqlite3.Connection, new: int) -> dict:
                db.execute("INSERT INTO sos_devices (rid, device) VALUES (?, ?)", (rid, device))
                db.execute(
                    "UPDATE sos_alerts SET devices = ?, update_rid = ? WHERE rid = ?", (devices, new, rid)
                )
                self._supersede(db, update_rid, new)
                return update.body()

            self.store.accept_with_rows(Kind.SOS, joined, now)
            return SosRaised(rid, devices, True)

    def false_alarm(self, rid: int) -> str:
        """Alert ``rid`` was a mistake: withdrawn if nothing of it left yet ("withdrawn"), else a small
        update saying so is queued ("cancel-sent"); "unknown" if ``rid`` is no alert."""
        with self._lock:
            now = self.clock.now()
            with self.store.transaction() as db:
                row = db.execute(
                    "SELECT a.devices, a.update_rid, a.false_alarm, r.state FROM sos_alerts a "
                    "JOIN records r ON r.rid = a.rid WHERE a.rid = ?",
                    (rid,),
                ).fetchone()
                if row is None:
                    return "unknown"
                devices, update_rid, already, state = row
                if already:
                    return "cancel-sent"
                if state == "queued":
                    db.execute(
                        "UPDATE records SET state = 'expired', state_reason = 'false alarm' "
                        "WHERE rid IN (?, ?) AND state = 'queued'",
                        (rid, update_rid if update_rid is not None else rid),
                    )
                    db.execute("UPDATE sos_alerts SET false_alarm = 1 WHERE rid = ?", (rid,))
                    return "withdrawn"
            cancel = Sos(to_wire_time(now), update_of=rid, devices=int(devices), false_alarm=True)

            def marked(db: sqlite3.Connection, new: int) -> dict:
                db.execute("UPDATE sos_alerts SET false_alarm = 1, update_rid = ? WHERE rid = ?", (new, rid))
                self._supersede(db, update_rid, new)
                return cancel.body()

            self.store.accept_with_rows(Kind.SOS, marked, now)
            return "cancel-sent"

    def confirmed_by(self, device: str, limit: int = 10) -> list[SosStatus]:
        """The alerts ``device`` confirmed, newest first, with their state."""
        with self.store.transaction() as db:
            rows = db.execute(
                "SELECT a.rid, a.opened, a.devices, r.state, a.false_alarm FROM sos_alerts a "
                "JOIN sos_devices d ON d.rid = a.rid JOIN records r ON r.rid = a.rid "
                "WHERE d.device = ? ORDER BY a.rid DESC LIMIT ?",
                (device, limit),
            ).fetchall()
        return [SosStatus(int(r[0]), float(r[1]), int(r[2]), str(r[3]), bool(r[4])) for r in rows]
