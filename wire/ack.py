"""Acknowledgement ranges: a set of frame counters as a compact run list.

A set such as {7, 8, 9, 12} is written ``[7, 3, 2, 1]``: first counter, run length, then for every
further run the gap since the end of the previous run and its length. Consecutive counters, the usual
case, cost a few bytes whatever their number.
"""

from __future__ import annotations

from collections.abc import Iterable

from .errors import MalformedError, OversizeError

# A vessel sends a few dozen frames a day: 65,536 counters in one acknowledgement is years of traffic,
# and bounds what a ten-byte item can make the receiver hold (a set of that many ints, a few MiB).
MAX_ACKED_PER_ITEM = 1 << 16


def encode_ranges(counters: Iterable[int]) -> list[int]:
    values = sorted(set(counters))
    if not values:
        return []
    out: list[int] = []
    start = prev = values[0]
    runs: list[tuple[int, int]] = []
    for c in values[1:]:
        if c == prev + 1:
            prev = c
            continue
        runs.append((start, prev - start + 1))
        start = prev = c
    runs.append((start, prev - start + 1))
    end = 0
    for i, (s, n) in enumerate(runs):
        out.extend((s if i == 0 else s - end, n))
        end = s + n
    return out


def decode_ranges(runs: object) -> set[int]:
    if not isinstance(runs, list) or len(runs) % 2 or not all(type(x) is int and x >= 0 for x in runs):
        raise MalformedError("ack ranges must be an even list of non-negative integers")
    out: set[int] = set()
    end = 0
    for i in range(0, len(runs), 2):
        gap, n = runs[i], runs[i + 1]
        if n == 0 or (i > 0 and gap == 0):
            raise MalformedError("empty or touching ack run")
        start = gap if i == 0 else end + gap
        if len(out) + n > MAX_ACKED_PER_ITEM:
            raise OversizeError("too many acknowledged counters")
        out.update(range(start, start + n))
        end = start + n
    return out
