"""The shore's side of acknowledgement by exception (``wire.ackpolicy``), on the archive's tables.

It owns, per vessel: the receipt ledger of the vessel's MO frame counters (kept as an archive mark,
written in the same transaction as the frame it describes), when the next acknowledgement-only MT frame
is due, the void declarations owed to the vessel, and what the vessel's cumulative acknowledgements and
resend requests do to MT frames already sent (free their units, or make them due again at once).

It decides nothing about when an MT frame goes beyond "due" and builds no frame (``relay``); it never
acknowledges one counter twice: a counter is settled once, replays earn nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from wire.ackpolicy import CumAckItem, ReceiptLedger

from .archive import Archive
from .frame_batch import FrameBatch

LEDGER = "ack-ledger:"
DUE = "ack-due:"
VOIDS = "mt-voids:"
NEVER = 1e18


@dataclass(frozen=True)
class AckPolicy:
    """When the shore speaks about what it received (seconds)."""

    cumulative_interval_s: float = 86400.0  # a cumulative ack goes alone only after this long
    resend_grace_s: float = 3600.0  # a missing MO frame is asked for alone after this long
    reorder_grace_s: float = 120.0  # a gap younger than this may still be a frame on its way


def load_ledger(db: Any, imei: str, now: float = 0.0) -> ReceiptLedger:
    """The vessel's receipt ledger. In a batch it is one object for the whole batch, saved at its end
    (``now``: when it was changed), so every frame need not parse and write it again."""
    if isinstance(db, FrameBatch):
        return db.mark_object(
            LEDGER + imei, ReceiptLedger.from_json, ReceiptLedger.to_json, ReceiptLedger.copy, now
        )
    return ReceiptLedger.from_json(Archive.read_mark(db, LEDGER + imei))


def save_ledger(db: Any, imei: str, ledger: ReceiptLedger, policy: AckPolicy, now: float) -> None:
    if not isinstance(db, FrameBatch):  # a batch saves the ledger it handed out when it ends
        Archive.set_mark(db, LEDGER + imei, ledger.to_json(), now)
    due = NEVER
    if ledger.unacked_since is not None:
        due = ledger.unacked_since + policy.cumulative_interval_s
    waiting = [since for c, since in ledger.holes.items() if c not in ledger.asked]
    if waiting:
        due = min(due, min(waiting) + policy.resend_grace_s)
    Archive.set_mark(db, DUE + imei, repr(due), now)


def vessels_due(archive: Archive, now: float) -> list[str]:
    """Vessels owed an acknowledgement or a resend request alone by now."""
    # SQLite's LIKE ignores case and so cannot search the marks' key; GLOB can (a prefix search
    # instead of a read of every mark). PostgreSQL has no GLOB; its LIKE is case-sensitive.
    match = "GLOB" if archive.dialect == "sqlite" else "LIKE"
    wildcard = "*" if archive.dialect == "sqlite" else "%"
    rows = archive.query(f"SELECT source, value FROM marks WHERE source {match} ?", (DUE + wildcard,))
    return [src[len(DUE) :] for src, value in rows if float(value) <= now]


def voids_owed(db: Any, imei: str) -> set[int]:
    value = Archive.read_mark(db, VOIDS + imei)
    return set(json.loads(value)) if value else set()


def _save_voids(db: Any, imei: str, voids: set[int], now: float) -> None:
    Archive.set_mark(db, VOIDS + imei, json.dumps(sorted(voids)), now)


def voids_sent(db: Any, imei: str, sent: set[int], now: float) -> None:
    if sent:
        _save_voids(db, imei, voids_owed(db, imei) - sent, now)


def mt_cumulative(db: Any, imei: str, item: CumAckItem, now: float) -> list[tuple[int, str | None]]:
    """The vessel acknowledged our MT frames up to ``item.upto`` except the missing ones: free the
    covered frames (return records now delivered) and make the missing frames' units due again."""
    counters = {
        int(r[0])
        for r in db.execute(
            "SELECT DISTINCT counter FROM mt_frame_units WHERE imei = ? AND counter BETWEEN ? AND ?",
            (imei, item.start, item.upto),
        ).fetchall()
    }
    delivered = Archive.mt_frames_acked(db, imei, frozenset(counters - item.missing), now)
    mt_resend(db, imei, item.missing, now)
    return delivered


def mt_resend(db: Any, imei: str, counters: frozenset[int], now: float) -> None:
    """The vessel never got these MT frames: what they carried is due at once, and we declare the
    counters void so the vessel stops waiting for them."""
    if not counters:
        return
    for counter in counters:
        for rid, idx in db.execute(
            "SELECT rid, idx FROM mt_frame_units WHERE imei = ? AND counter = ?", (imei, counter)
        ).fetchall():
            db.execute(
                "UPDATE mt_units SET last_sent = NULL WHERE imei = ? AND rid = ? AND idx = ? AND acked = 0",
                (imei, rid, idx),
            )
        db.execute("DELETE FROM mt_frame_units WHERE imei = ? AND counter = ?", (imei, counter))
    _save_voids(db, imei, voids_owed(db, imei) | set(counters), now)
