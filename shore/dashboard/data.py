"""Everything the dashboard reads from and writes to the archive, in one place.

It owns the dashboard's own tables (users, sessions, audit log, acknowledgements (read and written by
``alert_data``), read markers, desk replies) and the read-only queries over the relay's tables (vessels, events outbox, frames, records,
MT records) that build the fleet view, the hotline desk and the catch view. It talks to the archive only
through ``Archive.query`` and ``Archive.tx`` with portable SQL (SQLite and PostgreSQL), so a change of
the archive's layout is adapted here and nowhere else. It does not render HTML, check permissions or
read a clock: callers pass ``now`` and decide who may see what.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from firmware_profiles import ProfileError, load_profile
from wire.records import KIND_CLASS, Kind

from .. import airtime
from ..archive import Archive
from .accounts import DashboardAccounts
from .alert_data import DashboardAlerts
from .auth import LockoutPolicy, User
from .records import (
    CLASS_NAMES,
    DAY,
    MAX_CONVERSATION_SCAN,
    MAX_EVENTS_PER_POLL,
    RECEIPT_STATES,
    Conversation,
    Event,
    Message,
    Receipt,
    VesselRow,
    as_int,
    event_origin_time,
    is_safety_text,
    parse_event,
    percentile,
    position_of,
    receipt_of,
    telemetry_status,
)

log = logging.getLogger("shore.dashboard")

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS dash_users (
        name TEXT PRIMARY KEY, role TEXT NOT NULL, fleet TEXT, pw TEXT NOT NULL,
        failures INTEGER NOT NULL DEFAULT 0, locked_until DOUBLE PRECISION,
        disabled INTEGER NOT NULL DEFAULT 0, created DOUBLE PRECISION NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS dash_sessions (
        digest TEXT PRIMARY KEY, name TEXT NOT NULL, csrf TEXT NOT NULL,
        created DOUBLE PRECISION NOT NULL, seen DOUBLE PRECISION NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS dash_audit (
        id TEXT PRIMARY KEY, at DOUBLE PRECISION NOT NULL, name TEXT NOT NULL, role TEXT NOT NULL,
        action TEXT NOT NULL, target TEXT NOT NULL, detail TEXT NOT NULL, addr TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS dash_audit_at ON dash_audit (at)",
    """CREATE TABLE IF NOT EXISTS dash_acks (
        kind TEXT NOT NULL, ref TEXT NOT NULL, name TEXT NOT NULL, at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (kind, ref))""",
    """CREATE TABLE IF NOT EXISTS dash_reads (
        name TEXT NOT NULL, conv TEXT NOT NULL, last_id BIGINT NOT NULL, PRIMARY KEY (name, conv))""",
    # The dashboard reads the event outbox per vessel topic; without this every read scans the table.
    "CREATE INDEX IF NOT EXISTS dash_events_topic ON events (topic, id)",
    """CREATE TABLE IF NOT EXISTS dash_replies (
        msg_id TEXT PRIMARY KEY, vessel TEXT NOT NULL, member BIGINT NOT NULL, text TEXT NOT NULL,
        name TEXT NOT NULL, at DOUBLE PRECISION NOT NULL, frame_bytes INTEGER NOT NULL,
        credits INTEGER NOT NULL)""",
]

# When a queued MT record's frame was last handed to the satellite network (``r`` is its mt_records row).
SENT_SQL = "(SELECT MAX(u.last_sent) FROM mt_units u WHERE u.imei = r.imei AND u.rid = r.rid)"


class DashboardData(DashboardAccounts, DashboardAlerts):
    """The archive as the dashboard sees it; see the module docstring."""

    def __init__(self, archive: Archive, lockout: LockoutPolicy | None = None) -> None:
        self.archive = archive
        self.lockout = lockout or LockoutPolicy()
        with archive.tx() as db:
            for statement in SCHEMA:
                db.execute(statement)

    # --- vessels and events -----------------------------------------------------------------------

    def vessels(self, fleet: str | None = None) -> list[VesselRow]:
        rows = self.archive.query(
            "SELECT imei, name, fleet, profile, revoked, last_contact FROM vessels ORDER BY name"
        )
        out = [
            VesselRow(str(r[0]), str(r[1]), str(r[2]), str(r[3]), bool(r[4]), r[5] and float(r[5]))
            for r in rows
        ]
        return [v for v in out if fleet is None or v.fleet == fleet]

    def vessel_by_slug(self, vessel_slug: str) -> VesselRow | None:
        return next((v for v in self.vessels() if v.slug == vessel_slug), None)

    def last_event_id(self) -> int:
        rows = self.archive.query("SELECT MAX(id) FROM events")
        return int(rows[0][0] or 0) if rows else 0

    def events_after(self, after: int, limit: int = MAX_EVENTS_PER_POLL) -> list[Event]:
        rows = self.archive.query(
            "SELECT id, topic, payload, created FROM events WHERE id > ? ORDER BY id LIMIT ?", (after, limit)
        )
        return [e for r in rows if (e := parse_event(int(r[0]), r[1], r[2], r[3])) is not None]

    def _latest(self, topic: str) -> Event | None:
        rows = self.archive.query(
            "SELECT id, topic, payload, created FROM events WHERE topic = ? ORDER BY id DESC LIMIT 1",
            (topic,),
        )
        return parse_event(int(rows[0][0]), rows[0][1], rows[0][2], rows[0][3]) if rows else None

    def _events(self, topic: str, since: float, limit: int = 1000) -> list[Event]:
        rows = self.archive.query(
            "SELECT id, topic, payload, created FROM events WHERE topic = ? AND created >= ? "
            "ORDER BY id DESC LIMIT ?",
            (topic, since, limit),
        )
        return [e for r in reversed(rows) if (e := parse_event(int(r[0]), r[1], r[2], r[3])) is not None]

    # --- fleet view -------------------------------------------------------------------------------

    def vessel_status(
        self, v: VesselRow, now: float, silent_after_s: float, latencies: list[float] | None = None
    ) -> dict[str, Any]:
        link = self._latest(f"{v.topic}/state/link")
        telemetry = self._latest(f"{v.topic}/up/telemetry")
        budget_alert = self._latest(f"{v.topic}/up/alert")
        silent_alert = self._latest(f"{v.topic}/evt/alert")
        status: dict[str, Any] = {
            "name": v.name,
            "slug": v.slug,
            "fleet": v.fleet,
            "profile": v.profile,
            "revoked": v.revoked,
            "last_contact": v.last_contact,
            "age_s": None if v.last_contact is None else max(0.0, now - v.last_contact),
            "silent": v.last_contact is None or now - v.last_contact > silent_after_s,
            "network": link.data.get("network") if link else None,
            "alerts": [],
        }
        status.update(self._traffic(v, now))
        # All-in cost of a crew message over the last week (acks, mailbox checks, telemetry included).
        status["units_per_crew_message"] = airtime.units_per_crew_message(self.archive, v.imei, now)
        status.update(telemetry_status(telemetry))
        # Delivery latency, vessel to shore, over the last week.
        if latencies is None:
            latencies = self.latencies([v], now - 7 * DAY)
        status["latency_p50"] = percentile(latencies, 0.5)
        status["latency_p90"] = percentile(latencies, 0.9)
        # Alerts.
        if status["silent"] and v.last_contact is not None:
            status["alerts"].append({"kind": "silent", "text": "silent"})
        if silent_alert and (v.last_contact is None or silent_alert.created > v.last_contact):
            status["alerts"].append({"kind": "silent", "text": "silent (relay alert)"})
        if budget_alert and now - budget_alert.created < DAY:
            body = budget_alert.data.get("body") if isinstance(budget_alert.data.get("body"), dict) else {}
            level = as_int(body.get("3"))
            status["alerts"].append(
                {"kind": "budget", "text": f"budget {body.get('2', '')} {level / 10:.0f} %".strip()}
            )
        for a in reversed(self.sos_alerts(v)):
            if self.acked("sos", a["ref"]) is None:
                text = "SOS (false alarm)" if a["false_alarm"] else "SOS"
                status["alerts"].append({"kind": "sos", "text": text})
                break
        return status

    def _traffic(self, v: VesselRow, now: float) -> dict[str, Any]:
        """Frames received in the last day (accepted vs refused), bytes and billing units today and
        over the last 31 days."""
        out: dict[str, Any] = {}
        day_start = now - now % DAY
        month_start = now - 31 * DAY
        rows = self.archive.query(
            "SELECT outcome, length(raw), received FROM frames_in WHERE imei = ? AND received >= ?",
            (v.imei, month_start),
        )
        try:
            billing = load_profile(v.profile).billing
        except (ProfileError, OSError, ValueError):
            billing = None
        accepted = [(int(n), float(t)) for o, n, t in rows if o == "accepted"]
        last_day = [o for o, _n, t in rows if float(t) >= now - DAY]
        out["frames_day"] = sum(1 for o in last_day if o == "accepted")
        out["rejects_day"] = sum(1 for o in last_day if o not in ("accepted", "duplicate"))
        out["bytes_today"] = sum(n for n, t in accepted if t >= day_start)
        out["bytes_month"] = sum(n for n, _t in accepted)
        if billing is not None:
            units_month = sum(billing.units(n) for n, _t in accepted)
            out["units_month"] = units_month
            out["units_today"] = sum(billing.units(n) for n, t in accepted if t >= day_start)
            out["unit_name"] = billing.unit_name
            out["cost_month"] = round(units_month * billing.cost_per_unit, 2)
            out["currency"] = billing.currency
        return out

    def latencies(self, vessels: list[VesselRow], since: float) -> list[float]:
        """Seconds from creation on board to arrival ashore, for records whose events carry both."""
        out: list[float] = []
        for v in vessels:
            for kind in ("up/crew", "up/sos", "up/catch", "up/telemetry"):
                for e in self._events(f"{v.topic}/{kind}", since, 2000):
                    made = event_origin_time(e.data)
                    got = e.data.get("received", e.created)
                    if made is not None and isinstance(got, int | float):
                        out.append(max(0.0, float(got) - made))
        return out

    def mt_latencies(self, vessels: list[VesselRow], since: float) -> list[float]:
        """Shore-to-vessel latency: from queuing ashore until the frame was sent via satellite (the
        vessel takes it at its next session). Not until the acknowledgement came ashore: that rides on
        a later vessel frame, often minutes after the crew member read the reply."""
        out: list[float] = []
        for v in vessels:
            rows = self.archive.query(
                f"SELECT r.created, {SENT_SQL} FROM mt_records r WHERE r.imei = ? AND r.created >= ?",
                (v.imei, since),
            )
            out.extend(max(0.0, float(sent) - float(c)) for c, sent in rows if sent is not None)
        return out

    def bytes_per_day(self, vessels: list[VesselRow], now: float, days: int) -> list[tuple[float, int]]:
        """(day start, MO bytes accepted) for the last ``days`` days, oldest first."""
        today = now - now % DAY
        start = today - (days - 1) * DAY
        totals = {today - i * DAY: 0 for i in range(days)}
        for v in vessels:
            rows = self.archive.query(
                "SELECT length(raw), received FROM frames_in WHERE imei = ? AND received >= ? "
                "AND outcome = 'accepted'",
                (v.imei, start),
            )
            for n, t in rows:
                day = float(t) - float(t) % DAY
                if day in totals:
                    totals[day] += int(n)
        return sorted(totals.items())

    def messages_per_class(self, vessels: list[VesselRow], since: float) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for v in vessels:
            for table, column in (("records", "received"), ("mt_records", "created")):
                rows = self.archive.query(
                    f"SELECT kind, COUNT(*) FROM {table} WHERE imei = ? AND {column} >= ? GROUP BY kind",
                    (v.imei, since),
                )
                for kind, n in rows:
                    try:
                        cls = KIND_CLASS[Kind(int(kind))]
                    except (ValueError, KeyError):
                        continue
                    counts[CLASS_NAMES[cls]] += int(n)
        return {name: counts.get(name, 0) for name in CLASS_NAMES.values()}

    def tracks(self, vessels: list[VesselRow], since: float) -> dict[str, list[tuple[float, float, float]]]:
        """Per vessel slug: (time, latitude, longitude) points, oldest first. Positions with an
        ``accuracy_m`` (the satellite network's estimates) are left out: see ``network_positions``."""
        out: dict[str, list[tuple[float, float, float]]] = {}
        for v in vessels:
            points: list[tuple[float, float, float]] = []
            for kind in ("up/telemetry", "up/position", "state/position", "up/sos"):
                for e in self._events(f"{v.topic}/{kind}", since, 500):
                    point = position_of(e.data)
                    if point is not None and "accuracy_m" not in e.data:
                        points.append((float(e.data.get("received", e.created)), *point))
            out[v.slug] = sorted(points)
        return out

    def network_positions(
        self, vessels: list[VesselRow], since: float
    ) -> dict[str, tuple[float, float, float, float]]:
        """Per vessel slug: the latest position the satellite network reported since ``since``, as
        (time, latitude, longitude, accuracy in metres)."""
        out: dict[str, tuple[float, float, float, float]] = {}
        for v in vessels:
            for e in self._events(f"{v.topic}/state/position", since, 500):
                point, accuracy = position_of(e.data), e.data.get("accuracy_m")
                if point is None or not isinstance(accuracy, int | float) or not 0 <= accuracy <= 1e6:
                    continue
                at = float(e.data.get("received", e.created))
                if v.slug not in out or at >= out[v.slug][0]:
                    out[v.slug] = (at, *point, float(accuracy))
        return out

    # --- hotline desk -----------------------------------------------------------------------------

    def conversations(self, user: User, vessels: list[VesselRow]) -> list[Conversation]:
        names = {v.slug: v for v in vessels}
        rows: list[tuple[Any, ...]] = []
        for v in vessels:
            rows.extend(
                self.archive.query(
                    "SELECT id, topic, payload, created FROM events WHERE topic = ? ORDER BY id DESC LIMIT ?",
                    (f"{v.topic}/up/crew", MAX_CONVERSATION_SCAN),
                )
            )
        rows.sort(key=lambda r: int(r[0]), reverse=True)
        reads = dict(self.archive.query("SELECT conv, last_id FROM dash_reads WHERE name = ?", (user.name,)))
        convs: dict[str, Conversation] = {}
        for r in reversed(rows):
            e = parse_event(int(r[0]), r[1], r[2], r[3])
            if e is None or e.vessel not in names:
                continue
            member = as_int(e.data.get("member"))
            key = f"{e.vessel}:{member}"
            c = convs.get(key)
            if c is None:
                v = names[e.vessel]
                c = convs[key] = Conversation(key, v.name, v.slug, v.fleet, member)
            handle = str(e.data.get("handle", ""))
            if handle and handle not in c.handles:
                c.handles.append(handle)
            c.count += 1
            c.last_at = float(e.data.get("received", e.created))
            c.last_id = e.id
            if e.id > int(reads.get(key, 0)):
                c.unread += 1
            if e.data.get("to") == "hotline" and is_safety_text(str(e.data.get("text", ""))):
                c.safety = c.safety or self.acked("safety", str(e.data.get("msg_id"))) is None
        return sorted(convs.values(), key=lambda c: c.last_at, reverse=True)

    def thread(self, vessel: VesselRow, member: int) -> list[Message]:
        out: list[Message] = []
        for e in self._events(f"{vessel.topic}/up/crew", 0.0, MAX_CONVERSATION_SCAN):
            if as_int(e.data.get("member")) != member:
                continue
            text = str(e.data.get("text", ""))
            out.append(
                Message(
                    e.id,
                    "in",
                    text,
                    float(e.data.get("received", e.created)),
                    str(e.data.get("msg_id", "")),
                    handle=str(e.data.get("handle", "")),
                    to=str(e.data.get("to", "")),
                    sent_at=event_origin_time(e.data),
                    safety=e.data.get("to") == "hotline" and is_safety_text(text),
                )
            )
        rows = self.archive.query(
            "SELECT msg_id, text, name, at, frame_bytes, credits FROM dash_replies "
            "WHERE vessel = ? AND member = ? ORDER BY at",
            (vessel.slug, member),
        )
        receipts = self.receipts(vessel, [str(r[0]) for r in rows])
        for msg_id, text, name, at, frame_bytes, credits in rows:
            receipt = receipts.get(str(msg_id)) or Receipt(RECEIPT_STATES[0])
            out.append(
                Message(
                    0,
                    "out",
                    str(text),
                    float(at),
                    str(msg_id),
                    sender=str(name),
                    status=receipt.state,
                    delivered_at=receipt.acked,
                    handed_at=receipt.sent,
                    frame_bytes=int(frame_bytes),
                    credits=int(credits),
                )
            )
        out.sort(key=lambda m: m.at)
        return out

    def receipts(self, vessel: VesselRow, msg_ids: list[str]) -> dict[str, Receipt]:
        """Where each desk reply is (``RECEIPT_STATES``): published but not yet taken by the relay,
        queued ashore, sent via satellite (with the hand-over time), or delivered (acknowledged)."""
        wanted = [m for m in dict.fromkeys(msg_ids) if m]
        found: dict[str, Receipt] = {m: Receipt(RECEIPT_STATES[0]) for m in wanted}
        for chunk in (wanted[i : i + 200] for i in range(0, len(wanted), 200)):
            marks = ", ".join("?" * len(chunk))
            rows = self.archive.query(
                f"SELECT r.client_id, {SENT_SQL}, r.delivered FROM mt_records r "
                f"WHERE r.imei = ? AND r.client_id IN ({marks})",
                (vessel.imei, *chunk),
            )
            for client_id, sent, acked in rows:
                found[str(client_id)] = receipt_of(sent, acked)
        for e in self._events(f"{vessel.topic}/evt/delivery", 0.0, MAX_CONVERSATION_SCAN):
            # A receipt published by another shore system for a reply the relay did not queue itself.
            mid = str(e.data.get("msg_id", ""))
            if (
                found.get(mid) == Receipt(RECEIPT_STATES[0])
                and e.data.get("status", "delivered") == "delivered"
            ):
                at = e.data.get("at", e.created)
                found[mid] = receipt_of(None, float(at) if isinstance(at, int | float) else e.created)
        return found

    def mark_read(self, user: User, key: str, last_id: int) -> None:
        with self.archive.tx() as db:
            row = db.execute(
                "SELECT last_id FROM dash_reads WHERE name = ? AND conv = ?", (user.name, key)
            ).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO dash_reads (name, conv, last_id) VALUES (?, ?, ?)", (user.name, key, last_id)
                )
            elif int(row[0]) < last_id:
                db.execute(
                    "UPDATE dash_reads SET last_id = ? WHERE name = ? AND conv = ?", (last_id, user.name, key)
                )

    def record_reply(
        self,
        msg_id: str,
        vessel: VesselRow,
        member: int,
        text: str,
        user: User,
        now: float,
        frame_bytes: int,
        credits: int,
    ) -> None:
        with self.archive.tx() as db:
            db.execute(
                "INSERT INTO dash_replies (msg_id, vessel, member, text, name, at, frame_bytes, credits) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (msg_id, vessel.slug, member, text, user.name, now, frame_bytes, credits),
            )

    def reply_vessel(self, msg_id: str) -> str | None:
        rows = self.archive.query("SELECT vessel, member FROM dash_replies WHERE msg_id = ?", (msg_id,))
        return f"{rows[0][0]}:{rows[0][1]}" if rows else None

    # --- catch ------------------------------------------------------------------------------------

    def catch_events(self, vessel: VesselRow, limit: int = 5000) -> list[Event]:
        rows = self.archive.query(
            "SELECT id, topic, payload, created FROM events WHERE topic = ? OR topic LIKE ? "
            "ORDER BY id DESC LIMIT ?",
            (f"{vessel.topic}/up/catch", f"{vessel.topic}/up/catch/%", limit),
        )
        return [e for r in reversed(rows) if (e := parse_event(int(r[0]), r[1], r[2], r[3])) is not None]
