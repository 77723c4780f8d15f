"""The captain's catch log in Debian's Chromium, as a captain uses it: from the captive page's first
screen to the catch log, sign in, and a whole trip through the page's own forms — trip start, a haul with
several species lines, a discard, a protected-species interaction, crew rest hours, a correction, a
deletion and the trip end — then the log read back in every language. Any 4xx/5xx answer or console
error fails the test (``browser_support.watch``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_support import Watch, browser, chromium_or_skip, shoot, watch
from captive_support import Gateway, serve

from firmware_profiles import load_profile
from gateway.captive import CaptiveLimits, create_app
from gateway.catchlog import CatchLog
from gateway.i18n import LANGUAGES, catalogue
from wire.records import Kind

chromium_or_skip()
pytestmark = pytest.mark.timeout(180)
__all__ = ["browser", "watch"]  # fixtures

GENEROUS = CaptiveLimits(post_burst=1000, login_burst=1000, api_burst=1000)
CAPTAIN, PIN = "somchai", "135791"


@pytest.fixture(scope="module")
def vessel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, str]]:
    gw = Gateway(Path(tmp_path_factory.mktemp("catch-browser")))
    CatchLog(gw.store, gw.clock).add_captain(CAPTAIN, PIN)
    app = create_app(
        gw.desk, "Sea Star 7", gw.on_accept, profile=load_profile("iridium-9603"), limits=GENEROUS
    )
    with serve(app) as url:
        yield gw, url
    gw.store.close()


def save(p: Any, form: str) -> None:
    """Click the form's own Save button and wait for the page to say it was saved."""
    p.click(f"{form} button[type=submit]")
    p.wait_for_selector("#saved")
    assert p.locator("#error").count() == 0, p.inner_text("#error")


def open_form(p: Any, form: str) -> None:
    p.locator(f"details:has({form}) > summary").click()


def sign_in_from_the_captive_page(p: Any, url: str) -> None:
    p.goto(url)
    p.click("#catch-link")
    p.wait_for_selector("#catch-login")
    p.fill("#catch-login input[name=handle]", CAPTAIN)
    p.fill("#catch-login input[name=pin]", PIN)
    p.click("#catch-login button[type=submit]")
    p.wait_for_selector("#trip-state")


def test_a_captain_logs_a_whole_trip_with_the_pages_own_forms(
    vessel: tuple[Gateway, str], watch: Watch
) -> None:
    gw, url = vessel
    p = watch.open(phone=True)
    sign_in_from_the_captive_page(p, url)
    shoot(p, "catchlog-start")

    p.fill("#form-trip input[name=departed]", "2026-03-01T06:00")
    p.select_option("#form-trip select[name=port]", "THSGK")
    p.select_option("#form-trip select[name=gear]", "OTB")
    p.select_option("#form-trip select[name=area]", "71")
    p.fill("#form-trip input[name=latitude]", "7.2")
    p.fill("#form-trip input[name=longitude]", "100.6")
    save(p, "#form-trip")
    assert "1" in p.inner_text("#trip-state")

    open_form(p, "#form-haul")
    p.fill("#form-haul input[name=start]", "2026-03-01T09:30")
    p.fill("#form-haul input[name=duration_min]", "120")
    p.fill("#form-haul input[name=latitude]", "7.3")
    p.fill("#form-haul input[name=longitude]", "100.7")
    for i, (species, kg, fate) in enumerate(
        [("RAG", "300", "kept"), ("SQC", "45", "kept"), ("THB", "8", "discarded")]
    ):
        p.select_option(f"#form-haul select[name=line{i}_species]", species)
        p.fill(f"#form-haul input[name=line{i}_kg]", kg)
        p.select_option(f"#form-haul select[name=line{i}_fate]", fate)
    save(p, "#form-haul")  # 27 fields: the form a fixed limit of 20 refused

    open_form(p, "#form-discard")
    p.fill("#form-discard input[name=time]", "2026-03-01T12:00")
    p.select_option("#form-discard select[name=species]", "RAG")
    p.fill("#form-discard input[name=kg]", "12")
    p.select_option("#form-discard select[name=reason]", "DAMAGED")
    save(p, "#form-discard")

    open_form(p, "#form-etp")
    p.fill("#form-etp input[name=time]", "2026-03-01T13:00")
    p.select_option("#form-etp select[name=species]", "TTH")
    p.fill("#form-etp input[name=count]", "1")
    p.select_option("#form-etp select[name=condition]", "A0")
    p.select_option("#form-etp select[name=fate]", "RELEASED_ALIVE")
    p.fill("#form-etp input[name=latitude]", "7.31")
    p.fill("#form-etp input[name=longitude]", "100.71")
    save(p, "#form-etp")

    open_form(p, "#form-rest")
    p.fill("#form-rest input[name=day]", "2026-03-01")
    for i, hours in enumerate(["10", "11.5", "12"]):
        p.fill(f"#form-rest input[name=crew{i}]", str(i + 1))
        p.fill(f"#form-rest input[name=hours{i}]", hours)
    save(p, "#form-rest")  # 30 fields
    shoot(p, "catchlog-events", at="#catch-events")

    # A correction: the haul's first line weighed 280 kg, not 300.
    p.locator("#catch-events li[data-type=haul] a.edit").click()
    p.wait_for_selector("#form-haul")
    assert p.input_value("#form-haul input[name=line0_kg]") == "300"
    p.fill("#form-haul input[name=line0_kg]", "280")
    save(p, "#form-haul")
    haul = p.inner_text("#catch-events li[data-type=haul]")
    assert "r1" in haul and "RAG 280 kg" in haul and "SQC 45 kg" in haul

    # The discard was entered twice by mistake elsewhere: delete it with its own button.
    p.locator("#catch-events li[data-type=discard] button").click()
    p.wait_for_selector("#saved")
    assert catalogue("en")("deleted") in p.inner_text("#catch-events li[data-type=discard]")

    open_form(p, "#form-end")
    p.fill("#form-end input[name=arrived]", "2026-03-03T18:00")
    p.select_option("#form-end select[name=port]", "THSGK")
    save(p, "#form-end")
    assert p.inner_text("#trip-state") == catalogue("en")("trip_none")

    events = p.inner_text("#catch-events")
    assert "trip_start" not in events and "trip_end" not in events
    for kind in ("trip_start", "haul", "etp", "rest", "trip_end"):
        assert catalogue("en")(f"event_{kind}") in events
    for lang in LANGUAGES:
        p.click(f"nav.langs a[lang={lang}]")
        p.wait_for_selector(f"html[lang={lang}]")
        assert catalogue(lang)("event_haul") in p.inner_text("#catch-events")
        assert p.evaluate("document.documentElement.scrollWidth") <= 360
    with gw.store.transaction() as db:
        (records,) = db.execute("SELECT COUNT(*) FROM records WHERE kind = ?", (int(Kind.CATCH),)).fetchone()
    assert records >= 8  # start, haul, discard, etp, rest, correction, deletion, end


