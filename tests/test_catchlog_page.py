"""The captain's catch-log page over real HTTP with plain forms (no JavaScript): sign in, start a trip,
log a haul with species lines, see a translated refusal naming the field, correct and delete."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import httpx
from captive_support import page

from gateway.captive import CaptiveLimits
from gateway.catchlog import CatchLog
from gateway.i18n import catalogue

GENEROUS = CaptiveLimits(post_burst=1000, login_burst=1000, api_burst=1000)


def _token(r: httpx.Response) -> str:
    match = re.search(r"[?&]t=([^&]+)", r.headers["location"])
    assert match
    return unquote(match.group(1))


def test_captain_logs_a_trip_through_the_page(tmp_path: Path) -> None:
    with page(tmp_path, GENEROUS) as (gw, url), httpx.Client(base_url=url) as web:
        log = CatchLog(gw.store, gw.clock)
        log.add_captain("somchai", "135791")
        assert 'id="catch-login"' in web.get("/catch").text
        assert web.post("/catch/login", data={"handle": "somchai", "pin": "000000"}).status_code == 403
        r = web.post("/catch/login", data={"handle": "somchai", "pin": "135791", "l": "th"})
        assert r.status_code == 303
        token = _token(r)
        home = web.get("/catch", params={"t": token, "l": "th"}).text
        assert catalogue("th")("trip_start") in home
        assert len(home.encode()) < 50_000

        trip = {
            "t": token,
            "departed": "2026-03-01T06:00",
            "port": "THSGK",
            "gear": "OTB",
            "area": "71",
            "latitude": "7.2",
            "longitude": "100.6",
        }
        r = web.post("/catch/trip", data=trip)
        assert r.status_code == 303 and "saved=" in r.headers["location"]
        trip_id = log.open_trip()
        assert trip_id is not None
        assert "ปลาลัง" in web.get("/catch", params={"t": token, "l": "th"}).text  # species names in Thai

        haul = {
            "t": token,
            "type": "haul",
            "trip": str(trip_id),
            "start": "2026-03-01T09:30",
            "duration_min": "120",
            "latitude": "7.3",
            "longitude": "100.7",
            "line0_species": "RAG",
            "line0_kg": "300",
            "line0_fate": "kept",
            "line1_species": "THB",
            "line1_kg": "8",
            "line1_fate": "discarded",
        }
        assert web.post("/catch/event", data=haul).status_code == 303
        events = log.events(trip_id)
        assert events[-1]["type"] == "haul" and len(events[-1]["data"]["lines"]) == 2

        # A bad weight: refused in Khmer, naming the field, nothing recorded.
        bad = {**haul, "l": "km", "line1_kg": "lots"}
        r = web.post("/catch/event", data=bad)
        assert r.status_code == 422
        km = catalogue("km")
        assert km("field_kg") in r.text and km("line_n", n=2) in r.text and km("problem_number") in r.text
        assert len(log.events(trip_id)) == 2

        # Correct the haul through its pre-filled form, then delete it.
        seq = events[-1]["seq"]
        edit = web.get("/catch", params={"t": token, "edit": seq}).text
        assert f'name="seq" value="{seq}"' in edit and 'value="300"' in edit
        r = web.post("/catch/event", data={**haul, "seq": str(seq), "line0_kg": "310"})
        assert r.status_code == 303
        assert log.events(trip_id)[-1]["data"]["lines"][0]["kg"] == 310
        assert (
            web.post("/catch/delete", data={"t": token, "trip": str(trip_id), "seq": str(seq)}).status_code
            == 303
        )
        assert log.events(trip_id)[-1]["deleted"] is True


def test_catch_page_refuses_strangers_and_escapes_input(tmp_path: Path) -> None:
    with page(tmp_path, GENEROUS) as (_gw, url), httpx.Client(base_url=url) as web:
        r = web.post("/catch/trip", data={"t": "forged", "port": "<script>"})
        assert r.status_code == 401 and "<script>" not in r.text
        r = web.get("/catch", params={"q": "<script>alert(1)</script>", "t": "x"})
        assert "<script>alert" not in r.text


def _catch_cookie(r: httpx.Response) -> str:
    (cookie,) = [v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("sb_catch=")]
    return cookie.lower()


def test_the_session_cookie_follows_the_secure_cookies_setting(tmp_path: Path) -> None:
    """``[captive] secure_cookies``, as the captive page's own cookie: Secure only when it is set."""
    for secure in (False, True):
        with page(tmp_path / str(secure), GENEROUS, secure_cookies=secure) as (gw, url):
            CatchLog(gw.store, gw.clock).add_captain("somchai", "135791")
            with httpx.Client(base_url=url) as web:
                signed_in = web.post("/catch/login", data={"handle": "somchai", "pin": "135791"})
                assert signed_in.status_code == 303
                shown = web.get("/catch", params={"t": _token(signed_in)})
                assert shown.status_code == 200
            for r in (signed_in, shown):  # the redirect after signing in, and every page shown after it
                cookie = _catch_cookie(r)
                assert "; httponly" in cookie and "; samesite=strict" in cookie
                assert ("; secure" in cookie) is secure, cookie
