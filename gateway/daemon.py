"""The vessel daemon: captive page, durable queue, metrics and the modem session loop under one TaskGroup.

The session loop is a thin adapter around ``scheduler``: each turn it expires records past their
lifetime, queues telemetry and budget alerts when due, asks the packer what the next frame may carry
(priority classes, byte-fair crew shares, allowances, budget), asks the scheduler whether to open a
session now, and if so sends the frame, charges its cost and hands what came back to the link. Every
decision is logged with its reason when it changes. Shutdown is orderly: stop accepting, finish the
session in progress, close the modem and the store.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import uvicorn

from common import VERSION
from common.clock import Clock
from common.config import resolve
from common.keyfiles import read_public, read_secret
from firmware_profiles import ModemProfile, load_profile
from wire.codec import codec_mask, supported_codecs
from wire.crypto import link_key
from wire.items import dumps
from wire.records import Capabilities, Kind, PriorityClass
from wire.versions import versions_mask

from .budget import Budget, BudgetState, periods
from .captive import create_app
from .config import GatewayConfig
from .crew import CrewDesk
from .fairness import AllowancePolicy, AllowanceState, allowance_state
from .link import AckTiming, FramePlan, VesselLink
from .metrics import Snapshot, create_metrics_app
from .modem.at_engine import DriverError
from .modem.interface import PRIORITY_HIGH, PRIORITY_LOW, Modem
from .modem.network_clock import NetworkCorrectedClock
from .position import NmeaGps, PositionChain, ReportedPosition
from .scheduler import (
    Decision,
    Packer,
    QueueView,
    RetryState,
    Scheduler,
    Selection,
    policy_from_config,
    ride_along,
)
from .store import open_store
from .telemetry import LinkStats, budget_alert, telemetry_record

log = logging.getLogger("gateway")

#: Bytes of an item's head around a telemetry body (array, type, record id, kind).
TELEMETRY_ITEM_HEAD = 6


@dataclass
class Turn:
    """One look at the queue: what could be sent and what the scheduler made of it."""

    now: float
    budget: BudgetState
    plan: FramePlan
    view: QueueView
    decision: Decision


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
        # Host time, corrected by the satellite network's time while no GNSS fix keeps it right.
        self.clock = clock = NetworkCorrectedClock(clock)
        self.rng = rng
        self.profile: ModemProfile = load_profile(config.modem.profile)
        data_dir = resolve(base_dir, config.vessel.data_dir)
        secret = read_secret(resolve(base_dir, config.keys.vessel_secret))
        shore_public = read_public(_maybe_path(base_dir, config.keys.shore_public))
        crew_public = read_public(_maybe_path(base_dir, config.keys.crew_public))
        mo_limit = self.profile.mo_frame_limit
        version = config.link.wire_version
        self.store = open_store(data_dir, mo_limit, version)
        # The captive page shows a member's remaining allowance and when a message should leave; an SOS
        # carries the position.
        self.desk = CrewDesk(
            self.store,
            crew_public,
            clock,
            config.link.message_lifetime_s,
            allowance=self.allowance,
            expected_send=self.expected_send,
            position=self._position_now,
            wire_version=version,
        )
        self.link = VesselLink(
            self.store,
            link_key(secret, shore_public),
            mo_limit,
            config.link.resend_after_s,
            version,
            self.desk.frame_epoch,
            clock.now,
            AckTiming(config.link.cumulative_ack_s, config.link.resend_request_s),
        )
        # Tell the shore which codecs (model versions) this build decodes, whenever that changes.
        mask, wire_mask = codec_mask(supported_codecs()), versions_mask()
        self.store.accept_if_changed(
            "announced_codecs",
            f"{mask}/{wire_mask}",
            Kind.CAPABILITIES,
            Capabilities(mask, f"seabridge {VERSION}", wire_mask).body(),
            clock.now(),
        )
        self.modem = modem
        self.stats = LinkStats()
        self.budget = Budget(
            self.profile.billing, config.budget.unit, config.budget.day_limit, config.budget.month_limit
        )
        self.allowance_policy = AllowancePolicy(
            config.allowance.day_bytes, config.allowance.month_bytes, config.allowance.guaranteed_day_bytes
        )
        self.packer = Packer()
        self.retry = RetryState(self.profile.retry, rng)
        self.scheduler = Scheduler(policy_from_config(config), self.retry)
        self.scheduler.last_session = clock.now()
        self.gps = NmeaGps()
        self.idp_position = ReportedPosition("idp-gnss")
        self.iridium_position = ReportedPosition("iridium")
        self.positions = PositionChain(
            [self.gps, self.idp_position, self.iridium_position], config.telemetry.position_max_age_s
        )
        self._last_telemetry = clock.now()
        self._last_reason = ""
        self.last_turn: Turn | None = None
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
        self._started = self.clock.now()
        host, port = split_listen(self.config.captive.listen)
        app = create_app(
            self.desk,
            self.config.vessel.name,
            on_accept=self.wake,
            secure_cookies=self.config.captive.secure_cookies,
        )
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
                self.endpoints["captive-api"] = f"http://{_show_host(host)}:{bound[1]}/api/captive"
                metrics_server = self._metrics_server()
                if metrics_server is not None:
                    tg.create_task(metrics_server.serve(sockets=[self._metrics_socket]))
                if self.config.telemetry.gps_port:
                    tg.create_task(self._gps_loop())
                if self.modem is not None:
                    await self.modem.open()
                if on_ready is not None:
                    on_ready(dict(self.endpoints))
                tg.create_task(self._session_loop())
                await self._stopping.wait()
                server.should_exit = True
                if metrics_server is not None:
                    metrics_server.should_exit = True
        finally:
            if self.modem is not None:
                await self.modem.close()
            self.store.close()

    async def run_headless(self, close_store: bool = True) -> None:
        """The session loop alone, without the captive page or the metrics server (simulations)."""
        self._loop = asyncio.get_running_loop()
        self._started = self.clock.now()
        if self.modem is not None:
            await self.modem.open()
        try:
            await self._session_loop()
        finally:
            if self.modem is not None:
                await self.modem.close()
            if close_store:
                self.store.close()

    _metrics_socket: socket.socket | None = None

    def _metrics_server(self) -> uvicorn.Server | None:
        """Bind the metrics port ourselves so a busy port is a warning, not a dead daemon."""
        listen = self.config.metrics.listen
        if not listen:
            return None
        host, port = split_listen(listen)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            log.warning("metrics endpoint not started: cannot listen on %s: %s", listen, exc)
            return None
        self._metrics_socket = sock
        bound = sock.getsockname()
        self.endpoints["metrics"] = f"http://{_show_host(host)}:{bound[1]}/metrics"
        app = create_metrics_app(self.snapshot)
        return uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False))

    async def _wait(self, seconds: float) -> None:
        waits = [
            asyncio.ensure_future(self.clock.sleep(seconds)),
            asyncio.ensure_future(self._wake.wait()),
            asyncio.ensure_future(self._stopping.wait()),
        ]
        if self.modem is not None and not self.modem.ring_event.is_set():  # a held ring is not news
            waits.append(asyncio.ensure_future(self.modem.ring_event.wait()))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
        self._wake.clear()

    # --- what the captive page and the metrics endpoint ask -----------------------------------------

    def expected_send(self, created: float) -> float | None:
        """When a crew message accepted at ``created`` is expected to leave at the latest: when its class
        latency bound runs out (a fuller frame or other traffic may take it sooner), pushed past a retry
        back-off and a quiet window. None when the budget holds crew traffic back."""
        now = self.clock.now()
        if self.last_turn is not None and self.last_turn.budget.exhausted:
            return None
        policy = self.scheduler.policy
        due = created + policy.latency_s.get(int(PriorityClass.CREW), 0.0)
        due = max(due, now, self.retry.next_try)
        for window in policy.quiet_windows:
            end = window.active_until(due)
            if end is not None:
                due = end
        return due

    def allowance(self, member: int) -> AllowanceState:
        """A crew member's used and remaining allowance today and this month."""
        day, month = periods(self.clock.now())
        return allowance_state(
            self.allowance_policy,
            self.store.member_usage(member, day),
            self.store.member_usage(member, month),
        )

    def budget_state(self, now: float | None = None) -> BudgetState:
        day, month = periods(self.clock.now() if now is None else now)
        return self.budget.state(self.store.spend(day), self.store.spend(month))

    def snapshot(self) -> Snapshot:
        now = self.clock.now()
        state = self.budget_state(now)
        problems = []
        stale = self.config.metrics.stale_after_s
        silent = now - (self.stats.last_success_at or self._started)
        if self.modem is not None and stale > 0 and silent > stale:
            problems.append(f"no successful session for {silent:.0f} s")
        fix = self.positions.best(now)
        s = self.stats
        return Snapshot(
            queue=self.store.queue_depth(),
            states=self.store.record_states(),
            budget_day=state.day_fraction,
            budget_month=state.month_fraction,
            sessions=s.sessions,
            failures=s.failures,
            frames_sent=s.frames_sent,
            bytes_sent=s.bytes_sent,
            frames_received=s.frames_received,
            mailbox_checks=s.mailbox_checks,
            last_session_at=s.last_session_at,
            last_success_at=s.last_success_at,
            decision=self._last_reason,
            healthy=not problems,
            problems=problems,
            position_age_s=None if fix is None else now - fix.at,
        )

    _started = 0.0
    session_plan: FramePlan | None = None

    def _position_now(self) -> tuple[float, float] | None:
        fix = self.positions.best(self.clock.now())
        return None if fix is None else (fix.latitude, fix.longitude)

    # --- one turn of the policy (no I/O beyond the store) -------------------------------------------

    def housekeeping(self, now: float) -> None:
        """Expire records, queue telemetry and budget alerts when due."""
        for rid in self.store.expire(now, self.config.link.resend_after_s):
            log.info("record %d expired: lifetime ended before delivery", rid)
        state = self.budget_state(now)
        day, month = periods(now)
        for period, level in self.budget.alerts_crossed(state):
            key = f"alert:{day if period == 'day' else month}:{level}"
            if not self.store.meta_flag(key):
                alert = budget_alert(now, state, period, level, self.profile.billing.currency)
                self.store.accept(Kind.ALERT, lambda _rid, a=alert: a.body(), now)
                log.warning("budget alert: %s budget %.0f %% used", period, level * 100)
        solo = self.config.telemetry.solo_interval_s
        if solo > 0 and now - self._last_telemetry >= solo:
            self.queue_telemetry(now, state)

    def queue_telemetry(self, now: float, state: BudgetState | None = None) -> int:
        self._last_telemetry = now
        record = telemetry_record(
            now,
            self.positions.best(now),
            self.store.queue_depth(),
            state or self.budget_state(now),
            self.stats,
        )
        lifetime = max(self.config.telemetry.interval_s * 24, self.config.latency.telemetry_s * 2)
        return self.store.accept(Kind.TELEMETRY, lambda _rid: record.body(), now, lifetime_s=lifetime)

    def _paid(self, nbytes: int) -> int:
        """The end of the billing units a message of ``nbytes`` pays for (a mailbox check: 0 bytes)."""
        return self.budget.cost(nbytes).billed_bytes

    def build_plan(self, now: float, state: BudgetState, anyway: bool = False) -> tuple[FramePlan, Selection]:
        """What the next frame would carry (``anyway``: a session opens whatever)."""
        day, month = periods(now)
        # Enough units per (class, member) queue to fill a frame even with the smallest items.
        pending = self.store.pending_units(
            now, self.config.link.resend_after_s, max(64, self.link.mo_limit // 4)
        )
        members = {q.member for q in pending if q.member is not None}
        allowances = {
            m: allowance_state(
                self.allowance_policy, self.store.member_usage(m, day), self.store.member_usage(m, month)
            )
            for m in members
        }
        selection = self.packer.select(pending, state, allowances)
        core, fillers = ride_along(selection, self.scheduler.policy, now, self.link.mo_limit)
        plan = self.link.plan(core, now, fillers=fillers, paid=self._paid, anyway=anyway)
        if (
            plan.queued
            and not state.exhausted
            and not self.budget.affordable(state, self.budget.cost(plan.size))
        ):
            # Ordinary traffic must not overrun the budget: exempt traffic alone, or what still fits.
            spent = replace(state, day_used=max(state.day_used, state.day_limit), month_used=state.month_used)
            if not spent.exhausted:
                spent = replace(state, month_used=max(state.month_used, state.month_limit))
            exempt = self.packer.select(pending, spent, allowances)
            plan = self.link.plan(exempt.units, now, anyway=anyway)
            if not plan.queued:
                plan = self.link.plan(core, now, self.budget.affordable_bytes(state), anyway=anyway)
            held = dict(selection.held)
            held["budget spent"] = held.get("budget spent", 0) + len(selection.units) - len(plan.queued)
            selection = Selection(
                [q for q in selection.units if q in set(plan.queued)] or selection.units,
                held,
                selection.oldest,
            )
        return plan, selection

    def turn(self, now: float, ring: bool = False) -> Turn:
        """What the next frame would carry and whether to open a session for it now."""
        state = self.budget_state(now)
        plan, selection = self.build_plan(now, state)
        oldest = dict(selection.oldest)
        classes = set(plan.classes)
        if plan.standalone:
            # An acknowledgement or resend request has waited for a frame going anyway long enough.
            classes.add(PriorityClass.CONTROL)
            bound = self.scheduler.policy.latency_s.get(PriorityClass.CONTROL, 0.0)
            oldest[PriorityClass.CONTROL] = min(oldest.get(PriorityClass.CONTROL, now), now - bound)
        view = QueueView(
            plan.size,
            self.link.mo_limit,
            frozenset(classes),
            oldest,
            int(plan.cumulative is not None) + len(plan.resend),
            selection.held,
            self.budget.affordable(state, self.budget.cost(0)),
        )
        decision = self.scheduler.decide(now, view, state, ring)
        turn = Turn(now, state, plan, view, decision)
        self.last_turn = turn
        if decision.reason != self._last_reason:
            log.info("%s", decision.reason)
            self._last_reason = decision.reason
        return turn

    def _session_plan(self, turn: Turn) -> FramePlan:
        """The frame a session that opens now carries: its first billing unit is paid whatever, so a
        position report (at most every ``telemetry.interval_s``) and lower classes fill what is left."""
        now = turn.now
        interval = self.config.telemetry.interval_s
        carry = turn.decision.send_frame or self._paid(0) > 0  # a check may carry what costs no more
        if not carry:
            return FramePlan([], 0, frozenset())
        waiting = self.store.pending_units(now, self.config.link.resend_after_s, per_queue=1)
        if (
            interval > 0
            and now - self._last_telemetry >= interval
            and not any(q.cls == PriorityClass.TELEMETRY and q.first_send for q in waiting)
        ):
            size = turn.plan.size if turn.decision.send_frame else 0
            overhead = self.link.wire.overhead(self.store.peek_counter())
            record = telemetry_record(
                now, self.positions.best(now), self.store.queue_depth(), turn.budget, self.stats
            )
            if self._paid(size) - max(size, overhead) >= len(dumps(record.body())) + TELEMETRY_ITEM_HEAD:
                self.queue_telemetry(now, turn.budget)
        return self.build_plan(now, turn.budget, anyway=True)[0]

    async def _session_loop(self) -> None:
        cfg = self.config.link
        while not self._stopping.is_set():
            now = self.clock.now()
            self.housekeeping(now)
            if self.modem is None:
                await self._wait(cfg.idle_poll_s)
                continue
            ring = self.modem.ring_event.is_set()
            turn = self.turn(now, ring)
            decision = turn.decision
            if not decision.open:
                await self._wait(max(0.01, min(cfg.idle_poll_s, decision.wait_s or cfg.idle_poll_s)))
                continue
            await self._run_session(turn)

    async def _run_session(self, turn: Turn) -> None:
        assert self.modem is not None
        decision = turn.decision
        plan = self._session_plan(turn)
        frame = self.link.seal(plan) if not plan.empty else None
        self.session_plan = plan  # what this session carries and why (read by the fleet simulation)
        # Every session collects what waits ashore: a ring that came before it is answered by it.
        rang = self.modem.ring_event.is_set()
        self.modem.ring_event.clear()
        log.info(
            "%s (%s)",
            decision.reason,
            f"frame {frame.counter}, {len(frame.data)} B" if frame else "mailbox check",
        )
        self._last_reason = decision.reason
        urgent = frame is not None and frame.highest_class == PriorityClass.DISTRESS  # carries an SOS record
        priority = PRIORITY_HIGH if urgent else PRIORITY_LOW
        report = await self.modem.session(
            frame.data if frame else None, decision.answer_ring, priority=priority
        )
        self.stats.sessions += 1
        done = self.clock.now()
        self.stats.last_session_at = done
        keys = periods(done)
        if report.mo_sent:
            self.retry.succeeded()
            self.scheduler.session_done(done)
            self.stats.last_success_at = done
            cost = self.budget.cost(len(frame.data) if frame else 0)
            if frame is not None:
                self.link.frame_sent(frame, done, keys, cost.units)
                self.packer.fair.charge(frame.queued)
                self.stats.frames_sent += 1
                self.stats.bytes_sent += len(frame.data)
            else:
                self.stats.mailbox_checks += 1
                self.store.charge_session(keys, 0, cost.units)
        else:
            self.stats.failures += 1
            if rang:
                self.modem.ring_event.set()
            if frame is not None:
                self.link.frame_failed(frame)
            delay = self.retry.failed(done, report.mo_status)
            log.info(
                "session failed (MO status %s, %s): retry %d in %.0f s",
                report.mo_status,
                report.error,
                self.retry.failures,
                delay,
            )
        if report.mo_sent:
            await self._take_network_time()
            await self._take_network_position(done)
        for mt in report.mt_messages:
            self.stats.frames_received += 1
            self.store.charge_session(keys, len(mt), self.budget.cost(len(mt)).units, sessions=0)
            result = self.link.receive(mt, done)
            if result.delivered_rids:
                log.info("shore confirmed records %s", result.delivered_rids)
        backlogged = {q.member for q in self.store.pending_units(done, float("inf")) if q.member is not None}
        self.packer.fair.forget_idle({m for m in backlogged if m is not None})

    async def _take_network_position(self, now: float) -> None:
        """The position the satellite network gives for the vessel, where the modem reports one."""
        position = getattr(self.modem, "position", None)
        if position is None:
            return
        try:
            where = await position()
        except DriverError as exc:
            log.info("no network position: %s", exc)
            return
        if where is not None:
            source = self.idp_position if self.profile.family == "inmarsat-idp" else self.iridium_position
            source.update(where[0], where[1], now)

    async def _take_network_time(self) -> None:
        """Without a fresh GNSS fix, set the clock from the modem's network time (after a session, when
        the modem has just heard the network)."""
        fix = self.gps.latest()
        base_now = self.clock.base.now()
        if fix is not None and self.clock.now() - fix.at <= self.config.telemetry.position_max_age_s:
            return
        network_time = getattr(self.modem, "network_time", None)
        if network_time is None:
            return
        try:
            seconds = await network_time()
        except DriverError as exc:
            log.info("no network time: %s", exc)
            return
        if seconds is not None and self.clock.adopt(seconds, base_now):
            log.warning(
                "no GNSS fix: clock set from the satellite network's time (offset %+.1f s)", self.clock.offset
            )

    async def _gps_loop(self) -> None:
        """Read NMEA sentences from a GPS on a serial port (pyserial in a worker thread)."""
        import serial  # pyserial

        cfg = self.config.telemetry
        try:
            port = serial.Serial(cfg.gps_port, cfg.gps_baud, timeout=1.0)
        except (serial.SerialException, OSError) as exc:
            log.warning("GPS on %s unavailable: %s", cfg.gps_port, exc)
            return
        try:
            while not self._stopping.is_set():
                line = await asyncio.to_thread(port.readline)
                if line:
                    self.gps.feed_line(line, self.clock.now())
        except (serial.SerialException, OSError) as exc:
            log.warning("GPS on %s stopped: %s", cfg.gps_port, exc)
        finally:
            port.close()


def _maybe_path(base: Path, value: str) -> str:
    candidate = resolve(base, Path(value))
    return str(candidate) if candidate.exists() else value


def _show_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else host
