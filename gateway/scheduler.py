"""When to open a satellite session, and what to put in it: the gateway's link policy, without I/O.

It owns three decisions and the reasons for them:

- **What is eligible** (``Packer.select``): pending units in priority-class order (distress, control,
  crew, catch, telemetry), crew units interleaved byte-fairly between members (``fairness``), members
  past their allowance held back, and — when the vessel budget is spent — only distress, control and
  crew traffic inside a member's guaranteed minimum.
- **Whether to open a session now** (``Scheduler.decide``): SOS at once (even with the budget spent,
  in a quiet window or during back-off, whose delays it caps); otherwise after a failed session wait
  out the profile's retry schedule (Iridium guidance: retry quickly a few times, then back off towards
  minutes, never gate on a signal reading); answer ring alerts; keep quiet windows; open for a frame
  that is full enough, or for the oldest waiting unit of a class reaching its latency bound, or for
  anything in a cheap window; run a mailbox check when one is due and affordable.
- **How long to wait before looking again**, so the daemon sleeps until the next deadline.

Every decision carries a reason in words (``session opened: SOS waiting``,
``deferred: frame 31 % full, budget 92 %``). Windows are cron expressions evaluated with
APScheduler's ``CronTrigger`` against the injected clock's time; nothing here reads a clock, sleeps or
touches the store.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.cron import CronTrigger

from common.config import ConfigError
from firmware_profiles import RetryPolicy
from wire.records import PriorityClass

from .budget import BudgetState
from .config import GatewayConfig, LinkSection, WindowSpec
from .fairness import AllowanceState, FairShare
from .modem.retry import retry_delay
from .store import QueuedUnit

DEFAULT_LATENCY_S: dict[int, float] = {
    PriorityClass.DISTRESS: 0.0,
    PriorityClass.CONTROL: 600.0,
    PriorityClass.CREW: 300.0,
    PriorityClass.CATCH: 3600.0,
    PriorityClass.TELEMETRY: 4 * 3600.0,
}


class WindowError(ValueError):
    """A window's cron expression or duration is invalid."""


@dataclass(frozen=True)
class Window:
    """A recurring period: starts on a cron schedule (UTC) and lasts ``duration_s``."""

    cron: str
    duration_s: float

    def __post_init__(self) -> None:
        if self.duration_s <= 0:
            raise WindowError("window duration must be positive")
        try:
            object.__setattr__(self, "_trigger", CronTrigger.from_crontab(self.cron, timezone=UTC))
        except ValueError as exc:
            raise WindowError(f"bad cron expression {self.cron!r}: {exc}") from exc

    def active_until(self, now: float) -> float | None:
        """End of the occurrence of this window that contains ``now``, or None if outside it."""
        at = datetime.fromtimestamp(now, UTC)
        start = self._trigger.get_next_fire_time(None, at - timedelta(seconds=self.duration_s))  # type: ignore[attr-defined]
        while start is not None and start <= at:
            end = start.timestamp() + self.duration_s
            if end > now:
                return end
            start = self._trigger.get_next_fire_time(start, start + timedelta(seconds=1))  # type: ignore[attr-defined]
        return None

    def next_start(self, now: float) -> float | None:
        nxt = self._trigger.get_next_fire_time(None, datetime.fromtimestamp(now, UTC))  # type: ignore[attr-defined]
        return None if nxt is None else nxt.timestamp()


def _in_windows(windows: Iterable[Window], now: float) -> float | None:
    ends = [e for w in windows if (e := w.active_until(now)) is not None]
    return max(ends) if ends else None


@dataclass(frozen=True)
class Policy:
    latency_s: dict[int, float] = field(default_factory=lambda: dict(DEFAULT_LATENCY_S))
    fill_target: float = 0.9  # open for a frame at least this full (fraction of the frame limit)
    mailbox_check_s: float = LinkSection.mailbox_check_s  # 0 = no scheduled mailbox checks
    answer_ring_alerts: bool = True
    ring_hold_s: float = LinkSection.ring_hold_s  # a ring waits this long for a session going anyway
    quiet_windows: tuple[Window, ...] = ()
    cheap_windows: tuple[Window, ...] = ()
    sos_retry_max_s: float = 30.0
    idle_poll_s: float = 1.0


