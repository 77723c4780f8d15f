"""The dashboard in real headless Chromium (Playwright) against the whole emulated system, used by each
role as its people use it: who sees what per role (direct URLs included); the hotline desk — a crew
member's message (written on the captive page in a phone-sized browser) arriving live, a reply reaching
that phone, and its receipt following it; an SOS raising the banner; the owner's catch view filled by a
captain's entries on the vessel's catch log; the administrator's users and vessels, every change made
with the screen's own forms. Every page is watched: a 4xx/5xx answer (other than a refusal a test
provokes on purpose) or a console error fails the test."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from browser_support import Watch, browser, chromium_or_skip, shoot, watch
from nacl.public import PrivateKey

from common.clock import SystemClock
from common.keyfiles import encode_key
from gateway.catchlog import CatchLog
from shore.dashboard.auth import Role
from shore.dashboard.data import DashboardData
from simulators.demo import DEMO_VESSEL, Demo

chromium_or_skip()
PASSWORD = "correct horse battery"
CAPTAIN, CAPTAIN_PIN = "captain-lek", "246802"

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]
__all__ = ["browser", "watch"]  # fixtures


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

    @property
    def data(self) -> DashboardData:
        assert self.demo.shore is not None
        return DashboardData(self.demo.shore.archive)

    def url(self, path: str) -> str:
        return self.demo.endpoints["dashboard"].rstrip("/") + path


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoThread]:
    running = DemoThread(tmp_path_factory.mktemp("browser-demo"))
    running.start()
    data = running.data
    # The demo made "owner" (of its fleet) itself; its password is in dashboard_logins.
    data.add_user("otherowner", Role.OWNER, PASSWORD, "elsewhere", time.time())
    data.add_user("viewer", Role.VIEWER, PASSWORD, None, time.time())
    gateway = running.demo.gateway
    assert gateway is not None
    CatchLog(gateway.store, SystemClock()).add_captain(CAPTAIN, CAPTAIN_PIN)
    yield running
    running.stop()


def _password(system: DemoThread, name: str) -> str:
    return system.demo.dashboard_logins.get(name, PASSWORD)


def _login(watch: Watch, system: DemoThread, name: str, password: str | None = None) -> Any:
    page = watch.open()
    page.goto(system.url("/login"))
    page.fill("#username", name)
    page.fill("#password", password or _password(system, name))
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
    """A crew member on the vessel's captive page, in a phone-sized browser."""

    def __init__(self, watch: Watch, system: DemoThread, handle: str) -> None:
        self.page = watch.open(phone=True)
        self.page.goto(system.demo.endpoints["captive-page"])
        self.page.fill("input[name=handle]", handle)
        self.page.fill("input[name=pin]", "2468")
        self.page.click("#enter")
        self.page.wait_for_selector("#agree")
        self.page.click("#agree")
        self.page.wait_for_selector("#compose")

    def send(self, text: str) -> None:
        self.page.fill("#text", text)
        self.page.click("#send")
        self.page.wait_for_selector("#sent")

    def replies(self) -> str:
        self.page.click("#refresh")
        self.page.wait_for_selector("#inbox")
        return str(self.page.inner_text("#inbox"))


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
    system: DemoThread, watch: Watch, name: str
) -> None:
    for path in FORBIDDEN[name]:
        watch.allow(403, path.replace("?", r"\?") + "$")
    page = _login(watch, system, name)
    shown = {
        i for i in ("nav-fleet", "nav-hotline", "nav-catch", "nav-admin") if page.locator(f"#{i}").count()
    }
    assert shown == VISIBLE[name]
    page.goto(system.url("/fleet"))
    assert page.locator("#vessels").count() == 1
    for path in FORBIDDEN[name]:
        response = page.goto(system.url(path))
        assert response is not None and response.status == 403, path
        assert page.locator("#denied").is_visible()


def test_an_owner_of_another_fleet_sees_no_vessel_of_this_one(system: DemoThread, watch: Watch) -> None:
    page = _login(watch, system, "otherowner")
    assert "Sea Star 7" not in page.locator("#vessels").inner_text()
    page.goto(system.url("/catch"))
    assert "Sea Star 7" not in page.inner_text("main")


def test_a_wrong_password_is_refused_in_the_browser(system: DemoThread, watch: Watch) -> None:
    page = watch.open()
    page.goto(system.url("/login"))
    page.fill("#username", "viewer")
    page.fill("#password", "not the password")
    page.click("#login-button")
    assert "Wrong user name or password" in page.locator("#login-error").inner_text()


