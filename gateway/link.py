"""The vessel's end of the link protocol: builds the next frame to send and takes frames received.

It joins the wire format to the durable store: which units go in the next frame (class order; lower
classes that are not yet late only fill the billing unit already paid for), what the frame says about
the shore's frames (a cumulative acknowledgement and resend requests riding along, void declarations
for counters the shore need not wait for — ``wire.ackpolicy``), what happens when the modem reports the
frame sent, and what a frame from the shore does (acknowledgements free our units, resend requests make
them due again, replies go into the crew inbox). It has no modem, socket or clock of its own.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field

from wire.ackpolicy import (
    CumAckItem,
    ResendItem,
    VoidItem,
    first_runs,
)
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


@dataclass(frozen=True)
class AckTiming:
    """When the vessel speaks about the shore's frames (seconds)."""

    cumulative_interval_s: float = 86400.0  # a cumulative ack opens a session alone only after this long
    resend_grace_s: float = 3600.0  # a missing shore frame is asked for alone after this long
    reorder_grace_s: float = 120.0  # a gap younger than this may still be a frame on its way


@dataclass
class OutgoingFrame:
    counter: int
    data: bytes
    units: list[Unit]
    plan: FramePlan
    highest_class: int | None  # class of the most urgent unit carried, None for an ack-only frame
    queued: list[QueuedUnit] = field(default_factory=list)


