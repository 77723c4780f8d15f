"""A whole trip, entered on the vessel and carried through the relay, exported ashore: the EPCIS 2.0
document validates against GS1's published EPCIS 2.0 JSON Schema (vendored in ``tests/epcis/``), the
CSV reads back with one row per species line, and discards show in the trip's data."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from jsonschema import Draft7Validator
from relay_kit import ShoreKeys, VesselSender, catch_events, make_relay

from gateway.catchlog import PURPOSE_ORIGINAL, encode_event
from shore.dashboard.catch_trips import Trip, trip_csv, trip_epcis, trips
from wire.items import encode_record_item
from wire.records import Kind

SCHEMA = json.loads((Path(__file__).parent / "epcis" / "EPCIS-JSON-Schema.json").read_text())
NET = "iridium-directip"
DEPART = 1_790_000_000.0
START = {"departed": DEPART, "port": "THSGK", "gear": "OTB", "area": "71", "latitude": 7.2, "longitude": 100.6}


def line(species: str, kg: int, fate: str = "kept", local: str = "") -> dict:
    return {"species": species, "kg": kg, "fate": fate, "local_name": local}


HAUL_1 = {
    "start": DEPART + 7200,
    "duration_min": 180,
    "latitude": 7.5,
    "longitude": 101.0,
    "gear": "OTB",
    "area": "71",
    "lines": [line("RAG", 420), line("SQC", 35), line("THB", 12, "discarded"), line("*", 40, local="ปลาเป็ด")],
}
HAUL_2 = {**HAUL_1, "start": DEPART + 30000, "lines": [line("RAG", 200), line("TTX", 1, "released")]}
EVENTS = [
    (0, "trip_start", START),
    (1, "haul", HAUL_1),
    (2, "haul", HAUL_2),
    (3, "etp", {"time": DEPART + 31000, "latitude": 7.6, "longitude": 101.1, "species": "TTX", "count": 1,
                "condition": "A1", "fate": "RELEASED_ALIVE"}),
    (4, "discard", {"time": DEPART + 32000, "species": "PEZ", "kg": 18, "reason": "UNDERSIZED"}),
    (5, "rest", {"day_ts": DEPART, "crew": [{"crew": 1, "rest_hours": 10.0}, {"crew": 2, "rest_hours": 11.5}]}),
    (6, "trip_end", {"arrived": DEPART + 90000, "port": "THSGK"}),
]
SPECIES_LINES = 4 + 2 + 1 + 1  # haul lines, the ETP interaction and the discard event


@pytest.fixture
def trip(tmp_path: Path) -> Trip:
    keys = ShoreKeys(tmp_path / "keys")
    archive, relay = make_relay(tmp_path, keys)
    vessel = VesselSender(keys, "300234010000009", "Sea Star 7")
    vessel.register(archive)
    try:
        for now, (seq, etype, data) in enumerate(EVENTS):
            body = encode_event(7, seq, etype, data, START, PURPOSE_ORIGINAL)
            frame = vessel.frame([encode_record_item(vessel.next_rid(), int(Kind.CATCH), body)])
            assert relay.handle_mo(vessel.imei, vessel.next_momsn(), frame, NET, 10.0 + now) == "accepted"
        events = catch_events(archive)
    finally:
        archive.close()
    (only,) = trips(events)
    return only


def test_the_epcis_export_validates_against_the_gs1_epcis_2_schema(trip: Trip) -> None:
    doc = trip_epcis(trip, "demo", "seabridge.local", DEPART + 100000)
    validator = Draft7Validator(SCHEMA, format_checker=Draft7Validator.FORMAT_CHECKER)
    problems = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]
    assert problems == []
    events = doc["epcisBody"]["eventList"]
    assert {e["bizStep"] for e in events} == {"urn:gdst:bizStep:fishingEvent", "urn:gdst:bizStep:landing"}
    assert all(e["disposition"] == "active" for e in events)
    # Only what was kept on board becomes product; discarded and released lines do not.
    assert sorted(q["quantity"] for q in events[0]["quantityList"]) == [35.0, 40.0, 420.0]
    assert [q["quantity"] for q in events[1]["quantityList"]] == [200.0]


def test_the_schema_check_catches_the_epcis_1_disposition(trip: Trip) -> None:
    """The check itself can fail: the 1.x URN form of a disposition is refused."""
    doc = trip_epcis(trip, "demo", "seabridge.local", DEPART + 100000)
    doc["epcisBody"]["eventList"][0]["disposition"] = "urn:epcglobal:cbv:disp:active"
    assert not Draft7Validator(SCHEMA, format_checker=Draft7Validator.FORMAT_CHECKER).is_valid(doc)


def test_the_csv_has_one_row_per_species_line_and_opens_with_thai_names(trip: Trip) -> None:
    text = trip_csv(trip)
    assert text.startswith("\ufeff")  # spreadsheets read UTF-8 (Thai local names) only with the mark
    rows = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))
    assert len(rows) == SPECIES_LINES
    assert all(r["species"] for r in rows)
    by = {(r["haul"], r["species"], r["catch_type"]): r for r in rows}
    assert by[("1", "RAG", "ONBOARD")]["weight_kg"] == "420.0"
    assert by[("1", "THB", "DISCARDED")]["weight_kg"] == "12.0"
    assert by[("1", "*", "ONBOARD")]["local_name"] == "ปลาเป็ด"
    assert by[("2", "TTX", "RELEASED")]["weight_kg"] == "1.0"
    assert by[("4", "PEZ", "DISCARDED")]["discard_reason"] == "UNDERSIZED"
    assert by[("3", "TTX", "")]["etp"] == "yes" and by[("3", "TTX", "")]["fate"] == "RELEASED_ALIVE"
    kept = sum(float(r["weight_kg"]) for r in rows if r["catch_type"] == "ONBOARD")
    assert kept == 420 + 35 + 40 + 200


def test_a_csv_cell_never_starts_a_spreadsheet_formula(tmp_path: Path) -> None:
    from shore.dashboard.catch_trips import CatchRecord, Species

    record = CatchRecord("Sea Star 7", "m1", "haul", "t/1", "1", DEPART, catch=[Species("*", 1.0, 0, "ONBOARD",
                                                                                        "=HYPERLINK(\"x\")")])
    text = trip_csv(Trip("Sea Star 7", "t/1", DEPART, DEPART, 1, [record]))
    (row,) = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))
    assert not row["local_name"].startswith(("=", "+", "-", "@"))


def test_discards_appear_in_the_trip_with_their_reasons_apart_from_the_kept_catch(trip: Trip) -> None:
    assert {code: s.kg for code, s in trip.species.items()} == {"RAG": 620, "SQC": 35, "*": 40}
    found = sorted((d.species, d.kg, d.catch_type, d.reason) for _record, d in trip.discards)
    assert found == [("PEZ", 18, "DISCARDED", "UNDERSIZED"), ("THB", 12, "DISCARDED", ""), ("TTX", 1, "RELEASED", "")]
