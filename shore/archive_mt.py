"""The archive's shore-to-vessel side: MT records cut into units, the MT frames in flight and their
counters, the acks owed to each vessel, and submissions to networks that report delivery later (IDP).

A mixin of :class:`shore.archive.Archive` (it uses the archive's ``tx``, ``query`` and lock); it must
not know about frames' contents or networks' protocols.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from typing import Any

from wire.units import Unit

from .archive_schema import COUNTER_BLOCK


class MtQueues:
    """MT outbox, counters, acks owed and network submissions (mixed into ``Archive``)."""

    _lock: threading.RLock
    _mt_counters: dict[str, tuple[int, int]]

    def tx(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    @staticmethod
    def lock_vessel(db: Any, imei: str) -> None:
        """Serialise transactions on one vessel's state across relay workers (PostgreSQL row lock).
        SQLite needs nothing: ``BEGIN IMMEDIATE`` already serialises writers."""
        if getattr(db, "dialect", "sqlite") == "postgresql":
            db.execute("SELECT 1 FROM vessels WHERE imei = ? FOR UPDATE", (imei,))

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
                MtQueues.lock_vessel(db, row[0])
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
                    MtQueues.lock_vessel(db, imei)
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
            MtQueues.lock_vessel(db, imei)
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
                    # RETURNING, not rowcount: in a pipelined batch the row count is not known yet.
                    row = db.execute(
                        "UPDATE mt_records SET state = 'delivered', delivered = ? WHERE imei = ? AND rid = ? "
                        "AND state != 'delivered' RETURNING client_id",
                        (now, imei, rid),
                    ).fetchone()
                    if row is not None:
                        delivered.append((rid, row[0]))
            db.execute("DELETE FROM mt_frame_units WHERE imei = ? AND counter = ?", (imei, counter))
        return delivered