def test_crew_message_shows_up_live_and_the_reply_reaches_the_vessel(
    system: DemoThread, watch: Watch
) -> None:
    page = _login(watch, system, "hotline")
    page.wait_for_selector("body[data-live='on']", state="attached")
    page.evaluate("window.__noReload = 1")
    crew = Crew(watch, system, "net-mender")
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
    # Live byte and cost count while typing, in the crew page's wording.
    assert page.inner_text("#estimate") == "0 characters"
    page.fill("#reply-text", "Payday is on the 5th. ได้รับข้อความแล้ว")
    page.wait_for_selector("#estimate[data-frame-bytes]", state="attached")
    estimate = page.locator("#estimate").inner_text()
    assert "bytes on the air" in estimate
    page.click("#send-reply")
    page.wait_for_selector("#thread .msg.out:has-text('Payday is on the 5th')")
    reply = page.locator("#thread .msg.out:has-text('Payday is on the 5th')")
    sent_at = time.time()
    assert estimate.split(" · ")[1] in reply.inner_text()  # the figure shown while typing, once sent
    msg_id = reply.get_attribute("data-msg-id")
    _eventually(lambda: "Payday is on the 5th" in crew.replies(), 60, "the reply on the crew member's phone")
    on_phone = time.time()
    # Once the phone has it, the desk no longer says it is still ashore...
    _eventually(
        lambda: reply.locator(".receipt").get_attribute("data-state") in ("sent via satellite", "delivered"),
        10,
        "the receipt to leave the shore states",
    )
    # ...and the delivery receipt comes back over the link and shows without a reload.
    page.wait_for_selector("#thread .msg.out .receipt.ok", timeout=60_000)
    assert page.evaluate("window.__noReload") == 2
    # The desk's times are what the shore knows: the hand-over to the satellite network (before the
    # phone had it) and the acknowledgement (after). The latency plot measures up to the hand-over, not
    # up to the acknowledgement that rides on a later vessel frame.
    vessel = next(v for v in system.data.vessels() if v.name == DEMO_VESSEL)
    receipt = system.data.receipts(vessel, [str(msg_id)])[str(msg_id)]
    assert receipt.state == "delivered" and receipt.sent is not None and receipt.acked is not None
    assert sent_at - 5 <= receipt.sent <= on_phone <= receipt.acked + 1
    assert "sent via satellite" in reply.locator(".receipt").inner_text()
    latencies = system.data.mt_latencies([vessel], sent_at - 60)
    assert latencies and min(latencies) <= on_phone - sent_at + 1
    shoot(page, "dashboard-hotline")


def test_an_sos_raises_the_banner_with_sound_and_acknowledgement_is_recorded(
    system: DemoThread, watch: Watch
) -> None:
    page = _login(watch, system, "admin")
    page.goto(system.url("/fleet"))
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
    acks = system.data.audit_log(20, "ack-sos")
    assert acks and acks[0]["name"] == "admin"


def test_an_administrator_sees_the_fleet_table_and_the_vessel_on_the_map(
    system: DemoThread, watch: Watch
) -> None:
    page = _login(watch, system, "admin")
    page.click("#nav-fleet")
    page.wait_for_selector("svg.map")
    row = page.locator("#vessels tr:has-text('Sea Star 7')")
    assert row.count() == 1 and "ago" in row.inner_text()  # a last contact, ticking
    # The vessel's pin appears on the map once a position reached the shore (telemetry, network or SOS).
    page.wait_for_selector("svg.map g.pin[data-vessel=sea-star-7]", timeout=120_000)
    shoot(page, "dashboard-fleet")