@dataclass(frozen=True)
class FramePlan:
    """The frame the link would build now, before a counter is spent on it."""

    queued: list[QueuedUnit]
    size: int  # bytes the sealed frame will have (0: nothing to send)
    classes: frozenset[int]
    cumulative: CumAckItem | None = None
    resend: frozenset[int] = frozenset()
    voids: tuple[int, ...] = ()
    standalone: str = ""  # why the acknowledgement items may go alone ("" = they only ride along)
    items: list[bytes] = field(default_factory=list)  # the units' items in the form they travel

    @property
    def empty(self) -> bool:
        return self.size == 0


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
        timing: AckTiming | None = None,
    ) -> None:
        self.store = store
        self.key = key
        self.mo_limit = mo_limit
        self.resend_after_s = resend_after_s
        self.wire = wire_format(wire_version)
        self.crew_epoch = crew_epoch or (lambda: None)
        self.clock = clock or (lambda: 0.0)
        self.timing = timing or AckTiming()
        self.rejected: dict[str, int] = {}

    def plan(
        self,
        ordered: list[QueuedUnit],
        now: float,
        max_bytes: int | None = None,
        fillers: list[QueuedUnit] | None = None,
        paid: Callable[[int], int] | None = None,
        anyway: bool = False,
    ) -> FramePlan:
        """Pack ``ordered`` (already eligible, most urgent first) into one frame's worth, at most
        ``max_bytes`` sealed if given; nothing is reserved or written.

        Acknowledgements, resend requests and void declarations ride along on a frame with units in it
        (or alone when one is due: ``standalone``). ``fillers`` (lower classes not yet late) only fill
        the room left before the end of the billing unit the frame pays anyway (``paid(size)`` gives
        that end). ``anyway``: a session opens whatever, so its first billing unit is paid already."""
        t = self.timing
        counter = self.store.peek_counter()
        limit_room = self.wire.capacity(self.mo_limit, counter)
        room = limit_room if max_bytes is None else max(0, limit_room - max(0, self.mo_limit - max_bytes))
        overhead = self.wire.overhead(counter)
        ledger = self.store.mt_ledger()
        resend = ledger.resend_due(now, t.resend_grace_s)
        standalone = "resend-request" if resend else ""
        cumulative = ledger.cumulative(now, t.reorder_grace_s)
        if (
            not standalone
            and cumulative is not None
            and ledger.standalone_ack_due(now, t.cumulative_interval_s)
        ):
            standalone = "ack"
        voids = tuple(sorted(first_runs(self.store.voids_owed())))
        epoch, clock_now = self.crew_epoch(), self.clock()
        if epoch is not None and any(q.unit.rid == epoch.base_rid for q in ordered):
            epoch = None  # the epoch's own announcement (re)sent: this frame must open without it
        ready = [(q, self.wire.prepare(q.unit.item, epoch, clock_now)) for q in ordered]
        meta, meta_len = FramePlan([], 0, frozenset()), 0
        taken: list[tuple[QueuedUnit, bytes]] = []
        # Units come first: a unit cut to fill a frame alone must not be crowded out by what rides
        # along (a cumulative acknowledgement can wait for the next frame; a void declaration, small
        # and what the shore needs to stop asking, is dropped last) unless one is due on its own.
        for meta in (
            FramePlan([], 0, frozenset(), cumulative, resend, voids),
            FramePlan([], 0, frozenset(), None, resend, voids),
            FramePlan([], 0, frozenset(), None, frozenset(), voids),
            FramePlan([], 0, frozenset()),
        ):
            meta_len = sum(self.wire.cost(i) for i in self.meta_items(meta))
            if meta_len >= room:
                meta, meta_len = FramePlan([], 0, frozenset()), 0
                continue
            taken = fill_frame([], ready, room - meta_len, lambda pair: pair[1], self.wire.cost).units
            if taken or not ordered or standalone:
                break
        if not taken and not standalone and not anyway:
            return FramePlan([], 0, frozenset())
        used = meta_len + sum(self.wire.cost(item) for _, item in taken)
        if fillers and paid is not None:
            spare = min(room - used, paid(overhead + used) - overhead - used)
            if spare > 0:
                extra = [(q, self.wire.prepare(q.unit.item, epoch, clock_now)) for q in fillers]
                taken += fill_frame([], extra, spare, lambda pair: pair[1], self.wire.cost).units
        items = [item for _, item in taken]
        if not items and not meta_len:
            return FramePlan([], 0, frozenset())
        chosen = [q for q, _ in taken]
        return FramePlan(
            chosen,
            overhead + self.wire.plaintext_size(self.meta_items(meta) + items),
            frozenset(q.cls for q in chosen),
            meta.cumulative,
            meta.resend,
            meta.voids,
            standalone,
            items,
        )

    def meta_items(self, plan: FramePlan) -> list[bytes]:
        """What ``plan`` says about the shore's frames, in the version this vessel sends."""
        items = []
        if plan.resend:
            items.append(self.wire.encode_policy(ResendItem(plan.resend)))
        if plan.cumulative is not None:
            items.append(self.wire.encode_policy(plan.cumulative))
        if plan.voids:
            items.append(self.wire.encode_policy(VoidItem(frozenset(plan.voids))))
        return items

    def seal(self, plan: FramePlan) -> OutgoingFrame:
        """Spend a counter on ``plan`` and seal it."""
        counter = self.store.next_counter()
        items = self.meta_items(plan) + (plan.items or [q.unit.item for q in plan.queued])
        data = self.wire.seal(self.key, Direction.MO, counter, items, self.mo_limit, self.crew_epoch())
        top = min(plan.classes, default=None)
        return OutgoingFrame(counter, data, [q.unit for q in plan.queued], plan, top, plan.queued)

    def frame_sent(
        self, frame: OutgoingFrame, now: float, periods: tuple[str, ...] = (), billing_units: int = 0
    ) -> None:
        """The network accepted the frame ("sent via satellite"); what it said about the shore's frames
        is said."""
        ledger = self.store.mt_ledger()
        if frame.plan.cumulative is not None:
            ledger.cumulative_sent(frame.plan.cumulative, now)
        ledger.resend_sent(frame.plan.resend)
        self.store.frame_sent(
            frame.counter,
            frame.units,
            len(frame.data),
            list(frame.plan.voids),
            now,
            periods,
            billing_units,
            ledger,
        )
        epoch = self.crew_epoch()
        if epoch is not None and not epoch.announced and any(u.rid == epoch.base_rid for u in frame.units):
            epoch.announced = True  # the shore can open frames sealed under this epoch from now on

    def frame_failed(self, frame: OutgoingFrame) -> None:
        """The session failed: the counter is spent; tell the shore not to wait for it."""
        self.store.frame_failed(frame.counter)

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
        ledger = self.store.mt_ledger()
        ledger.receive(head.counter, now, carries_records)
        for item in items:
            if isinstance(item, VoidItem):
                ledger.void(item.counters, now)

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

        self.store.rx_frame(window, ledger, apply)
        for item in items:
            if isinstance(item, AckItem):
                result.delivered_rids.extend(self.store.frames_acked(item.counters, now))
            elif isinstance(item, CumAckItem):
                result.delivered_rids.extend(self.store.frames_cumulative(item, now))
            elif isinstance(item, ResendItem):
                self.store.frames_missing(item.counters)
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
