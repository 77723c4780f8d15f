"""The vessel daemon: captive page, durable queue and the modem session loop under one TaskGroup.

The session loop decides when to open a satellite session (traffic due, a ring alert, a mailbox check
falling due), sends the next frame, hands what came back to the link, and backs off after failures
along the profile's retry schedule. Every decision is logged with its reason. Shutdown is orderly:
stop accepting, finish the session in progress, close the modem and the store.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import uvicorn

from seabridge.clock import Clock
from seabridge.config import resolve
from seabridge.firmware_profiles import ModemProfile, load_profile
from seabridge.keyfiles import read_public, read_secret
from seabridge.wire.crypto import link_key
from seabridge.wire.frame import frame_capacity

from .captive import create_app
from .config import GatewayConfig
from .crew import CrewDesk
from .link import VesselLink
from .store import GatewayStore

log = logging.getLogger("seabridge.gateway")


class SessionOutcome(Protocol):
    mo_sent: bool
    mo_status: int
    mt_messages: list[bytes]
    error: str | None


class Modem(Protocol):
    ring_event: asyncio.Event

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def session(self, mo_payload: bytes | None, answer_ring: bool = False) -> Any: ...


@dataclass
class GatewayStats:
    sessions: int = 0
    failures: int = 0
    frames_sent: int = 0
    bytes_sent: int = 0
    frames_received: int = 0


def split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host or "0.0.0.0", int(port)


class GatewayDaemon:
    def __init__(
        self,
        config: GatewayConfig,
        clock: Clock,
        rng: random.Random,
        modem: Modem | None = None,
        base_dir: Path = Path("."),
    ) -> None:
        self.config = config
        self.clock = clock
        self.rng = rng
        self.profile: ModemProfile = load_profile(config.modem.profile)
        data_dir = resolve(base_dir, config.vessel.data_dir)
        secret = read_secret(resolve(base_dir, config.keys.vessel_secret))
        shore_public = read_public(_maybe_path(base_dir, config.keys.shore_public))
        crew_public = read_public(_maybe_path(base_dir, config.keys.crew_public))
        mo_limit = self.profile.mo_max_bytes
        # Units are cut for the smallest frame the counter range will see (largest counter varint).
        self.store = GatewayStore(data_dir / "gateway.sqlite3", frame_capacity(mo_limit, 2**35 - 1))
        self.link = VesselLink(
            self.store, link_key(secret, shore_public), mo_limit, config.link.resend_after_s
        )
        self.desk = CrewDesk(self.store, crew_public, clock, config.link.message_lifetime_s)
        self.modem = modem
        self.stats = GatewayStats()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._server: uvicorn.Server | None = None
        self.endpoints: dict[str, str] = {}

    def wake(self) -> None:
        """Something was queued: look at the queue now (thread-safe)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None:
            self._wake.set()
        elif self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    _loop: asyncio.AbstractEventLoop | None = None

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.should_exit = True

    async def run(self, on_ready: Callable[[dict[str, str]], None] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        host, port = split_listen(self.config.captive.listen)
        app = create_app(self.desk, self.config.vessel.name, on_accept=self.wake)
        server = uvicorn.Server(
            uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off", access_log=False)
        )
        self._server = server
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(server.serve())
                while not server.started:
                    await asyncio.sleep(0.01)
                bound = server.servers[0].sockets[0].getsockname()
                self.endpoints["captive-page"] = f"http://{_show_host(host)}:{bound[1]}/"
                if self.modem is not None:
                    await self.modem.open()
                if on_ready is not None:
                    on_ready(dict(self.endpoints))
                tg.create_task(self._session_loop())
                await self._stopping.wait()
                server.should_exit = True
        finally:
            if self.modem is not None:
                await self.modem.close()
            self.store.close()

    async def _wait(self, seconds: float) -> None:
        waits = [
            asyncio.ensure_future(self.clock.sleep(seconds)),
            asyncio.ensure_future(self._wake.wait()),
            asyncio.ensure_future(self._stopping.wait()),
        ]
        if self.modem is not None:
            waits.append(asyncio.ensure_future(self.modem.ring_event.wait()))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
        self._wake.clear()

    def _retry_delay(self, failures: int) -> float:
        schedule = self.profile.retry.schedule_s
        base = schedule[min(failures - 1, len(schedule) - 1)]
        return self.rng.uniform(0, base) if self.profile.retry.jitter else base

    async def _session_loop(self) -> None:
        cfg = self.config.link
        failures = 0
        next_try = 0.0
        last_session = self.clock.now()
        while not self._stopping.is_set():
            now = self.clock.now()
            for rid in self.store.expire(now):
                log.info("record %d expired: lifetime ended before delivery", rid)
            if self.modem is None:
                await self._wait(cfg.idle_poll_s)
                continue
            ring = cfg.answer_ring_alerts and self.modem.ring_event.is_set()
            traffic = self.link.has_traffic(now)
            reason = None
            if ring:
                reason = "ring alert"
            elif traffic and now >= next_try:
                reason = "traffic waiting"
            elif now - last_session >= cfg.mailbox_check_s and now >= next_try:
                reason = "mailbox check due"
            if reason is None:
                await self._wait(
                    max(0.01, min(cfg.idle_poll_s, next_try - now) if next_try > now else cfg.idle_poll_s)
                )
                continue
            frame = self.link.build_frame(now)
            self.modem.ring_event.clear()
            log.info(
                "session opened: %s (%s)",
                reason,
                f"frame {frame.counter}, {len(frame.data)} B" if frame else "mailbox check",
            )
            report = await self.modem.session(frame.data if frame else None, answer_ring=ring)
            self.stats.sessions += 1
            done = self.clock.now()
            if report.mo_sent:
                failures = 0
                next_try = 0.0
                last_session = done
                if frame is not None:
                    self.link.frame_sent(frame, done)
                    self.stats.frames_sent += 1
                    self.stats.bytes_sent += len(frame.data)
            else:
                failures += 1
                self.stats.failures += 1
                delay = self._retry_delay(failures)
                next_try = done + delay
                log.info(
                    "session failed (MO status %s, %s): retry in %.0f s",
                    report.mo_status,
                    report.error,
                    delay,
                )
            for mt in report.mt_messages:
                self.stats.frames_received += 1
                result = self.link.receive(mt, done)
                if result.delivered_rids:
                    log.info("shore confirmed records %s", result.delivered_rids)


def _maybe_path(base: Path, value: str) -> str:
    candidate = resolve(base, Path(value))
    return str(candidate) if candidate.exists() else value


def _show_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else host
