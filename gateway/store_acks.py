"""The gateway store's acknowledgement state: what the shore confirmed or asked for, and what we owe it.

It owns the SQL behind acknowledgement by exception (``wire.ackpolicy``) on the vessel: frames the shore
acknowledged (explicitly or cumulatively) free their units and mark records delivered; frames the shore
never got make their units due again and their counters void; counters spent on failed sessions are
declared void; the receipt ledger of the shore's frames lives in the ``meta`` table. It is a mixin of
``GatewayStore`` (its connection, lock and transactions) and must not decide when anything is sent.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import AbstractContextManager
from typing import Any

from wire.ackpolicy import CumAckItem, ReceiptLedger


class AckStore:
    _lock: threading.RLock
    _db: sqlite3.Connection

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:  # provided by GatewayStore
        raise NotImplementedError

    def _meta(self, key: str) -> str | None:  # provided by GatewayStore
        raise NotImplementedError

    def _set_meta(self, db: sqlite3.Connection, key: str, value: Any) -> None:  # provided by GatewayStore
        raise NotImplementedError

    def frames_acked(self, counters: set[int] | frozenset[int], now: float) -> list[int]:
        """The shore acknowledged these frames; return record ids now fully delivered."""
        delivered: list[int] = []
        with self.transaction() as db:
            for counter in counters:
                db.execute(
                    "UPDATE frames SET acked_at = ? WHERE counter = ? AND acked_at IS NULL", (now, counter)
                )
                for rid, idx in db.execute(
                    "SELECT rid, idx FROM frame_units WHERE counter = ?", (counter,)
                ).fetchall():
                    db.execute("UPDATE units SET acked = 1 WHERE rid = ? AND idx = ?", (rid, idx))
                    left = db.execute(
                        "SELECT COUNT(*) FROM units WHERE rid = ? AND acked = 0", (rid,)
                    ).fetchone()[0]
                    if left == 0:
                        cur = db.execute(
                            "UPDATE records SET state = 'delivered', delivered_at = ? "
                            "WHERE rid = ? AND state IN ('queued', 'sent')",
                            (now, rid),
                        )
                        if cur.rowcount:
                            delivered.append(rid)
                db.execute("DELETE FROM frame_units WHERE counter = ?", (counter,))
        return delivered

    def frames_cumulative(self, item: CumAckItem, now: float) -> list[int]:
        """The shore holds every frame of ours from ``item.start`` to ``item.upto`` except the missing
        ones: free the covered frames (return records now fully delivered) and resend what the missing
        ones carried."""
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT counter FROM frame_units WHERE counter BETWEEN ? AND ?",
                (item.start, item.upto),
            ).fetchall()
        delivered = self.frames_acked({r[0] for r in rows} - item.missing, now)
        self.frames_missing(item.missing)
        return delivered

    def frames_missing(self, counters: frozenset[int] | set[int]) -> None:
        """The shore never got these frames: what they carried is due again at once (and is not
        charged to its member again), and the counters are declared void so the shore stops waiting."""
        if not counters:
            return
        with self.transaction() as db:
            for counter in counters:
                db.execute(
                    "UPDATE units SET last_sent = 0 WHERE acked = 0 AND (rid, idx) IN "
                    "(SELECT rid, idx FROM frame_units WHERE counter = ?)",
                    (counter,),
                )
                db.execute("DELETE FROM frame_units WHERE counter = ?", (counter,))
            db.executemany("INSERT OR IGNORE INTO voids_owed (counter) VALUES (?)", [(c,) for c in counters])

    def frame_failed(self, counter: int) -> None:
        """A session failed with this frame: its counter is spent, the shore need not wait for it."""
        with self.transaction() as db:
            db.execute("INSERT OR IGNORE INTO voids_owed (counter) VALUES (?)", (counter,))

    def voids_owed(self) -> list[int]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT counter FROM voids_owed ORDER BY counter")]

    def mt_ledger(self) -> ReceiptLedger:
        """What this vessel received of the shore's frame counters and owes the shore about them."""
        with self._lock:
            return ReceiptLedger.from_json(self._meta("mt_ledger"))

    def save_mt_ledger(self, ledger: ReceiptLedger) -> None:
        with self.transaction() as db:
            self._set_meta(db, "mt_ledger", ledger.to_json())
