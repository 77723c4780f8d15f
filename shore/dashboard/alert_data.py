"""The dashboard's alerts, read from the archive: vessel distress (SOS) with the updates that attach
to it (devices that confirmed it, a false alarm from the vessel), personal-safety messages to the
hotline, and their acknowledgements (the ``dash_acks`` table).

An alert is named by its kind and the ``msg_id`` of the record that raised it. Acknowledging or
marking a false alarm takes an alert found here, among the vessels the caller may see, never a
reference taken on trust: an alert that has not arrived cannot be cleared in advance. It does not
check roles and reads no clock; ``data.DashboardData`` inherits these methods.
"""

from __future__ import annotations

import json
from typing import Any

from ..archive import Archive
from .auth import User
from .records import Event, VesselRow, as_int, event_origin_time, is_safety_text, parse_event

MAX_SOS_EVENTS = 200  # per vessel: an alert older than this many SOS records is no longer listed
MAX_SAFETY_SCAN = 500  # crew messages per vessel looked at for personal-safety alerts
FALSE_ALARM = "sos-false"  # the acknowledgement kind of a false alarm marked ashore


def _time(value: Any, fallback: float) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else fallback


class DashboardAlerts:
    archive: Archive

    def _recent(self, topic: str, limit: int) -> list[Event]:
        rows = self.archive.query(
            "SELECT id, topic, payload, created FROM events WHERE topic = ? ORDER BY id DESC LIMIT ?",
            (topic, limit),
        )
        return [e for r in reversed(rows) if (e := parse_event(int(r[0]), r[1], r[2], r[3])) is not None]

    def acked(self, kind: str, ref: str) -> dict[str, Any] | None:
        rows = self.archive.query("SELECT name, at FROM dash_acks WHERE kind = ? AND ref = ?", (kind, ref))
        return {"name": rows[0][0], "at": float(rows[0][1])} if rows else None

    # --- what the alerts are ----------------------------------------------------------------------

    def sos_alerts(self, v: VesselRow) -> list[dict[str, Any]]:
        """The vessel's distress alerts, oldest first, each with its updates merged in: how many
        devices confirmed it, and whether the vessel or someone ashore marked it a false alarm."""
        alerts: dict[str, dict[str, Any]] = {}
        for e in self._recent(f"{v.topic}/up/sos", MAX_SOS_EVENTS):
            arrived = _time(e.data.get("received"), e.created)
            raised = event_origin_time(e.data) or arrived
            update_of = e.data.get("update_of")
            ref = update_of if isinstance(update_of, str) else str(e.data.get("msg_id", e.id))
            a = alerts.get(ref)
            if a is None:
                a = alerts[ref] = {
                    "kind": "sos", "ref": ref, "vessel": v.name, "vessel_slug": v.slug, "at": raised,
                    "raised": raised, "arrived": arrived, "note": "", "latitude": None, "longitude": None,
                    "devices": 1, "false_alarm": "",
                }
            if not isinstance(update_of, str):  # the alert itself (it may arrive after an update)
                a.update(at=raised, raised=raised, arrived=arrived)
            if e.data.get("note"):
                a["note"] = str(e.data["note"])
            if e.data.get("latitude") is not None:
                a["latitude"], a["longitude"] = e.data.get("latitude"), e.data.get("longitude")
            a["devices"] = max(a["devices"], as_int(e.data.get("devices")))
            if e.data.get("false_alarm") is True:
                a["false_alarm"] = "the vessel"
        for a in alerts.values():
            marked = self.acked(FALSE_ALARM, a["ref"])
            if marked is not None:
                a["false_alarm"] = marked["name"]
        return list(alerts.values())

    def safety_alerts(self, v: VesselRow) -> list[dict[str, Any]]:
        """Crew messages to the hotline that read as a call for help (or are the covert alert)."""
        out = []
        for e in self._recent(f"{v.topic}/up/crew", MAX_SAFETY_SCAN):
            if e.data.get("to") != "hotline" or not is_safety_text(str(e.data.get("text", ""))):
                continue
            arrived = _time(e.data.get("received"), e.created)
            raised = event_origin_time(e.data) or arrived
            out.append(
                {
                    "kind": "safety", "ref": str(e.data.get("msg_id", e.id)), "vessel": v.name,
                    "vessel_slug": v.slug, "at": raised, "raised": raised, "arrived": arrived,
                    "member": e.data.get("member"), "handle": str(e.data.get("handle", "")), "devices": 1,
                }
            )
        return out

    def alert(self, kind: str, ref: str, vessels: list[VesselRow]) -> tuple[dict[str, Any], VesselRow] | None:
        """The alert ``kind``/``ref`` if it has arrived from one of ``vessels``, with its vessel."""
        if kind not in ("sos", "safety"):
            return None
        vessel_slug = ref.rpartition(":")[0]  # the relay's references start with the vessel's slug
        for v in sorted(vessels, key=lambda v: v.slug != vessel_slug):
            found = self.sos_alerts(v) if kind == "sos" else self.safety_alerts(v)
            for a in found:
                if a["ref"] == ref:
                    return a, v
        return None

    def open_alerts(self, vessels: list[VesselRow], crew: bool) -> list[dict[str, Any]]:
        """Unacknowledged SOS (and, for the hotline, personal-safety alerts) for these vessels,
        newest first."""
        out: list[dict[str, Any]] = []
        for v in vessels:
            out += [a for a in self.sos_alerts(v) if self.acked("sos", a["ref"]) is None]
            if crew:
                out += [a for a in self.safety_alerts(v) if self.acked("safety", a["ref"]) is None]
        out.sort(key=lambda a: a["raised"], reverse=True)
        return out

    # --- acting on them ---------------------------------------------------------------------------

    def acknowledge(
        self, alert: dict[str, Any], vessel: VesselRow, user: User, now: float, false_alarm: bool = False
    ) -> bool:
        """Record an acknowledgement of ``alert`` (found by ``alert``) once; an SOS also gets a
        retained ``state/sos``. With ``false_alarm`` the SOS is also marked a false alarm ashore."""
        kind, ref = alert["kind"], alert["ref"]
        with self.archive.tx() as db:
            first = not db.execute("SELECT 1 FROM dash_acks WHERE kind = ? AND ref = ?", (kind, ref)).fetchone()
            if first:
                db.execute(
                    "INSERT INTO dash_acks (kind, ref, name, at) VALUES (?, ?, ?, ?)", (kind, ref, user.name, now)
                )
            marked = false_alarm and not db.execute(
                "SELECT 1 FROM dash_acks WHERE kind = ? AND ref = ?", (FALSE_ALARM, ref)
            ).fetchone()
            if marked:
                db.execute(
                    "INSERT INTO dash_acks (kind, ref, name, at) VALUES (?, ?, ?, ?)",
                    (FALSE_ALARM, ref, user.name, now),
                )
            if kind == "sos" and (first or marked):
                state = {"msg_id": ref, "vessel": vessel.name, "by": user.name, "at": now}
                state.update(state="false-alarm" if marked else "acknowledged", devices=alert["devices"])
                db.execute(
                    "INSERT INTO events (topic, payload, retain, created) VALUES (?, ?, 1, ?)",
                    (f"{vessel.topic}/state/sos", json.dumps(state, separators=(",", ":")).encode(), now),
                )
        return first or marked
