"""The dashboard in real headless Chromium (Playwright) against the whole emulated system: who sees
what per role (direct URLs included), a crew message arriving live, a reply reaching the vessel, and an
SOS raising the banner."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from common.clock import SystemClock
from gateway.accounts import Members
from shore.dashboard.auth import Role
from shore.dashboard.data import DashboardData
from simulators.demo import Demo

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]
PASSWORD = "correct horse battery"

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)


class DemoThread:
    """The demo on its own event loop in a background thread, so the test can drive a browser."""

    def __init__(self, data_dir: Path) -> None:
        self.demo = Demo(data_dir, link="perfect", fast=True, seed=5)
        self.loop = asyncio.new_event_loop()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.loop.run_until_complete(self.demo.run(print_line=lambda _line: None))
        except BaseException as exc:  # reported by start()
            self.error = exc

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.demo.ready.is_set():
            assert self.error is None, f"demo failed: {self.error!r}"
            assert time.monotonic() < deadline, "demo did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.demo.stop)
        self.thread.join(30)


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoThread]:
    running = DemoThread(tmp_path_factory.mktemp("browser-demo"))
    running.start()
    assert running.demo.shore is not None
    data = DashboardData(running.demo.shore.archive)
    # The demo made "owner" (of its fleet) itself; its password is in dashboard_logins.
    data.add_user("otherowner", Role.OWNER, PASSWORD, "elsewhere", time.time())
    data.add_user("viewer", Role.VIEWER, PASSWORD, None, time.time())
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def _password(system: DemoThread, name: str) -> str:
    return system.demo.dashboard_logins.get(name, PASSWORD)


def _login(browser: object, system: DemoThread, name: str):  # type: ignore[no-untyped-def]
    page = browser.new_page()  # type: ignore[attr-defined]
    page.goto(system.demo.endpoints["dashboard"] + "login")
    page.fill("#username", name)
    page.fill("#password", _password(system, name))
    page.click("#login-button")
    page.wait_for_selector("header.top")
    return page


def _eventually(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class Crew:
    """A crew member on the captive page (real HTTP), as the end-to-end tests log in."""

    def __init__(self, system: DemoThread, handle: str) -> None:
        self.system = system
        self.web = httpx.Client(base_url=system.demo.endpoints["captive-page"], timeout=10)
        r = self.web.post("/login", data={"handle": handle, "pin": "2468"})
        assert r.status_code == 303
        token = self.web.cookies["sb_session"]
        r = self.web.post("/consent", data={"s": token, "agree": "1"})
        assert r.status_code in (200, 303)

    def send(self, text: str) -> None:
        r = self.web.post("/send", data={"to": "hotline", "text": text})
        assert r.status_code == 303

    def inbox(self) -> list[str]:
        gateway = self.system.demo.gateway
        assert gateway is not None
        try:
            from gateway.accounts import Accounts
        except ImportError:
            member = Members(gateway.store).session_member(self.web.cookies["sb_session"].split(".")[0])
            return [e.text for e in gateway.store.inbox(member)]
        accounts = Accounts(gateway.store, SystemClock())
        session = accounts.session(self.web.cookies["sb_session"])
        assert session is not None
        return [e.text for e in accounts.inbox(session)]


VISIBLE = {
    "admin": {"nav-fleet", "nav-catch", "nav-admin"},
    "hotline": {"nav-fleet", "nav-hotline"},
    "owner": {"nav-fleet", "nav-catch"},
    "viewer": {"nav-fleet"},
}
FORBIDDEN = {
    "admin": ["/hotline", "/hotline?c=sea-star-7:1"],
    "hotline": ["/catch", "/admin"],
    "owner": ["/hotline", "/admin"],
    "viewer": ["/hotline", "/catch", "/admin"],
}


@pytest.mark.parametrize("name", sorted(VISIBLE))
def test_each_role_sees_its_own_navigation_and_is_refused_other_pages(
    system: DemoThread, browser: object, name: str
) -> None:
    page = _login(browser, system, name)
    shown = {
        i for i in ("nav-fleet", "nav-hotline", "nav-catch", "nav-admin") if page.locator(f"#{i}").count()
    }
    assert shown == VISIBLE[name]
    base = system.demo.endpoints["dashboard"].rstrip("/")
    page.goto(base + "/fleet")
    assert page.locator("#vessels").count() == 1
    for path in FORBIDDEN[name]:
        response = page.goto(base + path)
        assert response is not None and response.status == 403, path
        assert page.locator("#denied").is_visible()
    page.close()


def test_an_owner_of_another_fleet_sees_no_vessel_of_this_one(system: DemoThread, browser: object) -> None:
    page = _login(browser, system, "otherowner")
    assert "Sea Star 7" not in page.locator("#vessels").inner_text()
    page.close()


def test_a_wrong_password_is_refused_in_the_browser(system: DemoThread, browser: object) -> None:
    page = browser.new_page()  # type: ignore[attr-defined]
    page.goto(system.demo.endpoints["dashboard"] + "login")
    page.fill("#username", "viewer")
    page.fill("#password", "not the password")
    page.click("#login-button")
    assert "Wrong user name or password" in page.locator("#login-error").inner_text()
    page.close()


def test_crew_message_shows_up_live_and_the_reply_reaches_the_vessel(
    system: DemoThread, browser: object
) -> None:
    page = _login(browser, system, "hotline")
    page.wait_for_selector("body[data-live='on']", state="attached")
    page.evaluate("window.__noReload = 1")
    crew = Crew(system, "net-mender")
    crew.send("hello desk, when is payday?")
    # The conversation appears in the list without a reload.
    page.wait_for_selector(".conv:has-text('net-mender')", timeout=60_000)
    assert page.evaluate("window.__noReload") == 1
    page.click(".conv:has-text('net-mender') a")
    page.wait_for_selector("#thread .msg.in:has-text('when is payday')")
    page.wait_for_selector("body[data-live='on']", state="attached")
    page.evaluate("window.__noReload = 2")
    crew.send("second message, still waiting")
    page.wait_for_selector("#thread .msg.in:has-text('still waiting')", timeout=60_000)
    assert page.evaluate("window.__noReload") == 2
    # Live byte and cost count while typing.
    page.fill("#reply-text", "Payday is on the 5th. ได้รับข้อความแล้ว")
    page.wait_for_selector("#estimate[data-frame-bytes]", state="attached")
    assert "bytes on the air" in page.locator("#estimate").inner_text()
    page.click("#send-reply")
    page.wait_for_selector("#thread .msg.out:has-text('Payday is on the 5th')")
    _eventually(lambda: any("Payday is on the 5th" in t for t in crew.inbox()), 60, "reply on the vessel")
    # The delivery receipt comes back over the link and shows without a reload.
    page.wait_for_selector("#thread .msg.out .receipt.ok", timeout=60_000)
    assert page.evaluate("window.__noReload") == 2
    page.close()


def test_an_sos_raises_the_banner_with_sound_and_acknowledgement_is_recorded(
    system: DemoThread, browser: object
) -> None:
    page = _login(browser, system, "admin")
    page.goto(system.demo.endpoints["dashboard"] + "fleet")
    page.wait_for_selector("body[data-live='on']", state="attached")
    assert page.locator("#alarm").is_hidden()
    gateway = system.demo.gateway
    assert gateway is not None
    gateway.desk.sos("fire in the engine room", 9.5, 97.8)
    gateway.wake()
    page.wait_for_selector("#alarm:not([hidden]) .alarm-item.sos", timeout=60_000)
    assert "fire in the engine room" in page.locator("#alarm").inner_text()
    page.wait_for_selector("body[data-alarm-sound='playing']", state="attached")
    page.click("#alarm .alarm-item.sos button.ack")
    page.wait_for_selector("#alarm", state="hidden")
    assert system.demo.shore is not None
    acks = DashboardData(system.demo.shore.archive).audit_log(20, "ack-sos")
    assert acks and acks[0]["name"] == "admin"
    page.close()


def test_screenshots_of_the_fleet_view_and_the_hotline_desk(system: DemoThread, browser: object) -> None:
    """Writes docs/img screenshots when SEABRIDGE_SCREENSHOTS is set (the README uses them)."""
    out = os.environ.get("SEABRIDGE_SCREENSHOTS")
    page = _login(browser, system, "admin")
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(system.demo.endpoints["dashboard"] + "fleet")
    page.wait_for_selector("svg.map")
    if out:
        page.screenshot(path=str(Path(out) / "dashboard-fleet.png"), full_page=True)
    page.close()
    page = _login(browser, system, "hotline")
    page.set_viewport_size({"width": 1400, "height": 900})
    first = page.locator(".conv a").first
    if first.count():
        first.click()
        page.wait_for_selector("#composer")
        page.fill("#reply-text", "ယခု သင် လုံခြုံပါသလား။")
        page.wait_for_selector("#estimate[data-frame-bytes]", state="attached")
    if out:
        page.screenshot(path=str(Path(out) / "dashboard-hotline.png"), full_page=True)
    page.close()
