"""A vessel gateway's store and link wired to a real shore relay and archive, for gateway tests.

Both sides use real SQLite files and real keys; nothing is mocked. Frames travel as bytes through
whatever channel the test builds between ``gateway_send`` and ``shore_receive``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from common.keyfiles import read_public, read_secret
from firmware_profiles import load_profile
from gateway.link import AckTiming, VesselLink
from gateway.store import GatewayStore
from shore.acks import AckPolicy
from shore.archive import Archive
from shore.registry import create_shore_keys, create_vessel_key
from shore.relay import Relay
from wire.crypto import link_key
from wire.frame import frame_capacity
from wire.items import loads_one
from wire.records import Kind

IMEI = "300234010000001"
PROFILE = "iridium-9603"


def make_keys(folder: Path) -> None:
    if not (folder / "shore.key").exists():
        create_shore_keys(folder)
        create_vessel_key(folder, "vessel")


def scaled_timing(resend_after_s: float) -> AckTiming:
    """The vessel's acknowledgement timing scaled to ``resend_after_s`` (a cumulative ack before a resend)."""
    return AckTiming(resend_after_s / 1.5, resend_after_s / 4, min(60.0, resend_after_s / 10))


def open_gateway(
    folder: Path, resend_after_s: float, profile: str = PROFILE, timing: AckTiming | None = None
) -> tuple[GatewayStore, VesselLink]:
    """A gateway's store and link; ``timing`` defaults to the acknowledgement policy scaled to
    ``resend_after_s`` (the shore's cumulative acknowledgement comes well before a resend)."""
    prof = load_profile(profile)
    store = GatewayStore(folder / "gateway.sqlite3", frame_capacity(prof.mo_max_bytes, 2**35 - 1))
    key = link_key(read_secret(folder / "vessel.key"), read_public(folder / "shore.pub"))
    timing = timing or scaled_timing(resend_after_s)
    return store, VesselLink(store, key, prof.mo_max_bytes, resend_after_s, timing=timing)


def open_shore(
    folder: Path, resend_after_s: float, profile: str = PROFILE, policy: AckPolicy | None = None
) -> tuple[Archive, Relay]:
    """The shore's archive and relay, with the acknowledgement policy scaled like ``open_gateway``'s."""
    archive = Archive(folder / "archive.sqlite3")
    if archive.vessel(IMEI) is None:
        archive.register_vessel(IMEI, "test-vessel", bytes(read_public(folder / "vessel.pub")), "f", profile)
    policy = policy or AckPolicy(resend_after_s / 1.5, resend_after_s / 4, min(60.0, resend_after_s / 10))
    relay = Relay(
        archive,
        read_secret(folder / "shore.key"),
        read_secret(folder / "crew.key"),
        resend_after_s,
        ack_policy=policy,
    )
    return archive, relay


@dataclass
class ShoreView:
    archive: Archive

    def records(self) -> list[tuple[int, int, object]]:
        """(rid, kind, body) of every record the shore has, in arrival order, leaving out the gateway's
        capability announcement (sent once at start, not what these tests are about)."""
        rows = self.archive.query(
            "SELECT rid, kind, body FROM records WHERE imei = ? AND kind != ? ORDER BY id",
            (IMEI, int(Kind.CAPABILITIES)),
        )
        return [(r[0], r[1], loads_one(bytes(r[2]))) for r in rows]


class ShoreRecords(ShoreView):
    def published(self) -> dict[str, int]:
        """How many times each msg_id was published on an ``up/`` topic."""
        import json

        counts: dict[str, int] = {}
        for topic, payload in self.archive.query("SELECT topic, payload FROM events ORDER BY id"):
            if "/up/" in topic:
                msg_id = json.loads(bytes(payload))["msg_id"]
                counts[msg_id] = counts.get(msg_id, 0) + 1
        return counts


@dataclass
class Report:
    mo_sent: bool
    mo_status: int
    mt_messages: list[bytes]
    error: str | None = None


class LoopbackModem:
    """A modem whose 'satellite' is a direct call into a real shore relay (no radio, no pty).

    ``up`` False makes every session fail (MO status 32, no network service); ``sent`` keeps every
    MO payload in order."""

    def __init__(self, relay: Relay, clock) -> None:  # type: ignore[no-untyped-def]
        import asyncio

        self.relay = relay
        self.clock = clock
        self.ring_event = asyncio.Event()
        self.up = True
        self.momsn = 0
        self.sent: list[bytes | None] = []
        self.mailbox_checks = 0

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def session(
        self, mo_payload: bytes | None, answer_ring: bool = False, *, priority: int = 4
    ) -> Report:
        if not self.up:
            return Report(False, 32, [], "no network service")
        self.momsn += 1
        self.sent.append(mo_payload)
        now = self.clock.now()
        if mo_payload is None:
            self.mailbox_checks += 1
        else:
            self.relay.handle_mo(IMEI, self.momsn, mo_payload, "test", now)
        mts = []
        mt = self.relay.build_mt(IMEI, now)
        if mt is not None:
            self.relay.mt_sent(mt, now)
            mts.append(mt.data)
        return Report(True, 0, mts)


def make_daemon(folder: Path, clock, modem: bool = True, announce: bool = False, **sections):  # type: ignore[no-untyped-def]
    """A GatewayDaemon on ``folder`` (keys made there) with a LoopbackModem to a real relay.

    ``sections`` maps ``"section.option"`` names to values, e.g. ``{"budget.day_limit": 3}``."""
    import random

    from gateway.config import GatewayConfig
    from gateway.daemon import GatewayDaemon

    make_keys(folder)
    cfg = GatewayConfig()
    cfg.vessel.data_dir = folder / "gw"
    cfg.keys.vessel_secret = folder / "vessel.key"
    cfg.keys.shore_public = str(folder / "shore.pub")
    cfg.keys.crew_public = str(folder / "crew.pub")
    cfg.captive.listen = "127.0.0.1:0"
    cfg.metrics.listen = "127.0.0.1:0"
    cfg.telemetry.interval_s = 0
    cfg.telemetry.solo_interval_s = 0
    for name, value in sections.items():
        section, option = name.split(".")
        setattr(getattr(cfg, section), option, value)
    archive, relay = open_shore(folder, 1800.0)
    lm = LoopbackModem(relay, clock) if modem else None
    daemon = GatewayDaemon(cfg, clock, random.Random(7), modem=lm, base_dir=folder)
    if not announce:
        # Take the start-up capability announcement out of the queue: these tests reason about an
        # otherwise empty queue (tests/test_codec_negotiation.py covers the announcement).
        with daemon.store.transaction() as db:
            db.execute(
                "DELETE FROM units WHERE rid IN (SELECT rid FROM records WHERE kind = ?)",
                (int(Kind.CAPABILITIES),),
            )
            db.execute("DELETE FROM records WHERE kind = ?", (int(Kind.CAPABILITIES),))
    return daemon, lm, ShoreRecords(archive)
