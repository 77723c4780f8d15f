"""Modem drivers of the vessel gateway.

``at_engine`` is the sans-I/O AT engine both dialects drive (operations, steps, deadlines, line
framing, the shared events and the error hierarchy ``DriverError`` > ``LocalProtocolError``,
``RemoteProtocolError``, ``ModemError``); ``port`` runs any engine over a serial port.
``iridium_sbd`` is the sans-I/O Iridium SBD driver (bytes and time in, bytes and typed events out);
``serial_link`` is the asyncio adapter the daemon uses for it (``IridiumModem``). ``inmarsat_idp`` and
``idp_link`` (``IdpModem``) are the same pair for Inmarsat IsatData Pro modems. ``open_modem`` picks
the adapter from the profile's family. Nothing in this package knows about frames, queues or budgets:
it moves opaque payloads through the modem.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .at_engine import DriverError
from .idp_link import IdpModem
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

if TYPE_CHECKING:
    from common.clock import Clock
    from firmware_profiles import ModemProfile


def open_modem(
    port: str, profile: ModemProfile, clock: Clock, log: logging.Logger | None = None
) -> IridiumModem | IdpModem:
    """The adapter for ``profile.family`` on ``port`` (not opened yet: call ``await modem.open()``).

    ``iridium-sbd`` gives an ``IridiumModem``, ``inmarsat-idp`` an ``IdpModem``; both offer
    ``open``, ``close``, ``session``, ``ring_event``, ``signal`` and ``network_time``.
    """
    if profile.family == "iridium-sbd":
        return IridiumModem(port, profile, clock, log)
    if profile.family == "inmarsat-idp":
        return IdpModem(port, profile, clock, log)
    raise ValueError(f"no driver for modem family {profile.family!r} (profile {profile.name})")


__all__ = [
    "BuffersCleared",
    "CommandError",
    "DriverError",
    "Event",
    "IdpModem",
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
    "open_modem",
]
