"""The gateway's clock at sea: the host clock, corrected by the satellite network's time while no GNSS
fix keeps it right.

A vessel's computer often has no working RTC battery and no internet; its GPS, when there is one, is
what keeps time. Without a fix, the network time the modem reports (Iridium ``-MSSTM``, IDP ``%UTC``)
is the next best source. ``NetworkCorrectedClock`` wraps the injected ``Clock`` and adds the offset last
taken from the network (``adopt``); ``sleep`` is the wrapped clock's, so waits are unaffected.

It must not ask the modem itself (the daemon does, between sessions) and must not read the system clock.
"""

from __future__ import annotations

from common.clock import Clock

#: A network time this close to our own is not worth a correction (the network answer has ~0.4 s jitter).
MIN_CORRECTION_S = 2.0


class NetworkCorrectedClock:
    """``base.now()`` plus the offset to the last network time adopted."""

    def __init__(self, base: Clock) -> None:
        self.base = base
        self.offset = 0.0
        self.source = "host"

    def now(self) -> float:
        return self.base.now() + self.offset

    async def sleep(self, seconds: float) -> None:
        await self.base.sleep(seconds)

    def adopt(self, network_seconds: float, base_now: float) -> bool:
        """Take ``network_seconds`` as the time at ``base_now`` of the wrapped clock; True if it moved us."""
        offset = network_seconds - base_now
        if abs(offset - self.offset) < MIN_CORRECTION_S:
            self.source = "network"
            return False
        self.offset = offset
        self.source = "network"
        return True