def test_a_refused_entry_keeps_the_captain_on_the_page_with_the_reason_in_their_language(
    vessel: tuple[Gateway, str], watch: Watch
) -> None:
    _gw, url = vessel
    watch.allow(422, r"/catch/trip$")
    p = watch.open(phone=True)
    sign_in_from_the_captive_page(p, url)
    p.click("nav.langs a[lang=km]")
    p.wait_for_selector("html[lang=km]")
    assert p.locator("#form-trip").count() == 1  # no trip open (the first test ended its trip)
    p.fill("#form-trip input[name=departed]", "2026-04-01T06:00")
    p.select_option("#form-trip select[name=port]", "THSGK")
    p.select_option("#form-trip select[name=gear]", "PTB")
    p.select_option("#form-trip select[name=area]", "57")
    p.fill("#form-trip input[name=latitude]", "north")  # not a number
    p.fill("#form-trip input[name=longitude]", "100.6")
    p.click("#form-trip button[type=submit]")
    p.wait_for_selector("#error")
    km = catalogue("km")
    assert km("field_latitude") in p.inner_text("#error") and km("problem_number") in p.inner_text("#error")
    assert p.locator("#form-trip").count() == 1  # still signed in, on the log, with what was typed
    assert p.input_value("#form-trip select[name=gear]") == "PTB"
    assert p.input_value("#form-trip input[name=latitude]") == "north"


def test_a_new_trip_asks_for_port_gear_and_area_instead_of_taking_the_first_in_the_list(
    vessel: tuple[Gateway, str], watch: Watch
) -> None:
    _gw, url = vessel
    p = watch.open(phone=True)
    sign_in_from_the_captive_page(p, url)
    assert p.locator("#form-trip").count() == 1
    for field in ("port", "gear", "area"):
        assert p.input_value(f"#form-trip select[name={field}]") == ""
    assert p.input_value("#form-trip input[name=departed]")  # now, to adjust
    p.fill("#form-trip input[name=latitude]", "7.2")
    p.fill("#form-trip input[name=longitude]", "100.6")
    p.click("#form-trip button[type=submit]")  # the browser holds it back: no port chosen
    assert p.locator("#saved").count() == 0
    assert p.evaluate("document.querySelector('#form-trip select[name=port]').validity.valueMissing")
