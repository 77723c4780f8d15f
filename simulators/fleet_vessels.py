"""Fleet simulation, vessel side: a group of vessels (real gateway daemons and simulated modems) run in
simulated time, one stretch of time at a time, in this process or in a worker process.

A ``VesselGroup`` owns its vessels' daemons, modems, traffic and a clock of its own. The shore (in
``simulators.fleet``, paced by ``simulators.fleet_sync``) tells it to run up to a time and hands it
the MT frames that reach its vessels before then; it answers with the MO frames its vessels sent,
when it next has something to do and when it may first send. Vessels never talk to each other, and
whatever the shore does with an MO frame reaches a vessel one network latency later at the
earliest, so groups run in parallel with each other and with the shore (a conservative parallel
simulation whose look-ahead is the latency). The result does not depend on how vessels are split
into groups.

Simulation shortcuts, stated: SQLite files run without fsync, with the rollback journal in memory and
in exclusive locking mode (durability is not what is measured here); crew accounts are created directly (no PIN hashing); the
modem reproduces the session outcomes, durations, MO/MT exchange and ring alerts of one, not its AT
command set (the end-to-end tests cover that path).
"""

from __future__ import annotations

import asyncio
import heapq
import multiprocessing
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from common.clock import ManualClock
from firmware_profiles import ModemProfile, load_profile
from gateway.accounts import HANDLE_TAG_PREFIX
from gateway.config import GatewayConfig
from gateway.daemon import GatewayDaemon
from gateway.link import FramePlan
from wire import catch
from wire.records import Kind, PriorityClass

from .link_model import LINK_PROFILES, LinkModel

# Simulation only (the files are the simulation's own, in a temporary folder): no fsync, the rollback
# journal in memory, and the file locked once for the connection's lifetime, so SQLite neither takes
# and drops file locks nor re-validates its page cache around every transaction (a third of the run's
# CPU time before). Queries and their results are the same as with the gateway's own settings.
FAST_SQLITE = ("PRAGMA synchronous=OFF", "PRAGMA journal_mode=MEMORY", "PRAGMA locking_mode=EXCLUSIVE")


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
    floor_units: int = 0  # payload bytes of each frame ÷ the billing unit, rounded up per frame
    units_by_cause: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    bytes_by_day: dict[int, int] = field(default_factory=lambda: defaultdict(int))


@dataclass
class SimReport:
    mo_sent: bool
    mo_status: int
    momsn: int | None
    mt_messages: list[bytes]
    mt_queued: int = 0
    error: str | None = None


@dataclass(frozen=True)
class VesselSpec:
    """Everything a group needs to build one vessel: its identity, seeds and pre-drawn traffic."""

    index: int
    imei: str
    name: str
    link_seed: float
    daemon_seed: float
    catch_seed: str
    crew: list[tuple[float, int, str]]  # (when, member number, text)
    catch_logs: list[float]
    sos: list[float]


# An MO frame on its way ashore: (sent at, vessel index, sequence within the vessel, imei, momsn, payload)
MoFrame = tuple[float, int, int, str, int, bytes | None]
# An MT frame on its way to a vessel: (reaches the modem at, imei, frame, cause, payload bytes of replies)
MtFrame = tuple[float, str, bytes, str, int]
# A group's answer to a run: the MO frames sent, its next activity, the earliest it may send (see
# ``VesselGroup.next_send``)
Answer = tuple[list[MoFrame], float | None, float | None]

#: Why the relay sent an MT frame, as the report names the cost.
MT_CAUSES = {
    "reply": "replies",
    "sos-ack": "acknowledgements",
    "ack": "acknowledgements",
    "resend-request": "resend requests",
}
COST_CAUSES = (
    "crew MO",
    "replies",
    "acknowledgements",
    "resend requests",
    "mailbox checks",
    "telemetry",
    "catch",
    "retries",
    "sos",
    "control",
)


def mo_cause(plan: FramePlan | None, answer_ring: bool, fetched: list[str]) -> tuple[str, int]:
    """Why an MO session was paid for, and the payload bytes of its frame (first sends of records).

    A session goes for its most urgent content; what rode along in it cost nothing extra. A session
    with no content of its own is a mailbox check, or — answering a ring — the cost of what it fetched.
    """
    if plan is None or not plan.queued:
        if plan is not None and plan.standalone:
            return ("resend requests" if plan.standalone == "resend-request" else "acknowledgements"), 0
        return (fetched[0] if answer_ring and fetched else "mailbox checks"), 0
    payload = sum(q.size for q in plan.queued if q.first_send)
    classes = {q.cls for q in plan.queued}
    fresh = {q.cls for q in plan.queued if q.first_send}
    for cls, name in (
        (PriorityClass.DISTRESS, "sos"),
        (PriorityClass.CREW, "crew MO"),
        (PriorityClass.CONTROL, "control"),
        (PriorityClass.CATCH, "catch"),
        (PriorityClass.TELEMETRY, "telemetry"),
    ):
        if cls in fresh:
            return name, payload
        if cls in classes:
            return "retries", payload
    return "mailbox checks", payload


