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


class Modem(Protocol):
    ring_event: asyncio.Event

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def session(self, mo_payload: bytes | None, answer_ring: bool = False) -> Any: ...
