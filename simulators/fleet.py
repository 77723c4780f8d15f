"""Fleet simulation: many vessels' real gateway daemons and the real shore relay, in simulated time.

Every vessel runs the real ``GatewayDaemon`` session loop (queue, packer, fairness, budget,
scheduler) against a simulated modem whose sessions follow the link model; frames reach the real
``Relay`` (verify, decrypt, replay window, de-duplication, reassembly) after a network latency, and the
relay's MT frames (acks and replies) come back through the modem's mailbox with ring alerts. A simulated
hotline desk answers a share of the crew messages.

Time is a ``ManualClock`` driven as a discrete-event simulation inside one asyncio loop: whenever every
task is waiting, the clock jumps to the earliest wake-up. A month of sea time for a hundred vessels
runs in minutes, and the same seed gives the same run.

Simulation shortcuts, stated: SQLite files run without fsync (``synchronous=OFF``) because durability
is not what is measured here; crew accounts are created directly (no PIN hashing); the modem is not an
AT-command emulator on a pty (that path is covered by the end-to-end tests), it reproduces the
session outcomes, durations, MO/MT exchange and ring alerts of one.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import logging
import random
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.clock import ManualClock
from common.keyfiles import read_public, read_secret
from firmware_profiles import ModemProfile, load_profile
from gateway.config import GatewayConfig
from gateway.daemon import GatewayDaemon
from shore.archive import Archive
from shore.registry import create_shore_keys, create_vessel_key
from shore.relay import Relay
from wire import catch
from wire.records import Kind, PriorityClass

from .fleet_report import percentile, write_report
from .link_model import LinkModel

log = logging.getLogger(__name__)

PHRASES = {
    "my": [
        "မင်္ဂလာပါ အမေ၊ ကျွန်တော် နေကောင်းပါတယ်",
        "ဒီလ လစာ မရသေးပါဘူး",
        "ကလေးတွေ ကျန်းမာရဲ့လား",
        "ငါးဖမ်းတာ ကောင်းပါတယ်၊ နောက်လ ပြန်လာမယ်",
        "အိပ်ချိန် မလုံလောက်ပါ၊ ကူညီပါ",
    ],
    "km": [
        "សួស្តីម៉ាក់ ខ្ញុំសុខសប្បាយ",
        "ខែនេះមិនទាន់បានប្រាក់ខែទេ",
        "កូនៗសុខសប្បាយទេ",
        "ថៅកែយកលិខិតឆ្លងដែនរបស់ខ្ញុំ",
        "ខ្ញុំនឹងត្រឡប់មកផ្ទះខែក្រោយ",
    ],
    "th": ["สวัสดีครับแม่ ผมสบายดี", "เดือนนี้ยังไม่ได้เงินเดือน", "ลูกๆ สบายดีไหม", "จะกลับบ้านเดือนหน้า"],
    "en": [
        "All fine here, good catch this week",
        "Salary not paid for two months",
        "Call you when in port",
        "Please tell my family I am safe",
    ],
}
LANG_WEIGHTS = {"my": 0.45, "km": 0.30, "th": 0.15, "en": 0.10}


@dataclass
class FleetConfig:
    vessels: int = 10
    crew: int = 20
    days: float = 3.0
    seed: int = 1
    profile: str = "iridium-9603"
    link: str = "open-sea"
    messages_per_member_day: float = 1.5
    reply_share: float = 0.3  # share of crew messages the hotline answers
    reply_delay_s: float = 3 * 3600.0
    catch_logs_per_day: float = 2.0
    sos_per_vessel_day: float = 0.002
    latency_s: float = 20.0  # network delay between the satellite and the shore (each way)
    ack_delay_s: float = 300.0  # the relay holds ack-only MT frames this long (its default)
    daily_budget_bytes: float | None = None  # report budget adherence against this (None: the gateway's own)


@dataclass
class SimStats:
    mo_frames: int = 0
    mo_bytes: int = 0
    mt_frames: int = 0
    mt_bytes: int = 0
    mailbox_checks: int = 0
    sessions: int = 0
    failed_sessions: int = 0
    billing_units: int = 0
    bytes_by_day: dict[int, int] = field(default_factory=lambda: defaultdict(int))


@dataclass
class SimReport:
    mo_sent: bool
    mo_status: int
    momsn: int | None
    mt_messages: list[bytes]
    mt_queued: int = 0
    error: str | None = None


class EventQueue:
    """Timed callbacks on the simulated clock (network latency, traffic arrivals)."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = 0

    def at(self, when: float, fn: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (when, self._seq, fn))

    def next_time(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def run_due(self) -> int:
        n = 0
        while self._heap and self._heap[0][0] <= self.clock.now():
            _, _, fn = heapq.heappop(self._heap)
            fn()
            n += 1
        return n


class SimNetwork:
    """The satellite network and the shore, for every vessel of the fleet."""

    def __init__(
        self, clock: ManualClock, events: EventQueue, relay: Relay, cfg: FleetConfig, profile: ModemProfile
    ) -> None:
        self.clock = clock
        self.events = events
        self.relay = relay
        self.cfg = cfg
        self.profile = profile
        self.mt_queues: dict[str, list[bytes]] = defaultdict(list)
        self.modems: dict[str, SimModem] = {}
        self.stats: dict[str, SimStats] = defaultdict(SimStats)
        self.start = clock.now()

    def _day(self) -> int:
        return int((self.clock.now() - self.start) // 86400)

    def mo_arrives(self, imei: str, momsn: int, payload: bytes | None) -> None:
        def deliver() -> None:
            self.relay.handle_mo(imei, momsn, payload, "simulated", self.clock.now())
            self.flush_mt(imei)

        self.events.at(self.clock.now() + self.cfg.latency_s, deliver)

    def flush_mt(self, imei: str) -> None:
        now = self.clock.now()
        while True:
            frame = self.relay.build_mt(imei, now)
            if frame is None:
                break
            self.relay.mt_sent(frame, now)
            data = frame.data

            def queue(data: bytes = data) -> None:
                self.mt_queues[imei].append(data)
                modem = self.modems.get(imei)
                if modem is not None:
                    modem.ring()

            self.events.at(now + self.cfg.latency_s, queue)

    def charge(self, imei: str, nbytes: int) -> None:
        stats = self.stats[imei]
        stats.billing_units += self.profile.billing.units(nbytes)
        stats.bytes_by_day[self._day()] += nbytes


class SimModem:
    """Modem protocol of the gateway daemon, with session outcomes from the link model."""

    def __init__(self, imei: str, network: SimNetwork, link: LinkModel, clock: ManualClock) -> None:
        self.imei = imei
        self.network = network
        self.link = link
        self.clock = clock
        self.ring_event = asyncio.Event()
        self.momsn = 0

    def ring(self) -> None:
        if self.link.signal(self.clock.now()) > 0:  # ring alerts are simplex: missed without signal
            self.ring_event.set()

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def session(self, mo_payload: bytes | None, answer_ring: bool = False) -> SimReport:
        status, duration = self.link.session_outcome(self.clock.now())
        await self.clock.sleep(duration)
        stats = self.network.stats[self.imei]
        stats.sessions += 1
        if status > 4:
            stats.failed_sessions += 1
            return SimReport(False, status, None, [], error="session failed")
        momsn = self.momsn
        self.momsn = (self.momsn + 1) & 0xFFFF
        if mo_payload:
            stats.mo_frames += 1
            stats.mo_bytes += len(mo_payload)
        else:
            stats.mailbox_checks += 1
        self.network.charge(self.imei, len(mo_payload or b""))
        self.network.mo_arrives(self.imei, momsn, mo_payload)
        queue = self.network.mt_queues[self.imei]
        mts = queue[: self.network.profile.limits.mt_queue_max or len(queue)]
        del queue[: len(mts)]
        for mt in mts:
            stats.mt_frames += 1
            stats.mt_bytes += len(mt)
            self.network.charge(self.imei, len(mt))
        return SimReport(True, status, momsn, mts)


class FleetSimulation:
    def __init__(
        self, cfg: FleetConfig, workdir: Path, progress: Callable[[float], None] | None = None
    ) -> None:
        self.cfg = cfg
        self.workdir = workdir
        self.progress = progress
        self.rng = random.Random(cfg.seed)
        self.clock = ManualClock()
        self.events = EventQueue(self.clock)
        self.profile = load_profile(cfg.profile)
        self._trips: dict[str, catch.TripStart] = {}
        self._haul_seq: dict[str, int] = {}
        self._species = [c for c in catch.table("species").codes if c != "*"][:20]

    def _build(self) -> None:
        keys = self.workdir / "keys"
        create_shore_keys(keys)
        self.archive = Archive(self.workdir / "shore.sqlite3")
        self.archive._db.execute("PRAGMA synchronous=OFF")  # simulation: durability is not measured
        self.relay = Relay(
            self.archive,
            read_secret(keys / "shore.key"),
            read_secret(keys / "crew.key"),
            ack_delay_s=self.cfg.ack_delay_s,
        )
        self.network = SimNetwork(self.clock, self.events, self.relay, self.cfg, self.profile)
        self.daemons: dict[str, GatewayDaemon] = {}
        self.members: dict[str, list[int]] = {}
        for v in range(self.cfg.vessels):
            imei = f"30023401{v:07d}"
            name = f"vessel-{v:03d}"
            create_vessel_key(keys, name)
            self.archive.register_vessel(
                imei, name, bytes(read_public(keys / f"{name}.pub")), "sim", self.cfg.profile
            )
            gw = GatewayConfig()
            gw.vessel.name = name
            gw.vessel.data_dir = Path("vessels") / name
            gw.keys.vessel_secret = Path("keys") / f"{name}.key"
            gw.keys.shore_public = "keys/shore.pub"
            gw.keys.crew_public = "keys/crew.pub"
            gw.modem.profile = self.cfg.profile
            gw.link.idle_poll_s = 3600.0
            modem = SimModem(
                imei, self.network, LinkModel(random.Random(self.rng.random()), self.cfg.link), self.clock
            )
            self.network.modems[imei] = modem
            daemon = GatewayDaemon(
                gw, self.clock, random.Random(self.rng.random()), modem=modem, base_dir=self.workdir
            )
            daemon.store._db.execute("PRAGMA synchronous=OFF")  # simulation: durability is not measured
            self.daemons[imei] = daemon
            members = []
            with daemon.store.transaction() as db:  # no PIN: nobody logs in (and scrypt would dominate)
                for c in range(self.cfg.crew):
                    cur = db.execute(
                        "INSERT INTO members (handle, pin_salt, pin_hash, created) VALUES (?, x'', x'', ?)",
                        (f"crew-{c:02d}", self.clock.now()),
                    )
                    members.append(int(cur.lastrowid or 0))
            self.members[imei] = members

    def _schedule_traffic(self) -> None:
        end = self.clock.now() + self.cfg.days * 86400
        langs, weights = zip(*LANG_WEIGHTS.items(), strict=True)
        for imei, members in self.members.items():
            daemon = self.daemons[imei]
            for member in members:
                t = self.clock.now()
                rate = self.cfg.messages_per_member_day / 86400
                while rate > 0:
                    t += self.rng.expovariate(rate)
                    if t >= end:
                        break
                    text = self.rng.choice(PHRASES[self.rng.choices(langs, weights)[0]])
                    self.events.at(t, lambda d=daemon, m=member, x=text: self._crew_message(d, m, x))
            t = self.clock.now()
            while self.cfg.catch_logs_per_day > 0:
                t += self.rng.expovariate(self.cfg.catch_logs_per_day / 86400)
                if t >= end:
                    break
                self.events.at(t, lambda d=daemon: self._catch_log(d))
            t = self.clock.now()
            while self.cfg.sos_per_vessel_day > 0:
                t += self.rng.expovariate(self.cfg.sos_per_vessel_day / 86400)
                if t >= end:
                    break
                self.events.at(t, lambda d=daemon: (d.desk.sos("simulated distress"), d.wake()))

    def _crew_message(self, daemon: GatewayDaemon, member: int, text: str) -> None:
        daemon.desk.send(member, "hotline", text)
        daemon.wake()

    def _catch_log(self, daemon: GatewayDaemon) -> None:
        """A haul in the shared compact catch schema (the trip starts with the vessel's first haul)."""
        now = self.clock.now()
        trip = self._trips.get(daemon.config.vessel.name)
        if trip is None:
            trip = catch.TripStart(
                1, now, "THSGK", "OTB", "71", 9.0 + self.rng.random(), 99.5 + self.rng.random()
            )
            self._trips[daemon.config.vessel.name] = trip
            daemon.store.accept(Kind.CATCH, lambda _rid: catch.encode_catch(trip), now)
            self._haul_seq[daemon.config.vessel.name] = 0
        self._haul_seq[daemon.config.vessel.name] += 1
        species = self.rng.sample(self._species, k=self.rng.randint(1, 5))
        haul = catch.Haul(
            trip.trip,
            self._haul_seq[daemon.config.vessel.name],
            now,
            self.rng.randint(60, 240),
            trip.latitude + self.rng.uniform(-0.5, 0.5),
            trip.longitude + self.rng.uniform(-0.5, 0.5),
            tuple(catch.CatchLine(code, self.rng.randint(1, 5000)) for code in species),
        )
        daemon.store.accept(Kind.CATCH, lambda _rid: catch.encode_catch(haul, trip), now)
        daemon.wake()

    def _hotline_desk(self) -> None:
        """Answer a share of the crew messages that reached the shore since the last look."""
        rows = self.archive.query(
            "SELECT id, topic, payload FROM events WHERE id > ? AND topic LIKE '%/up/crew' ORDER BY id",
            (self._events_seen,),
        )
        for event_id, _topic, payload in rows:
            self._events_seen = event_id
            if self.rng.random() >= self.cfg.reply_share:
                continue
            data = json.loads(bytes(payload))
            vessel = self.archive.vessel_by_name(data["vessel"])
            if vessel is None:
                continue

            def reply(v=vessel, m=data["member"], mid=data["msg_id"]) -> None:
                self.relay.accept_reply(
                    v,
                    m,
                    "We received your message. We will call you.",
                    "hotline",
                    f"re-{mid}",
                    self.clock.now(),
                )
                self.network.flush_mt(v.imei)

            self.events.at(self.clock.now() + self.cfg.reply_delay_s, reply)

    async def _drive(self, end: float) -> None:
        loop = asyncio.get_running_loop()
        last_desk = last_hotline = 0.0
        while self.clock.now() < end:
            # Let every runnable task run until all of them wait on the clock or an event.
            for _ in range(10_000):
                await asyncio.sleep(0)
                if not getattr(loop, "_ready", None):
                    break
            if self.events.run_due():
                continue
            if self.clock.now() - last_desk >= 60:
                # The relay's MT loop: held acks and unacknowledged replies go out when due.
                for imei in self.archive.vessels_with_mt(self.clock.now(), self.relay.resend_after_s):
                    self.network.flush_mt(imei)
                if self.clock.now() - last_hotline >= 600:
                    self._hotline_desk()
                    last_hotline = self.clock.now()
                last_desk = self.clock.now()
            candidates = [t for t in (self.clock.next_due(), self.events.next_time()) if t is not None]
            candidates.append(last_desk + 60)
            target = min(candidates) if candidates else end
            target = min(max(target, self.clock.now()), end)
            if target == self.clock.now() and not self.events.run_due():
                # Nothing due yet at this instant: step a little to avoid spinning.
                target = min(end, self.clock.now() + 1.0)
            self.clock.advance(target - self.clock.now())
            if self.progress is not None:
                self.progress((self.clock.now() - self.started) / (end - self.started))

    async def run(self) -> dict[str, Any]:
        self._build()
        self._events_seen = 0
        self.started = self.clock.now()
        end = self.started + self.cfg.days * 86400
        self._schedule_traffic()
        wall = time.perf_counter()
        tasks = [asyncio.create_task(d.run_headless(close_store=False)) for d in self.daemons.values()]
        try:
            await self._drive(end)
        finally:
            for d in self.daemons.values():
                d.stop()
            for _ in range(50):
                await asyncio.sleep(0)
            if any(not t.done() for t in tasks):
                self.clock.advance(86400)
            await asyncio.gather(*tasks, return_exceptions=True)
        report = self._report(time.perf_counter() - wall)
        self.archive.close()
        for d in self.daemons.values():
            d.store.close()
        return report

    def _report(self, wall_s: float) -> dict[str, Any]:
        received = {
            (imei, rid): at for imei, rid, at in self.archive.query("SELECT imei, rid, received FROM records")
        }
        latencies: dict[str, list[float]] = defaultdict(list)
        accepted: dict[str, int] = defaultdict(int)
        delivered: dict[str, int] = defaultdict(int)
        acked: dict[str, int] = defaultdict(int)
        expired = 0
        for imei, daemon in self.daemons.items():
            with daemon.store.transaction() as db:
                rows = db.execute("SELECT rid, class, created, state FROM records").fetchall()
            for rid, cls, created, state in rows:
                name = PriorityClass(cls).name.lower()
                accepted[name] += 1
                if (imei, rid) in received:
                    delivered[name] += 1
                    latencies[name].append(received[(imei, rid)] - created)
                if state == "delivered":
                    acked[name] += 1
                if state == "expired":
                    expired += 1
        vessel_days = self.cfg.vessels * self.cfg.days
        stats = list(self.network.stats.values())
        per_vessel_day = [b for s in stats for b in s.bytes_by_day.values()]
        budget = self.cfg.daily_budget_bytes
        total_bytes = sum(s.mo_bytes + s.mt_bytes for s in stats)
        mo_frames = sum(s.mo_frames for s in stats)
        report = {
            "config": self.cfg.__dict__,
            "wall_seconds": round(wall_s, 1),
            "classes": {
                name: {
                    "accepted": accepted[name],
                    "delivered_ashore": delivered[name],
                    "acknowledged_on_board": acked[name],
                    "delivery_ratio": round(delivered[name] / accepted[name], 4) if accepted[name] else None,
                    "latency_s": {
                        f"p{int(q * 100)}": _round(percentile(latencies[name], q)) for q in (0.5, 0.9, 0.99)
                    },
                }
                for name in sorted(accepted)
            },
            "expired": expired,
            "sessions": sum(s.sessions for s in stats),
            "failed_sessions": sum(s.failed_sessions for s in stats),
            "mailbox_checks": sum(s.mailbox_checks for s in stats),
            "mo_frames": mo_frames,
            "mt_frames": sum(s.mt_frames for s in stats),
            "bytes_per_vessel_day": round(total_bytes / vessel_days, 1) if vessel_days else 0,
            "billing_units_per_vessel_day": round(sum(s.billing_units for s in stats) / vessel_days, 2)
            if vessel_days
            else 0,
            "cost_per_vessel_day": round(
                sum(s.billing_units for s in stats) * self.profile.billing.cost_per_unit / vessel_days, 3
            )
            if vessel_days
            else 0,
            "currency": self.profile.billing.currency,
            "mo_frame_fill": round(
                sum(s.mo_bytes for s in stats) / (mo_frames * self.profile.mo_frame_limit), 3
            )
            if mo_frames
            else None,
            "budget": {
                "daily_bytes": budget,
                "vessel_days_over": sum(1 for b in per_vessel_day if budget and b > budget),
            },
            "relay_rejections": dict(self.relay.rejections),
        }
        self._latencies, self._per_vessel_day = dict(latencies), per_vessel_day
        return report


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


def run_fleet(
    cfg: FleetConfig, report_dir: Path, workdir: Path | None = None, show_progress: bool = True
) -> dict[str, Any]:
    """Run the simulation and write ``report.json`` and the SVG plots into ``report_dir``."""
    import tempfile

    work = workdir or Path(tempfile.mkdtemp(prefix="seabridge-fleet-"))

    def bar(fraction: float) -> None:
        filled = int(40 * min(1.0, fraction))
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (40 - filled)}] {fraction:6.1%} of {cfg.days:g} days")
        sys.stderr.flush()

    sim = FleetSimulation(cfg, work, bar if show_progress else None)
    report = asyncio.run(sim.run())
    if show_progress:
        sys.stderr.write("\n")
    write_report(report_dir, report, sim._latencies, sim._per_vessel_day, cfg.daily_budget_bytes)
    return report
