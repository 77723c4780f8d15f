"""What the dashboard reads out of the archive, as plain values: vessels, events of the outbox,
messages and conversations of the hotline desk, and the small pure helpers that read them (event
parsing, origin times, positions, percentiles, the personal-safety word check).

It owns no SQL and no I/O: ``data.DashboardData`` runs the queries and builds these values.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from wire.records import PERSONAL_ALERT_TEXT, PriorityClass, from_wire_time

from ..topics import TOPIC_ROOT, slug

MAX_EVENTS_PER_POLL = 200
MAX_CONVERSATION_SCAN = 5000
DAY = 86400.0

# Words that make a crew message to the hotline a personal-safety alert (Burmese, Khmer, Thai,
# English). A heuristic that errs on the side of alerting; staff acknowledge and move on.
SAFETY_WORDS = (
    "help",
    "sos",
    "danger",
    "beaten",
    "beat me",
    "hurt",
    "injured",
    "trapped",
    "threat",
    "kill",
    "ကူညီ",
    "အန္တရာယ်",
    "ရိုက်",
    "ជួយ",
    "គ្រោះថ្នាក់",
    "វាយ",
    "ช่วย",
    "อันตราย",
    "ทำร้าย",
)

CLASS_NAMES = {
    PriorityClass.DISTRESS: "distress",
    PriorityClass.CONTROL: "control",
    PriorityClass.CREW: "crew",
    PriorityClass.CATCH: "catch",
    PriorityClass.TELEMETRY: "telemetry",
}


_SAFETY_LATIN = re.compile(
    r"(?<![a-z])(?:" + "|".join(re.escape(w) for w in SAFETY_WORDS if w.isascii()) + r")(?![a-z])"
)
_SAFETY_OTHER = tuple(w for w in SAFETY_WORDS if not w.isascii())  # scripts without word spaces


def is_safety_text(text: str) -> bool:
    """A crew message to the hotline that raises a personal-safety alert: the covert alert the
    captive page's "Clear screen" button sends, or a message that reads like a call for help."""
    if PERSONAL_ALERT_TEXT in text:
        return True
    low = text.lower()
    return _SAFETY_LATIN.search(low) is not None or any(w in low for w in _SAFETY_OTHER)


@dataclass(frozen=True)
class VesselRow:
    imei: str
    name: str
    fleet: str
    profile: str
    revoked: bool
    last_contact: float | None

    @property
    def slug(self) -> str:
        return slug(self.name)

    @property
    def topic(self) -> str:
        return f"{TOPIC_ROOT}/{slug(self.fleet)}/{slug(self.name)}"


@dataclass
class Event:
    id: int
    topic: str
    fleet: str  # topic level (slug)
    vessel: str  # topic level (slug)
    kind: str  # the rest of the topic: "up/crew", "state/link", "evt/delivery", ...
    created: float
    data: dict[str, Any]


@dataclass
class Message:
    id: int
    direction: str  # "in" (from the crew) or "out" (a desk reply)
    text: str
    at: float
    msg_id: str
    handle: str = ""
    to: str = ""
    sent_at: float | None = None  # crew: written on board
    sender: str = ""
    status: str = ""  # desk replies: one of RECEIPT_STATES
    delivered_at: float | None = None  # desk replies: when the acknowledgement came ashore
    handed_at: float | None = None  # desk replies: when the frame went to the satellite network
    frame_bytes: int = 0
    credits: int = 0
    safety: bool = False


# Where a desk reply is, in order: published but not yet taken by the relay; in the relay's queue for
# the vessel; handed to the satellite network (the vessel takes it at its next session); acknowledged.
RECEIPT_STATES = ("sent to relay", "queued ashore", "sent via satellite", "delivered")


@dataclass(frozen=True)
class Receipt:
    """A desk reply's state, with when its frame was handed to the satellite network (``sent``) and
    when the vessel's acknowledgement came ashore (``acked``). The vessel takes a frame at its next
    satellite session, usually seconds after the hand-over; its acknowledgement rides on a later frame,
    often minutes after, so ``acked`` is not when the crew member got the reply."""

    state: str
    sent: float | None = None
    acked: float | None = None


