"""Catch logs ashore: trips, hauls and species totals, ETP interactions, and exports of a trip.

It owns reading catch records as the relay publishes them (``up/catch`` or ``up/catch/<kind>`` events
whose ``body`` is the record map) into ``CatchRecord`` values, grouping them into trips, and writing a
trip as GDST-aligned EPCIS 2.0 JSON-LD (fishing events as ObjectEvent ADD with bizStep
``urn:gdst:bizStep:fishingEvent``, landings and transshipments as OBSERVE; valid under GS1's EPCIS 2.0
JSON Schema) or as CSV with one row per species line. Only catch kept on board counts as product;
discarded and released lines and discard events are kept apart as the trip's discards. It does no I/O
and reads no clock; malformed records are skipped with a log line, never raised.

Record bodies are accepted with named keys (``type``, ``trip``, ``haul``, ``at``, ``lat``, ``lon``,
``gear``, ``area``, ``catch`` = list of ``{species, kg, count}``, ``etp`` = list of ``{species, count,
fate}``) or with the compact integer keys listed in ``COMPACT_KEYS``.
"""

from __future__ import annotations

import csv
import io
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from wire.records import from_wire_time

from .records import Event

log = logging.getLogger("shore.dashboard")

# Compact integer keys (as strings once published as JSON) for catch record bodies.
COMPACT_KEYS = {
    "0": "at",  # wire time (seconds since the wire epoch)
    "1": "type",  # trip-start | haul | landing | transship | etp | trip-end
    "2": "trip",
    "3": "haul",
    "4": "lat_e5",
    "5": "lon_e5",
    "6": "catch",  # [[species, weight in 0.1 kg, count], ...]
    "7": "etp",  # [[species, count, fate], ...]
    "8": "gear",  # ISSCFG numeric, e.g. "3.12"
    "9": "area",  # FAO area, e.g. "57" or "71"
}

EPCIS_CONTEXT = [
    "https://ref.gs1.org/standards/epcis/epcis-context.jsonld",
    {
        "gdst": "https://traceability-dialogue.org/epcis",
        "cbvmda": "urn:epcglobal:cbv:mda:",
        "seabridge": "urn:seabridge:catch:",
    },
]

BIZ_STEPS = {
    "trip-end": ("OBSERVE", "urn:gdst:bizStep:landing"),
    "haul": ("ADD", "urn:gdst:bizStep:fishingEvent"),
    "landing": ("OBSERVE", "urn:gdst:bizStep:landing"),
    "transship": ("OBSERVE", "urn:gdst:bizStep:transshipment"),
}

CSV_COLUMNS = [
    "vessel",
    "trip",
    "haul",
    "type",
    "time_utc",
    "latitude",
    "longitude",
    "gear",
    "fao_area",
    "species",
    "local_name",
    "catch_type",
    "weight_kg",
    "count",
    "etp",
    "fate",
    "discard_reason",
    "msg_id",
]
# Spreadsheets take a UTF-8 file for their legacy code page (and garble Thai, Burmese and Khmer names)
# unless it starts with a byte order mark.
CSV_BOM = "\ufeff"
# FLUX catch types (``wire/codes/catch_types.csv``) of catch that does not stay on board.
NOT_RETAINED = frozenset({"DISCARDED", "RELEASED", "DEMINIMIS"})


@dataclass
class Species:
    code: str
    kg: float = 0.0
    count: int = 0
    catch_type: str = "ONBOARD"  # FLUX FA_CATCH_TYPE
    local_name: str = ""

    @property
    def retained(self) -> bool:
        return self.catch_type not in NOT_RETAINED


@dataclass
class Discard:
    species: str
    kg: float
    catch_type: str = "DISCARDED"  # DISCARDED or RELEASED (a haul's line) or DEMINIMIS
    reason: str = ""  # a discard event's reason code, e.g. UNDERSIZED


@dataclass
class Etp:
    species: str
    count: int
    fate: str


@dataclass
class CatchRecord:
    vessel: str
    msg_id: str
    type: str
    trip: str
    haul: str
    at: float
    latitude: float | None = None
    longitude: float | None = None
    gear: str = ""
    area: str = ""
    catch: list[Species] = field(default_factory=list)
    etp: list[Etp] = field(default_factory=list)
    discards: list[Discard] = field(default_factory=list)  # of a discard event
    purpose: str = "original"  # FLUX purpose: original | replace | delete


@dataclass
class Trip:
    vessel: str
    trip: str
    start: float
    end: float
    hauls: int = 0
    records: list[CatchRecord] = field(default_factory=list)
    species: dict[str, Species] = field(default_factory=dict)  # kept on board, per species
    etp: list[tuple[CatchRecord, Etp]] = field(default_factory=list)
    discards: list[tuple[CatchRecord, Discard]] = field(default_factory=list)


MAX_TIME = 4_102_444_800.0  # 2100-01-01: later (or negative) times are not believed
MAX_QUANTITY = 1e9


