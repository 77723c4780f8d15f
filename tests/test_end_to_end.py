"""The whole path, both ways, with real parts: captive page over HTTP, gateway SQLite queue, Iridium
driver on a real pseudo-terminal, emulated 9603 and Iridium network, DirectIP over TCP, the shore
relay, and a real MQTT broker (Mosquitto started by the fixture, and the embedded broker)."""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from common.clock import SystemClock
from gateway.accounts import Accounts, Members
from shore.acks import AckPolicy
from shore.mqtt import MqttClient
from shore.topics import TOPIC_ROOT, slug
from simulators.demo import DEMO_FLEET, DEMO_VESSEL, Demo

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


class Watcher:
    """Collects what shore systems see on MQTT, in arrival order."""

    def __init__(self, url: str, embedded: bool) -> None:
        self.crew: list[dict[str, Any]] = []
        self.receipts: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.client = MqttClient(
            url, f"watcher-{time.monotonic_ns()}", protocol="3.1.1" if embedded else "auto"
        )
        self.client.subscribe(f"{TOPIC_ROOT}/+/+/up/crew", self._on(self.crew))
        self.client.subscribe(f"{TOPIC_ROOT}/+/+/evt/delivery", self._on(self.receipts))
        self.client.start()

    async def connected(self) -> None:
        # The embedded broker runs on this event loop: never block it while waiting.
        assert await asyncio.to_thread(self.client.wait_connected, 10)

    def _on(self, sink: list[dict[str, Any]]):
        def handler(_topic: str, payload: bytes) -> None:
            with self.lock:
                sink.append(json.loads(payload))

        return handler

    def texts(self) -> list[str]:
        with self.lock:
            return [m["text"] for m in self.crew]


