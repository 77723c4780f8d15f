"""A fault plan: what the next sessions of an emulated modem will hit, set by a test or the link model.

This module owns the description of scripted trouble, per session, for both emulators: the MO status
to report (every ``+SBDIX`` status of the SBD developer guide, or an IDP return-message failure), the MT
status, how long the session lasts, ring alerts the network's alerts miss, a power cycle (brown-out)
when the session starts, a blockage of the sky of a given length, and loss of the link partway through
the session. An emulator asks ``take(now)`` when a session starts; an entry applies to that one session.

It must not know AT commands or drive time itself: the emulators apply the entries.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class SessionFault:
    """What one session hits. ``None`` fields are left to the link model."""

    mo_status: int | None = None  # Iridium +SBDIX MO status to report (0..65), IDP: non-zero = Tx Failed
    mt_status: int | None = None  # Iridium MT status: 2 = error while receiving the MT
    duration_s: float | None = None  # how long the session takes
    power_cycle: bool = False  # the modem loses power as the session starts (a brown-out)
    blockage_s: float = 0.0  # the sky is blocked for this long from the session's start
    lost_after_s: float | None = None  # the link is lost this long into the session (status 18)
    missed_ring_alerts: int = 0  # this many of the next ring alerts do not reach the modem


class FaultPlan:
    """Entries for the next sessions, in order; ``blocked_until`` is the end of the current blockage."""

    def __init__(self, faults: Iterable[SessionFault] = ()) -> None:
        self._faults: deque[SessionFault] = deque(faults)
        self.blocked_until = float("-inf")
        self.missed_ring_alerts = 0

    def add(self, *faults: SessionFault) -> None:
        self._faults.extend(faults)

    def block(self, now: float, seconds: float) -> None:
        """Block the sky from ``now`` for ``seconds`` (a mast, a crane, a bridge)."""
        self.blocked_until = max(self.blocked_until, now + seconds)

    def blocked(self, now: float) -> bool:
        return now < self.blocked_until

    def take(self, now: float) -> SessionFault | None:
        """The entry for a session starting at ``now`` (its blockage starts now), or None."""
        if not self._faults:
            return None
        fault = self._faults.popleft()
        if fault.blockage_s > 0:
            self.block(now, fault.blockage_s)
        self.missed_ring_alerts += fault.missed_ring_alerts
        return fault

    def ring_alert_missed(self) -> bool:
        """Consume one planned missed ring alert; True if this one is missed."""
        if self.missed_ring_alerts > 0:
            self.missed_ring_alerts -= 1
            return True
        return False

    def __len__(self) -> int:
        return len(self._faults)
