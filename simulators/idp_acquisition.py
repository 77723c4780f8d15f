"""How an emulated IDP terminal (re)acquires the satellite: the control states it passes through.

This module owns the terminal's satellite control state (trace register S122, reference inmarsat.md
§2.6) as a function of time and of the sky the link model gives: blocked (11) while there is no signal;
when the signal comes back, beam search (3), beam found (4), beam acquired (5) and back to active (10)
after a short outage; after a long one (or a cold start) also waiting for a GNSS fix (1, cold start
only), downloading the bulletin board (9) and registration (7). Only an active terminal transmits or
receives. Durations follow the training material (cold boot to ready 35-60 s, GNSS dominating) and are
multiplied by ``scale`` (the link model's ``duration_scale``).

It must not do I/O, read a clock or take randomness: time comes in as ``now``, the sky as ``bars``.
"""

from __future__ import annotations

WAITING_FOR_GNSS = 1
BEAM_SEARCH = 3
BEAM_FOUND = 4
BEAM_ACQUIRED = 5
REGISTRATION = 7
BULLETIN_BOARD = 9
ACTIVE = 10
BLOCKED = 11

#: An outage longer than this loses the beam's registration: the terminal registers again.
LONG_OUTAGE_S = 600.0
#: (state, seconds) sequences back to ACTIVE.
COLD_START = (
    (WAITING_FOR_GNSS, 30.0),
    (BEAM_SEARCH, 10.0),
    (BEAM_FOUND, 2.0),
    (BULLETIN_BOARD, 8.0),
    (BEAM_ACQUIRED, 3.0),
    (REGISTRATION, 5.0),
)
AFTER_LONG_OUTAGE = ((BEAM_SEARCH, 10.0), (BEAM_FOUND, 2.0), (BEAM_ACQUIRED, 3.0), (REGISTRATION, 5.0))
AFTER_SHORT_OUTAGE = ((BEAM_SEARCH, 3.0), (BEAM_ACQUIRED, 2.0))


class Acquisition:
    """The control state of one terminal; starts ``ACTIVE`` (it was on before anyone looked)."""

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale
        self._sequence: tuple[tuple[int, float], ...] = ()
        self._started = 0.0  # when the current sequence began
        self._blocked_since: float | None = None

    def cold_start(self, now: float) -> None:
        """Power on: GNSS fix, beam search, bulletin board and registration before anything moves."""
        self._blocked_since = None
        self._sequence, self._started = COLD_START, now

    def state(self, now: float, bars: int) -> int:
        """The control state at ``now`` with ``bars`` of signal."""
        if bars <= 0:
            if self._blocked_since is None:
                self._blocked_since = now
            return BLOCKED
        if self._blocked_since is not None:
            outage = now - self._blocked_since
            self._blocked_since = None
            self._sequence = AFTER_LONG_OUTAGE if outage > LONG_OUTAGE_S else AFTER_SHORT_OUTAGE
            self._started = now
        elapsed = now - self._started
        for state, seconds in self._sequence:
            elapsed -= seconds * self.scale
            if elapsed < 0:
                return state
        return ACTIVE

    def active_at(self, now: float) -> float:
        """When the current sequence reaches ``ACTIVE`` (``now`` if it already has)."""
        end = self._started + sum(seconds for _, seconds in self._sequence) * self.scale
        return max(now, end)
