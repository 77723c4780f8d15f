"""Compact telemetry and alert records: what the gateway tells the shore about itself.

It owns turning the gateway's state (best position fix, queue depth per class, budget fractions, link
statistics) into a ``Telemetry`` record body, and budget alerts into ``Alert`` bodies. It does not decide
when to send them (the daemon queues telemetry every ``telemetry.interval_s`` and an alert once per
level and period), and it reads no clock: callers pass ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass

from wire.records import Alert, Telemetry, to_wire_time

from .budget import BudgetState
from .position import Fix


@dataclass
class LinkStats:
    sessions: int = 0
    failures: int = 0
    frames_sent: int = 0
    bytes_sent: int = 0
    frames_received: int = 0
    mailbox_checks: int = 0
    last_session_at: float = 0.0
    last_success_at: float = 0.0

    def as_tuple(self) -> tuple[int, ...]:
        return (self.sessions, self.failures, self.frames_sent, self.bytes_sent, self.frames_received)


def telemetry_record(
    now: float,
    fix: Fix | None,
    queue: dict[int, tuple[int, int]],
    budget: BudgetState,
    link: LinkStats,
) -> Telemetry:
    return Telemetry(
        created=to_wire_time(now),
        latitude_e5=None if fix is None else round(fix.latitude * 1e5),
        longitude_e5=None if fix is None else round(fix.longitude * 1e5),
        fix_source=None if fix is None else fix.source_index,
        fix_age_s=None if fix is None else max(0, int(now - fix.at)),
        queue=tuple((cls, n, b) for cls, (n, b) in sorted(queue.items())),
        budget_day_permille=min(65535, round(budget.day_fraction * 1000)),
        budget_month_permille=min(65535, round(budget.month_fraction * 1000)),
        link=link.as_tuple(),
    )


def budget_alert(now: float, state: BudgetState, period: str, level: float, currency: str) -> Alert:
    used = state.day_used if period == "day" else state.month_used
    limit = state.day_limit if period == "day" else state.month_limit
    unit = currency if state.unit == "currency" else state.unit
    return Alert(to_wire_time(now), "budget", period, round(level * 1000), round(used, 4), limit, unit)
