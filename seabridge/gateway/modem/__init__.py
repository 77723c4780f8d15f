"""Modem drivers of the vessel gateway.

``iridium_sbd`` is the sans-I/O Iridium SBD driver (bytes and time in, bytes and typed events out);
``serial_link`` is the asyncio adapter the daemon uses (``IridiumModem``). Nothing in this package
knows about frames, queues or budgets: it moves opaque payloads through the modem.
"""

from __future__ import annotations

from .iridium_sbd import (
    BuffersCleared,
    CommandError,
    Event,
    IridiumSbd,
    LocalProtocolError,
    MessageReceived,
    MessageWritten,
    NetworkTime,
    Ready,
    RemoteProtocolError,
    RingAlert,
    SessionResult,
    SignalQuality,
    StatusReport,
    Timeout,
    WriteFailed,
)
from .serial_link import IridiumModem, ModemError, SessionReport

__all__ = [
    "BuffersCleared",
    "CommandError",
    "Event",
    "IridiumModem",
    "IridiumSbd",
    "LocalProtocolError",
    "MessageReceived",
    "MessageWritten",
    "ModemError",
    "NetworkTime",
    "Ready",
    "RemoteProtocolError",
    "RingAlert",
    "SessionReport",
    "SessionResult",
    "SignalQuality",
    "StatusReport",
    "Timeout",
    "WriteFailed",
]
