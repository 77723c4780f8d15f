"""Fleet simulation: many vessels' real gateway daemons and the real shore relay, in simulated time.

Every vessel runs the real ``GatewayDaemon`` session loop (queue, packer, fairness, budget,
scheduler) against a simulated modem whose sessions follow the link model (``fleet_vessels``); frames
reach the real ``Relay`` (verify, decrypt, replay window, de-duplication, reassembly) after a network
latency, and the relay's MT frames (acks and replies) come back through the modem's mailbox with ring
alerts. A simulated hotline desk answers a share of the crew messages.

Time is simulated: the shore (this module) and the vessel groups each keep a clock and jump from one
wake-up to the next. They advance together in windows no longer than the network latency, because
nothing one side does can reach the other sooner; within a window the vessel groups (in worker
processes, one per CPU) and the shore run in parallel, and the shore takes MO frames in time order.
The same seed gives the same run, whatever the number of worker processes.
"""

from __future__ import annotations

import heapq
import json
import logging
import os
import random
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.clock import ManualClock
from common.keyfiles import read_public, read_secret
from firmware_profiles import load_profile
from shore.archive import Archive
from shore.registry import create_shore_keys, create_vessel_key
from shore.relay import Relay
from wire.records import PriorityClass

from .fleet_report import percentile, write_report
from .fleet_vessels import (
    COST_CAUSES,
    FAST_SQLITE,
    MT_CAUSES,
    LocalGroup,
    MoFrame,
    MtFrame,
    RemoteGroup,
    SimStats,
    VesselSpec,
)

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
    drain_s: float = 6 * 3600.0  # after the last traffic, run this long so what is in flight lands
    daily_budget_bytes: float | None = None  # report budget adherence against this (None: the gateway's own)
    workers: int = 0  # processes simulating vessels (0: one per CPU); the report does not depend on it


MT_LOOP_S = 60.0  # the relay's MT duties (held acks, unacknowledged replies) run this often
HOTLINE_S = 600.0  # the simulated hotline desk looks at new crew messages this often


