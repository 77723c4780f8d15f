"""The Iridium emulator's network-side contract, and an in-memory network for tests.

This module owns what a modem emulator expects of the Iridium network (``SatelliteNetwork``: one call
per successful session, handing over the MO and popping one MT as an ``MtDelivery``) and
``LoopbackNetwork``, the smallest network that honours it: it records MO messages and queues MT
messages per IMEI, ringing the attached modem. The DirectIP and RockBLOCK-style network sides
(``iridium_network``, ``rockblock_network``) implement the same contract over real TCP/HTTP.

It must not do I/O or read a clock: time comes in as ``now``.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from simulators.iridium_modem import IridiumModemEmulator


@dataclass
class MtDelivery:
    """What the network hands the modem at the end of a successful session."""

    payload: bytes | None = None  # the MT message delivered in this session, if any
    mtmsn: int = 0  # its MT message sequence number (meaningless when payload is None)
    queued: int = 0  # MT messages still waiting at the gateway after this one


class SatelliteNetwork(Protocol):
    """The Iridium network as one modem sees it."""

    def session(
        self, imei: str, mo_payload: bytes | None, momsn: int, now: float, *, take_mt: bool = True
    ) -> MtDelivery:
        """A session of ``imei`` succeeded at ``now``: take the MO (None = mailbox check), pop one MT
        (with ``take_mt`` False the MT transfer failed, MT status 2: the message stays queued)."""
        ...


@dataclass(frozen=True)
class MoRecord:
    imei: str
    payload: bytes | None
    momsn: int
    time: float


class LoopbackNetwork:
    """In-memory network side for tests: records MO messages, queues MT messages per IMEI.

    ``attach(modem)`` lets ``queue_mt`` ring the modem (``IridiumModemEmulator.ring_alert``).
    """

    def __init__(self) -> None:
        self.mo_messages: list[MoRecord] = []
        self._mt: dict[str, collections.deque[bytes]] = {}
        self._next_mtmsn: dict[str, int] = {}
        self._modems: dict[str, IridiumModemEmulator] = {}

    def attach(self, modem: IridiumModemEmulator) -> None:
        self._modems[modem.imei] = modem

    def queued(self, imei: str) -> int:
        return len(self._mt.get(imei, ()))

    def queue_mt(self, imei: str, payload: bytes, now: float, *, ring: bool = True) -> None:
        """Queue an MT message for ``imei``; ring the attached modem unless ``ring`` is False."""
        self._mt.setdefault(imei, collections.deque()).append(bytes(payload))
        if ring:
            self.ring(imei, now)

    def ring(self, imei: str, now: float) -> None:
        modem = self._modems.get(imei)
        if modem is not None:
            modem.ring_alert(now)

    def session(
        self, imei: str, mo_payload: bytes | None, momsn: int, now: float, *, take_mt: bool = True
    ) -> MtDelivery:
        self.mo_messages.append(MoRecord(imei, mo_payload, momsn, now))
        queue = self._mt.get(imei)
        if not queue or not take_mt:
            return MtDelivery(queued=len(queue or ()))
        payload = queue.popleft()
        mtmsn = self._next_mtmsn.get(imei, 1)
        self._next_mtmsn[imei] = 1 if mtmsn >= 0xFFFF else mtmsn + 1
        return MtDelivery(payload=payload, mtmsn=mtmsn, queued=len(queue))
