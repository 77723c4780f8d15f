"""The captain's catch and sustainability log: trips, hauls with species lines, ETP interactions,
discards with a reason, crew rest hours, and FLUX-style corrections and deletions.

It owns validation (one set of rules for the page and the JSON API: every refusal is a
``CatchInputError`` naming the field, with a catalogue key so the message can be translated, and a
refused request changes nothing), the captain role's login (PIN hashed with scrypt, lockout after
repeated wrong PINs through ``gateway.pins``, opaque bearer tokens stored only as hashes), its own tables (created through
``GatewayStore.add_schema``), and turning each accepted event into a compact ``Kind.CATCH`` record.

Compact records: every event (trip start and end, haul, ETP interaction, discard, crew rest hours)
and every correction or deletion uses the shared schema in ``wire.catch`` (integer keys,
code-table indexes, scaled integers, deltas against the trip start; FLUX purpose codes in key 17), so
the shore decodes exactly what the captain entered.

It must not talk to the network or the modem; time comes from the injected clock.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import secrets
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

from common.clock import Clock
from wire import catch as wire
from wire.errors import LocalWireError
from wire.records import Kind

from .pins import PinLockout, new_pin_hash, pin_matches
from .store import GatewayStore

log = logging.getLogger("gateway.catchlog")

MAX_LINES = wire.MAX_LINES
MAX_KG = 1_000_000
MAX_CREW = 60
MAX_EVENTS_PER_TRIP = 100_000
MAX_TRIP_DAYS = 366
SESSION_IDLE_S = 24 * 3600.0

PURPOSE_ORIGINAL = int(wire.Purpose.ORIGINAL)
PURPOSE_REPLACE = int(wire.Purpose.REPLACE)
PURPOSE_DELETE = int(wire.Purpose.DELETE)

FATES = {"kept": "ONBOARD", "discarded": "DISCARDED", "released": "RELEASED"}
EVENT_TYPES = ("trip_start", "haul", "etp", "discard", "rest", "trip_end")
WIRE_TYPE = {
    "trip_start": int(wire.EventType.TRIP_START),
    "haul": int(wire.EventType.HAUL),
    "etp": int(wire.EventType.ETP),
    "trip_end": int(wire.EventType.TRIP_END),
    "discard": int(wire.EventType.DISCARD),
    "rest": int(wire.EventType.REST),
}

SCHEMA = """
CREATE TABLE IF NOT EXISTS catch_captains (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    handle TEXT NOT NULL UNIQUE,
    pin_salt BLOB NOT NULL,
    pin_hash BLOB NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS catch_sessions (
    token_hash BLOB PRIMARY KEY,
    captain INTEGER NOT NULL,
    created REAL NOT NULL,
    seen REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS catch_trips (
    trip INTEGER PRIMARY KEY AUTOINCREMENT,
    captain INTEGER NOT NULL,
    start TEXT NOT NULL,            -- validated trip start, JSON
    ended INTEGER NOT NULL DEFAULT 0,
    next_seq INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS catch_events (
    trip INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    revision INTEGER NOT NULL,
    type TEXT NOT NULL,
    purpose INTEGER NOT NULL,       -- FLUX: 9 original, 5 replacement, 3 deletion
    data TEXT NOT NULL,             -- validated event, JSON
    rid INTEGER NOT NULL,           -- the queued record
    created REAL NOT NULL,
    PRIMARY KEY (trip, seq, revision)
);
"""


class CatchInputError(ValueError):
    """Refused input: ``field`` names it, ``problem`` is the catalogue key of the explanation."""

    def __init__(self, field: str, problem: str, message: str, **values: object) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.problem = problem
        self.values = values

    def as_json(self) -> dict[str, Any]:
        return {"field": self.field, "problem": self.problem, "message": str(self), "values": self.values}


class CaptainLocked(Exception):
    def __init__(self, seconds: int) -> None:
        super().__init__(f"locked for {seconds} s")
        self.seconds = seconds


# --- code lists -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PickItem:
    code: str
    label: str  # in the language asked for, English when no name is known
    english: str
    extra: str = ""  # scientific name or abbreviation


def _csv_rows(package: str, name: str) -> list[list[str]]:
    import csv
    import io

    text = (resources.files(package) / name).read_text(encoding="utf-8")
    lines = [x for x in text.splitlines() if x and not x.startswith("#")]
    return list(csv.reader(io.StringIO("\n".join(lines))))[1:]


@cache
def _species_names() -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for row in _csv_rows("gateway.codelists", "species_names.csv"):
        code, th, my, km = [*row, "", "", ""][:4]
        out[code] = {"th": th, "my": my, "km": km}
    return out


@cache
def discard_reasons() -> tuple[str, ...]:
    return tuple(wire.table("discard_reasons").codes)


@cache
def _discard_labels() -> dict[str, str]:
    reasons = wire.table("discard_reasons")
    return dict(zip(reasons.codes, reasons.labels, strict=True))


CODELISTS = ("species", "gear", "fao_areas", "ports", "etp_conditions", "etp_fates", "discard_reasons")


@cache
def _wire_rows(name: str) -> list[tuple[str, str, str]]:
    version_rows = wire.TABLE_ROWS[wire.CODELIST_VERSION][name]
    rows = _csv_rows("wire.codes", f"{name}.csv")[:version_rows]
    if name == "gear":
        return [(r[1], r[2], r[0]) for r in rows]  # the abbreviation is the code people use
    return [(r[0], r[1], r[2] if len(r) > 2 else "") for r in rows]


def pick_list(name: str, lang: str = "en", query: str = "", limit: int = 50) -> list[PickItem]:
    """A searchable pick list: matches code, English, local-language or scientific name."""
    if name not in CODELISTS:
        raise CatchInputError("list", "problem_not_found", f"no code list {name!r}")
    if name == "discard_reasons":
        rows = [(c, _discard_labels()[c], "") for c in discard_reasons()]
    else:
        rows = _wire_rows(name)
    names = _species_names() if name == "species" else {}
    q = query.strip().casefold()[:40]
    out: list[PickItem] = []
    for code, english, extra in rows:
        local = names.get(code, {}).get(lang, "") if lang != "en" else ""
        label = local or english
        if q and not any(q in s.casefold() for s in (code, english, local, extra)):
            continue
        out.append(PickItem(code, label, english, extra))
        if len(out) >= max(1, min(limit, 500)):
            break
    return out


@cache
def _codes(name: str) -> frozenset[str]:
    return frozenset(item.code for item in pick_list(name, limit=500))


# --- validation (shared by the page and the API) ---------------------------------------------------


def _get(data: dict[str, Any], field: str, required: bool = True) -> Any:
    value = data.get(field)
    if isinstance(value, str):
        value = value.strip()
    if value in (None, ""):
        if required:
            raise CatchInputError(field, "problem_required", "is required")
        return None
    return value


def _number(data: dict[str, Any], field: str, lo: float, hi: float, required: bool = True) -> float | None:
    value = _get(data, field, required)
    if value is None:
        return None
    if isinstance(value, bool):
        raise CatchInputError(field, "problem_number", "must be a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise CatchInputError(field, "problem_number", "must be a number") from None
    if not math.isfinite(number) or not lo <= number <= hi:
        raise CatchInputError(
            field, "problem_range", f"must be between {lo:g} and {hi:g}", lo=f"{lo:g}", hi=f"{hi:g}"
        )
    return number


def _integer(data: dict[str, Any], field: str, lo: int, hi: int, required: bool = True) -> int | None:
    number = _number(data, field, lo, hi, required)
    if number is None:
        return None
    if number != int(number):
        raise CatchInputError(field, "problem_integer", "must be a whole number")
    return int(number)


def _code(data: dict[str, Any], field: str, listname: str, required: bool = True) -> str | None:
    value = _get(data, field, required)
    if value is None:
        return None
    code = str(value).upper() if listname not in ("fao_areas",) else str(value)
    if listname == "ports":
        code = code.replace(" ", "")
    if code not in _codes(listname):
        raise CatchInputError(
            field, "problem_code", f"{str(value)[:20]!r} is not in the {listname} list", value=str(value)[:20]
        )
    return code


def _time(data: dict[str, Any], field: str, required: bool = True) -> float | None:
    value = _get(data, field, required)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        text = str(value)[:40]
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise CatchInputError(field, "problem_time", "must be a date and time (ISO 8601, UTC)") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        seconds = parsed.timestamp()
    if not 1_704_067_200 <= seconds <= 4_102_444_800:  # 2024 .. 2100
        raise CatchInputError(field, "problem_time", "must be a date and time between 2024 and 2100")
    return float(seconds)


def _position(data: dict[str, Any]) -> tuple[float, float]:
    lat = _number(data, "latitude", -90, 90)
    lon = _number(data, "longitude", -180, 180)
    assert lat is not None and lon is not None
    return lat, lon


def _text(data: dict[str, Any], field: str, max_chars: int) -> str:
    value = _get(data, field, required=False)
    if value is None:
        return ""
    text = str(value)
    if len(text) > max_chars or any(ord(c) < 32 for c in text):
        raise CatchInputError(field, "problem_too_long", f"at most {max_chars} plain characters")
    return text


def validate_trip_start(data: dict[str, Any]) -> dict[str, Any]:
    lat, lon = _position(data)
    return {
        "departed": _time(data, "departed"),
        "port": _code(data, "port", "ports"),
        "gear": _code(data, "gear", "gear"),
        "area": _code(data, "area", "fao_areas"),
        "latitude": lat,
        "longitude": lon,
    }


def _lines(data: dict[str, Any]) -> list[dict[str, Any]]:
    raw = data.get("lines")
    if raw is None:
        raw = []
    if not isinstance(raw, list) or len(raw) > MAX_LINES:
        raise CatchInputError(
            "lines", "problem_lines", f"must be a list of at most {MAX_LINES} species lines"
        )
    lines = []
    for i, line in enumerate(raw):
        if not isinstance(line, dict):
            raise CatchInputError(f"lines[{i}]", "problem_lines", "must be an object")
        try:
            species = _code(line, "species", "species")
            kg = _integer(line, "kg", 0, MAX_KG)
            fate = str(_get(line, "fate", required=False) or "kept").lower()
            if fate not in FATES:
                raise CatchInputError(
                    "fate", "problem_code", "must be kept, discarded or released", value=fate[:20]
                )
            local = _text(line, "local_name", wire.MAX_LOCAL_NAME)
        except CatchInputError as exc:
            raise CatchInputError(f"lines[{i}].{exc.field}", exc.problem, str(exc), **exc.values) from None
        if species == "*" and not local:
            raise CatchInputError(
                f"lines[{i}].local_name", "problem_required", "is required for other species"
            )
        lines.append({"species": species, "kg": kg, "fate": fate, "local_name": local})
    return lines


def validate_haul(data: dict[str, Any]) -> dict[str, Any]:
    lat, lon = _position(data)
    return {
        "start": _time(data, "start"),
        "duration_min": _integer(data, "duration_min", 0, 7 * 24 * 60),
        "latitude": lat,
        "longitude": lon,
        "gear": _code(data, "gear", "gear", required=False),
        "area": _code(data, "area", "fao_areas", required=False),
        "lines": _lines(data),
    }


def validate_etp(data: dict[str, Any]) -> dict[str, Any]:
    lat, lon = _position(data)
    return {
        "time": _time(data, "time"),
        "latitude": lat,
        "longitude": lon,
        "species": _code(data, "species", "species"),
        "count": _integer(data, "count", 1, 100_000),
        "condition": _code(data, "condition", "etp_conditions"),
        "fate": _code(data, "fate", "etp_fates"),
    }


def validate_discard(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "time": _time(data, "time"),
        "species": _code(data, "species", "species"),
        "kg": _integer(data, "kg", 0, MAX_KG),
        "reason": _code(data, "reason", "discard_reasons"),
    }


def validate_rest(data: dict[str, Any]) -> dict[str, Any]:
    day = _get(data, "day")
    try:
        parsed = datetime.strptime(str(day)[:10], "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise CatchInputError("day", "problem_time", "must be a date (YYYY-MM-DD)") from None
    crew = data.get("crew")
    if not isinstance(crew, list) or not 1 <= len(crew) <= MAX_CREW:
        raise CatchInputError("crew", "problem_lines", f"must list 1 to {MAX_CREW} crew members")
    out, seen = [], set()
    for i, row in enumerate(crew):
        if not isinstance(row, dict):
            raise CatchInputError(f"crew[{i}]", "problem_lines", "must be an object")
        try:
            number = _integer(row, "crew", 1, 999)
            hours = _number(row, "rest_hours", 0, 24)
        except CatchInputError as exc:
            raise CatchInputError(f"crew[{i}].{exc.field}", exc.problem, str(exc), **exc.values) from None
        if number in seen:
            raise CatchInputError(f"crew[{i}].crew", "problem_duplicate", "appears twice")
        seen.add(number)
        assert hours is not None
        out.append({"crew": number, "rest_hours": round(hours * 2) / 2})
    return {"day": parsed.strftime("%Y-%m-%d"), "day_ts": parsed.timestamp(), "crew": out}


def validate_trip_end(data: dict[str, Any]) -> dict[str, Any]:
    return {"arrived": _time(data, "arrived"), "port": _code(data, "port", "ports")}


VALIDATORS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "trip_start": validate_trip_start,
    "haul": validate_haul,
    "etp": validate_etp,
    "discard": validate_discard,
    "rest": validate_rest,
    "trip_end": validate_trip_end,
}


# --- compact records --------------------------------------------------------------------------------


def _trip_start(trip: int, start: dict[str, Any]) -> wire.TripStart:
    return wire.TripStart(
        trip,
        start["departed"],
        start["port"],
        start["gear"],
        start["area"],
        start["latitude"],
        start["longitude"],
    )


def _minutes(at: float, start: dict[str, Any], field: str) -> int:
    minutes = int((at - start["departed"]) // 60)
    if not 0 <= minutes <= wire.MAX_TRIP_MINUTES:
        raise CatchInputError(field, "problem_trip_time", "must be after the trip's departure")
    return minutes


def encode_event(
    trip: int, seq: int, etype: str, data: dict[str, Any], start: dict[str, Any], purpose: int
) -> dict[int, Any]:
    """The compact CBOR map for one event, in the shared schema of ``wire.catch``."""
    if purpose == PURPOSE_DELETE:
        return wire.encode_catch(wire.Deletion(trip, seq, WIRE_TYPE[etype]))
    ts = _trip_start(trip, start)
    event: wire.CatchEvent
    try:
        if etype == "trip_start":
            event = ts
        elif etype == "haul":
            _minutes(data["start"], start, "start")
            lines = tuple(
                wire.CatchLine(line["species"], line["kg"], FATES[line["fate"]], "WHL", line["local_name"])
                for line in data["lines"]
            )
            event = wire.Haul(
                trip,
                seq,
                data["start"],
                data["duration_min"],
                data["latitude"],
                data["longitude"],
                lines,
                data["gear"],
                data["area"],
            )
        elif etype == "etp":
            _minutes(data["time"], start, "time")
            event = wire.EtpInteraction(
                trip,
                seq,
                data["time"],
                data["latitude"],
                data["longitude"],
                data["species"],
                data["count"],
                data["condition"],
                data["fate"],
            )
        elif etype == "trip_end":
            _minutes(data["arrived"], start, "arrived")
            event = wire.TripEnd(trip, seq, data["arrived"], data["port"])
        elif etype == "discard":
            _minutes(data["time"], start, "time")
            event = wire.Discard(trip, seq, data["time"], data["species"], data["kg"], data["reason"])
        else:  # rest
            departed_day = math.floor(start["departed"] / 86400) * 86400
            day_number = int((data["day_ts"] - departed_day) // 86400)
            if not 0 <= day_number <= MAX_TRIP_DAYS:
                raise CatchInputError("day", "problem_trip_time", "must be a day of the trip")
            event = wire.RestDay(
                trip, seq, day_number, tuple((row["crew"], row["rest_hours"]) for row in data["crew"])
            )
        wire_purpose = wire.Purpose.REPLACE if purpose == PURPOSE_REPLACE else wire.Purpose.ORIGINAL
        return wire.encode_catch(event, None if etype == "trip_start" else ts, wire_purpose)
    except LocalWireError as exc:
        raise CatchInputError("event", "problem_code", str(exc)) from None


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
        store.add_schema(SCHEMA)
        self.lockout = PinLockout(store, "catch_failures")

    # --- captain role ----------------------------------------------------------------------------

    def add_captain(self, handle: str, pin: str) -> int:
        handle = handle.strip()
        if not handle or len(handle) > 32:
            raise CatchInputError("handle", "problem_required", "1 to 32 characters")
        if not (pin.isascii() and pin.isdigit() and 6 <= len(pin) <= 12):
            raise CatchInputError("pin", "problem_pin_format", "6 to 12 digits")
        salt, pin_hash = new_pin_hash(pin)
        with self.store.transaction() as db:
            cur = db.execute(
                "INSERT INTO catch_captains (handle, pin_salt, pin_hash, created) VALUES (?, ?, ?, ?)",
                (handle, salt, pin_hash, self.clock.now()),
            )
        return int(cur.lastrowid or 0)

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
