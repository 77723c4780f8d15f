"""A vessel whose GPS is broken still shows where it is: the position the satellite network reports
with a delivery (the DirectIP location element, RockBLOCK's iridium_latitude/longitude/cep) becomes the
vessel's retained ``state/position`` with its source and accuracy, and the fleet map's track has it.
The fleet map draws it with the network's accuracy circle. An unauthenticated delivery moves
nobody."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from xml.etree import ElementTree

import httpx
import pytest
from relay_kit import Collector, RunningShore, ShoreKeys, VesselSender, shore_config

from shore.dashboard.data import DashboardData
from shore.dashboard.svg import fleet_map
from shore.directip import MoHeader, MoLocation, MoMessage
from shore.directip_server import send_mo
from shore.relay import slug
from wire.items import encode_record_item
from wire.records import Kind, Telemetry, to_wire_time

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def shore(tmp_path: Path, mosquitto):
    keys = ShoreKeys(tmp_path / "keys")
    cfg = shore_config(tmp_path, keys, broker_url=mosquitto.url)
    cfg.webhook.shared_secret = "webhook-secret"
    running = RunningShore(cfg)
    # The broker outlives the test and keeps retained messages: a vessel of its own per test.
    n = time.monotonic_ns() % 10**6
    vessel = VesselSender(keys, f"300234010{n:06d}", f"Blue Marlin {n}")
    vessel.register(running.service.archive)
    collector = Collector(mosquitto.url, "seabridge/v1/#")
    yield running, vessel, collector
    collector.stop()
    running.stop()


def _telemetry_without_fix(v: VesselSender) -> bytes:
    """What a gateway with a dead GPS sends: telemetry with no position in it."""
    body = Telemetry(created=to_wire_time(time.time()), link=(3, 1, 2, 200, 0)).body()
    return v.frame([encode_record_item(v.next_rid(), int(Kind.TELEMETRY), body)])


def _send(running: RunningShore, message: MoMessage) -> None:
    host, port = running.endpoints["directip-mo"].rsplit(":", 1)
    assert asyncio.run(send_mo(host, int(port), message, timeout_s=5)) is True


def test_the_directip_location_puts_a_vessel_without_gps_on_the_map(shore) -> None:
    running, v, collector = shore
    where = MoLocation(latitude=7.93, longitude=101.2575, cep_km=4)
    header = MoHeader(1, v.imei, 0, v.next_momsn(), 0, int(time.time()))
    _send(running, MoMessage(header, _telemetry_without_fix(v), where))
    (position,) = collector.wait_for(f"/{slug(v.name)}/state/position", 1)
    assert position["vessel"] == v.name and position["source"] == "iridium-network"
    assert (position["latitude"], position["longitude"], position["accuracy_m"]) == (7.93, 101.2575, 4000)
    # The fleet map puts the vessel there, inside a circle of the network's accuracy.
    data = DashboardData(running.service.archive)
    (row,) = [r for r in data.vessels() if r.name == v.name]
    since = time.time() - 3600
    assert data.tracks([row], since)[row.slug] == [], "no GPS fix: nothing for the track"
    (_at, lat, lon, accuracy) = data.network_positions([row], since)[row.slug]
    assert (lat, lon, accuracy) == (7.93, 101.2575, 4000)
    drawing = fleet_map([{"slug": row.slug, "name": row.name}], {}, data.network_positions([row], since))
    root = ElementTree.fromstring(drawing)
    circles = root.findall(".//{http://www.w3.org/2000/svg}circle[@class='accuracy']")
    assert len(circles) == 1 and float(circles[0].get("r", 0)) >= 3  # at least visible at fleet scale
    assert f"{row.name} 7.930, 101.25" in drawing  # the pin, where the network says


def test_a_delivery_that_fails_authentication_moves_nobody(shore) -> None:
    running, v, collector = shore
    forged = bytearray(_telemetry_without_fix(v))
    forged[-1] ^= 1
    header = MoHeader(1, v.imei, 0, v.next_momsn(), 0, int(time.time()))
    _send(running, MoMessage(header, bytes(forged), MoLocation(latitude=1.0, longitude=1.0, cep_km=1)))
    # A genuine frame afterwards (no location) proves the relay processed both in order.
    header = MoHeader(1, v.imei, 0, v.next_momsn(), 0, int(time.time()))
    _send(running, MoMessage(header, _telemetry_without_fix(v)))
    mine = f"/{slug(v.name)}/"
    collector.wait_for(f"{mine}up/telemetry", 1)
    assert collector.matching(f"{mine}state/position") == []


def test_the_rockblock_webhook_position_is_used_the_same_way(shore) -> None:
    running, v, collector = shore
    form = {
        "imei": v.imei,
        "momsn": str(v.next_momsn()),
        "transmit_time": "26-12-07 02:30:00",
        "iridium_latitude": "8.1234",
        "iridium_longitude": "100.9876",
        "iridium_cep": "3.0",
        "data": _telemetry_without_fix(v).hex(),
    }
    r = httpx.post(running.endpoints["webhook"], data=form, params={"token": "webhook-secret"}, timeout=10)
    assert r.status_code == 200, r.text
    (position,) = collector.wait_for(f"/{slug(v.name)}/state/position", 1)
    assert (position["latitude"], position["longitude"], position["accuracy_m"]) == (8.1234, 100.9876, 3000)
