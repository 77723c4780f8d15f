"""The vessel's end of the link protocol: builds the next frame to send and takes frames received.

It joins the wire format to the durable store: which units go in the next frame (class order, acks
owed to the shore first), what happens when the modem reports the frame sent, and what a frame from the
shore does (acknowledgements, replies into the crew inbox, fragments, acks we now owe). It has no modem,
socket or clock of its own.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field

from wire.errors import RemoteWireError
from wire.fill import fill_frame
from wire.frame import Direction
from wire.items import AckItem, FragmentItem, RecordItem, join_fragments
from wire.records import CrewReply, Kind, from_wire_time
from wire.units import Unit
from wire.v2.crew import FrameEpoch
from wire.versions import open_any, wire_format

from .store import GatewayStore, QueuedUnit

log = logging.getLogger("gateway.link")


@dataclass
class OutgoingFrame:
    counter: int
    data: bytes
    units: list[Unit]
    acks: list[int]
    highest_class: int | None  # class of the most urgent unit carried, None for an ack-only frame
    queued: list[QueuedUnit] = field(default_factory=list)

    @property
    def fill(self) -> float:
        return len(self.data)


@dataclass(frozen=True)
class FramePlan:
    """The frame the link would build now, before a counter is spent on it."""

    queued: list[QueuedUnit]
    acks: list[int]
    size: int  # bytes the sealed frame will have
    classes: frozenset[int]
    items: list[bytes] = field(default_factory=list)  # the units' items in the form they travel

    @property
    def empty(self) -> bool:
        return not self.queued and not self.acks


@dataclass
class IncomingResult:
    accepted: bool
    reason: str = ""
    delivered_rids: list[int] = field(default_factory=list)  # our records the shore confirmed
    replies: int = 0


class VesselLink:
    """``wire_version``: the format this vessel sends (it decodes both); ``crew_epoch``: the current
    crew epoch for frames sealed under it (v2); ``clock``: the time crew items' ages count from."""

    def __init__(
        self,
        store: GatewayStore,
        key: bytes,
        mo_limit: int,
        resend_after_s: float,
        wire_version: int = 1,
        crew_epoch: Callable[[], FrameEpoch | None] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.store = store
        self.key = key
        self.mo_limit = mo_limit
        self.resend_after_s = resend_after_s
        self.wire = wire_format(wire_version)
        self.crew_epoch = crew_epoch or (lambda: None)
        self.clock = clock or (lambda: 0.0)
        self.rejected: dict[str, int] = {}

    def has_traffic(self, now: float) -> bool:
        return bool(self.store.pending_units(now, self.resend_after_s)) or bool(self.store.acks_owed())

    def plan(self, ordered: list[QueuedUnit], max_bytes: int | None = None) -> FramePlan:
        """Pack ``ordered`` (already eligible, most urgent first) plus the acks owed into one frame's
        worth, at most ``max_bytes`` sealed if given; nothing is reserved or written."""
        counter = self.store.peek_counter()
        limit_room = self.wire.capacity(self.mo_limit, counter)
        room = limit_room
        if max_bytes is not None:
            room = max(0, limit_room - max(0, self.mo_limit - max_bytes))
        acks = self.store.acks_owed()
        control = [self.wire.encode_ack(set(acks))] if acks else []
        epoch, now = self.crew_epoch(), self.clock()
        if epoch is not None and any(q.unit.rid == epoch.base_rid for q in ordered):
            epoch = None  # the epoch's own announcement (re)sent: this frame must open without it
        ready = [(q, self.wire.prepare(q.unit.item, epoch, now)) for q in ordered]
        fill = fill_frame(control, ready, room, lambda pair: pair[1], self.wire.cost)
        items = [item for _, item in fill.units]
        chosen = [q for q, _ in fill.units]
        size = (
            self.wire.overhead(counter) + self.wire.plaintext_size(fill.control + items)
            if not fill.empty
            else 0
        )
        return FramePlan(chosen, acks if fill.control else [], size, frozenset(q.cls for q in chosen), items)

    def seal(self, plan: FramePlan) -> OutgoingFrame:
        """Spend a counter on ``plan`` and seal it."""
        counter = self.store.next_counter()
        items: list[bytes] = []
        if plan.acks:
            items.append(self.wire.encode_ack(set(plan.acks)))
        items.extend(plan.items or [q.unit.item for q in plan.queued])
        data = self.wire.seal(self.key, Direction.MO, counter, items, self.mo_limit, self.crew_epoch())
        top = min(plan.classes, default=None)
        return OutgoingFrame(counter, data, [q.unit for q in plan.queued], plan.acks, top, plan.queued)

    def frame_sent(
        self, frame: OutgoingFrame, now: float, periods: tuple[str, ...] = (), billing_units: int = 0
    ) -> None:
        self.store.frame_sent(
            frame.counter, frame.units, len(frame.data), frame.acks, now, periods, billing_units
        )
        epoch = self.crew_epoch()
        if epoch is not None and not epoch.announced and any(u.rid == epoch.base_rid for u in frame.units):
            epoch.announced = True  # the shore can open frames sealed under this epoch from now on

    def receive(self, data: bytes, now: float) -> IncomingResult:
        """Handle one frame from the shore. Never raises on bad input: it is counted and logged."""
        try:
            window = self.store.rx_window()
            head, items = open_any(self.key, data, Direction.MT, window.highest)
            window.record(head.counter)
        except RemoteWireError as exc:
            self.rejected[exc.reason] = self.rejected.get(exc.reason, 0) + 1
            log.warning("rejected frame from shore (%d bytes): %s: %s", len(data), exc.reason, exc)
            return IncomingResult(False, exc.reason)
        result = IncomingResult(True)
        carries_records = any(isinstance(i, RecordItem | FragmentItem) for i in items)

        def apply(db: sqlite3.Connection) -> None:
            for item in items:
                if isinstance(item, RecordItem):
                    self._deliver(db, item, now, result)
                elif isinstance(item, FragmentItem):
                    chunks = GatewayStore.rx_add_fragment(
                        db, item.rid, item.index, item.count, item.chunk, now
                    )
                    try:
                        joined = join_fragments(item.count, chunks)
                    except RemoteWireError as exc:
                        log.warning("dropping bad fragmented record %d: %s", item.rid, exc)
                        GatewayStore.rx_drop_fragments(db, item.rid)
                        continue
                    if joined is not None:
                        GatewayStore.rx_drop_fragments(db, item.rid)
                        self._deliver(db, RecordItem(item.rid, joined.kind, joined.body), now, result)

        self.store.rx_frame(window, head.counter, carries_records, apply)
        for item in items:
            if isinstance(item, AckItem):
                result.delivered_rids.extend(self.store.frames_acked(item.counters, now))
        return result

    def _deliver(self, db: sqlite3.Connection, item: RecordItem, now: float, result: IncomingResult) -> None:
        if not GatewayStore.rx_first_delivery(db, item.rid, now):
            return  # a duplicate: already delivered once
        try:
            if item.kind == Kind.CREW_REPLY:
                reply = CrewReply.from_body(item.body)
                GatewayStore.inbox_add(
                    db, reply.member, reply.sender, reply.text, from_wire_time(reply.created), now, item.rid
                )
                result.replies += 1
            else:
                log.info(
                    "record %d of kind %d from shore has no handler yet; kept as delivered",
                    item.rid,
                    item.kind,
                )
        except RemoteWireError as exc:
            log.warning("record %d from shore is malformed: %s", item.rid, exc)