@dataclass(frozen=True)
class Selection:
    """What the packer may put into the next frame, in order, and what it held back and why."""

    units: list[QueuedUnit]
    held: dict[str, int]
    oldest: dict[int, float]  # per class: creation time of the oldest eligible unit


class Packer:
    """Chooses and orders the units the next frame may carry."""

    def __init__(self, fair: FairShare | None = None) -> None:
        self.fair = fair or FairShare()

    def select(
        self,
        pending: list[QueuedUnit],
        budget: BudgetState,
        allowances: dict[int, AllowanceState],
    ) -> Selection:
        held: dict[str, int] = {}
        by_class: dict[int, list[QueuedUnit]] = {}
        guaranteed_left = {m: a.guaranteed_left for m, a in allowances.items()}
        allowance_left = {m: _left(a) for m, a in allowances.items()}
        for q in pending:
            reason = None
            allowance = allowances.get(q.member) if q.member is not None else None
            if q.cls == PriorityClass.CREW and allowance is not None and q.first_send and q.allowance:
                left = allowance_left[q.member]  # type: ignore[index]
                fresh = allowance.day_used == 0 and allowance.month_used == 0 and left == _left(allowance)
                if left < q.size and not fresh:
                    reason = "allowance used"
                else:
                    allowance_left[q.member] = left - q.size  # type: ignore[index]
            if reason is not None:
                pass
            elif budget.exhausted and q.cls not in (PriorityClass.DISTRESS, PriorityClass.CONTROL):
                left = guaranteed_left.get(q.member, 0) if q.member is not None else 0
                if q.cls == PriorityClass.CREW and (left >= q.size or not q.first_send):
                    guaranteed_left[q.member] = left - q.size  # type: ignore[index]
                else:
                    reason = "budget spent"
            if reason is not None:
                held[reason] = held.get(reason, 0) + 1
                continue
            by_class.setdefault(q.cls, []).append(q)
        ordered: list[QueuedUnit] = []
        oldest: dict[int, float] = {}
        for cls in sorted(by_class):
            units = by_class[cls]
            oldest[cls] = min(q.created for q in units)
            ordered.extend(self.fair.order(units) if cls == PriorityClass.CREW else units)
        return Selection(ordered, held, oldest)


@dataclass(frozen=True)
class QueueView:
    """What the scheduler needs to know about the next frame."""

    frame_bytes: int  # size of the frame the packer would build now (0 = nothing eligible)
    frame_limit: int  # the profile's MO limit
    frame_classes: frozenset[int]
    oldest: dict[int, float]  # per class: oldest eligible unit's creation time
    acks_owed: int = 0
    held: dict[str, int] = field(default_factory=dict)
    mailbox_affordable: bool = True  # a mailbox check's cost fits the budget

    @property
    def fill(self) -> float:
        return self.frame_bytes / self.frame_limit if self.frame_limit else 0.0


@dataclass(frozen=True)
class Decision:
    open: bool
    reason: str
    wait_s: float = 0.0  # when not opening: look again after this long at the latest
    send_frame: bool = True  # carry the packed frame (False: a pure mailbox check)
    answer_ring: bool = False
    at: float = 0.0


class RetryState:
    """Back-off after failed sessions along the profile's retry schedule."""

    def __init__(self, retry: RetryPolicy, rng: random.Random) -> None:
        self.retry = retry
        self.rng = rng
        self.failures = 0
        self.next_try = 0.0
        self.last_failure = 0.0

    def failed(self, now: float, mo_status: int | None = None) -> float:
        self.failures += 1
        self.last_failure = now
        delay = retry_delay(self.retry, self.failures, mo_status, self.rng)
        self.next_try = now + delay
        return delay

    def succeeded(self) -> None:
        self.failures = 0
        self.next_try = 0.0