class HeapClock(ManualClock):
    """``ManualClock`` with its sleepers in a heap: waking and finding the next one cost log n, not n."""

    def __init__(self, start: float = 1_735_689_600.0) -> None:
        super().__init__(start)
        self._heap: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = 0

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time does not run backwards")
        self._now += seconds
        heap = self._heap
        while heap and heap[0][0] <= self._now:
            _due, _seq, fut = heapq.heappop(heap)
            if not fut.done():
                fut.set_result(None)

    def next_due(self) -> float | None:
        heap = self._heap
        while heap and heap[0][2].done():
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._seq += 1
        heapq.heappush(self._heap, (self._now + seconds, self._seq, fut))
        await fut


class EventQueue:
    """Timed callbacks on the simulated clock (traffic arrivals, MT frames reaching a modem)."""

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


class SimModem:
    """Modem protocol of the gateway daemon, with session outcomes from the link model."""

    def __init__(self, group: VesselGroup, spec: VesselSpec, link: LinkModel) -> None:
        self.group = group
        self.spec = spec
        self.imei = spec.imei
        self.link = link
        self.clock = group.clock
        self.ring_event = asyncio.Event()
        self.momsn = 0
        self.sent = 0
        self.mt_queue: list[tuple[bytes, str, int]] = []  # (frame, cause, payload bytes)
        self.stats = SimStats()
        self.sends_at: float | None = None  # when the session in progress hands its MO frame over
        self.daemon: GatewayDaemon | None = None  # whose session plans say why each session goes

    def ring(self) -> None:
        if self.link.signal(self.clock.now()) > 0:  # ring alerts are simplex: missed without signal
            self.ring_event.set()

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def _charge(self, nbytes: int, cause: str, payload: int) -> None:
        billing = self.group.profile.billing
        units = billing.units(nbytes)
        self.stats.billing_units += units
        self.stats.units_by_cause[cause] += units
        self.stats.floor_units += -(-payload // billing.unit_bytes)
        self.stats.bytes_by_day[int((self.clock.now() - self.group.start) // 86400)] += nbytes

    async def session(
        self, mo_payload: bytes | None, answer_ring: bool = False, *, priority: int = 4
    ) -> SimReport:
        status, duration = self.link.session_outcome(self.clock.now())
        if status <= 4:
            self.sends_at = self.clock.now() + duration
        await self.clock.sleep(duration)
        self.sends_at = None
        stats = self.stats
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
        queue = self.mt_queue
        mts = queue[: self.group.profile.limits.mt_queue_max or len(queue)]
        del queue[: len(mts)]
        plan = self.daemon.session_plan if self.daemon is not None else None
        cause, payload = mo_cause(plan, answer_ring, [c for _, c, _ in mts])
        self._charge(len(mo_payload or b""), cause, payload)
        self.sent += 1
        self.group.outbox.append((self.clock.now(), self.spec.index, self.sent, self.imei, momsn, mo_payload))
        for mt, mt_cause, mt_payload in mts:
            stats.mt_frames += 1
            stats.mt_bytes += len(mt)
            self._charge(len(mt), mt_cause, mt_payload)
        return SimReport(True, status, momsn, [mt for mt, _, _ in mts])


class VesselGroup:
    """Some vessels of the fleet, with their own clock and event loop."""

    def __init__(self, workdir: Path, specs: list[VesselSpec], profile: str, link: str, start: float) -> None:
        self.workdir = workdir
        self.profile: ModemProfile = load_profile(profile)
        self.min_send_s = LINK_PROFILES[link].success_duration_s[0]
        self.start = start
        self.clock = HeapClock(start)
        self.events = EventQueue(self.clock)
        self.outbox: list[MoFrame] = []
        self.loop = asyncio.new_event_loop()
        self.modems: dict[str, SimModem] = {}
        self.daemons: dict[str, GatewayDaemon] = {}
        self._trips: dict[str, catch.TripStart] = {}
        self._hauls: dict[str, int] = {}
        self._catch_rng: dict[str, random.Random] = {}
        self._species = [c for c in catch.table("species").codes if c != "*"][:20]
        asyncio.set_event_loop(self.loop)
        for spec in specs:
            self._build(spec, profile, link)
        self.tasks = [self.loop.create_task(d.run_headless(close_store=False)) for d in self.daemons.values()]
        self.loop.run_until_complete(self._settle())  # every daemon is waiting: ``next_time`` is known

    def _build(self, spec: VesselSpec, profile: str, link: str) -> None:
        gw = GatewayConfig()
        gw.vessel.name = spec.name
        gw.vessel.data_dir = Path("vessels") / spec.name
        gw.keys.vessel_secret = Path("keys") / f"{spec.name}.key"
        gw.keys.shore_public = "keys/shore.pub"
        gw.keys.crew_public = "keys/crew.pub"
        gw.modem.profile = profile
        gw.link.idle_poll_s = 3600.0
        modem = SimModem(self, spec, LinkModel(random.Random(spec.link_seed), link))
        self.modems[spec.imei] = modem
        daemon = GatewayDaemon(
            gw, self.clock, random.Random(spec.daemon_seed), modem=modem, base_dir=self.workdir
        )
        modem.daemon = daemon
        for pragma in FAST_SQLITE:
            daemon.store._db.execute(pragma)
        self.daemons[spec.imei] = daemon
        self._catch_rng[spec.imei] = random.Random(spec.catch_seed)
        members = []
        with daemon.store.transaction() as db:  # no PIN: nobody logs in (and scrypt would dominate)
            for c in range(max((m for _t, m, _x in spec.crew), default=-1) + 1):
                cur = db.execute(  # an untagged placeholder: nobody signs in, the handle stays in memory
                    "INSERT INTO members (handle, pin_salt, pin_hash, created) VALUES (?, x'', x'', ?)",
                    (f"{HANDLE_TAG_PREFIX}sim-{c:02d}", self.clock.now()),
                )
                members.append(int(cur.lastrowid or 0))
                daemon.store.handles[members[-1]] = f"crew-{c:02d}"
        for when, member, text in spec.crew:
            self.events.at(when, lambda d=daemon, m=members[member], x=text: _crew_message(d, m, x))
        for when in spec.catch_logs:
            self.events.at(when, lambda d=daemon, i=spec.imei: self._catch_log(d, i))
        for when in spec.sos:
            self.events.at(when, lambda d=daemon: (d.desk.sos("simulated distress"), d.wake()))

    def _catch_log(self, daemon: GatewayDaemon, imei: str) -> None:
        """A haul in the shared compact catch schema (the trip starts with the vessel's first haul)."""
        now = self.clock.now()
        rng = self._catch_rng[imei]
        trip = self._trips.get(imei)
        if trip is None:
            trip = catch.TripStart(1, now, "THSGK", "OTB", "71", 9.0 + rng.random(), 99.5 + rng.random())
            self._trips[imei] = trip
            daemon.store.accept(Kind.CATCH, lambda _rid: catch.encode_catch(trip), now)
            self._hauls[imei] = 0
        self._hauls[imei] += 1
        species = rng.sample(self._species, k=rng.randint(1, 5))
        haul = catch.Haul(
            trip.trip,
            self._hauls[imei],
            now,
            rng.randint(60, 240),
            trip.latitude + rng.uniform(-0.5, 0.5),
            trip.longitude + rng.uniform(-0.5, 0.5),
            tuple(catch.CatchLine(code, rng.randint(1, 5000)) for code in species),
        )
        daemon.store.accept(Kind.CATCH, lambda _rid: catch.encode_catch(haul, trip), now)
        daemon.wake()

    def _mt_arrives(self, imei: str, data: bytes, cause: str, payload: int) -> None:
        modem = self.modems[imei]
        modem.mt_queue.append((data, cause, payload))
        modem.ring()

    def next_time(self) -> float | None:
        times = [t for t in (self.clock.next_due(), self.events.next_time()) if t is not None]
        return min(times) if times else None

    def next_send(self) -> float | None:
        """No MO frame leaves this group before this time unless an MT frame reaches it first: a
        session in progress sends when it ends, and a new one, opened at the next activity at the
        earliest, takes at least the link's shortest successful session (failed sessions send nothing).
        None: nothing to do until an MT frame comes."""
        nxt = self.next_time()
        times = [m.sends_at for m in self.modems.values() if m.sends_at is not None]
        if nxt is not None:
            times.append(nxt + self.min_send_s)
        return min(times, default=None)

    def run_until(self, end: float, mts: list[MtFrame]) -> Answer:
        """Run every vessel up to (not including) ``end``; returns the MO frames sent and when this
        group next has something to do."""
        for when, imei, data, cause, payload in mts:
            if when < self.clock.now():
                raise RuntimeError("an MT frame reached the vessels after its time had passed there")
            self.events.at(when, lambda i=imei, d=data, c=cause, p=payload: self._mt_arrives(i, d, c, p))
        self.loop.run_until_complete(self._run_until(end))
        sent, self.outbox = self.outbox, []
        return sent, self.next_time(), self.next_send()

    async def _settle(self) -> None:
        """Let every runnable task run until all of them wait on the clock or an event."""
        loop = self.loop
        for _ in range(10_000):
            await asyncio.sleep(0)
            if not getattr(loop, "_ready", None):
                break

    async def _run_until(self, end: float) -> None:
        clock = self.clock
        while True:
            await self._settle()
            if self.events.run_due():
                continue
            nxt = self.next_time()
            if nxt is None or nxt >= end:
                break
            clock.advance(max(0.0, nxt - clock.now()))
        if end > clock.now():
            clock.advance(end - clock.now())
        # Sleepers due at ``end`` run now, before any MT frame due at ``end`` (which comes with the next
        # window): nothing is left ready, so ``next_time`` is this group's next activity.
        await self._settle()

    def finish(self) -> dict[str, Any]:
        """Stop the daemons; per vessel: modem statistics and every record the gateway accepted."""
        for d in self.daemons.values():
            d.stop()
        self.loop.run_until_complete(self._settle())
        if any(not t.done() for t in self.tasks):
            self.clock.advance(86400)
        self.loop.run_until_complete(asyncio.gather(*self.tasks, return_exceptions=True))
        result: dict[str, Any] = {}
        for imei, daemon in self.daemons.items():
            stats = self.modems[imei].stats
            stats.bytes_by_day = dict(stats.bytes_by_day)  # picklable
            stats.units_by_cause = dict(stats.units_by_cause)
            with daemon.store.transaction() as db:
                records = db.execute("SELECT rid, class, created, state FROM records").fetchall()
            result[imei] = (stats, records)
            daemon.store.close()
        self.loop.close()
        return result


def _crew_message(daemon: GatewayDaemon, member: int, text: str) -> None:
    daemon.desk.send(member, "hotline", text)
    daemon.wake()


# --- groups in worker processes ----------------------------------------------------------------------


def _serve(
    conn: Connection, workdir: Path, specs: list[VesselSpec], profile: str, link: str, start: float
) -> None:
    """Worker process: build a group, then answer ``run``/``finish`` requests on ``conn``."""
    group = VesselGroup(workdir, specs, profile, link, start)
    conn.send(("ready", group.next_time(), group.next_send()))
    while True:
        command, *args = conn.recv()
        if command == "run":
            conn.send(group.run_until(*args))
        else:
            conn.send(group.finish())
            conn.close()
            return


class RemoteGroup:
    """A ``VesselGroup`` in a worker process; ``send_run`` and ``receive`` let the caller overlap work."""

    def __init__(self, specs: list[VesselSpec], workdir: Path, profile: str, link: str, start: float) -> None:
        methods = multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_serve,
            args=(child, workdir, specs, profile, link, start),
            daemon=True,
            name="fleet-vessels",
        )
        self._proc.start()
        child.close()
        self._first: tuple[float | None, float | None] | None = None  # built while the caller goes on

    @property
    def first(self) -> tuple[float | None, float | None]:
        """When the group first has something to do, and first may send (waits until it is built)."""
        if self._first is None:
            _ready, first, send = self._conn.recv()
            self._first = (first, send)
        return self._first

    @property
    def connection(self) -> Connection:
        return self._conn

    def send_run(self, end: float, mts: list[MtFrame]) -> None:
        self._conn.send(("run", end, mts))

    def receive(self) -> Answer:
        result: Answer = self._conn.recv()
        return result

    def finish(self) -> dict[str, Any]:
        self._conn.send(("finish",))
        result: dict[str, Any] = self._conn.recv()
        self._proc.join(30)
        return result

    def kill(self) -> None:
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5)


class LocalGroup:
    """A ``VesselGroup`` in this process, with the same interface as ``RemoteGroup``."""

    connection = None  # answers at once: ``send_run`` has run the window

    def __init__(self, specs: list[VesselSpec], workdir: Path, profile: str, link: str, start: float) -> None:
        self.group = VesselGroup(workdir, specs, profile, link, start)
        self.first = (self.group.next_time(), self.group.next_send())
        self._result: Answer = ([], None, None)

    def send_run(self, end: float, mts: list[MtFrame]) -> None:
        self._result = self.group.run_until(end, mts)

    def receive(self) -> Answer:
        return self._result

    def finish(self) -> dict[str, Any]:
        return self.group.finish()

    def kill(self) -> None:
        return None
