"""Replay window over frame counters (sliding bitmap, as IPsec and DTLS do).

A counter is accepted once; counters older than ``size`` behind the highest seen are refused as too
old (their records are resent in new frames by the sender, so nothing is lost by refusing them).
The state is two integers so the owner can store it anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ReplayError

DEFAULT_WINDOW = 1024


@dataclass
class ReplayWindow:
    highest: int = -1
    bitmap: int = 0  # bit i set = counter (highest - i) seen
    size: int = DEFAULT_WINDOW

    def seen(self, counter: int) -> bool:
        if counter > self.highest:
            return False
        offset = self.highest - counter
        if offset >= self.size:
            return True
        return bool(self.bitmap >> offset & 1)

    def check(self, counter: int) -> None:
        """Raise ``ReplayError`` if ``counter`` must be refused (does not record it)."""
        if counter < 0:
            raise ReplayError("negative counter")
        if self.highest >= 0 and self.highest - counter >= self.size:
            raise ReplayError(f"counter {counter} is older than the replay window")
        if self.seen(counter):
            raise ReplayError(f"counter {counter} was already received")

    def record(self, counter: int) -> None:
        self.check(counter)
        if counter > self.highest:
            shift = counter - self.highest
            self.bitmap = (self.bitmap << shift | 1) & ((1 << self.size) - 1) if self.highest >= 0 else 1
            self.highest = counter
        else:
            self.bitmap |= 1 << (self.highest - counter)