class Scheduler:
    """Decides on sessions; remembers recent decisions with their reasons."""

    def __init__(self, policy: Policy, retry: RetryState, log_size: int = 200) -> None:
        self.policy = policy
        self.retry = retry
        self.last_session = 0.0
        self.ring_since: float | None = None  # when the ring now waiting was first seen
        self.decisions: deque[Decision] = deque(maxlen=log_size)

    def session_done(self, now: float) -> None:
        self.last_session = now
        self.ring_since = None

    def _note(self, decision: Decision) -> Decision:
        self.decisions.append(decision)
        return decision

    def decide(self, now: float, view: QueueView, budget: BudgetState, ring: bool = False) -> Decision:
        p = self.policy
        has_frame = view.frame_bytes > 0
        budget_txt = budget.describe()
        fill_txt = f"frame {view.fill * 100:.0f} % full"

        # 1. Distress goes at once; back-off delays are capped while it waits.
        if PriorityClass.DISTRESS in view.frame_classes:
            capped = self._sos_ready()
            if now >= capped:
                return self._note(Decision(True, "session opened: SOS waiting", answer_ring=ring, at=now))
            return self._note(
                Decision(False, f"deferred: SOS waiting, retry in {capped - now:.0f} s", capped - now, at=now)
            )

        # 2. After a failed session, follow the retry schedule.
        if now < self.retry.next_try:
            wait = self.retry.next_try - now
            return self._note(
                Decision(
                    False,
                    f"deferred: retry {self.retry.failures} in {wait:.0f} s after a failed session",
                    wait,
                    at=now,
                )
            )

        # 3. Quiet windows hold everything but distress.
        quiet_end = _in_windows(p.quiet_windows, now)
        if quiet_end is not None:
            return self._note(
                Decision(
                    False,
                    f"deferred: quiet window until {_hhmm(quiet_end)}",
                    min(quiet_end - now, self._next_deadline(now, view)),
                    at=now,
                )
            )

        # 4. Ring alerts: the shore has something for us.
        answer = self._ring(now, ring, has_frame, budget)
        if answer is not None:
            return self._note(answer)

        # 5. A frame worth sending.
        if has_frame:
            late = self._late_class(now, view)
            cheap_end = _in_windows(p.cheap_windows, now)
            if view.fill >= p.fill_target:
                return self._note(Decision(True, f"session opened: {fill_txt}", at=now))
            if late is not None:
                cls, waited = late
                return self._note(
                    Decision(
                        True,
                        f"session opened: {_class_name(cls)} waiting {_dur(waited)} "
                        f"(bound {_dur(p.latency_s.get(cls, 0.0))}), {fill_txt}",
                        at=now,
                    )
                )
            if cheap_end is not None:
                return self._note(Decision(True, f"session opened: cheap window, {fill_txt}", at=now))

        # 6. Mailbox checks cost money too: only when due and affordable.
        check = self._mailbox(now, view, budget)
        if check is not None:
            return self._note(check)

        held = ", ".join(f"{n} unit(s) held: {r}" for r, n in sorted(view.held.items()) if n)
        if has_frame:
            reason = f"deferred: {fill_txt}, {budget_txt}" + (f", {held}" if held else "")
        elif held:
            reason = f"deferred: {held}, {budget_txt}"
        else:
            reason = "idle: nothing due"
        return self._note(Decision(False, reason, self._next_deadline(now, view), at=now))

    def _ring(self, now: float, ring: bool, has_frame: bool, budget: BudgetState) -> Decision | None:
        """A frame ready answers the ring now and fetches what waits ashore; without one the ring waits
        ``ring_hold_s`` for a session that goes anyway (every MO session fetches for free)."""
        p = self.policy
        if not ring:
            self.ring_since = None
            return None
        if not p.answer_ring_alerts:
            return None
        if self.ring_since is None:
            self.ring_since = now
        if budget.exhausted and not has_frame:
            return Decision(False, f"deferred: ring alert, {budget.describe()}", p.idle_poll_s, at=now)
        if has_frame or now - self.ring_since >= p.ring_hold_s:
            return Decision(
                True, "session opened: ring alert", send_frame=has_frame, answer_ring=True, at=now
            )
        return None

    def _mailbox(self, now: float, view: QueueView, budget: BudgetState) -> Decision | None:
        """A scheduled mailbox check, when due; deferred when it is not affordable."""
        interval = self._mailbox_interval(budget)
        if interval <= 0 or now - self.last_session < interval:
            return None
        has_frame = view.frame_bytes > 0
        if (budget.exhausted or not view.mailbox_affordable) and not has_frame:
            wait = self._next_deadline(now, view)
            return Decision(False, f"deferred: mailbox check due, {budget.describe()}", wait, at=now)
        return Decision(True, "session opened: mailbox check due", send_frame=has_frame, at=now)

    def _sos_ready(self) -> float:
        """SOS never waits more than ``sos_retry_max_s`` after a failed session."""
        if not self.retry.failures:
            return 0.0
        return min(self.retry.next_try, self.retry.last_failure + self.policy.sos_retry_max_s)

    def _mailbox_interval(self, budget: BudgetState) -> float:
        base = self.policy.mailbox_check_s
        return base * 2 if budget.fraction >= 0.8 else base

    def _late_class(self, now: float, view: QueueView) -> tuple[int, float] | None:
        for cls in sorted(view.oldest):
            waited = now - view.oldest[cls]
            if waited >= self.policy.latency_s.get(cls, 0.0):
                return cls, waited
        return None

    def _next_deadline(self, now: float, view: QueueView) -> float:
        waits = [self.policy.idle_poll_s]
        for cls, oldest in view.oldest.items():
            waits.append(oldest + self.policy.latency_s.get(cls, 0.0) - now)
        if self.policy.mailbox_check_s > 0:
            waits.append(self.last_session + self.policy.mailbox_check_s - now)
        if self.ring_since is not None:
            waits.append(self.ring_since + self.policy.ring_hold_s - now)
        future = [w for w in waits if w > 0]  # past deadlines were just considered and deferred
        return min(future) if future else self.policy.idle_poll_s


