"""Acknowledgement by exception: the items and the receipt ledger both ends keep.

The network's own "accepted" status (``+SBDIX`` MO status 0–4, IDP return message completed) is the
normal proof of sending, so no frame is acknowledged one by one. Instead the receiver of a direction
keeps a ``ReceiptLedger`` of the peer's frame counters and says, on frames that go anyway:

- ``[4, upto, missing]`` or ``[4, upto, missing, start]`` **cumulative acknowledgement**: of the
  peer's counters from ``start`` (0 when left out) to ``upto``, every one was received (or declared
  void) except those in ``missing`` (run list, may be empty). The sender frees what those frames
  carried and resends what the missing ones carried.
- ``[3, runs]`` **resend request**: these counters never arrived; resend what they carried.
- ``[5, runs]`` **void declaration** (from the sender): do not wait for these counters of mine — the
  session that carried them failed, they were skipped after a restart, or what they carried has been
  resent in a later frame.

Correctness never depends on these small items arriving: a sender keeps every unit until a
cumulative (or explicit) acknowledgement covers it and resends what is still uncovered after its long
resend interval; the receiver delivers each record once. A counter is settled once, so a replayed
frame never earns a second acknowledgement.

This module is pure: no clocks (``now`` is passed in), no storage (``to_json``/``from_json``).
It must not import ``wire.items`` (which imports it to decode the items).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

import cbor2

from .ack import decode_ranges, encode_ranges
from .errors import LocalWireError, MalformedError

ITEM_RESEND = 3
ITEM_CUMACK = 4
ITEM_VOID = 5
POLICY_ITEMS = frozenset({ITEM_RESEND, ITEM_CUMACK, ITEM_VOID})

#: A jump of the peer's counter opens at most this many holes (a gateway skips at most 64 counters
#: after a restart); counters further back in one jump are not waited for.
MAX_TRACKED = 1024
#: At most this many runs of consecutive counters are named in one resend request, void declaration or
#: cumulative ack's missing list (a run costs 2–6 bytes, so an item stays small whatever the gaps).
MAX_RUNS = 16


def first_runs(counters: set[int] | frozenset[int] | list[int], max_runs: int = MAX_RUNS) -> frozenset[int]:
    """The lowest ``counters`` that make at most ``max_runs`` runs of consecutive values."""
    out: list[int] = []
    runs = 0
    for c in sorted(set(counters)):
        if not out or c != out[-1] + 1:
            runs += 1
            if runs > max_runs:
                break
        out.append(c)
    return frozenset(out)


@dataclass(frozen=True)
class ResendItem:
    counters: frozenset[int]


@dataclass(frozen=True)
class CumAckItem:
    upto: int
    missing: frozenset[int] = frozenset()
    start: int = 0  # the lowest counter it speaks for

    def covers(self, counter: int) -> bool:
        return self.start <= counter <= self.upto and counter not in self.missing


@dataclass(frozen=True)
class VoidItem:
    counters: frozenset[int]


PolicyItem = ResendItem | CumAckItem | VoidItem


def _dumps(value: Any) -> bytes:
    return cbor2.dumps(value, canonical=True)


def _some(counters: set[int] | frozenset[int] | list[int], what: str) -> list[int]:
    if not counters:
        raise LocalWireError(f"a {what} needs at least one counter")
    return encode_ranges(counters)


def encode_resend_item(counters: set[int] | frozenset[int] | list[int]) -> bytes:
    return _dumps([ITEM_RESEND, _some(counters, "resend request")])


def encode_cumack_item(
    upto: int,
    missing: set[int] | frozenset[int] | list[int] = (),
    start: int = 0,  # type: ignore[assignment]
) -> bytes:
    if not 0 <= start <= upto or any(c > upto or c < start for c in missing):
        raise LocalWireError("missing counters must lie in start..upto")
    tail = [start] if start else []
    return _dumps([ITEM_CUMACK, upto, encode_ranges(missing), *tail])


def encode_void_item(counters: set[int] | frozenset[int] | list[int]) -> bytes:
    return _dumps([ITEM_VOID, _some(counters, "void declaration")])


def decode_policy_item(value: list[Any]) -> PolicyItem:
    """Decode an item array whose tag is in ``POLICY_ITEMS``; typed errors on anything invalid."""
    tag = value[0]
    if tag == ITEM_RESEND and len(value) == 2:
        counters = decode_ranges(value[1])
        if not counters or len(counters) > MAX_TRACKED:
            raise MalformedError("resend request must name 1..1024 counters")
        return ResendItem(frozenset(counters))
    if tag == ITEM_VOID and len(value) == 2:
        counters = decode_ranges(value[1])
        if not counters or len(counters) > MAX_TRACKED:
            raise MalformedError("void declaration must name 1..1024 counters")
        return VoidItem(frozenset(counters))
    if tag == ITEM_CUMACK and len(value) in (3, 4):
        upto, start = value[1], value[3] if len(value) == 4 else 0
        if type(upto) is not int or type(start) is not int or not 0 <= start <= upto:
            raise MalformedError("cumulative ack bounds must be integers with 0 <= start <= upto")
        if len(value) == 4 and start == 0:
            raise MalformedError("a cumulative ack from 0 leaves its start out")
        missing = decode_ranges(value[2]) if value[2] != [] else set()
        if len(missing) > MAX_TRACKED or any(c > upto or c < start for c in missing):
            raise MalformedError("cumulative ack names missing counters beyond its bounds")
        return CumAckItem(upto, frozenset(missing), start)
    raise MalformedError(f"bad acknowledgement-policy item {tag!r}/{len(value)}")


@dataclass
class ReceiptLedger:
    """What one end received of the peer's frame counters, and what it still owes the peer about them.

    ``base``: the lowest counter it speaks for (counters below were never tracked: a cumulative ack
    never claims them). ``floor``: every counter from ``base`` below it is settled. ``settled``: settled counters at or above ``floor``
    (received, or declared void by the peer). ``holes``: counters below the highest settled one that
    are not settled, with the time each was first noticed. ``asked``: holes already named in a resend
    request. ``unacked_since``: when the oldest receipt not yet covered by a cumulative ack was taken
    (``None``: nothing to acknowledge). ``acked_upto``: the bound of the last cumulative ack sent.
    """

    floor: int = 0
    settled: set[int] = field(default_factory=set)
    holes: dict[int, float] = field(default_factory=dict)
    asked: set[int] = field(default_factory=set)
    unacked_since: float | None = None
    acked_upto: int = -1
    base: int = 0

    @property
    def highest(self) -> int:
        return max(self.settled) if self.settled else self.floor - 1

    def _settle(self, counter: int, now: float) -> bool:
        if counter < self.floor or counter in self.settled:
            return False
        top = self.highest
        if counter > top + 1:
            if counter - (top + 1) > MAX_TRACKED:
                # Too wide a jump to track: speak only for the counters from here on.
                self.base = self.floor = counter - MAX_TRACKED
                self.holes, self.asked = {}, set()
                self.settled = set()
                top = self.floor - 1
            for c in range(top + 1, counter):
                self.holes.setdefault(c, now)
        self.settled.add(counter)
        self.holes.pop(counter, None)
        self.asked.discard(counter)
        self._compact()
        return True

    def _compact(self) -> None:
        top = self.highest
        lowest_hole = min(self.holes) if self.holes else top + 1
        if lowest_hole > self.floor:
            self.settled = {c for c in self.settled if c >= lowest_hole}
            self.floor = lowest_hole
            if not self.settled:
                # Keep the highest received counter so the next gap is seen.
                self.settled.add(lowest_hole - 1)
                self.floor = lowest_hole - 1

    def receive(self, counter: int, now: float, needs_ack: bool = True) -> bool:
        """A frame of the peer arrived. True the first time this counter is seen (a replay or a
        counter already declared void earns nothing). ``needs_ack``: it carried records."""
        first = self._settle(counter, now)
        if first and needs_ack and self.unacked_since is None:
            self.unacked_since = now
        return first

    def void(self, counters: frozenset[int] | set[int], now: float) -> None:
        """The peer declared these counters void: stop waiting for them."""
        for c in sorted(counters):
            if c >= self.floor:
                if c > self.highest and c - self.highest > MAX_TRACKED:
                    continue  # nothing a real peer declares; do not let it open a wide range of holes
                self._settle(c, now)

    def cumulative(self, now: float, grace_s: float) -> CumAckItem | None:
        """The cumulative ack to put on a frame going now, or None when it would say nothing new.
        Holes younger than ``grace_s`` (a frame may still be on its way) bound it from above."""
        young = [c for c, since in self.holes.items() if now - since < grace_s]
        upto = min(self.highest, min(young) - 1) if young else self.highest
        if upto < 0:
            return None
        missing = first_runs([c for c in self.holes if c <= upto])
        if missing and max(missing) < max(c for c in self.holes if c <= upto):
            upto = max(missing)  # never claim a hole that did not fit in the list
        if upto < self.base or (upto <= self.acked_upto and not missing):
            return None
        return CumAckItem(upto, missing, self.base)

    def cumulative_sent(self, item: CumAckItem, now: float) -> None:
        self.acked_upto = max(self.acked_upto, item.upto)
        self.asked.update(item.missing)
        self.unacked_since = None if item.upto >= self.highest else now

    def resend_due(self, now: float, grace_s: float) -> frozenset[int]:
        """Holes older than ``grace_s`` not yet asked for."""
        due = sorted(c for c, since in self.holes.items() if now - since >= grace_s and c not in self.asked)
        return first_runs(due)

    def resend_sent(self, counters: frozenset[int]) -> None:
        self.asked.update(counters)

    def standalone_ack_due(self, now: float, interval_s: float) -> bool:
        """A cumulative ack is owed alone: receipts wait longer than ``interval_s`` for a frame going
        anyway."""
        return self.unacked_since is not None and now - self.unacked_since >= interval_s

    def copy(self) -> ReceiptLedger:
        """An independent copy (its sets and maps are not shared)."""
        return replace(self, settled=set(self.settled), holes=dict(self.holes), asked=set(self.asked))

    def to_json(self) -> str:
        return json.dumps(
            {
                "f": self.floor,
                "s": encode_ranges(self.settled),
                "h": sorted(self.holes.items()),
                "a": sorted(self.asked),
                "u": self.unacked_since,
                "k": self.acked_upto,
                "b": self.base,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | None) -> ReceiptLedger:
        if not text:
            return cls()
        d = json.loads(text)
        return cls(
            d["f"],
            decode_ranges(d["s"]) if d["s"] else set(),
            {int(c): float(t) for c, t in d["h"]},
            set(d["a"]),
            d["u"],
            d["k"],
            d.get("b", 0),
        )
