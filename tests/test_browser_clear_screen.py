"""The covert "Clear screen" alert in real headless Chromium: a crew member sends a message, presses the
page's own *Clear screen*, signs in again and reads *Your messages* as anyone holding the phone would;
the alert is not there, only the message they wrote. The queued records then go ashore as real frames
(as in ``test_alerts_ashore``), and the hotline has the personal-safety alert naming the member."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from browser_support import Watch, browser, chromium_or_skip, watch
from captive_support import serve
from relay_kit import ShoreKeys, make_relay
from test_alerts_ashore import Vessel

from common.clock import ManualClock
from firmware_profiles import load_profile
from gateway.captive import CaptiveLimits, create_app
from gateway.i18n import catalogue
from shore.dashboard.data import DashboardData
from wire.records import PERSONAL_ALERT_TEXT, Kind

chromium_or_skip()
pytestmark = pytest.mark.timeout(120)
__all__ = ["browser", "watch"]  # fixtures
GENEROUS = CaptiveLimits(post_burst=1000, login_burst=1000, api_burst=1000)


def sign_in(p: Any, url: str, handle: str) -> None:
    p.goto(url + "/?l=en")
    p.fill("input[name=handle]", handle)
    p.fill("input[name=pin]", "2468")
    p.click("#enter")
    p.wait_for_selector("#agree, #compose")
    if p.locator("#agree").count():
        p.click("#agree")
    p.wait_for_selector("#compose")


def test_the_clear_screen_alert_is_not_in_the_members_list_but_reaches_the_hotline(
    tmp_path: Path, watch: Watch
) -> None:
    keys = ShoreKeys(tmp_path)
    archive, relay = make_relay(tmp_path, keys)
    clock = ManualClock(1_790_000_000.0)
    vessel = Vessel(tmp_path, keys, clock)
    vessel.sender.register(archive)
    app = create_app(
        vessel.desk, "Sea Star 7", lambda: None, profile=load_profile("iridium-9603"), limits=GENEROUS
    )
    t = catalogue("en")
    with serve(app) as url:
        p = watch.open(phone=True)
        sign_in(p, url, "cook")
        p.fill("#text", "all fine, back on Friday")
        p.click("#send")
        p.wait_for_selector("#sent")
        p.click("#clear")
        p.wait_for_selector("#cleared")
        sign_in(p, url, "cook")
        shown = p.locator("#messages").inner_text()
    with vessel.store.transaction() as db:
        crew = [
            r[0]
            for r in db.execute(
                "SELECT rid FROM records WHERE kind = ? ORDER BY rid", (int(Kind.CREW_MESSAGE),)
            )
        ]
    assert len(crew) == 2, crew  # the message and the alert are both queued
    written, alert = crew
    # What the phone shows: the one message the member wrote, nothing of the alert.
    assert t("message_n", n=written) in shown
    assert t("message_n", n=alert) not in shown and PERSONAL_ALERT_TEXT not in shown
    assert shown.count(t("state_queued")) == 1
    member = vessel.desk.login("cook", "2468")
    assert member is not None and [m.rid for m in vessel.desk.messages(member)] == [written]
    # Ashore: the alert arrives as a personal-safety alert naming the member.
    assert vessel.send_queued(relay, clock.now() + 60) >= 2
    data = DashboardData(archive)
    (found,) = data.open_alerts(data.vessels(), crew=True)
    assert found["kind"] == "safety" and found["handle"] == "cook"
    assert abs(found["raised"] - clock.now()) < 1
    vessel.store.close()
