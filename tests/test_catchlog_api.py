"""The catch-log JSON API over real HTTP: captain login, a whole trip, FLUX-style corrections and
deletions, translated validation naming the field, compact records in the queue, the OpenAPI
description and searchable pick lists."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from captive_support import page

from gateway.captive import CaptiveLimits
from gateway.catchlog import CatchLog
from gateway.i18n import catalogue
from wire import catch as wire
from wire.items import RecordItem, decode_items
from wire.records import Kind

GENEROUS = CaptiveLimits(post_burst=1000, login_burst=1000, api_burst=1000)
T0 = "2026-03-01T06:00:00Z"


def _catch_bodies(gw) -> list[dict]:
    """The queued catch records as the shore will read them."""
    out = []
    for unit in gw.store.pending_units(gw.clock.now(), 0):
        item = decode_items(unit.unit.item)[0]
        if isinstance(item, RecordItem) and item.kind == int(Kind.CATCH):
            out.append(item.body)
    return out


@pytest.fixture
def api(tmp_path: Path):
    with page(tmp_path, GENEROUS) as (gw, url):
        CatchLog(gw.store, gw.clock).add_captain("somchai", "135791")
        with httpx.Client(base_url=url) as web:
            r = web.post("/api/catch/login", json={"handle": "somchai", "pin": "135791"})
            assert r.status_code == 200
            web.headers["Authorization"] = f"Bearer {r.json()['token']}"
            yield gw, web


def _start(web: httpx.Client) -> int:
    r = web.post(
        "/api/catch/trips",
        json={
            "departed": T0,
            "port": "THSGK",
            "gear": "OTB",
            "area": "71",
            "latitude": 7.2,
            "longitude": 100.6,
        },
    )
    assert r.status_code == 200, r.text
    return r.json()["trip"]


def test_a_whole_trip_goes_into_the_queue_as_compact_records(api) -> None:
    gw, web = api
    trip = _start(web)
    haul = {
        "type": "haul",
        "start": "2026-03-01T09:30:00Z",
        "duration_min": 180,
        "latitude": 7.31,
        "longitude": 100.75,
        "lines": [
            {"species": "RAG", "kg": 420, "fate": "kept"},
            {"species": "SQC", "kg": 35},
            {"species": "THB", "kg": 12, "fate": "discarded"},
            {"species": "*", "kg": 40, "fate": "kept", "local_name": "ปลาเป็ด"},
        ],
    }
    r = web.post(f"/api/catch/trips/{trip}/events", json=haul)
    assert r.status_code == 200, r.text
    assert r.json()["seq"] == 1 and r.json()["bytes"] < 80
    etp = {
        "type": "etp",
        "time": "2026-03-01T10:00:00Z",
        "latitude": 7.3,
        "longitude": 100.7,
        "species": "TUG",
        "count": 1,
        "condition": "A1",
        "fate": "RELEASED_ALIVE",
    }
    assert web.post(f"/api/catch/trips/{trip}/events", json=etp).status_code == 200
    discard = {
        "type": "discard",
        "time": "2026-03-01T10:05:00Z",
        "species": "THB",
        "kg": 12,
        "reason": "UNDERSIZED",
    }
    assert web.post(f"/api/catch/trips/{trip}/events", json=discard).status_code == 200
    rest = {
        "type": "rest",
        "day": "2026-03-01",
        "crew": [{"crew": 1, "rest_hours": 10}, {"crew": 2, "rest_hours": 9.5}],
    }
    assert web.post(f"/api/catch/trips/{trip}/events", json=rest).status_code == 200
    end = {"type": "trip_end", "arrived": "2026-03-04T18:00:00Z", "port": "THPTN"}
    assert web.post(f"/api/catch/trips/{trip}/events", json=end).status_code == 200

    bodies = _catch_bodies(gw)
    assert len(bodies) == 6 and all(all(type(k) is int for k in b) for b in bodies)
    start = wire.decode_catch(bodies[0])
    assert start.port == "THSGK" and start.gear == "OTB" and start.area == "71"
    decoded = wire.decode_catch(bodies[1], {trip: start})
    assert [(line.species, line.kg, line.catch_type) for line in decoded.lines] == [
        ("RAG", 420, "ONBOARD"),
        ("SQC", 35, "ONBOARD"),
        ("THB", 12, "DISCARDED"),
        ("*", 40, "ONBOARD"),
    ]
    assert decoded.lines[3].local_name == "ปลาเป็ด"
    assert wire.decode_catch(bodies[2], {trip: start}).species == "TUG"
    assert bodies[3][0] == 4 and bodies[3][15] == 1  # discard, reason UNDERSIZED
    assert bodies[4][0] == 5 and bodies[4][16] == [[1, 20], [2, 19]]  # rest in half-hours
    assert wire.decode_catch(bodies[5], {trip: start}).port == "THPTN"
    events = web.get(f"/api/catch/trips/{trip}").json()["events"]
    assert [e["type"] for e in events] == ["trip_start", "haul", "etp", "discard", "rest", "trip_end"]
    assert all(e["state"] == "queued" for e in events)


def test_corrections_and_deletions_follow_flux_purpose_codes(api) -> None:
    gw, web = api
    trip = _start(web)
    discard = {
        "type": "discard",
        "time": "2026-03-01T10:05:00Z",
        "species": "THB",
        "kg": 12,
        "reason": "UNDERSIZED",
    }
    seq = web.post(f"/api/catch/trips/{trip}/events", json=discard).json()["seq"]
    r = web.put(f"/api/catch/trips/{trip}/events/{seq}", json={**discard, "kg": 15})
    assert r.status_code == 200 and r.json()["purpose"] == 5 and r.json()["revision"] == 1
    r = web.delete(f"/api/catch/trips/{trip}/events/{seq}")
    assert r.status_code == 200 and r.json()["purpose"] == 3
    bodies = _catch_bodies(gw)
    assert bodies[2][17] == 5 and bodies[2][14] == 15
    assert bodies[3] == {0: 4, 1: trip, 2: seq, 17: 3}
    event = web.get(f"/api/catch/trips/{trip}").json()["events"][-1]
    assert event["deleted"] is True and event["revision"] == 2
    again = web.delete(f"/api/catch/trips/{trip}/events/{seq}")
    assert again.status_code == 422 and again.json()["error"]["field"] == "seq"


@pytest.mark.parametrize(
    ("event", "field", "problem"),
    [
        (
            {
                "type": "haul",
                "start": "2026-03-01T09:30:00Z",
                "duration_min": 60,
                "latitude": 95,
                "longitude": 100,
            },
            "latitude",
            "problem_range",
        ),
        (
            {
                "type": "haul",
                "start": "2026-03-01T09:30:00Z",
                "duration_min": 60,
                "latitude": 7,
                "longitude": 100,
                "lines": [{"species": "RAG", "kg": 1}, {"species": "XXX", "kg": 5}],
            },
            "lines[1].species",
            "problem_code",
        ),
        (
            {"type": "haul", "start": "yesterday", "duration_min": 60, "latitude": 7, "longitude": 100},
            "start",
            "problem_time",
        ),
        (
            {
                "type": "etp",
                "time": "2026-03-01T10:00:00Z",
                "latitude": 7,
                "longitude": 100,
                "species": "TUG",
                "count": 0,
                "condition": "A1",
                "fate": "RELEASED_ALIVE",
            },
            "count",
            "problem_range",
        ),
        (
            {"type": "discard", "time": "2026-03-01T10:00:00Z", "species": "THB", "kg": 3, "reason": "BORED"},
            "reason",
            "problem_code",
        ),
        (
            {"type": "discard", "time": "2026-02-01T10:00:00Z", "species": "THB", "kg": 3, "reason": "UNK"},
            "time",
            "problem_trip_time",
        ),
        (
            {"type": "rest", "day": "2026-03-01", "crew": [{"crew": 1, "rest_hours": 25}]},
            "crew[0].rest_hours",
            "problem_range",
        ),
        (
            {
                "type": "rest",
                "day": "2026-03-01",
                "crew": [{"crew": 1, "rest_hours": 9}, {"crew": 1, "rest_hours": 9}],
            },
            "crew[1].crew",
            "problem_duplicate",
        ),
        ({"type": "haul"}, "latitude", "problem_required"),
    ],
)
def test_a_bad_event_is_refused_naming_the_field_in_the_chosen_language_and_changes_nothing(
    api, event: dict, field: str, problem: str
) -> None:
    gw, web = api
    trip = _start(web)
    before = gw.store.record_states()
    r = web.post(f"/api/catch/trips/{trip}/events", params={"lang": "th"}, json=event)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["field"] == field and error["problem"] == problem
    thai_field = catalogue("th")(f"field_{field.split('.')[-1].split('[')[0]}")
    assert thai_field in error["message"]
    assert gw.store.record_states() == before
    assert len(web.get(f"/api/catch/trips/{trip}").json()["events"]) == 1


def test_hostile_api_bodies_are_refused(api) -> None:
    gw, web = api
    trip = _start(web)
    before = gw.store.record_states()
    headers = {"Content-Type": "application/json"}
    for body in (b"[1,2]", b"{not json", b"\xff\xfe", b'{"type": "haul", "lines": "x"}', b"1e999"):
        r = web.post(f"/api/catch/trips/{trip}/events", content=body, headers=headers)
        assert r.status_code == 422, body
    big = json.dumps({"type": "haul", "pad": "x" * 40_000})
    assert web.post(f"/api/catch/trips/{trip}/events", content=big, headers=headers).status_code == 413
    assert web.post("/api/catch/trips/not-a-number/events", json={"type": "haul"}).status_code == 404
    assert gw.store.record_states() == before


def test_the_api_needs_a_captain_and_locks_out_pin_guessing(api) -> None:
    _gw, web = api
    anonymous = httpx.Client(base_url=str(web.base_url))
    assert anonymous.get("/api/catch/trips").status_code == 401
    assert anonymous.get("/api/catch/trips", headers={"Authorization": "Bearer forged"}).status_code == 401
    codes = [
        anonymous.post("/api/catch/login", json={"handle": "somchai", "pin": f"{n:06d}"}).status_code
        for n in range(7)
    ]
    assert codes[:5] == [422] * 5 and codes[5:] == [422, 422]
    r = anonymous.post("/api/catch/login", json={"handle": "somchai", "pin": "135791"})
    assert r.status_code == 422 and r.json()["error"]["problem"] == "problem_locked"
    anonymous.close()


def test_only_one_trip_is_open_at_a_time(api) -> None:
    _gw, web = api
    _start(web)
    r = web.post(
        "/api/catch/trips",
        json={
            "departed": T0,
            "port": "THSGK",
            "gear": "OTB",
            "area": "71",
            "latitude": 7.2,
            "longitude": 100.6,
        },
    )
    assert r.status_code == 422 and r.json()["error"]["field"] == "trip"


def test_openapi_description_lists_every_operation(api) -> None:
    _gw, web = api
    spec = web.get("/api/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    paths = spec["paths"]
    assert set(paths["/api/catch/trips/{trip}/events/{seq}"]) == {"put", "delete"}
    assert "post" in paths["/api/catch/trips"] and "post" in paths["/api/catch/trips/{trip}/events"]
    for name in ("trip_start", "haul", "etp", "discard", "rest", "trip_end", "Error"):
        assert name in spec["components"]["schemas"]


def test_pick_lists_are_searchable_in_four_languages(api) -> None:
    _gw, web = api
    thai = web.get("/api/catch/codelists/species", params={"q": "ปลาทู", "lang": "th"}).json()["items"]
    assert thai[0]["code"] == "RAB" and thai[0]["english"] == "Short mackerel"  # ปลาทูน่า (tuna) follows
    english = web.get("/api/catch/codelists/species", params={"q": "turtle"}).json()["items"]
    assert {"TUG", "TTH", "LKV", "DKK", "TTX"} <= {i["code"] for i in english}
    burmese = web.get("/api/catch/codelists/species", params={"q": "RAG", "lang": "my"}).json()["items"]
    assert burmese[0]["label"] != burmese[0]["english"]
    gear = web.get("/api/catch/codelists/gear", params={"q": "trawl"}).json()["items"]
    assert "OTB" in {i["code"] for i in gear}
    assert web.get("/api/catch/codelists/nothing").status_code == 404