def receipt_of(sent: float | None, acked: float | None) -> Receipt:
    """The receipt of a reply in the relay's queue from its hand-over and acknowledgement times."""
    if acked is not None:
        return Receipt(RECEIPT_STATES[3], None if sent is None else float(sent), float(acked))
    if sent is not None:
        return Receipt(RECEIPT_STATES[2], float(sent))
    return Receipt(RECEIPT_STATES[1])


@dataclass
class Conversation:
    key: str  # "<vessel slug>:<member>"
    vessel: str
    vessel_slug: str
    fleet: str
    member: int
    handles: list[str] = field(default_factory=list)
    last_at: float = 0.0
    last_id: int = 0
    unread: int = 0
    count: int = 0
    safety: bool = False


def _loads(payload: Any) -> dict[str, Any]:
    try:
        data = json.loads(bytes(payload))
    except (ValueError, TypeError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def parse_event(event_id: int, topic: str, payload: Any, created: float) -> Event | None:
    parts = topic.split("/")
    if len(parts) < 6 or "/".join(parts[:2]) != TOPIC_ROOT:
        return None
    data = _loads(payload)
    for key in ("received", "at", "created"):
        # Times are numbers or absent: anything else is dropped, so callers can trust them.
        value = data.get(key)
        if key in data and (not isinstance(value, int | float) or isinstance(value, bool) or value != value):
            del data[key]
    data.setdefault("received", float(created))
    return Event(event_id, topic, parts[2], parts[3], "/".join(parts[4:]), float(created), data)


def event_origin_time(data: dict[str, Any]) -> float | None:
    """When a record was made on board, if its event says so."""
    created = data.get("created")
    if isinstance(created, int | float) and not isinstance(created, bool):
        return float(created)
    body = data.get("body")
    if isinstance(body, dict):
        wire = body.get("0")
        if isinstance(wire, int) and not isinstance(wire, bool):
            return from_wire_time(wire)
    return None


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def as_int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def position_of(data: dict[str, Any]) -> tuple[float, float] | None:
    lat, lon = data.get("latitude"), data.get("longitude")
    if isinstance(lat, int | float) and isinstance(lon, int | float):
        return float(lat), float(lon)
    body = data.get("body")
    if isinstance(body, dict):
        lat, lon = body.get("1"), body.get("2")
        if isinstance(lat, int) and isinstance(lon, int) and abs(lat) <= 9_000_000 and abs(lon) <= 18_000_000:
            return lat / 1e5, lon / 1e5
    return None


def telemetry_status(telemetry: Event | None) -> dict[str, Any]:
    """What the fleet view shows of a vessel's latest gateway telemetry: when, its queue per class,
    its budget use (per mille of the day's and month's) and its link-session success rate (%)."""
    status: dict[str, Any] = {}
    status["telemetry_at"] = None
    status["queue"] = []
    status["budget_day_permille"] = None
    status["budget_month_permille"] = None
    status["session_success"] = None
    if telemetry is not None:
        body = telemetry.data.get("body") if isinstance(telemetry.data.get("body"), dict) else {}
        status["telemetry_at"] = telemetry.data.get("received", telemetry.created)
        queue = body.get("5") or []
        status["queue"] = [
            {
                "class": CLASS_NAMES.get(as_int(q[0]), str(q[0])),
                "records": as_int(q[1]),
                "bytes": as_int(q[2]),
            }
            for q in queue
            if isinstance(q, list) and len(q) == 3
        ]
        status["budget_day_permille"] = as_int(body.get("6"))
        status["budget_month_permille"] = as_int(body.get("7"))
        link_stats = body.get("8") or []
        if isinstance(link_stats, list) and len(link_stats) >= 2 and as_int(link_stats[0]):
            sessions, failures = as_int(link_stats[0]), as_int(link_stats[1])
            status["session_success"] = round(100 * (sessions - failures) / sessions)
    return status
