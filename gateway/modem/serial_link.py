"""Asyncio adapter between the sans-I/O Iridium driver and a serial port (pyserial).

This module owns the port: opening it from the profile's serial settings, feeding received bytes
and the time to ``IridiumSbd``, writing what it returns, waiting on the injected ``Clock`` for its
deadlines, and turning operations into the high-level calls the gateway daemon makes
(``open``, ``signal``, ``network_time``, ``session``, ``close``). It also recovers: after a
timeout, a protocol error or a port fault the next call re-runs the initialisation.

It must not decide *when* to transmit or retry (the daemon's retry policy does), must not parse
modem bytes itself (the driver does), and must not know what a payload means.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from common.clock import Clock
from firmware_profiles import ModemProfile

from .interface import PRIORITY_LOW
from .iridium_sbd import (
    BuffersCleared,
    IridiumSbd,
    MessageReceived,
    MessageWritten,
    Ready,
    RemoteProtocolError,
    RingAlert,
    SessionResult,
    SettingsApplied,
    SettingsState,
    SignalQuality,
    WriteFailed,
    modem_session_timeout_s,
)
from .port import DriverPort, ModemError

#: MO status 34: the radio was switched off with ``AT*R0``.
MO_RADIO_DISABLED = 34

#: How often to look at a port that cannot be watched with ``add_reader`` (``loop://`` and friends).


@dataclass
class SessionReport:
    """What one ``IridiumModem.session`` call achieved.

    ``mo_sent`` is True when the first session succeeded (MO status 0..4): the MO payload, if one
    was given, reached the gateway; for a mailbox check it means the check went through.
    ``mo_status`` is the first session's MO status, or -1 when no session took place (the write
    failed or the modem did not answer). ``momsn`` is the MOMSN that session reported.
    ``mt_messages`` holds every MT message read during this call, in order; ``mt_queued`` is what
    the last session said is still waiting at the gateway. ``error`` describes why the call
    stopped early, if it did.
    """

    mo_sent: bool = False
    mo_status: int = -1
    momsn: int | None = None
    mt_messages: list[bytes] = field(default_factory=list)
    mt_queued: int = 0
    error: str | None = None
    sessions: int = 0


class IridiumModem(DriverPort[IridiumSbd]):
    """An Iridium SBD modem on a serial port, for the gateway daemon. One call runs at a time."""

    _signal_event = SignalQuality

    def __init__(
        self,
        port: str,
        profile: ModemProfile,
        clock: Clock,
        log: logging.Logger | None = None,
        *,
        max_sessions_per_call: int | None = None,
    ) -> None:
        driver = IridiumSbd(profile)
        # This process knows nothing of what the last one left the modem doing (it may have been
        # killed in the middle of writing a frame, the modem still waiting for the payload).
        driver.assume_unknown_state()
        super().__init__(port, profile, clock, log or logging.getLogger(__name__), driver)
        self.imei: str | None = None
        self.ring_event = asyncio.Event()
        # An MT queue at the gateway never holds more than mt_queue_max messages, so draining it
        # takes at most that many follow-up sessions.
        self._max_sessions = max_sessions_per_call or profile.limits.mt_queue_max + 1
        self._held_mt: list[bytes] = []
        self._last_read_mtmsn: int | None = None
        self.resets_detected = 0

    def _unsolicited(self, event: object) -> bool:
        if isinstance(event, RingAlert):
            self._log.info("SBDRING: a mobile-terminated message is waiting")
            self.ring_event.set()
            return True
        return False

    # -- public API -------------------------------------------------------------------------

    async def open(self) -> None:
        """Open the port and initialise the modem; raises ``ModemError`` if it does not answer."""
        async with self._lock:
            await self._ensure_ready()

    async def close(self) -> None:
        """Wait for the running call, then close the port."""
        async with self._lock:
            self._close_port()

    async def session(
        self, mo_payload: bytes | None, answer_ring: bool = False, *, priority: int = PRIORITY_LOW
    ) -> SessionReport:
        """One attempt: write the MO (or clear it for a mailbox check), run SBDIX, read every MT.
        (SBD has no priorities: ``priority`` is ignored.)

        Follow-up sessions run while the gateway reports MT messages queued, each MT being read
        (``AT+SBDRB``) before the next session clears the MT buffer. Never raises for modem
        trouble: the report's ``error`` says what went wrong and the next call re-initialises.
        """
        async with self._lock:
            report = SessionReport()
            try:
                await self._ensure_ready()
                await self._ensure_not_reset()
                report.mt_messages.extend(self._held_mt)
                self._held_mt.clear()
                await self._load_mo(mo_payload, report)
                if report.error is None:
                    await self._sessions(mo_payload is not None, answer_ring, report)
            except ModemError as exc:
                report.error = str(exc)
                self._ready = False
                self._log.warning("modem session stopped: %s", exc)
            return report

    # -- sessions ---------------------------------------------------------------------------

    async def _load_mo(self, mo_payload: bytes | None, report: SessionReport) -> None:
        driver = self._driver
        if mo_payload is None:
            await self._expect(lambda now: driver.clear_buffers(0, now), BuffersCleared)
            return
        event = await self._expect(
            lambda now: driver.write_message(mo_payload, now), MessageWritten, WriteFailed
        )
        if isinstance(event, WriteFailed):
            report.error = f"+SBDWB failed with result {event.code}"
            self._log.warning("modem refused the MO payload: %s", report.error)

    async def _sessions(self, has_mo: bool, answer_ring: bool, report: SessionReport) -> None:
        driver = self._driver
        answer = answer_ring
        for n in range(self._max_sessions):
            self.ring_event.clear()
            event = await self._expect(
                lambda now, a=answer: driver.start_session(now, answer_ring=a), SessionResult
            )
            assert isinstance(event, SessionResult)
            report.sessions += 1
            report.mt_queued = event.mt_queued
            if n == 0:
                report.mo_status = event.mo_status
                report.momsn = event.momsn
                report.mo_sent = event.mo_success
            self._log.info(
                "SBD session: MO status %d, MOMSN %d, MT status %d, MTMSN %d, %d B, %d queued",
                event.mo_status,
                event.momsn,
                event.mt_status,
                event.mtmsn,
                event.mt_length,
                event.mt_queued,
            )
            if event.mt_status == 1:
                report.mt_messages.append(await self._read_mt())
            if not event.mo_success:
                if n == 0:
                    report.error = f"session failed with MO status {event.mo_status}"
                if event.mo_status == MO_RADIO_DISABLED:  # someone sent AT*R0; the next attempt needs it on
                    await self._expect(lambda now: driver.apply_settings(["AT*R1"], now), SettingsApplied)
                return
            if n == 0 and has_mo:  # a successful send does not clear the MO buffer; never send it twice
                await self._expect(lambda now: driver.clear_buffers(0, now), BuffersCleared)
            if event.mt_queued <= 0:
                return
            answer = False

    async def _read_mt(self) -> bytes:
        """``AT+SBDRB``, once more if the block arrived damaged (reading does not clear the buffer)."""
        for attempt in (1, 2):
            try:
                event = await self._expect(self._driver.read_message, MessageReceived, protocol_errors=False)
            except RemoteProtocolError as exc:
                self._log.warning("MT read attempt %d damaged: %s", attempt, exc)
                continue
            assert isinstance(event, MessageReceived)
            self._last_read_mtmsn = event.mtmsn
            return event.payload
        raise ModemError("MT buffer could not be read intact")

    # -- initialisation ---------------------------------------------------------------------

    async def _ensure_not_reset(self) -> None:
        """Before each session: a modem that lost its volatile ``AT+SBDST`` was reset (a brown-out the
        port never saw) and may have lost more; initialise it again before trusting it."""
        event = await self._expect(self._driver.check_settings, SettingsState)
        assert isinstance(event, SettingsState)
        if event.session_timeout_s != modem_session_timeout_s(self.profile):
            self._log.warning(
                "modem was reset since it was initialised (AT+SBDST=%d): initialising again",
                event.session_timeout_s,
            )
            self.resets_detected += 1
            self._ready = False
            await self._ensure_ready()

    async def _ensure_ready(self) -> None:
        if self._fault is not None or self._serial is None:
            self._close_port()
            self._open_port()
        if self._ready:
            return
        self._driver.reset()
        self._discard_input()
        event = await self._run(self._driver.initialize)
        if not isinstance(event, Ready):
            raise ModemError(f"modem on {self.port} did not initialise: {event}")
        self.imei = event.imei
        self._ready = True
        self._log.info("modem ready: IMEI %s, MOMSN %d", event.imei, event.momsn)
        if event.ring_flag:
            self.ring_event.set()
        if event.mt_flag and event.mtmsn != self._last_read_mtmsn:
            self._log.info("modem holds unread MT MTMSN %d from before; reading it", event.mtmsn)
            self._held_mt.append(await self._read_mt())