def _captain_logs_a_haul(watch: Watch, system: DemoThread) -> None:
    """The captain, on the vessel's catch log in a phone browser: a trip with a two-species haul."""
    p = watch.open(phone=True)
    p.goto(system.demo.endpoints["captive-page"])
    p.click("#catch-link")
    p.fill("#catch-login input[name=handle]", CAPTAIN)
    p.fill("#catch-login input[name=pin]", CAPTAIN_PIN)
    p.click("#catch-login button[type=submit]")
    p.wait_for_selector("#trip-state")
    start = datetime.now(UTC) - timedelta(hours=3)
    p.fill("#form-trip input[name=departed]", start.strftime("%Y-%m-%dT%H:%M"))
    p.select_option("#form-trip select[name=port]", "THSGK")
    p.select_option("#form-trip select[name=gear]", "OTB")
    p.select_option("#form-trip select[name=area]", "71")
    p.fill("#form-trip input[name=latitude]", "7.2")
    p.fill("#form-trip input[name=longitude]", "100.6")
    p.click("#form-trip button[type=submit]")
    p.wait_for_selector("#saved")
    p.locator("details:has(#form-haul) > summary").click()
    p.fill("#form-haul input[name=start]", (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    p.fill("#form-haul input[name=duration_min]", "90")
    p.fill("#form-haul input[name=latitude]", "7.3")
    p.fill("#form-haul input[name=longitude]", "100.7")
    for i, (species, kg) in enumerate([("RAG", "310"), ("SQC", "42")]):
        p.select_option(f"#form-haul select[name=line{i}_species]", species)
        p.fill(f"#form-haul input[name=line{i}_kg]", kg)
    p.click("#form-haul button[type=submit]")
    p.wait_for_selector("#saved")
    gateway = system.demo.gateway
    assert gateway is not None
    gateway.wake()


def test_an_owner_sees_the_captains_haul_in_the_catch_view_of_their_own_fleet(
    system: DemoThread, watch: Watch
) -> None:
    page = _login(watch, system, "owner")
    page.goto(system.url("/catch"))
    page.wait_for_selector("body[data-live='on']", state="attached")
    _captain_logs_a_haul(watch, system)
    page.wait_for_selector(".vessel-catch .trip:has-text('RAG')", timeout=90_000)
    trip = page.locator(".vessel-catch .trip").first.inner_text()
    assert "1 haul" in trip and "1 hauls" not in trip
    assert "RAG" in trip and "SQC" in trip
    assert "Sea Star 7" in page.inner_text(".vessel-catch h2")
    shoot(page, "dashboard-catch")


def test_an_administrator_adds_locks_out_unlocks_and_removes_a_user(system: DemoThread, watch: Watch) -> None:
    page = _login(watch, system, "admin")
    page.click("#nav-admin")
    page.wait_for_selector("#add-user")
    page.fill("#add-user input[name=name]", "deckdesk")
    page.select_option("#add-user select[name=role]", "hotline")
    page.fill("#add-user input[name=password]", "a long enough password")
    page.click("#add-user-button")
    row = page.locator("#users tr[data-user=deckdesk]")
    assert row.locator(".state").inner_text() == "active"
    # Someone guesses the new user's password until the account locks.
    guesser = watch.open()
    for _ in range(5):
        guesser.goto(system.url("/login"))
        guesser.fill("#username", "deckdesk")
        guesser.fill("#password", "wrong guess number")
        guesser.click("#login-button")
        guesser.wait_for_selector("#login-error")
    page.reload()
    assert row.locator(".state").inner_text() == "locked"
    row.locator("button.unlock").click()
    page.wait_for_selector("#users tr[data-user=deckdesk] .state:text-is('active')")
    _login(watch, system, "deckdesk", "a long enough password")  # the rightful user is back in
    assert page.locator("#users tr[data-user=admin] button.remove").count() == 0  # not oneself
    shoot(page, "dashboard-admin")
    page.locator("#users tr[data-user=deckdesk] details.confirm summary").click()  # Remove… asks once more
    page.locator("#users tr[data-user=deckdesk] button.remove").click()
    page.wait_for_selector("#add-user")
    assert page.locator("#users tr[data-user=deckdesk]").count() == 0
    actions = {a["action"] for a in system.data.audit_log(50)}
    assert {"user-add", "user-unlock", "user-remove"} <= actions


def test_an_administrator_registers_and_revokes_a_vessel(system: DemoThread, watch: Watch) -> None:
    page = _login(watch, system, "admin")
    page.goto(system.url("/admin"))
    form = "#register-vessel"
    page.fill(f"{form} input[name=name]", "Ocean Pearl 2")
    page.fill(f"{form} input[name=modem_id]", "300234010000042")
    page.fill(f"{form} input[name=fleet]", "elsewhere")
    page.select_option(f"{form} select[name=profile]", "iridium-9603")
    page.select_option(f"{form} select[name=network]", "iridium-directip")
    page.fill(f"{form} input[name=public_key]", "not a key")
    watch.allow(400, r"/admin/vessels$")
    page.click("#register-button")
    assert "public key" in page.inner_text("#admin-error")  # refused, with the reason...
    assert page.input_value(f"{form} input[name=fleet]") == "elsewhere"  # ...and the values as typed
    assert page.input_value(f"{form} input[name=modem_id]") == "300234010000042"
    page.fill(f"{form} input[name=public_key]", encode_key(bytes(PrivateKey.generate().public_key)))
    page.click("#register-button")
    row = page.locator("#vessel-table tr[data-imei='300234010000042']")
    assert "Ocean Pearl 2" in row.inner_text() and row.locator(".state").inner_text() == "active"
    page.goto(system.url("/fleet"))
    assert "Ocean Pearl 2" in page.inner_text("#vessels")
    # Owners see their own fleet's vessels only.
    assert "Ocean Pearl 2" in _login(watch, system, "otherowner").inner_text("#vessels")
    owner = _login(watch, system, "owner")
    owner.goto(system.url("/fleet"))
    assert "Sea Star 7" in owner.inner_text("#vessels") and "Ocean Pearl 2" not in owner.inner_text(
        "#vessels"
    )
    page.goto(system.url("/admin"))
    row.locator("details.confirm summary").click()
    row.locator("button.revoke").click()
    page.wait_for_selector("#vessel-table tr[data-imei='300234010000042'] .state:text-is('revoked')")
    archive = system.demo.shore.archive  # type: ignore[union-attr]
    revoked = archive.vessel("300234010000042")
    assert revoked is not None and revoked.revoked
    actions = [a["action"] for a in system.data.audit_log(50)]
    assert "vessel-register" in actions and "vessel-revoke" in actions
