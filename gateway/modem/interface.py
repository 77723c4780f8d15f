"""What the daemon needs of a modem adapter (``IridiumModem``, ``IdpModem``): open, close, one session.

Only the shape; the adapters implement it and the daemon's tests and simulators pass their own.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol


class SessionOutcome(Protocol):
    mo_sent: bool
    mo_status: int
    mt_messages: list[bytes]
    error: str | None


#: How urgent a payload is, as Inmarsat IDP counts (``%MGRT`` priority 1 high .. 4 low): the daemon
#: asks for high for a frame carrying an SOS record, low for everything else.
PRIORITY_HIGH, PRIORITY_LOW = 1, 4


class Modem(Protocol):
    ring_event: asyncio.Event

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def session(
        self, mo_payload: bytes | None, answer_ring: bool = False, *, priority: int = PRIORITY_LOW
    ) -> Any:
        """Send ``mo_payload`` (None: a mailbox check) and collect what waits. An IDP modem submits it at
        ``priority``; a modem without priorities (Iridium SBD) ignores it."""
        ...