def _num(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and abs(value) <= MAX_QUANTITY * 1e3:
        return float(value)
    return None


def _time(value: Any, fallback: float, compact: bool) -> float:
    if isinstance(value, str):
        try:
            got = datetime.fromisoformat(value[:40]).timestamp()
        except (ValueError, OverflowError, OSError):
            return fallback
    else:
        number = _num(value)
        if number is None:
            return fallback
        got = from_wire_time(int(number)) if compact else number
    return got if 0 <= got <= MAX_TIME else fallback


def parse_catch(event: Event) -> CatchRecord | None:
    body = event.data.get("body")
    if not isinstance(body, dict):
        log.info("catch event %d without a body map skipped", event.id)
        return None
    compact = any(k in COMPACT_KEYS for k in body)
    b = {COMPACT_KEYS.get(k, k): v for k, v in body.items()} if compact else dict(body)
    received = _num(event.data.get("received")) or event.created
    kind = event.kind.split("/")[2] if event.kind.count("/") >= 2 else ""
    rtype = str(b.get("type") or b.get("event") or kind or "haul").lower()
    lat, lon = _num(b.get("lat")), _num(b.get("lon"))
    if lat is None and _num(b.get("lat_e5")) is not None and _num(b.get("lon_e5")) is not None:
        lat, lon = float(b["lat_e5"]) / 1e5, float(b["lon_e5"]) / 1e5
    record = CatchRecord(
        vessel=str(event.data.get("vessel", event.vessel)),
        msg_id=str(event.data.get("msg_id", event.id)),
        type=rtype,
        trip=str(b.get("trip", "unknown"))[:64],
        haul=str(b.get("haul", ""))[:16],
        at=_time(b.get("at"), received, compact),
        latitude=lat,
        longitude=lon,
        gear=str(b.get("gear", ""))[:16],
        area=str(b.get("area", ""))[:16],
        purpose=str(b.get("purpose", "original"))[:16],
    )
    catch = b.get("catch")
    for item in catch if isinstance(catch, list) else []:
        if isinstance(item, dict):
            kg = _num(item.get("kg")) or 0.0
            record.catch.append(
                Species(
                    str(item.get("species", "?"))[:8],
                    kg,
                    int(_num(item.get("count")) or 0),
                    str(item.get("catch_type") or "ONBOARD")[:20],
                    str(item.get("local_name") or "")[:64],
                )
            )
        elif isinstance(item, list) and len(item) >= 2:
            tenths = _num(item[1]) or 0.0
            count = int(_num(item[2]) or 0) if len(item) > 2 else 0
            record.catch.append(Species(str(item[0])[:8], tenths / 10 if compact else tenths, count))
    etp = b.get("etp") or []
    for item in etp if isinstance(etp, list) else []:
        if isinstance(item, dict):
            record.etp.append(
                Etp(
                    str(item.get("species", "?"))[:8],
                    int(_num(item.get("count")) or 1),
                    str(item.get("fate", "")),
                )
            )
        elif isinstance(item, list) and item:
            count = int(_num(item[1]) or 1) if len(item) > 1 else 1
            record.etp.append(Etp(str(item[0])[:8], count, str(item[2]) if len(item) > 2 else ""))
    discards = b.get("discards")
    for item in discards if isinstance(discards, list) else []:
        if isinstance(item, dict):
            record.discards.append(
                Discard(str(item.get("species", "?"))[:8], _num(item.get("kg")) or 0.0,
                        reason=str(item.get("reason") or "")[:20])
            )
    return record


def _apply_corrections(events: list[Event]) -> list[CatchRecord]:
    """Records in order with FLUX corrections applied: a replacement takes the place of the report
    with the same trip, event number and type; a deletion removes it."""
    current: dict[tuple[str, str, str], CatchRecord] = {}
    order: list[tuple[str, str, str]] = []
    for event in events:
        record = parse_catch(event)
        if record is None:
            continue
        key = (
            (record.trip, record.haul, record.type)
            if record.haul
            else (record.trip, record.msg_id, record.type)
        )
        if record.purpose == "delete":
            current.pop(key, None)
            continue
        if key not in current:
            order.append(key)
        current[key] = record
    return [current[k] for k in order if k in current]


def trips(events: list[Event]) -> list[Trip]:
    out: dict[str, Trip] = {}
    for record in _apply_corrections(events):
        trip = out.get(record.trip)
        if trip is None:
            trip = out[record.trip] = Trip(record.vessel, record.trip, record.at, record.at)
        trip.start, trip.end = min(trip.start, record.at), max(trip.end, record.at)
        trip.records.append(record)
        if record.type == "haul":
            trip.hauls += 1
        if record.type in ("haul", "etp"):
            for s in record.catch:
                if not s.retained:
                    trip.discards.append((record, Discard(s.code, s.kg, s.catch_type)))
                    continue
                total = trip.species.setdefault(s.code, Species(s.code))
                total.kg += s.kg
                total.count += s.count
        trip.etp.extend((record, e) for e in record.etp)
        trip.discards.extend((record, d) for d in record.discards)
    return sorted(out.values(), key=lambda t: t.start, reverse=True)


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _text(value: str) -> str:
    """A text cell a spreadsheet shows as text: never the start of a formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def trip_csv(trip: Trip) -> str:
    """One row per species line: catch lines of hauls and landings (kept, discarded or released),
    lines of discard events and ETP interactions. Trip start, end and rest days carry no species."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for r in sorted(trip.records, key=lambda r: r.at):
        where = [r.latitude, r.longitude, _text(r.gear), _text(r.area)]
        base = [_text(r.vessel), _text(r.trip), _text(r.haul), _text(r.type), _iso(r.at), *where]
        end = _text(r.msg_id)
        for s in r.catch:
            kg = f"{s.kg:.1f}"
            writer.writerow([*base, _text(s.code), _text(s.local_name), _text(s.catch_type), kg, s.count,
                             "", "", "", end])
        for d in r.discards:
            writer.writerow([*base, _text(d.species), "", _text(d.catch_type), f"{d.kg:.1f}", "",
                             "", "", _text(d.reason), end])
        for e in r.etp:
            writer.writerow([*base, _text(e.species), "", "", "", e.count, "yes", _text(e.fate), "", end])
    return CSV_BOM + buf.getvalue()


def trip_epcis(trip: Trip, fleet: str, domain: str, now: float) -> dict[str, Any]:
    """One EPCIS 2.0 document (JSON-LD) with a GDST event per haul, landing and transshipment."""
    vessel_id = _slug(trip.vessel)
    party = f"urn:gdst:{domain}:party:{_slug(fleet)}.0"
    location = f"urn:gdst:{domain}:location:loc:{_slug(fleet)}.{vessel_id}"
    events: list[dict[str, Any]] = []
    for r in sorted(trip.records, key=lambda r: r.at):
        if r.type not in BIZ_STEPS:
            continue
        action, biz_step = BIZ_STEPS[r.type]
        event: dict[str, Any] = {
            "type": "ObjectEvent",
            "eventID": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'seabridge:{vessel_id}:{r.msg_id}')}",
            "eventTime": _iso(r.at),
            "eventTimeZoneOffset": "+00:00",
            "action": action,
            "bizStep": biz_step,
            "disposition": "active",  # CBV 2.0 bare value; the 1.x URN form is not valid EPCIS 2.0
            "bizLocation": {"id": location},
            "gdst:productOwner": party,
            "cbvmda:informationProvider": party,
        }
        # A trip end lands what the trip kept. An event without product names an empty epcList (an
        # ObjectEvent needs one of the two lists, and a quantityList may not be empty).
        kept = list(trip.species.values()) if r.type == "trip-end" and not r.catch else r.catch
        lots = [
            {
                "epcClass": f"urn:gdst:{domain}:product:lot:class:{_slug(fleet)}.{_slug(s.code)}.{_slug(trip.trip)}",
                "quantity": round(s.kg, 1),
                "uom": "KGM",
            }
            for s in kept
            if s.retained
        ]
        if lots:
            event["quantityList"] = lots
        else:
            event["epcList"] = []
        if r.latitude is not None and r.longitude is not None:
            event["readPoint"] = {"id": f"geo:{r.latitude:.5f},{r.longitude:.5f}"}
        if r.type == "haul":
            catch_info: dict[str, Any] = {"cbvmda:vesselName": r.vessel, "cbvmda:vesselID": vessel_id}
            if r.area:
                catch_info["cbvmda:catchArea"] = f"urn:gdst:fao:{r.area}"
            if r.gear:
                catch_info["cbvmda:fishingGearTypeCode"] = f"urn:gdst:gear:{r.gear}"
            catch_info["gdst:gpsAvailability"] = r.latitude is not None
            event["ilmd"] = {
                "cbvmda:vesselCatchInformationList": {"cbvmda:vesselCatchInformation": [catch_info]},
                "cbvmda:harvestStartDate": _iso(r.at),
                "cbvmda:harvestEndDate": _iso(r.at),
                "cbvmda:productionMethodForFishAndSeafoodCode": "MARINE_FISHERY",
                "gdst:vesselTripDate": _iso(trip.start),
            }
        # Not in GDST: trip id, haul number and ETP interactions (project namespace).
        event["seabridge:tripID"] = trip.trip
        if r.haul:
            event["seabridge:haul"] = r.haul
        if r.etp:
            event["seabridge:etpInteractions"] = [
                {"seabridge:species": e.species, "seabridge:count": e.count, "seabridge:fate": e.fate}
                for e in r.etp
            ]
        events.append(event)
    return {
        "@context": EPCIS_CONTEXT,
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": _iso(now),
        "epcisBody": {"eventList": events},
    }


def _slug(value: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in value.lower()).strip("-") or "x"
