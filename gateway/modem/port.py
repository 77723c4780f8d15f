"""Running a sans-I/O AT driver over a serial port: the shared plumbing of the modem adapters.

It owns the port (pyserial, non-blocking, read through the event loop's reader or by polling), moving
bytes between the port and the driver, running one driver operation at a time and turning its outcome
into a result or a ``ModemError``. It knows nothing of any AT dialect: it runs any ``at_engine.AtEngine``
and reads the engine's shared outcomes (``Timeout``, ``CommandError``, ``RemoteProtocolError``);
subclasses give the dialect's engine and how to treat unsolicited events (a ring alert, say).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import serial

from common.clock import Clock
from firmware_profiles import ModemProfile

from .at_engine import (
    AtEngine,
    CommandError,
    ModemError,
    NetworkPosition,
    NetworkTime,
    RemoteProtocolError,
    Timeout,
)

POLL_INTERVAL_S = 0.01

D = TypeVar("D", bound=AtEngine)
E = TypeVar("E")


class DriverPort(Generic[D]):
    """Base of ``IridiumModem`` and ``IdpModem``: one driver, one serial port, one call at a time."""

    _signal_event: type[Any]  # the dialect's SignalQuality event (each has a ``level`` in bars)

    read_size = 4096

    def __init__(
        self, port: str, profile: ModemProfile, clock: Clock, log: logging.Logger | None, driver: D
    ) -> None:
        self.port = port
        self.profile = profile
        self._clock = clock
        self._log = log or logging.getLogger(type(self).__module__)
        self._driver = driver
        self._serial: serial.SerialBase | None = None
        self._fd: int | None = None
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._events: deque[Any] = deque()
        self._fault: BaseException | None = None
        self._ready = False

    def _unsolicited(self, event: Any) -> bool:
        """Handle an event no call waits for (True) or leave it for the running call (False)."""
        return False

    @staticmethod
    def _error_text(event: CommandError) -> str:
        reason = "" if event.reason is None else f" (reason {event.reason})"
        return f"{event.command} answered ERROR{reason}"

    # -- port -------------------------------------------------------------------------------

    def _open_port(self) -> None:
        settings = self.profile.serial
        try:
            port = serial.serial_for_url(
                self.port,
                baudrate=settings.baud,
                bytesize=settings.data_bits,
                parity=settings.parity,
                stopbits=settings.stop_bits,
                rtscts=settings.flow_control == "rtscts",
                timeout=0,
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            raise ModemError(f"cannot open {self.port}: {exc}") from exc
        self._serial = port
        self._fault = None
        self._ready = False
        fileno = getattr(port, "fileno", None)
        self._fd = fileno() if callable(fileno) else None
        if self._fd is not None:
            asyncio.get_running_loop().add_reader(self._fd, self._on_readable)

    def _close_port(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(ValueError, OSError):
                asyncio.get_running_loop().remove_reader(self._fd)
            self._fd = None
        if self._serial is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                self._serial.close()
            self._serial = None
        self._ready = False

    def _discard_input(self) -> None:
        """Drop stale bytes (a half answer from before a reset) before initialising."""
        if self._serial is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                self._serial.reset_input_buffer()

    def _on_readable(self) -> None:
        assert self._serial is not None
        try:
            data = self._serial.read(self.read_size)
        except (serial.SerialException, OSError) as exc:
            self._fault = exc
            if self._fd is not None:
                asyncio.get_running_loop().remove_reader(self._fd)
                self._fd = None
            self._wake.set()
            return
        if data:
            self._driver.receive_data(data, self._clock.now())
            self._pump()

    def _pump(self) -> None:
        """Move driver events to the waiting call; ring alerts go to ``ring_event`` at any time."""
        while True:
            try:
                event = self._driver.next_event()
            except RemoteProtocolError as exc:
                self._events.append(exc)
                continue
            if event is None:
                break
            if not self._unsolicited(event):
                self._events.append(event)
        with contextlib.suppress(ModemError):  # recorded in self._fault; the waiting call raises it
            self._flush()
        self._wake.set()

    def _flush(self) -> None:
        out = self._driver.data_to_send()
        if not out:
            return
        if self._serial is None:
            raise ModemError("port is closed")
        try:
            self._serial.write(out)
        except (serial.SerialException, OSError) as exc:
            self._fault = exc
            raise ModemError(f"write to {self.port} failed: {exc}") from exc

    # -- running one operation --------------------------------------------------------------

    async def _expect(
        self,
        start: Callable[[float], None],
        *kinds: type,
        protocol_errors: bool = True,
    ) -> Any:
        """Run one driver operation; return its outcome if it is one of ``kinds``, else raise ModemError."""
        try:
            event = await self._run(start)
        except RemoteProtocolError as exc:
            if not protocol_errors:
                raise
            raise ModemError(f"modem protocol error: {exc}") from exc
        if isinstance(event, kinds):
            return event
        if isinstance(event, Timeout):
            self._ready = False
            raise ModemError(f"no answer to {event.command}")
        if isinstance(event, CommandError):
            raise ModemError(self._error_text(event))
        raise ModemError(f"unexpected answer {event}")

    async def _ensure_ready(self) -> None:
        """Open the port and initialise the modem if needed (each dialect's adapter says how)."""
        raise NotImplementedError

    async def _query(self, start: Callable[[float], None], kind: type[E]) -> E:
        """One query operation under the port's lock, on a ready modem; its answer of type ``kind``."""
        async with self._lock:
            await self._ensure_ready()
            event = await self._expect(start, kind)
            assert isinstance(event, kind)
            return event

    async def signal(self) -> int:
        """Signal bars (``AT+CSQ`` on Iridium, the C/N0 level on IDP). Raises ``ModemError``."""
        return (await self._query(self._driver.request_signal, self._signal_event)).level

    async def network_time(self) -> float | None:
        """The satellite network's time (Unix seconds), or None without service. Raises ``ModemError``."""
        return (await self._query(self._driver.request_network_time, NetworkTime)).unix_seconds

    async def position(self) -> tuple[float, float] | None:
        """Where the modem places itself (Iridium ``-MSGEO``, about 10 km; IDP's own GNSS fix), or None."""
        event = await self._query(self._driver.request_position, NetworkPosition)
        if event.latitude is None or event.longitude is None:
            return None
        return event.latitude, event.longitude

    async def _run(self, start: Callable[[float], None]) -> Any:
        self._events.clear()
        start(self._clock.now())
        self._flush()
        while True:
            if self._fd is None and self._serial is not None and self._fault is None:
                self._poll_port()
            if self._events:
                event = self._events.popleft()
                if isinstance(event, RemoteProtocolError):
                    raise event
                return event
            if self._fault is not None:
                self._driver.reset()
                raise ModemError(f"port {self.port} failed: {self._fault}")
            wakeup = self._driver.next_wakeup()
            delay = None if wakeup is None else max(0.0, wakeup - self._clock.now())
            if self._fd is None:
                delay = POLL_INTERVAL_S if delay is None else min(delay, POLL_INTERVAL_S)
            self._wake.clear()
            await self._wait(delay)
            self._driver.tick(self._clock.now())
            self._pump()

    def _poll_port(self) -> None:
        assert self._serial is not None
        try:
            data = self._serial.read(self.read_size)
        except (serial.SerialException, OSError) as exc:
            self._fault = exc
            return
        if data:
            self._driver.receive_data(data, self._clock.now())
            self._pump()

    async def _wait(self, delay: float | None) -> None:
        waiter = asyncio.ensure_future(self._wake.wait())
        tasks: set[asyncio.Future[object]] = {waiter}
        if delay is not None:
            tasks.add(asyncio.ensure_future(self._clock.sleep(delay)))
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
