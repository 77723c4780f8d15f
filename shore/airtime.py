"""What each vessel's link costs, as the shore sees it: billing units per vessel and UTC day.

The relay records every MO frame it received, every empty MO delivery (a mailbox check, billed by
RockBLOCK) and every MT frame it sent, in billing units of the vessel's modem profile, as one archive
mark per vessel and day. The dashboard's fleet view divides a week of it by the crew messages that
arrived in that week: the cost of a crew message, all in (acknowledgements, mailbox checks, telemetry
and retries included). It decides nothing and sends nothing.
"""

from __future__ import annotations

import json
import time
from typing import Any

from firmware_profiles import load_profile
from wire.records import Kind

from .archive import Archive
from .frame_batch import FrameBatch

PREFIX = "airtime:"
DAY = 86400.0


def mark_source(imei: str, now: float) -> str:
    """The mark holding the vessel's billing units of the UTC day of ``now``."""
    return f"{PREFIX}{imei}:{time.strftime('%Y-%m-%d', time.gmtime(now))}"


def record(db: Any, imei: str, profile: str, nbytes: int, direction: str, now: float) -> None:
    """Add one message of ``nbytes`` (0: an empty MO session) in ``direction`` ("mo"/"mt")."""
    units = load_profile(profile).billing.units(nbytes)
    key = mark_source(imei, now)
    if isinstance(db, FrameBatch):  # one object per vessel and day for the whole batch
        counts = db.mark_object(key, _parse, _dump, dict, now)
        counts[direction] = counts.get(direction, 0) + units
        return
    counts = _parse(Archive.read_mark(db, key))
    counts[direction] = counts.get(direction, 0) + units
    Archive.set_mark(db, key, _dump(counts), now)


def _parse(value: str | None) -> dict[str, int]:
    return json.loads(value) if value else {}


def _dump(counts: dict[str, int]) -> str:
    return json.dumps(counts, sort_keys=True)


def units_since(archive: Archive, imei: str, now: float, days: int) -> int:
    keys = [mark_source(imei, now - d * DAY) for d in range(days)]
    marks = [archive.get_mark(k) for k in keys]
    return sum(sum(json.loads(m).values()) for m in marks if m)


def units_per_crew_message(archive: Archive, imei: str, now: float, days: int = 7) -> float | None:
    """Billing units spent on the link over ``days`` UTC days, per crew message that arrived in them."""
    start = now - now % DAY - (days - 1) * DAY
    crew = archive.query(
        "SELECT COUNT(*) FROM records WHERE imei = ? AND kind = ? AND received >= ?",
        (imei, int(Kind.CREW_MESSAGE), start),
    )[0][0]
    return round(units_since(archive, imei, now, days) / crew, 2) if crew else None
