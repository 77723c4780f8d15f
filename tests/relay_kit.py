"""Test kit for the shore relay: shore keys, a registered vessel that seals real frames, and the
records it sends. Used by the relay, webhook, IDP, archive and scale-out tests and by bench/relay.py."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from nacl.public import PrivateKey

from common.clock import Clock, SystemClock
from common.keyfiles import write_keypair
from firmware_profiles import load_profile
from shore.archive import Archive
from shore.config import ShoreConfig
from shore.dashboard.records import Event
from shore.mqtt import MqttClient
from shore.relay import Relay
from shore.service import ShoreService
from wire.catch import TripStart, encode_catch
from wire.crypto import CrewEpoch, link_key
from wire.frame import Direction, seal_frame
from wire.items import encode_fragment_item, encode_record_item, encode_record_payload
from wire.records import CrewContent, CrewMessage, Epoch, Kind, to_wire_time


@dataclass
class ShoreKeys:
    """The shore's link and crew key pairs, written as key files in ``directory``."""

    directory: Path
    link: PrivateKey = field(init=False)
    crew: PrivateKey = field(init=False)

    def __post_init__(self) -> None:
        self.link_path = self.directory / "shore.key"
        self.crew_path = self.directory / "crew.key"
        if self.link_path.exists():
            from common.keyfiles import read_secret

            self.link, self.crew = read_secret(self.link_path), read_secret(self.crew_path)
        else:
            self.link = write_keypair(self.link_path)
            self.crew = write_keypair(self.crew_path)


