"""Compact catch and sustainability records (the body of ``Kind.CATCH`` records).

Owns the on-air schema of the owner's catch log: a trip start, one haul record per fishing event with
its species lines, endangered/threatened/protected (ETP) species interactions, and a trip end. Bodies
are CBOR maps with integer keys; codes travel as indexes into the code tables in ``wire/codes/``
(FAO ASFIS species, ISSCFG gear, FAO areas, UN/LOCODE ports, FLUX catch types and presentations, IOTC
conditions); weights are whole kilograms; positions are scaled integers; times and positions of the
events of a trip are deltas against the trip start.

Deltas are taken against the trip start, never against the previous event: records travel out of
order and may arrive after a gap, and each one must decode on its own once its trip start is known.
A species line is a CBOR array ``[species, kg]`` (``+ [catch_type, presentation, local_name]`` when
they differ from the defaults ONBOARD, WHL, none): 4 to 7 bytes for any catch below 65 536 kg and one
of the first 256 species rows.

Must not do: I/O or clocks (times are passed in), trust of decoded input (every field is checked and
hostile bodies raise ``MalformedError``), or renumbering a code table (tables are append-only).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from enum import IntEnum
from functools import cache
from importlib import resources
from typing import Any

from .errors import LocalWireError, MalformedError, RemoteWireError
from .records import from_wire_time, to_wire_time

CODELIST_VERSION = 1
MAX_LINES = 64
MAX_KG = 10_000_000
MAX_LOCAL_NAME = 40
MAX_TRIP_MINUTES = 366 * 24 * 60
MAX_DELTA_E3 = 90_000  # position delta in 1/1000 degree; the whole globe fits

# Rows of each table per code-list version (tables only ever grow).
TABLE_ROWS: dict[int, dict[str, int]] = {
    1: {
        "species": 32,
        "gear": 15,
        "fao_areas": 4,
        "ports": 21,
        "catch_types": 11,
        "presentations": 3,
        "etp_conditions": 7,
        "etp_fates": 5,
        "discard_reasons": 8,
    }
}


class TripUnknownError(RemoteWireError):
    """An event of a trip whose start record has not arrived (yet): hold it and retry later."""

    reason = "trip-unknown"


class CodeTable:
    """One append-only code table: code to index and back."""

    def __init__(self, name: str, codes: list[str], labels: list[str]) -> None:
        self.name = name
        self.codes = codes
        self.labels = labels
        self._index = {c: i for i, c in enumerate(codes)}

    def index(self, code: str, version: int = CODELIST_VERSION) -> int:
        i = self._index.get(code)
        if i is None or i >= TABLE_ROWS[version][self.name]:
            raise LocalWireError(f"{code!r} is not in code table {self.name} version {version}")
        return i

    def code(self, index: Any, version: int) -> str:
        if type(index) is not int or not 0 <= index < TABLE_ROWS[version][self.name]:
            raise MalformedError(f"index {index!r} is not in code table {self.name} version {version}")
        return self.codes[index]


@cache
def table(name: str) -> CodeTable:
    text = (resources.files("wire.codes") / f"{name}.csv").read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO("\n".join(x for x in text.splitlines() if not x.startswith("#")))))
    codes = [r[0] for r in rows[1:]]
    labels = [r[1] if len(r) > 1 else "" for r in rows[1:]]
    if len(codes) < max(v[name] for v in TABLE_ROWS.values()):
        raise LocalWireError(f"code table {name} is shorter than its released versions")
    return CodeTable(name, codes, labels)


class EventType(IntEnum):
    TRIP_START = 0
    HAUL = 1
    ETP = 2
    TRIP_END = 3
    DISCARD = 4
    REST = 5


_MAX_EVENT_TYPE = max(EventType)


class Purpose(IntEnum):
    """FLUX report purpose codes (key 17; absent means an original report)."""

    ORIGINAL = 9
    REPLACE = 5
    DELETE = 3


# --- events (the Python side, with codes as strings and times as Unix seconds) ---------------------


@dataclass(frozen=True)
class TripStart:
    trip: int
    departed: float  # Unix seconds
    port: str  # UN/LOCODE, "*" if not listed
    gear: str  # ISSCFG abbreviation (OTB, PS, ...)
    area: str  # FAO area code
    latitude: float
    longitude: float
    codelist_version: int = CODELIST_VERSION


@dataclass(frozen=True)
class CatchLine:
    species: str  # ASFIS 3-alpha, "*" for other (then local_name)
    kg: int
    catch_type: str = "ONBOARD"
    presentation: str = "WHL"
    local_name: str = ""


@dataclass(frozen=True)
class Haul:
    trip: int
    seq: int  # event number in the trip, from 1
    start: float  # Unix seconds (kept to the minute)
    duration_min: int
    latitude: float  # kept to 1/1000 degree
    longitude: float
    lines: tuple[CatchLine, ...] = ()
    gear: str | None = None  # when it differs from the trip's
    area: str | None = None


@dataclass(frozen=True)
class EtpInteraction:
    trip: int
    seq: int
    time: float
    latitude: float
    longitude: float
    species: str
    count: int
    condition: str  # IOTC condition code
    fate: str


@dataclass(frozen=True)
class TripEnd:
    trip: int
    seq: int  # number of events in the trip (lets the shore see a missing haul)
    arrived: float
    port: str


@dataclass(frozen=True)
class Discard:
    """Catch thrown back, with the reason (discard_reasons code table)."""

    trip: int
    seq: int
    time: float
    species: str
    kg: int
    reason: str


@dataclass(frozen=True)
class RestDay:
    """Rest hours of each crew member (numbered on the trip, never named) on one day of the trip."""

    trip: int
    seq: int
    day: int  # day number since the departure day (0 = the departure day, UTC)
    rest_hours: tuple[tuple[int, float], ...]  # (crew number, hours, kept to the half hour)


@dataclass(frozen=True)
class Deletion:
    """FLUX-style deletion of an earlier report (trip, seq) of type event_type."""

    trip: int
    seq: int
    event_type: int


CatchEvent = TripStart | Haul | EtpInteraction | TripEnd | Discard | RestDay | Deletion
MAX_CREW = 64


# --- helpers ---------------------------------------------------------------------------------------


def _e4(value: float) -> int:
    return round(value * 1e4)


def _base_e3(value_e4: int) -> int:
    return (value_e4 + 5) // 10


def _minutes(at: float, start: TripStart) -> int:
    minutes = int((at - start.departed) // 60)
    if not 0 <= minutes <= MAX_TRIP_MINUTES:
        raise LocalWireError("event time is outside its trip")
    return minutes


def _delta(value: float, base_e4: int) -> int:
    return round(value * 1e3) - _base_e3(base_e4)


def _int(body: dict[int, Any], key: int, what: str, lo: int = 0, hi: int = 2**32) -> int:
    value = body.get(key)
    if type(value) is not int or not lo <= value <= hi:
        raise MalformedError(f"catch field {what} missing or out of range")
    return value


# --- encoding --------------------------------------------------------------------------------------


def _encode_line(line: CatchLine, version: int) -> list[Any]:
    if not 0 <= line.kg <= MAX_KG:
        raise LocalWireError("catch weight out of range")
    out: list[Any] = [table("species").index(line.species, version), int(line.kg)]
    ctype = table("catch_types").index(line.catch_type, version)
    pres = table("presentations").index(line.presentation, version)
    name = line.local_name[:MAX_LOCAL_NAME]
    if name:
        out += [ctype, pres, name]
    elif pres:
        out += [ctype, pres]
    elif ctype:
        out.append(ctype)
    return out


def encode_catch(
    event: CatchEvent, trip: TripStart | None = None, purpose: Purpose = Purpose.ORIGINAL
) -> dict[int, Any]:
    """The CBOR map of one catch event; every event but the trip start needs its ``trip`` start.
    ``purpose`` REPLACE marks a correction: the whole event again under the same ``(trip, seq)``."""
    if isinstance(event, Deletion):
        if event.event_type not in set(EventType):
            raise LocalWireError(f"unknown event type {event.event_type}")
        return {0: int(event.event_type), 1: event.trip, 2: event.seq, 17: int(Purpose.DELETE)}
    body = _encode_event(event, trip)
    if purpose == Purpose.REPLACE:
        body[17] = int(Purpose.REPLACE)
    elif purpose != Purpose.ORIGINAL:
        raise LocalWireError("use a Deletion event to delete a report")
    return body


def _encode_event(event: CatchEvent, trip: TripStart | None) -> dict[int, Any]:
    if isinstance(event, TripStart):
        v = event.codelist_version
        return {
            0: int(EventType.TRIP_START),
            1: event.trip,
            2: v,
            3: to_wire_time(event.departed),
            4: table("ports").index(event.port, v),
            5: _gear_index(event.gear, v),
            6: table("fao_areas").index(event.area, v),
            7: _e4(event.latitude),
            8: _e4(event.longitude),
        }
    if trip is None or trip.trip != event.trip:
        raise LocalWireError("events are encoded against their own trip start")
    v = trip.codelist_version
    lat0, lon0 = _e4(trip.latitude), _e4(trip.longitude)
    if isinstance(event, Haul):
        if len(event.lines) > MAX_LINES:
            raise LocalWireError(f"at most {MAX_LINES} species lines per haul")
        out: dict[int, Any] = {
            0: int(EventType.HAUL),
            1: event.trip,
            2: event.seq,
            3: _minutes(event.start, trip),
            4: event.duration_min,
            5: _delta(event.latitude, lat0),
            6: _delta(event.longitude, lon0),
            7: [_encode_line(line, v) for line in event.lines],
        }
        if event.gear is not None and event.gear != trip.gear:
            out[8] = _gear_index(event.gear, v)
        if event.area is not None and event.area != trip.area:
            out[9] = table("fao_areas").index(event.area, v)
        return out
    if isinstance(event, EtpInteraction):
        return {
            0: int(EventType.ETP),
            1: event.trip,
            2: event.seq,
            3: _minutes(event.time, trip),
            5: _delta(event.latitude, lat0),
            6: _delta(event.longitude, lon0),
            10: table("species").index(event.species, v),
            11: event.count,
            12: table("etp_conditions").index(event.condition, v),
            13: table("etp_fates").index(event.fate, v),
        }
    if isinstance(event, Discard):
        if not 0 <= event.kg <= MAX_KG:
            raise LocalWireError("discarded weight out of range")
        return {
            0: int(EventType.DISCARD),
            1: event.trip,
            2: event.seq,
            3: _minutes(event.time, trip),
            10: table("species").index(event.species, v),
            14: event.kg,
            15: table("discard_reasons").index(event.reason, v),
        }
    if isinstance(event, RestDay):
        if not 0 <= event.day * 1440 <= MAX_TRIP_MINUTES or len(event.rest_hours) > MAX_CREW:
            raise LocalWireError("rest day outside the trip or too many crew")
        rows = []
        for crew, hours in event.rest_hours:
            if not (0 <= crew < 10_000 and 0 <= hours <= 24):
                raise LocalWireError("rest hours must be 0 to 24 for crew numbers 0 to 9999")
            rows.append([crew, round(hours * 2)])
        return {0: int(EventType.REST), 1: event.trip, 2: event.seq, 3: event.day * 1440, 16: rows}
    assert isinstance(event, TripEnd)
    return {
        0: int(EventType.TRIP_END),
        1: event.trip,
        2: event.seq,
        3: _minutes(event.arrived, trip),
        4: table("ports").index(event.port, v),
    }


def _gear_index(abbrev: str, version: int) -> int:
    gear = table("gear")
    for i, label in enumerate(gear.labels):
        if label == abbrev and i < TABLE_ROWS[version]["gear"]:
            return i
    raise LocalWireError(f"{abbrev!r} is not an ISSCFG abbreviation in code-list version {version}")


def _gear_abbrev(index: Any, version: int) -> str:
    table("gear").code(index, version)  # range check
    return table("gear").labels[index]


# --- decoding --------------------------------------------------------------------------------------


def _decode_line(raw: Any, v: int) -> CatchLine:
    if not isinstance(raw, list) or not 2 <= len(raw) <= 5:
        raise MalformedError("species line must be an array of 2 to 5 fields")
    kg = raw[1]
    if type(kg) is not int or not 0 <= kg <= MAX_KG:
        raise MalformedError("species line weight out of range")
    ctype = table("catch_types").code(raw[2], v) if len(raw) > 2 else "ONBOARD"
    pres = table("presentations").code(raw[3], v) if len(raw) > 3 else "WHL"
    name = raw[4] if len(raw) > 4 else ""
    if not isinstance(name, str) or len(name) > MAX_LOCAL_NAME:
        raise MalformedError("species line local name must be short text")
    return CatchLine(table("species").code(raw[0], v), kg, ctype, pres, name)


def _position(body: dict[int, Any], trip: TripStart) -> tuple[float, float]:
    dlat = _int(body, 5, "latitude delta", -MAX_DELTA_E3, MAX_DELTA_E3)
    dlon = _int(body, 6, "longitude delta", -2 * MAX_DELTA_E3, 2 * MAX_DELTA_E3)
    return (
        (_base_e3(_e4(trip.latitude)) + dlat) / 1e3,
        (_base_e3(_e4(trip.longitude)) + dlon) / 1e3,
    )


def catch_purpose(body: Any) -> Purpose:
    """The FLUX purpose of an encoded catch event (original, replacement or deletion)."""
    raw = body.get(17, int(Purpose.ORIGINAL)) if isinstance(body, dict) else None
    try:
        return Purpose(raw)
    except ValueError:
        raise MalformedError(f"unknown report purpose {raw!r}") from None


def decode_catch(body: Any, trips: dict[int, TripStart] | None = None) -> CatchEvent:
    """One catch event from its CBOR map; ``trips`` holds the trip starts seen so far by trip id.
    The report's purpose (original or correction) is read with ``catch_purpose``."""
    if not isinstance(body, dict) or not all(type(k) is int for k in body):
        raise MalformedError("catch body must be a map with integer keys")
    etype = _int(body, 0, "event type", 0, _MAX_EVENT_TYPE)
    trip_id = _int(body, 1, "trip")
    if catch_purpose(body) == Purpose.DELETE:
        return Deletion(trip_id, _int(body, 2, "sequence", 0, 2**20), etype)
    if etype == EventType.TRIP_START:
        return _decode_trip_start(body, trip_id)
    trip = (trips or {}).get(trip_id)
    if trip is None:
        raise TripUnknownError(f"trip {trip_id} has not started (its start record is missing)")
    v = trip.codelist_version
    seq = _int(body, 2, "sequence", 0, 2**20)
    minutes = _int(body, 3, "minutes since departure", 0, MAX_TRIP_MINUTES)
    at = trip.departed + minutes * 60
    if etype == EventType.HAUL:
        lines = body.get(7)
        if not isinstance(lines, list) or len(lines) > MAX_LINES:
            raise MalformedError(f"haul lines must be a list of at most {MAX_LINES}")
        lat, lon = _position(body, trip)
        return Haul(
            trip=trip_id,
            seq=seq,
            start=at,
            duration_min=_int(body, 4, "duration", 0, MAX_TRIP_MINUTES),
            latitude=lat,
            longitude=lon,
            lines=tuple(_decode_line(raw, v) for raw in lines),
            gear=_gear_abbrev(body[8], v) if 8 in body else trip.gear,
            area=table("fao_areas").code(body[9], v) if 9 in body else trip.area,
        )
    if etype == EventType.ETP:
        lat, lon = _position(body, trip)
        return EtpInteraction(
            trip=trip_id,
            seq=seq,
            time=at,
            latitude=lat,
            longitude=lon,
            species=table("species").code(body.get(10), v),
            count=_int(body, 11, "count", 0, 100_000),
            condition=table("etp_conditions").code(body.get(12), v),
            fate=table("etp_fates").code(body.get(13), v),
        )
    if etype == EventType.DISCARD:
        return Discard(
            trip=trip_id,
            seq=seq,
            time=at,
            species=table("species").code(body.get(10), v),
            kg=_int(body, 14, "discarded weight", 0, MAX_KG),
            reason=table("discard_reasons").code(body.get(15), v),
        )
    if etype == EventType.REST:
        if minutes % 1440:
            raise MalformedError("a rest day starts at a whole day")
        return RestDay(trip=trip_id, seq=seq, day=minutes // 1440, rest_hours=_decode_rest_rows(body.get(16)))
    return TripEnd(trip=trip_id, seq=seq, arrived=at, port=table("ports").code(body.get(4), v))


def _decode_trip_start(body: dict[int, Any], trip_id: int) -> TripStart:
    v = _int(body, 2, "code-list version", 1, 2**16)
    if v not in TABLE_ROWS:
        raise MalformedError(f"unknown code-list version {v}")
    return TripStart(
        trip=trip_id,
        departed=from_wire_time(_int(body, 3, "departed")),
        port=table("ports").code(body.get(4), v),
        gear=_gear_abbrev(body.get(5), v),
        area=table("fao_areas").code(body.get(6), v),
        latitude=_int(body, 7, "latitude", -900_000, 900_000) / 1e4,
        longitude=_int(body, 8, "longitude", -1_800_000, 1_800_000) / 1e4,
        codelist_version=v,
    )


def _decode_rest_rows(rows: Any) -> tuple[tuple[int, float], ...]:
    """Rest hours of a rest day: ``[crew number, half hours 0..48]`` rows."""
    if not isinstance(rows, list) or len(rows) > MAX_CREW:
        raise MalformedError(f"rest hours must be a list of at most {MAX_CREW} rows")
    rest: list[tuple[int, float]] = []
    for row in rows:
        if (
            not isinstance(row, list)
            or len(row) != 2
            or type(row[0]) is not int
            or type(row[1]) is not int
            or not 0 <= row[0] < 10_000
            or not 0 <= row[1] <= 48
        ):
            raise MalformedError("a rest row is [crew number, half hours 0..48]")
        rest.append((row[0], row[1] / 2))
    return tuple(rest)