async def _eventually(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def _start(demo: Demo) -> asyncio.Task[int]:
    task = asyncio.create_task(demo.run(print_line=lambda _line: None))
    waiter = asyncio.create_task(demo.ready.wait())
    done, _ = await asyncio.wait({task, waiter}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()
    assert waiter in done, "demo did not start"
    return task


async def _login(web: httpx.AsyncClient, handle: str) -> None:
    r = await web.post("/login", data={"handle": handle, "pin": "2468"})
    assert r.status_code == 303
    r = await web.post("/consent", data={"s": web.cookies["sb_session"], "agree": "1"})
    assert r.status_code == 303


def _member(demo: Demo, web: httpx.AsyncClient) -> int | None:
    assert demo.gateway is not None
    return Members(demo.gateway.store).session_member(web.cookies["sb_session"].split(".")[0])


def _inbox(demo: Demo, web: httpx.AsyncClient) -> list[str]:
    """Replies as the member reads them: sealed on the vessel, opened with the session's key."""
    assert demo.gateway is not None
    accounts = Accounts(demo.gateway.store, SystemClock())
    session = accounts.session(web.cookies["sb_session"])
    assert session is not None
    return [e.text for e in accounts.inbox(session)]


def _reply_topic() -> str:
    return f"{TOPIC_ROOT}/{slug(DEMO_FLEET)}/{slug(DEMO_VESSEL)}/down/crew"


@pytest.fixture(params=["mosquitto", "embedded"])
def broker_url(request: pytest.FixtureRequest) -> str:
    if request.param == "mosquitto":
        return request.getfixturevalue("mosquitto").url
    return ""  # the shore starts its embedded broker


def test_messages_cross_both_ways_exactly_once_and_in_order(broker_url: str, tmp_path: Path) -> None:
    async def scenario() -> None:
        demo = Demo(tmp_path, link="perfect", fast=True, broker_url=broker_url, seed=7)
        task = await _start(demo)
        assert demo.shore is not None and demo.gateway is not None
        watcher = Watcher(demo.shore.broker_url, embedded=not broker_url)
        await watcher.connected()
        crew_texts = [f"message {i}: ကျွန်ုပ်တို့ လစာ မရသေးပါ ({i})" for i in range(6)]
        rnd = random.Random(3)
        words = ["ខ្ញុំ", "ចង់", "ទៅ", "ផ្ទះ", "ប្រាក់ខែ", "ម្ហូប", "ទឹក", "ឈឺ", "ថៅកែ", "ម៉ោង"]
        long_text = " ".join(rnd.choice(words) + str(rnd.randrange(100)) for _ in range(130))[:990].strip()
        crew_texts.append(long_text)  # several frames' worth: fragmented and reassembled
        replies = [f"reply {i}: ได้รับข้อความแล้ว" for i in range(5)]
        try:
            async with httpx.AsyncClient(base_url=demo.endpoints["captive-page"], timeout=10) as web:
                await _login(web, "deckhand-1")
                member = _member(demo, web)
                for text in crew_texts:
                    r = await web.post("/send", data={"to": "hotline", "text": text})
                    assert r.status_code == 303
                for i, text in enumerate(replies):
                    payload = json.dumps({"msg_id": f"r-{i}", "member": member, "text": text}).encode()
                    await watcher.client.publish_and_wait(_reply_topic(), payload)

                await _eventually(lambda: len(watcher.texts()) >= len(crew_texts), 60, "crew messages ashore")
                await _eventually(lambda: len(_inbox(demo, web)) >= len(replies), 60, "replies on the vessel")
                await _eventually(
                    lambda: all(m.state == "delivered" for m in demo.gateway.store.member_messages(member)),
                    60,
                    "delivered status on the captive page",
                )
                await _eventually(lambda: len(watcher.receipts) >= len(replies), 60, "delivery receipts")
                await asyncio.sleep(1.5)  # give duplicates a chance to show

                # Shore side: every crew message once, in the order written, with its content intact.
                assert watcher.texts() == crew_texts
                crew = watcher.crew[0]
                assert crew["to"] == "hotline" and crew["handle"] == "deckhand-1" and crew["member"] == member
                # Vessel side: each reply once, in order, and shown on the member's page.
                inbox = list(reversed(_inbox(demo, web)))
                assert inbox == replies
                page = (await web.get("/")).text
                assert all(text in page for text in replies)
                assert page.count('data-state="delivered"') == len(crew_texts)
                assert sorted(r["msg_id"] for r in watcher.receipts) == [f"r-{i}" for i in range(5)]
                # Nothing on the air was larger than the 9603 allows.
                sizes = demo.shore.archive.query("SELECT length(raw) FROM frames_in")
                assert sizes and max(s for (s,) in sizes) <= 340
        finally:
            watcher.client.stop()
            demo.stop()
            await task

    asyncio.run(scenario())


def test_message_sent_into_a_link_outage_arrives_once_when_the_link_returns(
    broker_url: str, tmp_path: Path
) -> None:
    async def scenario() -> None:
        demo = Demo(tmp_path, link="perfect", fast=True, broker_url=broker_url, seed=11)
        task = await _start(demo)
        assert demo.shore is not None and demo.gateway is not None and demo.link_model is not None
        watcher = Watcher(demo.shore.broker_url, embedded=not broker_url)
        await watcher.connected()
        try:
            async with httpx.AsyncClient(base_url=demo.endpoints["captive-page"], timeout=10) as web:
                await _login(web, "cook")
                member = _member(demo, web)
                # First message goes through, then the sky closes right after the MO is handed over,
                # before the shore's acknowledgement can come back down.
                r = await web.post("/send", data={"to": "hotline", "text": "before the storm"})
                assert r.status_code == 303
                await _eventually(lambda: watcher.texts() == ["before the storm"], 30, "first message")
                demo.link_model.forced_signal = 0
                for text in ("during the storm 1", "during the storm 2"):
                    r = await web.post("/send", data={"to": "hotline", "text": text})
                    assert r.status_code == 303
                reply = json.dumps({"msg_id": "storm-reply", "member": member, "text": "stay safe"}).encode()
                await watcher.client.publish_and_wait(_reply_topic(), reply)
                await asyncio.sleep(4)
                assert watcher.texts() == ["before the storm"], "nothing can cross a dead link"
                assert demo.gateway.stats.failures >= 1
                assert "stay safe" not in _inbox(demo, web)
                page = (await web.get("/")).text
                assert page.count('data-state="queued"') == 2  # the crew member sees them waiting
                assert "expected to go by" in page

                demo.link_model.forced_signal = None
                expected = ["before the storm", "during the storm 1", "during the storm 2"]
                await _eventually(lambda: len(watcher.texts()) >= 3, 90, "messages after the outage")
                await _eventually(lambda: "stay safe" in _inbox(demo, web), 90, "reply")
                await _eventually(
                    lambda: all(m.state == "delivered" for m in demo.gateway.store.member_messages(member)),
                    90,
                    "all delivered",
                )
                await asyncio.sleep(2)
                assert watcher.texts() == expected
                assert Counter(_inbox(demo, web)) == {"stay safe": 1}
        finally:
            watcher.client.stop()
            demo.stop()
            await task

    asyncio.run(scenario())


def test_the_page_shows_sent_via_satellite_then_delivered_without_an_ack_frame_per_message(
    tmp_path: Path,
) -> None:
    """Acknowledgement by exception end to end: the modem's MO status makes a message "sent via
    satellite" at once; the shore's cumulative acknowledgement (one MT frame for several MO frames)
    makes it "delivered"."""

    async def scenario() -> None:
        demo = Demo(tmp_path, link="perfect", fast=True, seed=11)
        task = await _start(demo)
        assert demo.shore is not None and demo.gateway is not None
        # Long enough to see "sent via satellite" on a busy machine, short enough for a test.
        demo.shore.relay.ack_policy = AckPolicy(cumulative_interval_s=15.0)
        try:
            async with httpx.AsyncClient(base_url=demo.endpoints["captive-page"], timeout=10) as web:
                await _login(web, "deckhand-2")
                member = _member(demo, web)
                texts = [f"crew message {i}" for i in range(3)]
                for text in texts:
                    r = await web.post("/send", data={"to": "hotline", "text": text})
                    assert r.status_code == 303
                    await asyncio.sleep(0.5)
                label = '<span class="label">sent via satellite</span>'
                for _ in range(300):
                    page = (await web.get("/")).text
                    if label in page or 'data-state="queued"' not in page:
                        break
                    await asyncio.sleep(0.1)
                assert label in page, "never shown as sent via satellite"
                await _eventually(
                    lambda: all(m.state == "delivered" for m in demo.gateway.store.member_messages(member)),
                    60,
                    "delivered",
                )
                page = (await web.get("/")).text
                assert page.count('data-state="delivered"') == len(texts)
                mo = demo.shore.archive.query("SELECT COUNT(*) FROM frames_in WHERE outcome = 'accepted'")[0][
                    0
                ]
                mt = sum(demo.shore.frames_out.values())
                assert mo >= 2 and mt < mo, f"{mt} MT frames for {mo} MO frames: acknowledged one by one"
        finally:
            demo.stop()
            await task

    asyncio.run(scenario())
