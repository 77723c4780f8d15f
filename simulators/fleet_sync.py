"""Fleet simulation, synchronisation: the shore and the vessel groups advance without a common barrier.

Each side may run ahead as far as the other side cannot reach it yet. An MO frame sent at ``t``
reaches the shore at ``t + latency``, an MT frame the shore sends at ``s`` reaches its modem at
``s + latency``, so:

* a vessel group may run up to ``shore time + latency``: every MT frame that reaches it before that is
  already known;
* the shore may run up to the earliest time any group can still send an MO frame, plus the latency.
  A session in progress sends when it ends; a new one opens at a group's next own activity (a
  daemon's timer, a crew message, a haul) or the next MT frame it has not taken yet, at the earliest,
  and sends no sooner than the link's shortest successful session after that (a failed session sends
  nothing); and nothing is sent before the time the group has run to. An MT frame the shore sends
  while it runs from ``s`` can only bring an answer back at ``s + 2 × latency`` plus that shortest
  session, so that is the shore's limit too.

A group with nothing to do before its limit sits the turn out. Whenever a group answers, the shore
runs as far as it may and the idle groups get new work, so the vessel processes rarely wait for the
shore or for each other (a conservative parallel simulation with look-ahead; the vessel groups of
one turn no longer wait for the slowest of them). Each side takes what reaches it in time order
whatever the interleaving, so the run is the same as with a common window, for any number of groups.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Protocol

from .fleet_vessels import Answer, MoFrame, MtFrame


class Group(Protocol):
    @property
    def first(self) -> tuple[float | None, float | None]: ...

    def send_run(self, end: float, mts: list[MtFrame]) -> None: ...

    def receive(self) -> Answer: ...

    @property
    def connection(self) -> Connection | None: ...


class Shore(Protocol):
    mt_out: list[MtFrame]

    def now(self) -> float: ...

    def run_until(self, end: float) -> None: ...

    def mo_sent(self, frames: list[MoFrame]) -> None: ...


@dataclass
class Lane:
    """One vessel group as the coordinator sees it."""

    group: Group
    reached: float  # the group has run everything before this time
    next: float | None  # its next own activity (as of its last answer)
    next_send: float | None  # the earliest it may send, MT frames it has not taken yet aside
    min_send_s: float  # the link's shortest successful session
    pending: list[MtFrame] = field(default_factory=list)  # MT frames for it, not handed over yet
    running: bool = False
    handed_first: float = math.inf  # earliest MT frame handed over with the run in progress
    target: float = 0.0

    def earliest_send(self) -> float:
        """No MO frame leaves this group before this time."""
        bound = min(
            math.inf if self.next_send is None else self.next_send,
            self.handed_first + self.min_send_s,
            min((m[0] for m in self.pending), default=math.inf) + self.min_send_s,
        )
        return max(self.reached, bound)

    def start(self, end: float) -> bool:
        """Hand over the MT frames due before ``end`` and run the group up to it, if it has anything
        to do before then. Returns whether it runs."""
        due = [m for m in self.pending if m[0] < end]
        if not due and (self.next is None or self.next >= end):
            return False
        if due:
            self.pending = [m for m in self.pending if m[0] >= end]
        self.handed_first = min((m[0] for m in due), default=math.inf)
        self.target = end
        self.running = True
        self.group.send_run(end, due)
        return True

    def done(self) -> list[MoFrame]:
        frames, self.next, self.next_send = self.group.receive()
        self.reached = self.target
        self.running = False
        self.handed_first = math.inf
        return frames


class Coordinator:
    """Runs the shore and the vessel groups from ``start`` to ``stop`` (see the module docstring)."""

    def __init__(
        self,
        shore: Shore,
        lanes: list[Lane],
        home: dict[str, int],
        latency: float,
        stop: float,
        progress: Callable[[float], None] | None = None,
    ) -> None:
        if latency <= 0:
            raise ValueError("the network latency is the look-ahead: it must be positive")
        self.shore = shore
        self.lanes = lanes
        self.home = home  # imei -> lane number
        self.latency = latency
        self.stop = stop
        self.progress = progress  # called with the shore's time now and then

    def run(self) -> None:
        shore, lanes = self.shore, self.lanes
        while True:
            limit = min(shore.now() + self.latency, self.stop)
            for lane in lanes:
                if not lane.running:
                    lane.start(limit)
            horizon = min(
                self.stop,
                shore.now() + 2 * self.latency + min(lane.min_send_s for lane in lanes),
                min(lane.earliest_send() for lane in lanes) + self.latency,
            )
            if horizon > shore.now():
                shore.run_until(horizon)
                self._route_mt()
                if self.progress is not None:
                    self.progress(shore.now())
                continue
            running = [lane for lane in lanes if lane.running]
            if not running:
                return  # the shore is at ``stop`` and no group has anything left before it
            self._collect(running)

    def _collect(self, running: list[Lane]) -> None:
        """Wait for at least one running group; take the MO frames of every group that answered."""
        conns = {lane.group.connection: lane for lane in running}
        if None in conns:  # a group in this process has already run: its answer is waiting
            answered = [conns[None]]
        else:
            answered = [conns[c] for c in wait(list(conns)) if isinstance(c, Connection)]
        for lane in answered:
            self.shore.mo_sent(lane.done())

    def _route_mt(self) -> None:
        out, self.shore.mt_out = self.shore.mt_out, []
        for mt in out:
            self.lanes[self.home[mt[1]]].pending.append(mt)
