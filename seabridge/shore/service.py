"""The shore relay process: ingest, pipeline, MQTT in and out, MT delivery and the dashboard.

One asyncio TaskGroup owns every long-running task: the DirectIP MO server, the event publisher
(archive outbox to MQTT), the MT loop (per-vessel frames to the DirectIP MT server), and the
dashboard's HTTP server. When no broker URL is configured it starts the embedded broker first.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn

from seabridge.clock import Clock
from seabridge.config import resolve
from seabridge.keyfiles import read_secret

from .archive import Archive
from .broker import EmbeddedBroker
from .config import ShoreConfig
from .dashboard import create_app
from .directip import MoMessage, MtMessage
from .directip_server import DirectIpMoServer, send_mt
from .mqtt import MqttClient
from .relay import TOPIC_ROOT, Relay, slug

log = logging.getLogger("seabridge.shore")

MAX_REPLY_PAYLOAD = 8 * 1024


def split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host or "0.0.0.0", int(port)


def _show(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else host


class ShoreService:
    def __init__(self, config: ShoreConfig, clock: Clock, base_dir: Path = Path(".")) -> None:
        self.config = config
        self.clock = clock
        self.base_dir = base_dir
        self.archive = Archive(resolve(base_dir, config.archive.path))
        self.relay = Relay(
            self.archive,
            read_secret(resolve(base_dir, config.keys.shore_secret)),
            read_secret(resolve(base_dir, config.keys.crew_secret)),
            config.link.resend_after_s,
        )
        self.endpoints: dict[str, str] = {}
        self.mqtt: MqttClient | None = None
        self.broker: EmbeddedBroker | None = None
        self._stopping = asyncio.Event()
        self._mt_wake = asyncio.Event()
        self._events_wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inflight: set[int] = set()
        self._inflight_lock = threading.Lock()
        self.mt_failures = 0

    def stop(self) -> None:
        self._stopping.set()

    def _wake(self, event: asyncio.Event) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(event.set)

    async def run(self, on_ready: Callable[[dict[str, str]], None] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        cfg = self.config
        url = cfg.broker.url
        if not url:
            host, port = split_listen(cfg.broker.embedded_listen)
            self.broker = EmbeddedBroker(
                host,
                port,
                data_dir=resolve(self.base_dir, cfg.archive.path).parent / "broker",
                username="seabridge",
                password=secrets.token_urlsafe(16),
            )
            await self.broker.start()
            url = self.broker.url
            self.endpoints["broker"] = f"mqtt://{_show(host)}:{self.broker.port}"
        else:
            self.endpoints["broker"] = url.split("@")[-1] if "@" in url else url
        self.broker_url = url
        self.mqtt = MqttClient(
            url, cfg.broker.client_id, log=log, protocol="3.1.1" if self.broker else "auto"
        )
        self.mqtt.subscribe(f"{TOPIC_ROOT}/+/+/down/crew", self._on_reply)
        self.mqtt.start()

        mo_host, mo_port = split_listen(cfg.directip.mo_listen)
        mo_server = DirectIpMoServer(
            mo_host,
            mo_port,
            self._on_mo,
            read_timeout_s=cfg.directip.read_timeout_s,
            clock=self.clock,
            log=log,
        )
        await mo_server.start()
        self.mo_server = mo_server
        self.endpoints["directip-mo"] = f"{_show(mo_host)}:{mo_server.port}"

        dash_host, dash_port = split_listen(cfg.dashboard.listen)
        app = create_app(self.archive, self._publish_reply, cfg.dashboard.username, cfg.dashboard.password)
        server = uvicorn.Server(
            uvicorn.Config(
                app, host=dash_host, port=dash_port, log_level="warning", lifespan="off", access_log=False
            )
        )
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(server.serve())
                while not server.started:
                    await asyncio.sleep(0.01)
                bound = server.servers[0].sockets[0].getsockname()
                self.endpoints["dashboard"] = f"http://{_show(dash_host)}:{bound[1]}/"
                tg.create_task(self._publisher())
                tg.create_task(self._mt_loop())
                if on_ready is not None:
                    on_ready(dict(self.endpoints))
                await self._stopping.wait()
                server.should_exit = True
                self._events_wake.set()
                self._mt_wake.set()
        finally:
            await mo_server.stop()
            self.mqtt.stop()
            if self.broker is not None:
                await self.broker.stop()
            self.archive.close()

    # --- MO in ------------------------------------------------------------------------------------

    async def _on_mo(self, message: MoMessage) -> bool:
        header = message.header
        outcome = await asyncio.to_thread(
            self.relay.handle_mo,
            header.imei,
            header.momsn,
            message.payload,
            "iridium-directip",
            self.clock.now(),
        )
        log.info("MO %s MOMSN %d: %s", header.imei, header.momsn, outcome)
        self._events_wake.set()
        self._mt_wake.set()
        # Confirm everything we archived or deliberately refused, so the network stops retrying it.
        return True

    # --- events out -------------------------------------------------------------------------------

    async def _publisher(self) -> None:
        assert self.mqtt is not None
        while not self._stopping.is_set():
            events = await asyncio.to_thread(self.archive.pending_events)
            sent_any = False
            for event in events:
                with self._inflight_lock:
                    if event.id in self._inflight:
                        continue
                    self._inflight.add(event.id)
                sent_any = True
                self.mqtt.publish(
                    event.topic,
                    event.payload,
                    retain=event.retain,
                    content_type="application/json",
                    on_done=self._published(event.id),
                )
            self._events_wake.clear()
            await _wait_any(self.clock, 1.0 if not sent_any else 0.2, self._events_wake, self._stopping)

    def _published(self, event_id: int) -> Callable[[], None]:
        def done() -> None:
            self.archive.event_published(event_id, self.clock.now())
            with self._inflight_lock:
                self._inflight.discard(event_id)

        return done

    # --- replies in -------------------------------------------------------------------------------

    def _on_reply(self, topic: str, payload: bytes) -> None:
        """MQTT handler (network thread): validate a reply and queue it for its vessel."""
        parts = topic.split("/")
        if len(payload) > MAX_REPLY_PAYLOAD or len(parts) != 6:
            log.warning("reply on %s refused: too large or bad topic", topic)
            return
        fleet, vessel_slug = parts[2], parts[3]
        try:
            data: Any = json.loads(payload)
            member = data["member"]
            text = data["text"]
            if type(member) is not int or member < 0 or not isinstance(text, str) or not text.strip():
                raise ValueError("member must be a non-negative integer and text a non-empty string")
            sender = str(data.get("sender", "hotline"))[:32]
            client_id = data.get("msg_id")
            if client_id is not None and (not isinstance(client_id, str) or len(client_id) > 64):
                raise ValueError("msg_id must be a string of at most 64 characters")
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("reply on %s refused: %s", topic, exc)
            return
        vessel = next(
            (v for v in self.archive.vessels() if slug(v.name) == vessel_slug and slug(v.fleet) == fleet),
            None,
        )
        if vessel is None:
            log.warning("reply on %s refused: unknown vessel", topic)
            return
        rid, created = self.relay.accept_reply(
            vessel, member, text.strip()[:1000], sender, client_id, self.clock.now()
        )
        log.info(
            "reply %s for %s member %d queued as MT record %d%s",
            client_id,
            vessel.name,
            member,
            rid,
            "" if created else " (repeat ignored)",
        )
        self._wake(self._mt_wake)

    def _publish_reply(self, topic: str, payload: bytes) -> None:
        assert self.mqtt is not None
        self.mqtt.publish(topic, payload)

    # --- MT out -----------------------------------------------------------------------------------

    async def _mt_loop(self) -> None:
        cfg = self.config
        retry_at: dict[str, float] = {}
        while not self._stopping.is_set():
            self._mt_wake.clear()
            now = self.clock.now()
            if cfg.link.ack_delay_s:
                await self.clock.sleep(cfg.link.ack_delay_s)
            imeis = await asyncio.to_thread(self.archive.vessels_with_mt, now, cfg.link.resend_after_s)
            for imei in imeis:
                if retry_at.get(imei, 0) > now:
                    continue
                frame = await asyncio.to_thread(self.relay.build_mt, imei, now)
                if frame is None:
                    continue
                message = MtMessage(
                    client_message_id=(frame.counter & 0xFFFFFFFF).to_bytes(4, "big"),
                    imei=imei,
                    payload=frame.data,
                )
                try:
                    confirmation = await send_mt(
                        cfg.directip.mt_host,
                        cfg.directip.mt_port,
                        message,
                        timeout_s=cfg.directip.read_timeout_s,
                    )
                    ok = confirmation.status >= 0
                except (TimeoutError, OSError, ValueError) as exc:
                    ok = False
                    log.warning("DirectIP MT to %s failed: %s", imei, exc)
                    confirmation = None
                if ok:
                    await asyncio.to_thread(self.relay.mt_sent, frame, self.clock.now())
                    retry_at.pop(imei, None)
                    log.info("MT frame %d (%d B) queued for %s", frame.counter, len(frame.data), imei)
                else:
                    self.mt_failures += 1
                    retry_at[imei] = self.clock.now() + 30.0
                    log.warning(
                        "MT frame for %s not accepted: %s",
                        imei,
                        confirmation.status if confirmation else "no confirmation",
                    )
            await _wait_any(self.clock, cfg.link.mt_poll_s, self._mt_wake, self._stopping)


async def _wait_any(clock: Clock, seconds: float, *events: asyncio.Event) -> None:
    waits = [asyncio.ensure_future(clock.sleep(seconds))] + [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
