"""Put an ``IridiumModemEmulator`` behind a real pseudo-terminal, so any serial driver can talk to it.

This module owns the pty and the asyncio task that shuttles bytes: it opens a pty pair, puts the
slave side in raw mode and keeps it open (so the master never reads EIO when a driver closes and
reopens the port), exposes the slave's path as ``.path``, feeds what the driver writes into the
emulator with the clock's time, writes the emulator's output back, and calls ``tick`` at the
emulator's ``next_wakeup``. ``PtyModem.in_thread`` runs the same thing on its own event loop in a
background thread, for blocking third-party drivers.

It must not interpret a single byte: all modem behaviour lives in the emulator
(``iridium_modem``, ``idp_modem``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import fcntl
import os
import threading
import tty
from collections.abc import Callable, Iterator
from typing import Protocol, TypeVar

from common.clock import Clock

T = TypeVar("T")


class ByteModem(Protocol):
    """What ``PtyModem`` needs of an emulator (``IridiumModemEmulator``, ``IdpModemEmulator``)."""

    on_output: Callable[[], None] | None

    def feed(self, data: bytes, now: float) -> None: ...

    def tick(self, now: float) -> None: ...

    def read_output(self) -> bytes: ...

    def next_wakeup(self) -> float | None: ...


class PtyModem:
    """An emulated modem on a pty. ``await start()``, connect a driver to ``path``, ``await stop()``."""

    def __init__(self, emulator: ByteModem, clock: Clock) -> None:
        self.emulator = emulator
        self.clock = clock
        self._master: int | None = None
        self._slave: int | None = None
        self._path: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._pending = bytearray()
        self._writer_registered = False

    @property
    def path(self) -> str:
        if self._path is None:
            raise RuntimeError("PtyModem not started")
        return self._path

    async def start(self) -> None:
        """Create the pty and start serving the emulator on it."""
        if self._task is not None:
            raise RuntimeError("PtyModem already started")
        master, slave = os.openpty()
        tty.setraw(slave)
        flags = fcntl.fcntl(master, fcntl.F_GETFL)
        fcntl.fcntl(master, fcntl.F_SETFL, flags | os.O_NONBLOCK)
        self._master, self._slave = master, slave
        self._path = os.ttyname(slave)
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._loop.add_reader(master, self._on_readable)
        self.emulator.on_output = self._on_emulator_output
        self._task = asyncio.create_task(self._run(), name=f"pty-modem {self._path}")

    async def stop(self) -> None:
        """Stop serving and close both ends of the pty."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.emulator.on_output = None
        if self._loop is not None and self._master is not None:
            self._loop.remove_reader(self._master)
            if self._writer_registered:
                self._loop.remove_writer(self._master)
                self._writer_registered = False
        for fd in (self._master, self._slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = None

    async def __aenter__(self) -> PtyModem:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- use from other threads -------------------------------------------------------------

    @classmethod
    @contextlib.contextmanager
    def in_thread(cls, emulator: ByteModem, clock: Clock) -> Iterator[PtyModem]:
        """Serve ``emulator`` on a pty from a background thread's event loop for the ``with`` block."""
        pty = cls(emulator, clock)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="pty-modem", daemon=True)
        thread.start()
        try:
            asyncio.run_coroutine_threadsafe(pty.start(), loop).result()
            yield pty
        finally:
            with contextlib.suppress(RuntimeError):
                asyncio.run_coroutine_threadsafe(pty.stop(), loop).result()
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()

    def call(self, fn: Callable[..., T], *args: object) -> T:
        """Run ``fn(*args)`` on the pty's event loop (e.g. queue an MT) and return its result.

        Safe from any thread; the emulator is only ever touched from its own loop.
        """
        loop = self._loop
        if loop is None:
            raise RuntimeError("PtyModem not started")
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            result = fn(*args)
            self._wake.set()
            return result
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn(*args))
            except Exception as exc:  # handed to the calling thread
                future.set_exception(exc)
            self._wake.set()

        loop.call_soon_threadsafe(run)
        return future.result()

    # -- byte shuttle -----------------------------------------------------------------------

    def _on_emulator_output(self) -> None:
        self._wake.set()

    def _on_readable(self) -> None:
        assert self._master is not None
        try:
            data = os.read(self._master, 4096)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno == errno.EIO:  # no slave open (cannot happen while we hold it)
                return
            raise
        if data:
            self.emulator.feed(data, self.clock.now())
            self._flush()
            self._wake.set()  # the next wakeup may have changed (a session or a data timeout began)

    def _flush(self) -> None:
        self._pending += self.emulator.read_output()
        if not self._pending or self._master is None:
            return
        try:
            written = os.write(self._master, self._pending)
        except BlockingIOError:
            written = 0
        del self._pending[:written]
        if self._pending and not self._writer_registered and self._loop is not None:
            self._loop.add_writer(self._master, self._on_writable)
            self._writer_registered = True

    def _on_writable(self) -> None:
        if self._loop is not None and self._master is not None:
            self._loop.remove_writer(self._master)
        self._writer_registered = False
        self._flush()

    async def _run(self) -> None:
        while True:
            self.emulator.tick(self.clock.now())
            self._flush()
            wakeup = self.emulator.next_wakeup()
            self._wake.clear()
            waiter = asyncio.ensure_future(self._wake.wait())
            tasks: set[asyncio.Future[object]] = {waiter}
            if wakeup is not None:
                delay = max(0.0, wakeup - self.clock.now())
                tasks.add(asyncio.ensure_future(self.clock.sleep(delay)))
            try:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
