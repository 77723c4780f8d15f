"""The shore service end to end over real sockets: DirectIP MO over TCP into the pipeline, records
out through a real Mosquitto, hostile DirectIP input counted in the Prometheus metrics while the
relay keeps serving, the health endpoint, the listed endpoints, and MT replies handed to each
vessel's network (DirectIP MT, RockBLOCK MT API)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from relay_kit import Collector, RunningShore, ShoreKeys, VesselSender, metric, shore_config
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from shore.directip import MoHeader, MoMessage
from shore.directip_server import send_mo
from shore.mqtt import MqttClient
from wire.frame import Direction, open_frame
from wire.items import RecordItem
from wire.records import CrewReply

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def shore(tmp_path: Path, mosquitto):
    keys = ShoreKeys(tmp_path / "keys")
    cfg = shore_config(tmp_path, keys, broker_url=mosquitto.url)
    running = RunningShore(cfg)
    vessel = VesselSender(keys, "300234010000042", "Blue Marlin")
    vessel.register(running.service.archive)
    collector = Collector(mosquitto.url, "seabridge/v1/#")
    yield running, vessel, collector
    collector.stop()
    running.stop()


def _mo(vessel: VesselSender, momsn: int, payload: bytes | None) -> MoMessage:
    return MoMessage(MoHeader(1, vessel.imei, 0, momsn, 0, int(time.time())), payload)


def _send(running: RunningShore, data: bytes | MoMessage, wait: bool = True) -> bool:
    host, port = running.address("directip-mo")
    return asyncio.run(send_mo(host, port, data, timeout_s=5, wait_confirmation=wait))


def _metrics(running: RunningShore) -> str:
    return httpx.get(running.endpoints["metrics"], timeout=5).text


def test_shore_lists_every_listening_endpoint_and_reports_healthy(shore) -> None:
    running, _vessel, _collector = shore
    for name in ("broker", "directip-mo", "webhook", "metrics", "health", "dashboard"):
        assert name in running.endpoints, name
    assert running.endpoints["webhook"].endswith("/rockblock/mo")
    deadline = time.monotonic() + 10
    while True:
        r = httpx.get(running.endpoints["health"], timeout=5)
        if r.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert r.status_code == 200, r.text
    assert r.json()["checks"] == {"archive": True, "broker": True}
    text = _metrics(running)
    assert "seabridge_publish_latency_seconds_bucket" in text
    assert 'seabridge_queue_depth{queue="events"}' in text


def test_a_directip_delivery_reaches_mqtt_once_however_often_the_gateway_retries(shore) -> None:
    running, v, collector = shore
    frame = v.frame([v.epoch_item(), v.crew_item("fish are biting"), v.catch_item(3)])
    for _ in range(3):
        assert _send(running, _mo(v, 7, frame)) is True
    crew = collector.wait_for("/up/crew", 1)
    assert crew[0]["text"] == "fish are biting" and crew[0]["vessel"] == "Blue Marlin"
    collector.wait_for("/state/link", 1)
    time.sleep(0.5)
    assert len(collector.matching("/up/crew")) == 1
    assert len(collector.matching("/up/catch/trip-start")) == 1
    text = _metrics(running)
    assert metric(text, "seabridge_frames_in_total", network="iridium-directip") == 3
    assert metric(text, "seabridge_rejections_total", reason="duplicate-delivery") == 2
    assert metric(text, "seabridge_publish_latency_seconds_count") >= 3


def _raw_mo(imei: bytes, payload: bytes, overall_delta: int = 0, ie_delta: int = 0) -> bytes:
    header = struct.pack(">BH", 0x01, 28) + struct.pack(">I", 1) + imei + struct.pack(">BHHI", 0, 5, 0, 0)
    body = header + struct.pack(">BH", 0x02, len(payload) + ie_delta) + payload
    return struct.pack(">BH", 0x01, len(body) + overall_delta) + body


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    case=st.one_of(
        st.binary(max_size=64).map(lambda b: ("garbage", b)),
        st.integers(1, 40).map(lambda n: ("truncated", n)),
        st.integers(-5, 5).filter(lambda d: d != 0).map(lambda d: ("wrong-ie-length", d)),
        st.just(("oversized", 0)),
        st.just(("unknown-imei", 0)),
        st.binary(min_size=20, max_size=300).map(lambda b: ("forged", b)),
    )
)
def test_hostile_directip_input_is_counted_and_the_relay_keeps_serving(shore, case) -> None:
    running, v, collector = shore
    kind, arg = case
    good = _raw_mo(v.imei.encode(), b"x" * 30)
    if kind == "garbage":
        data = arg
    elif kind == "truncated":
        data = good[: max(0, len(good) - arg)]
    elif kind == "wrong-ie-length":
        data = _raw_mo(v.imei.encode(), b"x" * 30, ie_delta=arg)
    elif kind == "oversized":
        data = _raw_mo(v.imei.encode(), b"y" * 2000)
    elif kind == "unknown-imei":
        data = _raw_mo(b"300234099999999", v.frame([v.catch_item(1)]))
    else:
        data = _raw_mo(v.imei.encode(), arg)
    counted_before = _rejections_total(running)
    published_before = _records_published(collector)
    # The server may close on garbage without a confirmation: that is a refusal too.
    with contextlib.suppress(EOFError, OSError, TimeoutError, ValueError):
        _send(running, data)
    assert _rejections_total(running) >= counted_before + 1, f"{kind} input was not counted"
    # Still serving: a good delivery goes through, and it is the only thing published.
    before = len(collector.matching("/up/catch/trip-start"))
    assert _send(running, _mo(v, v.next_momsn(), v.frame([v.catch_item(9)])))
    collector.wait_for("/up/catch/trip-start", before + 1)
    assert _records_published(collector) == published_before + 1


def _records_published(collector: Collector) -> int:
    with collector.lock:
        return sum(1 for topic, _ in collector.messages if "/up/" in topic)


def _rejections_total(running: RunningShore) -> float:
    lines = _metrics(running).splitlines()
    return sum(float(x.split()[-1]) for x in lines if x.startswith("seabridge_rejections_total{"))


def test_hostile_directip_input_shows_up_in_metrics_by_reason(shore) -> None:
    running, v, _collector = shore
    with pytest.raises((EOFError, OSError, ValueError)):
        _send(running, b"\x02\x00\x05hello")  # wrong protocol revision
    assert _send(running, _raw_mo(b"300234099999999", v.frame([v.catch_item(1)])))
    assert _send(running, _raw_mo(v.imei.encode(), b"\x00" * 200))
    text = _metrics(running)
    assert metric(text, "seabridge_rejections_total", reason="directip-undecodable") >= 1
    assert metric(text, "seabridge_rejections_total", reason="unknown-vessel") == 1
    assert (
        metric(text, "seabridge_rejections_total", reason="bad-mac")
        + metric(text, "seabridge_rejections_total", reason="malformed")
        + metric(text, "seabridge_rejections_total", reason="unsupported-version")
        >= 1
    )


class FakeRockBlockMt:
    """The RockBLOCK MT API over real HTTP: records each POST, answers ``OK,<id>``."""

    def __init__(self) -> None:
        self.posts: list[dict[str, str]] = []

        async def mt(request: Request) -> PlainTextResponse:
            form = await request.form()
            self.posts.append({k: str(v) for k, v in form.items()})
            return PlainTextResponse(f"OK,{1000 + len(self.posts)}")

        self.server = uvicorn.Server(
            uvicorn.Config(
                Starlette(routes=[Route("/rockblock/MT", mt, methods=["POST"])]), port=0, log_level="warning"
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}/rockblock/MT"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(5)


def test_a_reply_to_a_rockblock_vessel_goes_out_through_the_mt_api(tmp_path: Path, mosquitto) -> None:
    api = FakeRockBlockMt()
    keys = ShoreKeys(tmp_path / "keys")
    cfg = shore_config(tmp_path, keys, broker_url=mosquitto.url)
    cfg.rockblock.mt_url, cfg.rockblock.username, cfg.rockblock.password = api.url, "user", "pw"
    running = RunningShore(cfg)
    try:
        v = VesselSender(keys, "300234010000077", "Rock Hopper", network="rockblock")
        v.register(running.service.archive)
        assert _send(running, _mo(v, 1, v.frame([v.catch_item(1)])))  # acknowledged on the next reply
        publisher = MqttClient(mosquitto.url, "desk-test")
        publisher.start()
        assert publisher.wait_connected(10)
        reply = {"member": 1, "text": "we hear you", "msg_id": "desk-1"}
        publisher.publish("seabridge/v1/test-fleet/rock-hopper/down/crew", json.dumps(reply).encode())
        deadline = time.monotonic() + 15
        texts: list[str] = []
        while time.monotonic() < deadline and not texts:
            for post in api.posts:
                assert post["imei"] == v.imei and post["username"] == "user"
                _head, items = open_frame(v.key, bytes.fromhex(post["data"]), Direction.MT)
                texts += [CrewReply.from_body(i.body).text for i in items if isinstance(i, RecordItem)]
            time.sleep(0.1)
        assert texts == ["we hear you"]
        publisher.stop()
        assert metric(_metrics(running), "seabridge_frames_out_total", network="rockblock") >= 1
    finally:
        running.stop()
        api.stop()


def test_health_fails_while_the_broker_is_unreachable(tmp_path: Path) -> None:
    keys = ShoreKeys(tmp_path / "keys")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    running = RunningShore(shore_config(tmp_path, keys, broker_url=f"mqtt://127.0.0.1:{dead}"))
    try:
        r = httpx.get(running.endpoints["health"], timeout=5)
        assert r.status_code == 503
        assert r.json() == {"status": "failing", "checks": {"archive": True, "broker": False}}
    finally:
        running.stop()


def test_ingest_and_worker_roles_refuse_to_start_without_postgresql_and_a_broker(tmp_path: Path) -> None:
    from common.clock import SystemClock
    from shore.service import ShoreService

    cfg = shore_config(tmp_path, ShoreKeys(tmp_path / "keys"))
    cfg.scale.role = "worker"
    with pytest.raises(ValueError, match=r"needs archive\.url"):
        ShoreService(cfg, SystemClock())
    cfg.scale.role = "boss"
    with pytest.raises(ValueError, match=r"scale\.role"):
        ShoreService(cfg, SystemClock())


def test_records_archived_while_the_broker_is_down_are_published_after_a_relay_restart(
    tmp_path: Path, mosquitto
) -> None:
    keys = ShoreKeys(tmp_path / "keys")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    first = RunningShore(shore_config(tmp_path, keys, broker_url=f"mqtt://127.0.0.1:{dead}"))
    v = VesselSender(keys, "300234010000123", "Night Owl")
    try:
        v.register(first.service.archive)
        for i in range(5):
            assert _send(first, _mo(v, i + 1, v.frame([v.catch_item(i)])))
        assert first.service.archive.depths()["events"] >= 5
    finally:
        first.stop()
    collector = Collector(mosquitto.url, "seabridge/v1/+/+/up/catch/#")
    second = RunningShore(shore_config(tmp_path, keys, broker_url=mosquitto.url))
    try:
        found = collector.wait_for("/up/catch/trip-start", 5)
        assert sorted(m["body"]["trip"] for m in found) == [f"night-owl/{i}" for i in range(5)]
        deadline = time.monotonic() + 10
        while second.service.archive.depths()["events"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert second.service.archive.depths()["events"] == 0
    finally:
        collector.stop()
        second.stop()
