"""Filling one frame: control items (acknowledgements) first if they fit, then units in priority order.

The one packing rule both ends use (the vessel's link and the shore's relay), for either format
version: ``cost`` says what an item takes in a frame (v1: its length; v2: its length plus the length
prefix it carries when another item follows). Pure: the caller owns the queue, the counter and sealing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Fill(Generic[T]):
    control: list[bytes] = field(default_factory=list)  # control items taken, in order
    units: list[T] = field(default_factory=list)  # candidates taken, in the order given
    used: int = 0  # bytes of the frame's item capacity taken

    @property
    def empty(self) -> bool:
        return not self.control and not self.units


def fill_frame(
    control: Sequence[bytes],
    candidates: Sequence[T],
    room: int,
    item_of: Callable[[T], bytes],
    cost: Callable[[bytes], int] = len,
) -> Fill[T]:
    """Take each control item that leaves room to spare, then candidates (most urgent first) while
    they fit; a candidate that does not fit is skipped so a smaller one behind it may still go."""
    taken: list[bytes] = []
    left = room
    for item in control:
        if cost(item) < left:
            taken.append(item)
            left -= cost(item)
    chosen: list[T] = []
    for candidate in candidates:
        if left <= 0:
            break
        size = cost(item_of(candidate))
        if size <= left:
            chosen.append(candidate)
            left -= size
    return Fill(taken, chosen, room - left)
