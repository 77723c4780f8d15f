"""Catch records into trips and exports; SVG plots and the offline map stay well-formed."""

from __future__ import annotations

import json
from typing import Any
from xml.etree import ElementTree

from hypothesis import given, settings
from hypothesis import strategies as st

from shore.dashboard.catch_trips import parse_catch, trip_csv, trip_epcis, trips
from shore.dashboard.records import Event
from shore.dashboard.svg import bytes_per_day_chart, class_chart, fleet_map, latency_chart
from wire.records import to_wire_time


def _event(body: Any, kind: str = "up/catch", event_id: int = 1) -> Event:
    return Event(
        event_id,
        f"seabridge/v1/north/sea-star-7/{kind}",
        "north",
        "sea-star-7",
        kind,
        1_790_000_000.0,
        {
            "msg_id": f"sea-star-7:{event_id}",
            "vessel": "Sea Star 7",
            "received": 1_790_000_000.0,
            "body": body,
        },
    )


def test_compact_catch_records_are_read_with_tenths_of_kilograms_and_wire_time() -> None:
    at = 1_789_990_000.0
    body = {
        "0": to_wire_time(at),
        "1": "haul",
        "2": "T9",
        "3": 4,
        "4": 850_000,
        "5": 9_790_000,
        "6": [["SKJ", 1205, 0], ["YFT", 400, 3]],
        "7": [["TTH", 1, "released alive"]],
    }
    record = parse_catch(_event(body))
    assert record is not None
    assert record.trip == "T9" and record.haul == "4" and record.at == at
    assert (record.latitude, record.longitude) == (8.5, 97.9)
    assert [(s.code, s.kg, s.count) for s in record.catch] == [("SKJ", 120.5, 0), ("YFT", 40.0, 3)]
    assert record.etp[0].species == "TTH" and record.etp[0].fate == "released alive"


def test_hauls_of_a_trip_are_summed_per_species_and_landings_become_observe_events() -> None:
    events = [
        _event({"type": "haul", "trip": "T1", "catch": [{"species": "SKJ", "kg": 10}]}, event_id=1),
        _event({"type": "haul", "trip": "T1", "catch": [{"species": "SKJ", "kg": 5.5}]}, event_id=2),
        _event(
            {"trip": "T1", "catch": [{"species": "SKJ", "kg": 15.5}]}, kind="up/catch/landing", event_id=3
        ),
        _event({"type": "haul", "trip": "T2"}, event_id=4),
    ]
    found = {t.trip: t for t in trips(events)}
    assert found["T1"].hauls == 2 and found["T1"].species["SKJ"].kg == 15.5
    doc = trip_epcis(found["T1"], "north", "example.org", 1_790_000_000.0)
    steps = [(e["action"], e["bizStep"]) for e in doc["epcisBody"]["eventList"]]
    assert steps == [
        ("ADD", "urn:gdst:bizStep:fishingEvent"),
        ("ADD", "urn:gdst:bizStep:fishingEvent"),
        ("OBSERVE", "urn:gdst:bizStep:landing"),
    ]
    ids = [e["eventID"] for e in doc["epcisBody"]["eventList"]]
    assert len(set(ids)) == 3 and all(i.startswith("urn:uuid:") for i in ids)
    assert (
        trip_epcis(found["T1"], "north", "example.org", 1.0)["epcisBody"]["eventList"][0]["eventID"] == ids[0]
    )
    assert trip_csv(found["T1"]).count("\r\n") == 4  # header + three rows


keys = st.sampled_from(["type", "trip", "haul", "at", "lat", "lon", "catch", "etp", "species", "kg", "count"])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(keys | st.text(max_size=2), inner, max_size=5)
    ),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_any_catch_body_is_read_or_skipped_never_raises(body: Any) -> None:
    json.dumps(body)
    for t in trips([_event(body)]):
        trip_csv(t)
        json.dumps(trip_epcis(t, "north", "example.org", 0.0))


def test_plots_and_map_are_well_formed_svg_with_escaped_labels() -> None:
    name = "<script>alert(1)</script>"
    svgs = [
        bytes_per_day_chart([(1_790_000_000.0 - i * 86400, i * 100) for i in range(14)], 500.0),
        latency_chart([5, 70, 400, 2000, 9000, 50000], "latency"),
        class_chart({"crew": 3, "catch": 0}),
        fleet_map(
            [{"slug": "x", "name": name, "silent": True, "alerts": [{"kind": "sos"}]}],
            {"x": [(1.0, 9.0, 98.0), (2.0, 9.2, 98.1)]},
        ),
    ]
    for svg in svgs:
        ElementTree.fromstring(svg)  # parses: balanced and escaped
        assert "<script>" not in svg
    assert "9.200, 98.100" in svgs[3]