class ShoreSide:
    """The shore: the real relay and its archive, the MT loop and a hotline desk, on the shore clock."""

    def __init__(self, cfg: FleetConfig, workdir: Path, clock: ManualClock) -> None:
        self.cfg = cfg
        self.clock = clock
        keys = workdir / "keys"
        self.archive = Archive(workdir / "shore.sqlite3")
        for pragma in FAST_SQLITE:
            self.archive._db.execute(pragma)
        self.relay = Relay(
            self.archive,
            read_secret(keys / "shore.key"),
            read_secret(keys / "crew.key"),
        )
        self.rng = random.Random(f"{cfg.seed}:hotline")
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = 0
        self.mt_out: list[MtFrame] = []
        self._events_seen = 0
        self.every(clock.now() + MT_LOOP_S, MT_LOOP_S, self._mt_loop)
        self.every(clock.now() + HOTLINE_S, HOTLINE_S, self._hotline_desk)

    def at(self, when: float, fn: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (when, self._seq, fn))

    def every(self, first: float, period: float, fn: Callable[[], None]) -> None:
        def tick() -> None:
            fn()
            self.at(self.clock.now() + period, tick)

        self.at(first, tick)

    def next_time(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def run_until(self, end: float) -> None:
        """Everything due before ``end``, in time order."""
        while self._heap and self._heap[0][0] < end:
            when, _seq, fn = heapq.heappop(self._heap)
            self.clock.advance(max(0.0, when - self.clock.now()))
            fn()
        if end > self.clock.now():
            self.clock.advance(end - self.clock.now())

    def mo_sent(self, frames: list[MoFrame]) -> None:
        """MO frames the vessels sent reach the relay one network latency later, in time order."""
        for sent, _index, _seq, imei, momsn, payload in sorted(frames, key=lambda f: f[:3]):
            self.at(sent + self.cfg.latency_s, lambda i=imei, m=momsn, p=payload: self._mo_arrives(i, m, p))

    def _mo_arrives(self, imei: str, momsn: int, payload: bytes | None) -> None:
        self.relay.handle_mo(imei, momsn, payload, "simulated", self.clock.now())
        self.flush_mt(imei)

    def flush_mt(self, imei: str) -> None:
        now = self.clock.now()
        while True:
            frame = self.relay.build_mt(imei, now)
            if frame is None:
                break
            self.relay.mt_sent(frame, now)
            payload = sum(len(u.item) for u in frame.units)
            self.mt_out.append((now + self.cfg.latency_s, imei, frame.data, MT_CAUSES[frame.cause], payload))

    def _mt_loop(self) -> None:
        """The relay's MT loop: held acks and unacknowledged replies go out when due."""
        for imei in self.relay.vessels_with_mt(self.clock.now()):
            self.flush_mt(imei)

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
                self.flush_mt(v.imei)

            self.at(self.clock.now() + self.cfg.reply_delay_s, reply)


class FleetSimulation:
    def __init__(
        self, cfg: FleetConfig, workdir: Path, progress: Callable[[float, float], None] | None = None
    ) -> None:
        self.cfg = cfg
        self.workdir = workdir
        self.progress = progress  # called with (vessel-days done, wall seconds so far)
        self.rng = random.Random(cfg.seed)
        self.clock = ManualClock()
        self.profile = load_profile(cfg.profile)

    def _specs(self) -> list[VesselSpec]:
        """Keys, registrations, seeds and the whole traffic of every vessel, drawn from the seed in the
        same order as always, so a seed keeps its traffic."""
        keys = self.workdir / "keys"
        create_shore_keys(keys)
        start, end = self.clock.now(), self.clock.now() + self.cfg.days * 86400
        langs, weights = zip(*LANG_WEIGHTS.items(), strict=True)
        seeds = []
        for v in range(self.cfg.vessels):
            name = f"vessel-{v:03d}"
            create_vessel_key(keys, name)
            seeds.append((f"30023401{v:07d}", name, self.rng.random(), self.rng.random()))
        specs = []
        for v, (imei, name, link_seed, daemon_seed) in enumerate(seeds):
            crew = []
            for member in range(self.cfg.crew):
                t = start
                rate = self.cfg.messages_per_member_day / 86400
                while rate > 0:
                    t += self.rng.expovariate(rate)
                    if t >= end:
                        break
                    crew.append((t, member, self.rng.choice(PHRASES[self.rng.choices(langs, weights)[0]])))
            catch_logs = self._arrivals(start, end, self.cfg.catch_logs_per_day)
            sos = self._arrivals(start, end, self.cfg.sos_per_vessel_day)
            specs.append(
                VesselSpec(
                    v, imei, name, link_seed, daemon_seed, f"{self.cfg.seed}:catch:{v}", crew, catch_logs, sos
                )
            )
        return specs

    def _arrivals(self, start: float, end: float, per_day: float) -> list[float]:
        times: list[float] = []
        t = start
        while per_day > 0:
            t += self.rng.expovariate(per_day / 86400)
            if t >= end:
                break
            times.append(t)
        return times

    def _groups(self, specs: list[VesselSpec]) -> list[LocalGroup | RemoteGroup]:
        workers = self.cfg.workers or os.cpu_count() or 1
        workers = max(1, min(workers, len(specs)))
        if workers == 1:
            return [LocalGroup(self.workdir, specs, self.cfg.profile, self.cfg.link, self.clock.now())]
        parts = [specs[i::workers] for i in range(workers)]
        return [
            RemoteGroup(self.workdir, part, self.cfg.profile, self.cfg.link, self.clock.now())
            for part in parts
        ]

    def run(self) -> dict[str, Any]:
        specs = self._specs()
        started = self.clock.now()
        end = started + self.cfg.days * 86400
        self.traffic_end = end
        stop = end + self.cfg.drain_s  # what is in flight when the traffic ends lands before the report
        wall = time.perf_counter()
        groups = self._groups(specs)
        try:
            self.shore = ShoreSide(self.cfg, self.workdir, self.clock)
            keys = self.workdir / "keys"
            for spec in specs:
                self.shore.archive.register_vessel(
                    spec.imei,
                    spec.name,
                    bytes(read_public(keys / f"{spec.name}.pub")),
                    "sim",
                    self.cfg.profile,
                )
            nexts: list[float | None] = [g.first for g in groups]
            home = {spec.imei: n for n, part in enumerate(self._split(specs, len(groups))) for spec in part}
            window = started
            while window < stop:
                window_end = min(window + self.cfg.latency_s, stop)
                due: list[list[MtFrame]] = [[] for _ in groups]
                later = []
                for mt in self.shore.mt_out:
                    if mt[0] < window_end:
                        due[home[mt[1]]].append(mt)
                    else:
                        later.append(mt)
                self.shore.mt_out = later
                # Only groups with something to do before the window ends run it (skipping the others
                # changes nothing: they would only move their clock).
                busy = [
                    n
                    for n, g in enumerate(groups)
                    if due[n] or (nexts[n] is not None and nexts[n] < window_end)
                ]
                for n in busy:
                    groups[n].send_run(window_end, due[n])
                self.shore.run_until(window_end)  # meanwhile the vessel groups run the same window
                sent: list[MoFrame] = []
                for n in busy:
                    frames, nexts[n] = groups[n].receive()
                    sent.extend(frames)
                self.shore.mo_sent(sent)
                upcoming = [
                    t for t in (*nexts, self.shore.next_time(), *(m[0] for m in self.shore.mt_out)) if t
                ]
                window = max(window_end, min(upcoming, default=stop))
                if self.progress is not None:
                    done = self.cfg.vessels * (min(window, end) - started) / 86400
                    self.progress(done, time.perf_counter() - wall)
            vessels: dict[str, Any] = {}
            for group in groups:
                vessels.update(group.finish())
        finally:
            for group in groups:
                group.kill()
        report = self._report(time.perf_counter() - wall, vessels)
        self.shore.archive.close()
        return report

    @staticmethod
    def _split(specs: list[VesselSpec], n: int) -> list[list[VesselSpec]]:
        return [specs[i::n] for i in range(n)]

    def _report(
        self, wall_s: float, vessels: dict[str, tuple[SimStats, list[tuple[Any, ...]]]]
    ) -> dict[str, Any]:
        received = {
            (imei, rid): at
            for imei, rid, at in self.shore.archive.query("SELECT imei, rid, received FROM records")
        }
        latencies: dict[str, list[float]] = defaultdict(list)
        accepted: dict[str, int] = defaultdict(int)
        delivered: dict[str, int] = defaultdict(int)
        acked: dict[str, int] = defaultdict(int)
        expired = 0
        for imei, (_stats, records) in vessels.items():
            for rid, cls, created, state in records:
                if created >= self.traffic_end:  # queued during the drain (telemetry): not traffic
                    continue
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
        stats = [s for s, _records in vessels.values()]
        per_vessel_day = [b for s in stats for b in s.bytes_by_day.values()]
        budget = self.cfg.daily_budget_bytes
        total_bytes = sum(s.mo_bytes + s.mt_bytes for s in stats)
        mo_frames = sum(s.mo_frames for s in stats)
        report = {
            "config": {k: v for k, v in self.cfg.__dict__.items() if k != "workers"},
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
            "relay_rejections": dict(self.shore.relay.rejections),
            "cost": self._cost(stats, accepted.get("crew", 0), vessel_days),
        }
        self._latencies, self._per_vessel_day = dict(latencies), per_vessel_day
        return report

    def _cost(self, stats: list[SimStats], crew_messages: int, vessel_days: float) -> dict[str, Any]:
        """Credits all in per crew message, per vessel-day against the floor, and by cause."""
        units = sum(s.billing_units for s in stats)
        floor = sum(s.floor_units for s in stats)
        by_cause = {c: sum(s.units_by_cause.get(c, 0) for s in stats) for c in COST_CAUSES}
        per_day = vessel_days or 1.0
        return {
            "unit": f"billing units ({self.profile.billing.unit_bytes}-byte {self.profile.name} units)",
            "units_per_crew_message": round(units / crew_messages, 3) if crew_messages else None,
            "units_per_vessel_day": round(units / per_day, 2),
            "floor_units_per_vessel_day": round(floor / per_day, 2),
            "ratio_to_floor": round(units / floor, 2) if floor else None,
            "by_cause_per_vessel_day": {c: round(n / per_day, 2) for c, n in by_cause.items()},
            "by_cause_per_crew_message": {
                c: round(n / crew_messages, 3) if crew_messages else None for c, n in by_cause.items()
            },
        }


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


def run_fleet(
    cfg: FleetConfig, report_dir: Path, workdir: Path | None = None, show_progress: bool = True
) -> dict[str, Any]:
    """Run the simulation and write ``report.json`` and the SVG plots into ``report_dir``. Without a
    ``workdir`` the vessels' and the shore's files live in a temporary folder (in memory where the
    system offers one) that is removed afterwards."""
    shm = Path("/dev/shm")
    work = workdir or Path(tempfile.mkdtemp(prefix="seabridge-fleet-", dir=shm if shm.is_dir() else None))
    total = cfg.vessels * cfg.days
    shown = [0.0]

    def progress(done: float, wall_s: float) -> None:
        if wall_s - shown[0] < 1.0 and done < total:
            return
        shown[0] = wall_s
        eta = wall_s * (total - done) / done if done > 0 else float("nan")
        sys.stderr.write(
            f"\r{done:,.0f} of {total:,.0f} vessel-days ({done / total:6.1%}) in {wall_s:,.0f} s, "
            f"about {eta:,.0f} s to go "
        )
        sys.stderr.flush()

    sim = FleetSimulation(cfg, work, progress if show_progress else None)
    try:
        report = sim.run()
    finally:
        if workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    if show_progress:
        sys.stderr.write("\n")
    write_report(report_dir, report, sim._latencies, sim._per_vessel_day, cfg.daily_budget_bytes)
    return report