def _left(a: AllowanceState) -> float:
    """Bytes a member may still send in both periods (a message larger than a whole unused allowance
    still goes, alone, so nothing is stuck forever)."""
    lefts = [v for v in (a.day_left, a.month_left) if v is not None]
    return float(min(lefts)) if lefts else float("inf")


def _class_name(cls: int) -> str:
    try:
        return {
            PriorityClass.DISTRESS: "SOS",
            PriorityClass.CONTROL: "control",
            PriorityClass.CREW: "crew message",
            PriorityClass.CATCH: "catch log",
            PriorityClass.TELEMETRY: "telemetry",
        }[PriorityClass(cls)]
    except ValueError:
        return f"class {cls}"


def _dur(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _hhmm(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%H:%M UTC")


#: Classes that ride along in the billing unit a frame pays anyway until their latency bound is reached.
RIDE_ALONG = frozenset({PriorityClass.CATCH, PriorityClass.TELEMETRY})


def ride_along(
    selection: Selection, policy: Policy, now: float, mo_limit: int
) -> tuple[list[QueuedUnit], list[QueuedUnit]]:
    """Units that may open a session, and lower-class units that only fill the paid unit until their
    class's latency bound is reached — unless they fill a frame on their own, or a cheap window is open."""
    if any(w.active_until(now) is not None for w in policy.cheap_windows):
        return selection.units, []
    core: list[QueuedUnit] = []
    fillers: list[QueuedUnit] = []
    for q in selection.units:
        late = now - selection.oldest.get(q.cls, now) >= policy.latency_s.get(q.cls, 0.0)
        (fillers if q.cls in RIDE_ALONG and not late else core).append(q)
    if sum(q.size for q in fillers) >= policy.fill_target * mo_limit:
        return selection.units, []
    return core, fillers


def windows(specs: list[WindowSpec]) -> tuple[Window, ...]:
    """The configured windows (``[windows]`` quiet or cheap) as the scheduler's."""
    return tuple(Window(w.cron, w.duration_s) for w in specs)


def policy_from_config(config: GatewayConfig) -> Policy:
    lat = config.latency
    if not 0.0 < config.link.fill_target <= 1.0:
        raise ConfigError("link.fill_target must be above 0 and at most 1")
    if any(v < 0 for v in (lat.distress_s, lat.control_s, lat.crew_s, lat.catch_s, lat.telemetry_s)):
        raise ConfigError("latency bounds must not be negative")
    return Policy(
        latency_s={
            PriorityClass.DISTRESS: lat.distress_s,
            PriorityClass.CONTROL: lat.control_s,
            PriorityClass.CREW: lat.crew_s,
            PriorityClass.CATCH: lat.catch_s,
            PriorityClass.TELEMETRY: lat.telemetry_s,
        },
        fill_target=config.link.fill_target,
        mailbox_check_s=config.link.mailbox_check_s,
        answer_ring_alerts=config.link.answer_ring_alerts,
        ring_hold_s=config.link.ring_hold_s,
        quiet_windows=windows(config.windows.quiet),
        cheap_windows=windows(config.windows.cheap),
        sos_retry_max_s=config.link.sos_retry_max_s,
        idle_poll_s=config.link.idle_poll_s,
    )