class VesselSender:
    """One vessel's side of the link: seals MO frames with increasing counters."""

    def __init__(
        self,
        shore: ShoreKeys,
        imei: str,
        name: str,
        profile: str = "iridium-9603",
        network: str = "iridium-directip",
        fleet: str = "test-fleet",
    ) -> None:
        self.secret = PrivateKey.generate()
        self.shore = shore
        self.imei = imei
        self.name = name
        self.fleet = fleet
        self.profile = profile
        self.network = network
        self.key = link_key(self.secret, shore.link.public_key)
        self.limit = load_profile(profile).mo_frame_limit
        self.counter = 0
        self.momsn = 0
        self.rid = 0
        self.epoch = CrewEpoch.start(1, shore.crew.public_key)

    def register(self, archive: Archive) -> None:
        archive.register_vessel(
            self.imei, self.name, bytes(self.secret.public_key), self.fleet, self.profile, self.network
        )

    def frame(self, items: list[bytes], counter: int | None = None) -> bytes:
        if counter is None:
            counter = self.counter
            self.counter += 1
        return seal_frame(self.key, Direction.MO, counter, items, self.limit)

    def next_momsn(self) -> int:
        self.momsn += 1
        return self.momsn

    def next_rid(self) -> int:
        self.rid += 1
        return self.rid

    def epoch_item(self) -> bytes:
        body = Epoch(self.epoch.number, self.epoch.public_bytes).body()
        return encode_record_item(self.next_rid(), int(Kind.EPOCH), body)

    def crew_item(self, text: str, member: int = 1, raw_text: bytes | None = None) -> bytes:
        rid = self.next_rid()
        if raw_text is None:
            content = CrewContent("hotline", text, f"m{member}").encode()
        else:
            from wire.items import dumps

            content = dumps({0: "hotline", 1: raw_text, 2: f"m{member}"})
        sealed = self.epoch.seal(rid, content)
        body = CrewMessage(member, self.epoch.number, sealed, to_wire_time(1.7e9)).body()
        return encode_record_item(rid, int(Kind.CREW_MESSAGE), body)

    def catch_item(self, trip: int) -> bytes:
        """A real compact catch record: the start of trip ``trip`` (decodes on its own ashore)."""
        start = TripStart(trip, 1.7e9 + trip * 60, "THSGK", "OTB", "71", 9.5, 99.25)
        return encode_record_item(self.next_rid(), int(Kind.CATCH), encode_catch(start))

    def fragments(self, kind: int, body: object, pieces: int) -> list[bytes]:
        rid = self.next_rid()
        data = encode_record_payload(kind, body)
        size = -(-len(data) // pieces)
        chunks = [data[i : i + size] for i in range(0, len(data), size)]
        return [encode_fragment_item(rid, i, len(chunks), c) for i, c in enumerate(chunks)]


def bomb_text() -> bytes:
    """Crew text content whose deflate stream inflates to 50 MB (codec byte 1 + raw deflate)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    return bytes([1]) + comp.compress(b"A" * 50_000_000) + comp.flush()


def make_relay(tmp: Path, keys: ShoreKeys, location: str | Path | None = None) -> tuple[Archive, Relay]:
    archive = Archive(location if location is not None else tmp / "archive.sqlite3")
    return archive, Relay(archive, keys.link, keys.crew)


# --- a shore service running on its own event loop in a background thread -------------------------


def shore_config(tmp: Path, keys: ShoreKeys, broker_url: str = "", archive_url: str = "") -> ShoreConfig:
    cfg = ShoreConfig()
    cfg.keys.shore_secret = keys.link_path
    cfg.keys.crew_secret = keys.crew_path
    cfg.archive.path = tmp / "shore" / "archive.sqlite3"
    cfg.archive.url = archive_url
    cfg.broker.url = broker_url
    cfg.broker.embedded_listen = "127.0.0.1:0"
    cfg.directip.mo_listen = "127.0.0.1:0"
    cfg.directip.read_timeout_s = 2.0
    cfg.webhook.listen = "127.0.0.1:0"
    cfg.metrics.listen = "127.0.0.1:0"
    cfg.dashboard.listen = "127.0.0.1:0"
    cfg.link.mt_poll_s = 0.2
    return cfg


class RunningShore:
    """``ShoreService.run`` in a thread; ``endpoints`` once ready; ``stop()`` waits for shutdown."""

    def __init__(self, config: ShoreConfig, clock: Clock | None = None) -> None:
        self.service = ShoreService(config, clock or SystemClock())
        self.endpoints: dict[str, str] = {}
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("shore service did not start")
        if self._error is not None:
            raise RuntimeError("shore service failed") from self._error

    def _main(self) -> None:
        def ready(found: dict[str, str]) -> None:
            self.endpoints.update(found)
            self._ready.set()

        try:
            asyncio.run(self.service.run(on_ready=ready))
        except BaseException as exc:  # surfaced to the test through _error
            self._error = exc
            self._ready.set()

    def address(self, name: str) -> tuple[str, int]:
        value = self.endpoints[name].split("//")[-1].split("/")[0]
        host, _, port = value.rpartition(":")
        return host, int(port)

    def stop(self) -> None:
        self.service.stop()
        self._thread.join(30)
        if self._error is not None:
            raise RuntimeError("shore service failed") from self._error


class Collector:
    """An MQTT subscriber that keeps (topic, JSON payload) pairs."""

    def __init__(self, url: str, topic_filter: str, protocol: str = "auto") -> None:
        self.messages: list[tuple[str, dict]] = []
        self.lock = threading.Lock()
        self.client = MqttClient(url, f"collector-{time.monotonic_ns()}", protocol=protocol)  # type: ignore[arg-type]
        self.client.subscribe(topic_filter, self._on)
        self.client.start()
        assert self.client.wait_connected(10)
        time.sleep(0.2)  # let the SUBACK land before the test publishes

    def _on(self, topic: str, payload: bytes) -> None:
        with self.lock:
            self.messages.append((topic, json.loads(payload)))

    def matching(self, suffix: str) -> list[dict]:
        with self.lock:
            return [p for t, p in self.messages if t.endswith(suffix)]

    def wait_for(self, suffix: str, count: int, timeout: float = 15.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.matching(suffix)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"expected {count} messages on *{suffix}, got {len(self.matching(suffix))}")

    def stop(self) -> None:
        self.client.stop()


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 if absent)."""
    want = name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else "")
    for line in text.splitlines():
        if line.startswith(want + " "):
            return float(line.split()[-1])
    return 0.0


def catch_events(archive: Archive) -> list[Event]:
    """The catch events the relay published, as the dashboard's catch view reads them."""
    out = []
    for event_id, topic, payload, created in archive.query(
        "SELECT id, topic, payload, created FROM events WHERE topic LIKE ? ORDER BY id", ("%/up/catch/%",)
    ):
        parts = topic.split("/")
        out.append(
            Event(event_id, topic, parts[2], parts[3], "/".join(parts[4:]), created, json.loads(payload))
        )
    return out
