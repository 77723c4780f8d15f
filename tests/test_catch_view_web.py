"""The catch view over real HTTP, as a fleet owner uses it: the export links of a trip whose id holds a
``/`` (as every relay trip label does, ``sea-star-7/1``) download both exports, discards show with
their reasons, and ``/favicon.ico`` answers on the dashboard and on the vessel's site."""

from __future__ import annotations

import csv
import io
import json
import re
from html import unescape
from pathlib import Path

import httpx
from captive_support import page
from jsonschema import Draft7Validator
from test_dashboard_web import Dashboard, dash, template_archive  # noqa: F401  (fixtures)

SCHEMA = json.loads((Path(__file__).parent / "epcis" / "EPCIS-JSON-Schema.json").read_text())
TRIP = "sea-star-7/1"


def _trip_events(d: Dashboard) -> None:
    now = d.clock.now()
    base = "seabridge/v1/north/sea-star-7/up/catch"
    d.event(f"{base}/trip-start", {"msg_id": "sea-star-7:20", "vessel": "Sea Star 7", "received": now,
                                  "body": {"type": "trip-start", "trip": TRIP, "at": now - 9000}})
    d.event(f"{base}/haul", {"msg_id": "sea-star-7:21", "vessel": "Sea Star 7", "received": now, "body": {
        "type": "haul", "trip": TRIP, "haul": "1", "at": now - 7000, "lat": 7.5, "lon": 101.0,
        "catch": [{"species": "RAG", "kg": 420, "catch_type": "ONBOARD"},
                  {"species": "THB", "kg": 12, "catch_type": "DISCARDED"}]}})
    d.event(f"{base}/discard", {"msg_id": "sea-star-7:22", "vessel": "Sea Star 7", "received": now, "body": {
        "type": "discard", "trip": TRIP, "haul": "2", "at": now - 6000,
        "discards": [{"species": "PEZ", "kg": 18, "reason": "UNDERSIZED"}]}})


def test_a_trip_id_with_a_slash_exports_from_the_links_the_page_renders(dash: Dashboard) -> None:  # noqa: F811
    _trip_events(dash)
    web, _ = dash.login("northowner")
    html = web.get("/catch").text
    links = [unescape(h) for h in re.findall(r'href="(/catch/sea-star-7/[^"]+)"', html)]
    mine = [h for h in links if "sea-star-7%2F1" in h]
    assert sorted(h.rsplit(".", 1)[1] for h in mine) == ["csv", "jsonld"], links
    for href in mine:
        r = web.get(href)
        assert r.status_code == 200, (href, r.status_code)
        if href.endswith(".csv"):
            rows = list(csv.DictReader(io.StringIO(r.text.removeprefix("\ufeff"))))
            assert {(row["trip"], row["species"], row["catch_type"]) for row in rows} == {
                (TRIP, "RAG", "ONBOARD"), (TRIP, "THB", "DISCARDED"), (TRIP, "PEZ", "DISCARDED")
            }
            assert 'filename="sea-star-7-sea-star-7-1.csv"' in r.headers["content-disposition"]
        else:
            assert Draft7Validator(SCHEMA, format_checker=Draft7Validator.FORMAT_CHECKER).is_valid(r.json())
    # The unescaped form a person might type reaches the same trip.
    assert web.get(f"/catch/sea-star-7/{TRIP}.csv").status_code == 200
    assert web.get("/catch/sea-star-7/sea-star-7%2F9.csv").status_code == 404


def test_discards_show_in_the_catch_view_with_their_reasons(dash: Dashboard) -> None:  # noqa: F811
    _trip_events(dash)
    web, _ = dash.login("northowner")
    html = web.get("/catch").text
    rows = [re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", "", r))) for r in
            re.findall(r'<li class="discard-row">(.*?)</li>', html)]
    assert any(r.startswith("THB 12.0 kg — discarded") for r in rows), rows
    assert any(r.startswith("PEZ 18.0 kg — discarded (undersized)") for r in rows), rows


def test_the_dashboard_answers_favicon_ico_without_a_login(dash: Dashboard) -> None:  # noqa: F811
    r = httpx.get(dash.url + "/favicon.ico", timeout=10)
    assert r.status_code == 200 and r.headers["content-type"] == "image/vnd.microsoft.icon"
    assert r.content[:4] == b"\x00\x00\x01\x00"  # an ICO file


def test_the_vessel_site_answers_favicon_ico(tmp_path: Path) -> None:
    with page(tmp_path) as (_gw, url):
        r = httpx.get(url + "/favicon.ico", timeout=10)
    assert r.status_code == 200 and r.headers["content-type"] == "image/vnd.microsoft.icon"
    assert r.content[:4] == b"\x00\x00\x01\x00"
