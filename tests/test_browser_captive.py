"""The captive page in a real headless Chromium (Debian's build driven by Playwright) at a phone
viewport, used as a crew member uses it: every language renders and fits 320 px; compose → queued →
delivered through the emulated satellite link; the member's own text shown back with its state once and
the same size figure the live estimate gave; replies first, with their time; the family box only for a
family message; the SOS flow; inbox privacy between members; and the whole path with JavaScript off.

One browser serves the whole module; each test opens its own phone-sized contexts (no shared cookies),
and fails on any 4xx/5xx answer or console error (``browser_support.watch``).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from browser_support import Watch, browser, chromium_or_skip, shoot, watch
from captive_support import page as captive_page

from gateway.accounts import Members
from gateway.captive import CaptiveLimits
from gateway.i18n import LANGUAGES, catalogue
from gateway.store import GatewayStore
from simulators.demo import Demo
from wire.records import Kind

chromium_or_skip()
pytestmark = pytest.mark.timeout(120)
__all__ = ["browser", "watch"]  # fixtures
GENEROUS = CaptiveLimits(post_burst=1000, login_burst=1000, api_burst=1000)


def sign_in(p: Any, url: str, handle: str, pin: str = "2468") -> None:
    p.goto(url)
    p.fill("input[name=handle]", handle)
    p.fill("input[name=pin]", pin)
    p.click("#enter")
    p.wait_for_selector("#agree, #compose")
    if p.locator("#agree").count():  # the first time only
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


def test_each_language_renders_and_fits_a_320_px_screen(tmp_path: Path, watch: Watch) -> None:
    with captive_page(tmp_path, GENEROUS) as (_gw, url):
        p = watch.open(phone=True, width=320)
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
            shoot(p, f"captive-{lang}")
        # The choice is remembered: a fresh visit to the bare address keeps the last language.
        p.goto(url)
        assert p.get_attribute("html", "lang") == LANGUAGES[-1]


def test_live_estimate_updates_while_typing(tmp_path: Path, watch: Watch) -> None:
    with captive_page(tmp_path, GENEROUS) as (_gw, url):
        p = watch.open(phone=True)
        sign_in(p, url, "typist")
        p.fill("#text", "short")
        assert p.inner_text("#estimate") == "–"  # nothing typed, nothing to send
        first = until(p, lambda text: "bytes" in text)
        p.fill("#text", "ကျွန်ုပ်တို့ လစာ မရသေးပါ " * 20)
        second = until(p, lambda text: text != first)
        assert "credits" in second and int(second.split()[0]) > int(first.split()[0])


def test_compose_shows_queued_then_delivered_after_the_emulated_link_delivers(
    tmp_path: Path, watch: Watch
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
        p = watch.open(phone=True)
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
        p.close()  # before the demo stops, so no request of the page meets a closed port
    finally:
        loop.call_soon_threadsafe(demo.stop)
        thread.join(timeout=60)
        loop.close()
    assert outcome == [0]


def test_sos_needs_confirmation_and_can_be_cancelled(tmp_path: Path, watch: Watch) -> None:
    with captive_page(tmp_path, GENEROUS) as (gw, url):
        p = watch.open(phone=True)
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


def test_another_member_cannot_see_the_inbox(tmp_path: Path, watch: Watch) -> None:
    with captive_page(tmp_path, GENEROUS) as (gw, url):
        alice, bob = watch.open(phone=True), watch.open(phone=True)
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
        stranger = watch.open(phone=True)
        stranger.goto(f"{url}/?s={forged}")
        assert "only for alice" not in stranger.content()
        assert stranger.query_selector("#login") is not None


def test_the_whole_path_works_with_javascript_off(tmp_path: Path, watch: Watch) -> None:
    with captive_page(tmp_path, GENEROUS) as (gw, url):
        p = watch.open(phone=True, javascript=False)
        sign_in(p, url, "nojs")
        assert p.locator("#contact").is_hidden()  # hotline chosen: no family contact, even without script
        p.click("label[for=to-family]")
        assert p.locator("#contact").is_visible()
        p.click("label[for=to-hotline]")
        p.fill("#text", "sent without JavaScript")
        p.click("#send")
        p.wait_for_selector("#sent")
        assert p.get_attribute("#messages li.message", "data-state") == "queued"
        p.click("#quick summary")
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


def test_the_author_reads_their_own_text_back_with_its_state_once_and_the_size_the_estimate_gave(
    tmp_path: Path, watch: Watch
) -> None:
    secret = "the cook keeps our passports, please call my sister"
    with captive_page(tmp_path, GENEROUS) as (_gw, url):
        p = watch.open(phone=True)
        sign_in(p, url, "writer")
        assert p.locator("#contact").is_hidden()
        p.fill("#text", secret)
        estimated = until(p, lambda text: "bytes on the air" in text)
        p.click("#send")
        p.wait_for_selector("#sent")
        mine = p.locator("#messages li.message").first
        shown = mine.inner_text()
        assert secret in shown
        assert shown.count(catalogue("en")("state_queued")) == 1 and " queued " not in f" {shown} "
        assert estimated in shown  # one estimator, one wording: the figure seen while typing
        p.click("#quick summary")
        phrase = p.inner_text("#preset-1")
        p.click("#preset-1")
        p.wait_for_selector("#sent")
        assert phrase in p.locator("#messages li.message").first.inner_text()
        # Kept on the phone only: the vessel's disk has the message sealed, never its text.
        files = list(tmp_path.glob("gateway.sqlite3*"))
        assert files and all(secret.encode() not in f.read_bytes() for f in files)
        shoot(p, "captive-messages", at="#messages")
        # "Clear screen" also wipes the texts kept on the phone.
        p.click("#clear")
        p.wait_for_selector("#cleared")
        sign_in(p, url, "writer")
        assert secret not in p.inner_text("#messages")
        assert p.locator("#own-note").is_visible()


def test_a_reply_shows_first_with_its_time(tmp_path: Path, watch: Watch) -> None:
    with captive_page(tmp_path, GENEROUS) as (gw, url):
        p = watch.open(phone=True)
        sign_in(p, url, "reader")
        member = Members(gw.store).session_member(session_cookie(p).split(".")[0])
        with gw.store.transaction() as db:
            GatewayStore.inbox_add(
                db, member, "hotline", "We will call the owner today.", 1_765_000_000.0, 2.0, shore_rid=9
            )
        p.click("#refresh")
        reply = p.locator("#inbox li.reply").first
        assert "We will call the owner today." in reply.inner_text()
        assert "UTC" in reply.locator(".when").inner_text()
        inbox_top = p.locator("#inbox").bounding_box()["y"]
        assert inbox_top < p.locator("#compose").bounding_box()["y"]
        assert inbox_top < 400, "replies must be seen without scrolling far"
        shoot(p, "captive-reply")


def test_the_family_contact_box_shows_only_for_a_family_message(tmp_path: Path, watch: Watch) -> None:
    with captive_page(tmp_path, GENEROUS) as (_gw, url):
        p = watch.open(phone=True)
        sign_in(p, url, "family-writer")
        assert p.locator("#contact").is_hidden()
        p.click("label[for=to-family]")
        p.fill("#contact", "+66 81 234 5678")
        p.fill("#text", "home on the 12th")
        p.click("#send")
        p.wait_for_selector("#sent")
        assert p.locator("#contact").is_hidden()  # the form comes back set to the hotline
        assert "home on the 12th" in p.inner_text("#messages")
