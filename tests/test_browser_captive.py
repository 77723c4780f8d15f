"""The captive page in a real headless Chromium (Debian's build driven by Playwright) at a phone
viewport: every language renders and fits 320 px, compose → queued → delivered through the emulated
satellite link, the SOS flow, inbox privacy between members, and the whole path with JavaScript off.

One browser serves the whole module; each test opens its own phone-sized contexts (no shared cookies).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from captive_support import page as captive_page

from gateway.accounts import Members
from gateway.captive import CaptiveLimits
from gateway.i18n import LANGUAGES, catalogue
from gateway.store import GatewayStore
from simulators.demo import Demo
from wire.records import Kind

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        raise RuntimeError(f"Chromium not found at {CHROMIUM}")
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)

pytestmark = pytest.mark.timeout(120)
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = {"width": 360, "height": 740}
GENEROUS = CaptiveLimits(post_burst=1000, login_burst=1000, api_burst=1000)
DOCS_IMG = Path(__file__).resolve().parent.parent / "docs" / "img"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def phone(browser: Any) -> Iterator[Callable[..., Any]]:
    contexts: list[Any] = []

    def make(javascript: bool = True, width: int = PHONE["width"]) -> Any:
        context = browser.new_context(
            viewport={"width": width, "height": PHONE["height"]},
            java_script_enabled=javascript,
            is_mobile=True,
            has_touch=True,
            device_scale_factor=2,
        )
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def sign_in(p: Any, url: str, handle: str, pin: str = "2468") -> None:
    p.goto(url)
    p.fill("input[name=handle]", handle)
    p.fill("input[name=pin]", pin)
    p.click("#enter")
    p.wait_for_selector("#agree")
    p.click("#agree")
    p.wait_for_selector("#compose")


def session_cookie(p: Any) -> str:
    return next(c["value"] for c in p.context.cookies() if c["name"] == "sb_session")


def until(p: Any, check: Callable[[str], bool], timeout: float = 10.0) -> str:
    """Poll the estimate text (the page's CSP forbids evaluated predicates, as it should)."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = p.inner_text("#estimate")
        if check(text):
            return text
        time.sleep(0.1)
    raise AssertionError(f"estimate stayed {text!r}")


def test_each_language_renders_and_fits_a_320_px_screen(tmp_path: Path, phone: Any) -> None:
    with captive_page(tmp_path, GENEROUS) as (_gw, url):
        p = phone(width=320)
        sign_in(p, url, "lang-tester")
        for lang in LANGUAGES:
            t = catalogue(lang)
            p.click(f"#lang-{lang}")
            p.wait_for_selector(f"html[lang={lang}]")
            assert p.inner_text("#send").strip() == t("send")
            assert t("inbox") in p.inner_text("body")
            width = p.evaluate("document.documentElement.scrollWidth")
            assert width <= 320, f"{lang}: page is {width} px wide"
            assert len(p.content().encode()) < 50_000
            p.screenshot(path=str(tmp_path / f"captive-{lang}.png"), full_page=True)
            if os.environ.get("SEABRIDGE_DOCS_SCREENSHOTS"):
                DOCS_IMG.mkdir(parents=True, exist_ok=True)
                p.screenshot(path=str(DOCS_IMG / f"captive-{lang}.png"), full_page=True)
        # The choice is remembered: a fresh visit to the bare address keeps the last language.
        p.goto(url)
        assert p.get_attribute("html", "lang") == LANGUAGES[-1]


def test_live_estimate_updates_while_typing(tmp_path: Path, phone: Any) -> None:
    with captive_page(tmp_path, GENEROUS) as (_gw, url):
        p = phone()
        sign_in(p, url, "typist")
        p.fill("#text", "short")
        first = until(p, lambda text: "bytes" in text)
        p.fill("#text", "ကျွန်ုပ်တို့ လစာ မရသေးပါ " * 20)
        second = until(p, lambda text: text != first)
        assert "credits" in second and int(second.split()[0]) > int(first.split()[0])


def test_compose_shows_queued_then_delivered_after_the_emulated_link_delivers(
    tmp_path: Path, phone: Any
) -> None:
    demo = Demo(tmp_path, link="perfect", fast=True, seed=5)
    loop = asyncio.new_event_loop()
    outcome: list[BaseException | int] = []

    def run() -> None:
        try:
            outcome.append(loop.run_until_complete(demo.run(print_line=lambda _line: None)))
        except BaseException as exc:  # reported by the test below
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not demo.ready.is_set():
        assert not outcome, f"demo stopped: {outcome}"
        assert time.monotonic() < deadline, "demo did not start"
        time.sleep(0.1)
    try:
        p = phone()
        sign_in(p, demo.endpoints["captive-page"], "deckhand-b")
        p.fill("#text", "ဘရောက်ဇာမှ မင်္ဂလာပါ")
        p.click("#send")
        p.wait_for_selector("#sent")
        assert p.get_attribute("#messages li.message", "data-state") in ("queued", "sent")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            p.click("#refresh")
            if p.get_attribute("#messages li.message", "data-state") == "delivered":
                break
            time.sleep(0.5)
        assert p.get_attribute("#messages li.message", "data-state") == "delivered"
        assert catalogue("en")("state_delivered") in p.inner_text("#messages")
    finally:
        loop.call_soon_threadsafe(demo.stop)
        thread.join(timeout=60)
        loop.close()
    assert outcome == [0]


def test_sos_needs_confirmation_and_can_be_cancelled(tmp_path: Path, phone: Any) -> None:
    with captive_page(tmp_path, GENEROUS) as (gw, url):
        p = phone()
        p.goto(url)
        p.click("#sos")
        p.wait_for_selector("#sos-confirm")
        assert gw.store.record_states() == {}, "nothing is sent before the confirmation"
        p.fill("input[name=note]", "engine fire")
        p.click("#sos-confirm")
        p.wait_for_selector("#sos-sent")
        assert gw.store.record_states() == {"queued": 1}
        p.click("#sos-cancel")
        p.wait_for_selector("#sos-cancelled")
        assert gw.store.record_states() == {"expired": 1}


def test_another_member_cannot_see_the_inbox(tmp_path: Path, phone: Any) -> None:
    with captive_page(tmp_path, GENEROUS) as (gw, url):
        alice, bob = phone(), phone()
        sign_in(alice, url, "alice")
        sign_in(bob, url, "bob")
        alice_token, bob_token = session_cookie(alice), session_cookie(bob)
        member = Members(gw.store).session_member(alice_token.split(".")[0])
        with gw.store.transaction() as db:
            GatewayStore.inbox_add(db, member, "hotline", "only for alice", 1.0, 2.0, shore_rid=3)
        alice.click("#refresh")
        bob.click("#refresh")
        assert "only for alice" in alice.inner_text("#inbox")
        assert "only for alice" not in bob.content()
        # Bob knows Alice's session id (say, from a glance at her screen) but not its key half.
        forged = alice_token.split(".")[0] + "." + bob_token.split(".")[1]
        stranger = phone()
        stranger.goto(f"{url}/?s={forged}")
        assert "only for alice" not in stranger.content()
        assert stranger.query_selector("#login") is not None


def test_the_whole_path_works_with_javascript_off(tmp_path: Path, phone: Any) -> None:
    with captive_page(tmp_path, GENEROUS) as (gw, url):
        p = phone(javascript=False)
        sign_in(p, url, "nojs")
        p.fill("#text", "sent without JavaScript")
        p.click("#send")
        p.wait_for_selector("#sent")
        assert p.get_attribute("#messages li.message", "data-state") == "queued"
        p.click("#preset-0")
        p.wait_for_selector("#sent")
        assert len(p.query_selector_all("#messages li.message")) == 2
        p.click("#lang-th")
        p.wait_for_selector("html[lang=th]")
        assert catalogue("th")("send") in p.inner_text("#send")
        p.click("#clear")
        p.wait_for_selector("#cleared")
        with gw.store.transaction() as db:
            crew = db.execute("SELECT COUNT(*) FROM records WHERE kind = ?", (int(Kind.CREW_MESSAGE),))
            assert crew.fetchone()[0] == 3  # two messages, and the covert alert looks like one more
