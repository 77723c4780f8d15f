"""Distress and personal-safety alerts in real headless Chromium (Playwright) against the whole emulated
system (captive page, gateway daemon on the emulated modem, relay, dashboard), through the pages' own
buttons: a crew member raises an SOS, sees it in their list and marks it a false alarm, which the shore
shows; an owner sees and acknowledges their fleet's SOS while another fleet's owner sees nothing; the
covert "Clear screen" alert of two crew members reaches the hotline as two distinguishable banners.
Every page fails its test on any 4xx/5xx answer or browser console error."""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shore.dashboard.auth import Role
from shore.dashboard.data import DashboardData
from simulators.demo import DEMO_FLEET, Demo

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct horse battery"
WAIT_MS = 60_000

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """The demo on its own event loop in a background thread, with two fleets' owners ashore."""
    running = Demo(tmp_path_factory.mktemp("alerts-demo"), link="perfect", fast=True, seed=7)
    loop = asyncio.new_event_loop()
    failed: list[BaseException] = []

    def run() -> None:
        try:
            loop.run_until_complete(running.run(print_line=lambda _line: None))
        except BaseException as exc:  # reported below
            failed.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    _eventually(lambda: running.ready.is_set() or bool(failed), 60, "the demo to start")
    assert not failed, f"demo failed: {failed[0]!r}"
    assert running.shore is not None
    data = DashboardData(running.shore.archive)
    data.add_user("fleetowner", Role.OWNER, PASSWORD, DEMO_FLEET, time.time())
    data.add_user("otherowner", Role.OWNER, PASSWORD, "elsewhere", time.time())
    yield running
    loop.call_soon_threadsafe(running.stop)
    thread.join(30)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def _eventually(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Watched:
    """A browser page whose 4xx/5xx answers and console errors are collected; ``check`` fails on any."""

    def __init__(self, browser: Any) -> None:
        self.context = browser.new_context()
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.page.on("response", lambda r: r.status >= 400 and self.problems.append(f"{r.status} {r.url}"))
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))

    def _console(self, message: Any) -> None:
        where = str((message.location or {}).get("url", ""))
        # The browser's own favicon request is not one of these pages' requests.
        if message.type == "error" and not where.endswith("/favicon.ico"):
            self.problems.append(f"console: {message.text} ({where})")

    def check(self) -> None:
        assert not self.problems, self.problems

    def close(self) -> None:
        self.check()
        self.context.close()


def _phone(browser: Any, demo: Demo, handle: str) -> Watched:
    """A crew member signed in on the captive page through its own forms."""
    w = Watched(browser)
    p = w.page
    p.goto(demo.endpoints["captive-page"] + "?l=en")
    p.fill("#login input[name=handle]", handle)
    p.fill("#login input[name=pin]", "2468")
    p.click("#enter")
    p.click("#agree")
    p.wait_for_selector("#compose")
    return w


def _desk(browser: Any, demo: Demo, name: str) -> Watched:
    w = Watched(browser)
    p = w.page
    p.goto(demo.endpoints["dashboard"] + "login")
    p.fill("#username", name)
    p.fill("#password", demo.dashboard_logins.get(name, PASSWORD))
    p.click("#login-button")
    p.wait_for_selector("header.top")
    p.goto(demo.endpoints["dashboard"] + "fleet")
    p.wait_for_selector("body[data-live='on']", state="attached")
    return w


def test_a_crew_member_raises_an_sos_sees_it_in_their_list_and_marks_it_a_false_alarm(
    demo: Demo, browser: Any
) -> None:
    admin = _desk(browser, demo, "admin")
    crew = _phone(browser, demo, "bosun")
    p = crew.page
    p.click("#sos")
    p.fill("input[name=note]", "engine room fire")
    p.click("#sos-confirm")
    sent = p.locator("#sos-sent").inner_text()
    assert "Distress alert sent" in sent and not re.search(r"\d{2,}", sent)
    p.click("#sos-sent ~ p a")
    item = p.locator("#messages .sos-item")
    assert item.count() == 1 and "SOS (vessel distress)" in item.inner_text()
    # Ashore: the alert arrives under the SOS heading with the time it was raised on board.
    admin.page.wait_for_selector("#alarm-sos:not([hidden]) .alarm-item.sos", timeout=WAIT_MS)
    banner = admin.page.locator("#alarm-sos").inner_text()
    assert "engine room fire" in banner and "1 device confirmed" in banner
    p.reload()
    p.click("#messages .sos-item .sos-false-alarm")
    p.wait_for_selector("#sos-cancelled")
    p.goto(demo.endpoints["captive-page"] + "?l=en")
    assert "marked a false alarm" in p.locator("#messages .sos-item").inner_text()
    admin.page.wait_for_selector("#alarm-sos .false-alarm-note", timeout=WAIT_MS)
    assert "the vessel" in admin.page.locator("#alarm-sos .false-alarm-note").inner_text()
    admin.page.click("#alarm-sos .alarm-item.sos button.ack")
    admin.page.wait_for_selector("#alarm", state="hidden")
    crew.close()
    admin.close()


def test_an_owner_acknowledges_their_fleets_sos_and_another_fleets_owner_never_sees_it(
    demo: Demo, browser: Any
) -> None:
    owner = _desk(browser, demo, "fleetowner")
    other = _desk(browser, demo, "otherowner")
    crew = _phone(browser, demo, "cook")
    crew.page.click("#sos")
    crew.page.click("#sos-confirm")
    crew.page.wait_for_selector("#sos-sent")
    owner.page.wait_for_selector("#alarm-sos:not([hidden]) .alarm-item.sos", timeout=WAIT_MS)
    assert other.page.locator("#alarm").is_hidden()
    assert other.page.evaluate("fetch('/alerts').then(r => r.json())") == []
    owner.page.click("#alarm-sos .alarm-item.sos button.false-alarm")
    owner.page.wait_for_selector("#alarm", state="hidden")
    assert demo.shore is not None
    marked = DashboardData(demo.shore.archive).audit_log(20, "false-alarm-sos")
    assert marked and marked[0]["name"] == "fleetowner"
    owner.page.reload()
    owner.page.wait_for_selector("body[data-live='on']", state="attached")
    assert owner.page.locator("#alarm").is_hidden()
    for w in (crew, other, owner):
        w.close()


def test_clear_screen_raises_a_personal_safety_alert_ashore_one_banner_per_crew_member(
    demo: Demo, browser: Any
) -> None:
    desk = _desk(browser, demo, "hotline")
    phones = {handle: _phone(browser, demo, handle) for handle in ("netman", "deckhand")}
    for w in phones.values():
        w.page.click("#clear")
        w.page.wait_for_selector("#cleared")
    desk.page.wait_for_selector("#alarm-safety:not([hidden]) .alarm-item.safety >> nth=1", timeout=WAIT_MS)
    items = desk.page.locator("#alarm-safety .alarm-item.safety")
    texts = [items.nth(i).inner_text() for i in range(items.count())]
    assert sorted(h for h in phones if any(h in t for t in texts)) == sorted(phones)
    assert all("raised" in t and "1 device confirmed" in t for t in texts)
    assert desk.page.locator("#alarm-sos .alarm-item.safety").count() == 0  # not under the SOS heading
    for w in phones.values():
        w.close()
    desk.close()
