"""Time and randomness sources that components are given, never take for themselves.

Every component that needs the time or randomness takes a ``Clock`` (and a ``random.Random``) in its
constructor. Production passes ``SystemClock``; tests and the fleet simulation pass a ``ManualClock``
and a seeded ``random.Random`` so a month of sea time runs in minutes, reproducibly.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the Unix epoch (UTC)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...


class SystemClock:
    """Wall-clock time; ``sleep`` is ``asyncio.sleep``."""

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ScaledClock:
    """Wall-clock time running ``factor`` times faster from ``start`` (demo and soak runs)."""

    def __init__(self, factor: float, start: float | None = None) -> None:
        if factor <= 0:
            raise ValueError("factor must be positive")
        self.factor = factor
        self._origin_real = time.monotonic()
        self._origin = time.time() if start is None else start

    def now(self) -> float:
        return self._origin + (time.monotonic() - self._origin_real) * self.factor

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.factor)


class ManualClock:
    """A clock that only moves when told to (``advance``); sleepers wake when their time comes."""

    def __init__(self, start: float = 1_735_689_600.0) -> None:  # 2025-01-01T00:00:00Z
        self._now = start
        self._waiters: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time does not run backwards")
        self._now += seconds
        still: list[tuple[float, asyncio.Future[None]]] = []
        for due, fut in self._waiters:
            if due <= self._now:
                if not fut.done():
                    fut.set_result(None)
            else:
                still.append((due, fut))
        self._waiters = still

    def next_due(self) -> float | None:
        """When the earliest sleeper wakes, or None if nobody sleeps (virtual-time drivers use it)."""
        self._waiters = [(d, fut) for d, fut in self._waiters if not fut.done()]
        return min((d for d, _ in self._waiters), default=None)

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((self._now + seconds, fut))
        await fut
