"""A captain's catch log, from the gateway's encoding through the relay to the shore's catch view:
the shore sees what was entered, corrections replace and deletions remove, and events that overtake
their trip's start wait for it."""

from __future__ import annotations

from pathlib import Path

import pytest
from relay_kit import ShoreKeys, VesselSender, catch_events, make_relay

from gateway.catch_rules import PURPOSE_DELETE, PURPOSE_ORIGINAL, PURPOSE_REPLACE, encode_event
from shore.dashboard.catch_trips import trip_csv, trips
from wire.items import encode_record_item
from wire.records import Kind

NET = "iridium-directip"
DEPART = 1_790_000_000.0
START = {
    "departed": DEPART,
    "port": "THSGK",
    "gear": "OTB",
    "area": "71",
    "latitude": 7.2,
    "longitude": 100.6,
}


def _haul(kg_skj: int, t: float) -> dict:
    return {
        "start": t,
        "duration_min": 180,
        "latitude": 7.5,
        "longitude": 101.0,
        "gear": "OTB",
        "area": "71",
        "lines": [
            {"species": "SKJ", "kg": kg_skj, "fate": "kept", "local_name": ""},
            {"species": "YFT", "kg": 40, "fate": "discarded", "local_name": ""},
        ],
    }


@pytest.fixture
def shore(tmp_path: Path):
    keys = ShoreKeys(tmp_path / "keys")
    archive, relay = make_relay(tmp_path, keys)
    vessel = VesselSender(keys, "300234010000009", "Dao Thong")
    vessel.register(archive)
    yield archive, relay, vessel
    archive.close()


def _send(relay, vessel, body: dict, now: float) -> None:
    item = encode_record_item(vessel.next_rid(), int(Kind.CATCH), body)
    assert relay.handle_mo(vessel.imei, vessel.next_momsn(), vessel.frame([item]), NET, now) == "accepted"


def test_the_shore_sees_the_log_as_entered_with_corrections_applied(shore) -> None:
    archive, relay, vessel = shore
    trip = 3
    # The first haul overtakes the trip start on the link: it waits, then is published.
    _send(
        relay, vessel, encode_event(trip, 1, "haul", _haul(500, DEPART + 7200), START, PURPOSE_ORIGINAL), 10.0
    )
    assert catch_events(archive) == []
    _send(relay, vessel, encode_event(trip, 0, "trip_start", START, START, PURPOSE_ORIGINAL), 11.0)
    _send(
        relay,
        vessel,
        encode_event(trip, 2, "haul", _haul(300, DEPART + 90000), START, PURPOSE_ORIGINAL),
        12.0,
    )
    # The captain corrects haul 1 and deletes haul 2.
    _send(
        relay, vessel, encode_event(trip, 1, "haul", _haul(650, DEPART + 7200), START, PURPOSE_REPLACE), 13.0
    )
    _send(relay, vessel, encode_event(trip, 2, "haul", {}, START, PURPOSE_DELETE), 14.0)
    discard = {"time": DEPART + 8000, "species": "YFT", "kg": 12, "reason": "UNK"}
    _send(relay, vessel, encode_event(trip, 3, "discard", discard, START, PURPOSE_ORIGINAL), 15.0)

    topics = [e.topic.rsplit("/", 1)[-1] for e in catch_events(archive)]
    assert topics == ["trip-start", "haul", "haul", "haul", "haul", "discard"]
    haul = next(e for e in catch_events(archive) if e.topic.endswith("/haul"))
    body = haul.data["body"]
    assert body["trip"] == "dao-thong/3" and body["haul"] == "1" and body["at"] == DEPART + 7200
    assert body["catch"][0] == {
        "species": "SKJ",
        "kg": 500,
        "catch_type": "ONBOARD",
        "presentation": "WHL",
        "local_name": "",
    }
    assert body["catch"][1]["catch_type"] == "DISCARDED"

    (view,) = trips(catch_events(archive))
    assert view.trip == "dao-thong/3"
    assert view.hauls == 1  # haul 2 was deleted
    assert view.species["SKJ"].kg == 650  # haul 1 as corrected, not 500 + 650
    assert "dao-thong/3" in trip_csv(view)
