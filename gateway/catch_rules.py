"""The rules of the captain's catch log: the code lists people pick from, the validation every event
passes (one set of rules for the page and the JSON API), and turning a validated event into its compact
``wire.catch`` record.

Every refusal is a ``CatchInputError`` naming the field, with a catalogue key so the message can be
translated. Compact records use the shared schema in ``wire.catch`` (integer keys, code-table indexes,
scaled integers, deltas against the trip start; FLUX purpose codes in key 17), so the shore decodes
exactly what the captain entered. Pure functions: no database, no clock, no network.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

from wire import catch as wire
from wire.errors import LocalWireError

MAX_LINES = wire.MAX_LINES
MAX_KG = 1_000_000
MAX_CREW = 60
MAX_EVENTS_PER_TRIP = 100_000
MAX_TRIP_DAYS = 366

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


class CatchInputError(ValueError):
    """Refused input: ``field`` names it, ``problem`` is the catalogue key of the explanation."""

    def __init__(self, field: str, problem: str, message: str, **values: object) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.problem = problem
        self.values = values

    def as_json(self) -> dict[str, Any]:
        return {"field": self.field, "problem": self.problem, "message": str(self), "values": self.values}


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
