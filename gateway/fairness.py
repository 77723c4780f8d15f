"""Fair shares inside the crew class: byte-fair ordering between members, allowances, guaranteed minimum.

Crew messages are one priority class whatever their destination, so the gateway cannot rank them; it
can only be fair between the people who wrote them. This module owns that fairness:

- **Byte-fair order.** Members with waiting messages are served by bytes, deficit-round-robin style
  with a one-byte quantum: each member carries a served-bytes counter, and the next unit packed is the
  one that leaves its member with the smallest counter. A member who was idle joins at the level of the
  least-served active member, so silence earns no credit and a busy phone cannot starve the others.
  Between two members who both keep a backlog, bytes served differ by at most one unit.
- **Allowance.** A member may have a byte allowance per UTC day and per UTC month. A member who has
  used it waits for the next period (the message stays queued, visibly).
- **Guaranteed minimum.** Each member's first ``guaranteed_day_bytes`` bytes a day go out even when the
  vessel budget is exhausted.

It does no I/O: callers pass usage figures read from the store.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .store import QueuedUnit


@dataclass(frozen=True)
class AllowancePolicy:
    day_bytes: int = 0  # 0 = unlimited
    month_bytes: int = 0  # 0 = unlimited
    guaranteed_day_bytes: int = 0  # exempt from the vessel budget


@dataclass(frozen=True)
class AllowanceState:
    """What the captive page shows a member: used and remaining bytes (None = unlimited)."""

    day_used: int
    month_used: int
    day_left: int | None
    month_left: int | None
    guaranteed_left: int

    @property
    def exhausted(self) -> bool:
        return (self.day_left is not None and self.day_left <= 0) or (
            self.month_left is not None and self.month_left <= 0
        )


def allowance_state(policy: AllowancePolicy, day_used: int, month_used: int) -> AllowanceState:
    return AllowanceState(
        day_used,
        month_used,
        None if policy.day_bytes <= 0 else max(0, policy.day_bytes - day_used),
        None if policy.month_bytes <= 0 else max(0, policy.month_bytes - month_used),
        max(0, policy.guaranteed_day_bytes - day_used),
    )


class FairShare:
    """Byte-fair interleaving of members' units (kept in RAM; a restart starts everyone level)."""

    def __init__(self) -> None:
        self.served: dict[int, int] = {}

    def order(self, units: Iterable[QueuedUnit]) -> list[QueuedUnit]:
        """Interleave crew units by bytes; each member's own units keep their (oldest first) order."""
        queues: dict[int, list[QueuedUnit]] = {}
        for q in units:
            queues.setdefault(q.member if q.member is not None else -1, []).append(q)
        if not queues:
            return []
        active = [m for m in queues if m in self.served]
        floor = min((self.served[m] for m in active), default=0)
        level = {m: max(self.served.get(m, floor), floor) for m in queues}
        heads = dict.fromkeys(queues, 0)
        out: list[QueuedUnit] = []
        while heads:
            member = min(heads, key=lambda m: (level[m] + queues[m][heads[m]].size, m))
            q = queues[member][heads[member]]
            level[member] += q.size
            out.append(q)
            heads[member] += 1
            if heads[member] == len(queues[member]):
                del heads[member]
        return out

    def charge(self, units: Iterable[QueuedUnit]) -> None:
        """Count what was actually sent; members with nothing queued any more drop out."""
        for q in units:
            member = q.member if q.member is not None else -1
            if member not in self.served:
                self.served[member] = min(self.served.values(), default=0)
            self.served[member] += q.size

    def forget_idle(self, backlogged: set[int]) -> None:
        for member in list(self.served):
            if member not in backlogged:
                del self.served[member]
        if self.served:
            base = min(self.served.values())
            self.served = {m: v - base for m, v in self.served.items()}
