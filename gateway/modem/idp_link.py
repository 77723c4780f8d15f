"""Asyncio adapter between the sans-I/O IDP driver (``inmarsat_idp``) and a serial port (pyserial).

This module owns the port and turns driver operations into the calls the gateway daemon makes,
with the same shape as ``IridiumModem``: ``open``, ``close``, ``session(mo_payload, answer_ring)``
returning a ``SessionReport``, ``ring_event``, ``signal`` and ``network_time``.

An IDP modem has no session to start: a return message is queued in the modem (``%MGRT``), which
sends it when it can and keeps it for its lifetime. ``session`` submits the payload under a fresh
name and returns as soon as the modem has taken it (``mo_sent`` then means "queued in the modem"):
a geostationary link blocked by the vessel's own mast stays blocked for hours, and the daemon must
keep queueing (an SOS above all) and receiving meanwhile. Several return messages are in flight at
once, up to the terminal's limit (profile ``at.return_queue_max``, 8 on ST2100/ST6100); a call that
finds the queue full reports ``mo_sent`` False and the daemon retries later. Every call first asks
the modem for the states of the messages in flight (``%MGRS``): Tx Complete ends one, Tx Failed
(its lifetime ran out) and Tx Cancelled are logged and counted in ``returns_failed``; the link layer
resends frames the shore never acknowledged. Forward messages with the profile's SIN (``limits.sin``)
are read with ``%MGFG`` and returned in ``mt_messages`` without the SIN byte; others are marked
retrieved with ``%MGFM`` and logged. Between calls a background task polls ``%MGFN`` every
``poll_interval_s`` and sets ``ring_event`` when a forward message waits, which is how an IDP modem
"rings".

Recovery: after a timeout, a damaged answer or a port fault the next call re-initialises. A forward
message whose ``%MGFG`` answer was damaged is read again by name (it stays in the modem as
retrieved). A return message whose final state was lost with a damaged ``%MGRS`` answer is counted as failed;
the link layer sends its frame again if the shore never acknowledged it, and the shore discards a
duplicate by frame counter.

It must not decide when to transmit or retry (the daemon does), must not parse modem bytes (the
driver does), and must not know what a payload means.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from common.clock import Clock
from firmware_profiles import ModemProfile

from .inmarsat_idp import (
    TX_CANCELLED,
    TX_COMPLETE,
    TX_FAILED,
    CommandError,
    ForwardList,
    ForwardMarked,
    ForwardMessage,
    InmarsatIdp,
    LocalProtocolError,
    MessageSubmitted,
    Ready,
    RemoteProtocolError,
    ReturnStates,
    SignalQuality,
)
from .interface import PRIORITY_LOW
from .port import DriverPort, ModemError
from .serial_link import SessionReport

#: ``mo_status`` of a report whose return message the modem took: Tx Ready (4).
TX_READY_QUEUED = 4
_NAME_SPACE = 10**8  # 8-digit message names
#: Return messages an ST2100/ST6100 keeps in Tx Sending at once (T203 p18), unless the profile says.
DEFAULT_RETURN_QUEUE_MAX = 8


@dataclass
class InFlight:
    """A return message the modem holds: when it was queued and at which priority."""

    name: str
    size: int
    queued_at: float
    priority: int


class IdpModem(DriverPort[InmarsatIdp]):
    """An IDP modem on a serial port, for the gateway daemon. One call runs at a time."""

    _signal_event = SignalQuality

    read_size = 65536

    def __init__(
        self,
        port: str,
        profile: ModemProfile,
        clock: Clock,
        log: logging.Logger | None = None,
        *,
        poll_interval_s: float | None = None,
        use_crc: bool = True,
        background_poll: bool = True,
    ) -> None:
        if profile.limits.sin is None:
            raise ValueError(f"profile {profile.name} has no limits.sin")
        super().__init__(
            port, profile, clock, log or logging.getLogger(__name__), InmarsatIdp(profile, use_crc=use_crc)
        )
        self.sin = int(profile.limits.sin)
        self.mobile_id: str | None = None
        self.ring_event = asyncio.Event()
        interval = poll_interval_s or profile.timings.poll_interval_s
        if not interval or interval <= 0:
            raise ValueError(f"profile {profile.name} has no timings.poll_interval_s")
        self.poll_interval_s = float(interval)
        self._seq: int | None = None
        self._unread: list[str] = []  # forward names whose %MGFG answer was damaged
        self._held_mt: list[bytes] = []
        self._background = background_poll
        self._poller: asyncio.Task[None] | None = None
        self.return_queue_max = int(profile.at.get("return_queue_max", DEFAULT_RETURN_QUEUE_MAX))
        self.in_flight: dict[str, InFlight] = {}
        self.returns_complete = 0
        self.returns_failed = 0

    # -- public API -------------------------------------------------------------------------

    @property
    def imei(self) -> str | None:
        """The modem's identity (the IDP mobile ID), under the name the daemon uses for Iridium."""
        return self.mobile_id

    async def open(self) -> None:
        async with self._lock:
            await self._ensure_ready()
        if self._background and self._poller is None:
            self._poller = asyncio.create_task(self._poll_loop(), name=f"idp-poll {self.port}")

    async def close(self) -> None:
        poller, self._poller = self._poller, None
        if poller is not None:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
        async with self._lock:
            self._close_port()

    async def session(
        self, mo_payload: bytes | None, answer_ring: bool = False, *, priority: int = PRIORITY_LOW
    ) -> SessionReport:
        """Queue ``mo_payload`` (if any) in the modem and read every forward message; never waits for
        the message to go out. ``priority`` is the ``%MGRT`` priority (1 high, e.g. an SOS .. 4 low)."""
        async with self._lock:
            report = SessionReport()
            try:
                await self._ensure_ready()
                report.mt_messages.extend(self._held_mt)
                self._held_mt.clear()
                await self._update_in_flight()
                if mo_payload is not None:
                    await self._send(mo_payload, report, priority)
                else:
                    report.mo_sent = True
                    report.mo_status = 0
                await self._read_forwards(report)
                report.sessions = 1
            except ModemError as exc:
                report.error = str(exc)
                self._ready = False
                self._log.warning("IDP modem call stopped: %s", exc)
            return report

    # -- sending ----------------------------------------------------------------------------

    def _next_name(self) -> str:
        if self._seq is None:
            self._seq = int(self._clock.now()) * 10 % _NAME_SPACE
        self._seq = (self._seq + 1) % _NAME_SPACE
        return f"{self._seq:08d}"

    async def _update_in_flight(self) -> None:
        """Ask the modem for the states of every return message (``%MGRS``); settle the final ones."""
        if not self.in_flight:
            return
        event = await self._expect(self._driver.return_states, ReturnStates)
        assert isinstance(event, ReturnStates)
        states = {s.name: s.state for s in event.states}
        lifetime = self.profile.timings.session_timeout_s
        now = self._clock.now()
        for name, item in list(self.in_flight.items()):
            state = states.get(name)
            if state == TX_COMPLETE:
                self.returns_complete += 1
                self._log.info("return message %s sent (%d B)", name, item.size)
            elif state in (TX_FAILED, TX_CANCELLED) or (state is None and now - item.queued_at > lifetime):
                self.returns_failed += 1
                self._log.warning("return message %s ended in state %s", name, state)
            elif state is None:
                self.returns_failed += 1  # its final state was reported but the answer was lost
                self._log.warning("return message %s vanished from the modem's queue", name)
            else:
                continue
            del self.in_flight[name]

    async def _send(self, payload: bytes, report: SessionReport, priority: int) -> None:
        if len(self.in_flight) >= self.return_queue_max:
            report.error = f"return queue full: {len(self.in_flight)} messages in flight"
            self._log.info("not queueing: %s", report.error)
            return
        name = self._next_name()
        driver = self._driver
        try:
            event = await self._expect(
                lambda now: driver.submit(name, self.sin, payload, now, priority=priority),
                MessageSubmitted,
                CommandError,
            )
        except LocalProtocolError as exc:
            report.error = str(exc)
            return
        except ModemError as exc:
            # The answer was lost: the message may or may not be in the modem. Its name tells.
            self._log.warning("no clean answer to %%MGRT %s (%s); asking the modem", name, exc)
            self._ready = False
            await self._ensure_ready()
            asked = await self._expect(lambda now: driver.return_states(now, name), ReturnStates)
            assert isinstance(asked, ReturnStates)
            if not any(s.name == name for s in asked.states):
                report.error = f"return message {name} was not queued: {exc}"
                return
            event = MessageSubmitted(name, repeated=True)
        if isinstance(event, CommandError):
            report.error = f"%MGRT refused, reason {event.reason}"
            self._log.warning("modem refused the return message: %s", report.error)
            return
        self.in_flight[name] = InFlight(name, len(payload) + 1, self._clock.now(), priority)
        report.mo_sent = True
        report.mo_status = TX_READY_QUEUED
        self._log.info(
            "return message %s queued (%d B, priority %d, %d in flight)",
            name,
            len(payload) + 1,
            priority,
            len(self.in_flight),
        )

    # -- receiving --------------------------------------------------------------------------

    async def _read_forwards(self, report: SessionReport) -> None:
        driver = self._driver
        listing = await self._expect(driver.forward_list, ForwardList)
        assert isinstance(listing, ForwardList)
        names = list(self._unread)
        names += [m.name for m in listing.messages if m.state == 2 and m.name not in names]
        for m in listing.messages:
            if m.state == 2 and m.sin != self.sin:
                await self._expect(lambda now, n=m.name: driver.mark_forward(n, now), ForwardMarked)
                self._log.warning("forward message %s with SIN %d ignored", m.name, m.sin)
                names.remove(m.name)
        for name in names:
            try:
                event = await self._expect(
                    lambda now, n=name: driver.get_forward(n, now), ForwardMessage, CommandError
                )
            except ModemError:
                if name not in self._unread:
                    self._unread.append(name)
                raise
            if name in self._unread:
                self._unread.remove(name)
            if isinstance(event, CommandError):
                self._log.warning("forward message %s could not be read: reason %s", name, event.reason)
                continue
            assert isinstance(event, ForwardMessage)
            if event.sin == self.sin:
                report.mt_messages.append(event.raw[1:])
        report.mt_queued = 0

    async def _poll_loop(self) -> None:
        while True:
            await self._clock.sleep(self.poll_interval_s)
            if self._lock.locked():
                continue
            async with self._lock:
                try:
                    await self._ensure_ready()
                    listing = await self._expect(self._driver.forward_list, ForwardList)
                except ModemError as exc:
                    self._ready = False
                    self._log.info("IDP poll failed: %s", exc)
                    continue
                assert isinstance(listing, ForwardList)
                if self._unread or any(m.state == 2 for m in listing.messages):
                    self.ring_event.set()

    # -- initialisation ---------------------------------------------------------------------

    async def _ensure_ready(self) -> None:
        if self._fault is not None or self._serial is None:
            self._close_port()
            self._open_port()
        if self._ready:
            return
        self._driver.reset()
        self._discard_input()
        try:
            event = await self._run(self._driver.initialize)
        except RemoteProtocolError as exc:
            raise ModemError(f"modem on {self.port} did not initialise: {exc}") from exc
        if not isinstance(event, Ready):
            raise ModemError(f"modem on {self.port} did not initialise: {event}")
        self.mobile_id = event.mobile_id
        self._ready = True
        self._log.info("IDP modem ready: mobile ID %s, CRC %s", event.mobile_id, event.crc)
