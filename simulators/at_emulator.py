"""What every emulated AT modem does on its serial line, whatever its dialect (Iridium SBD, Inmarsat IDP).

This module owns the V.25ter command line of the emulators: collecting DTE bytes into a line ended by
``\\r`` (echoed when echo is on, backspace honoured, bounded: an over-long line answers ERROR),
discarding anything before ``AT``, verbose and numeric framing of information text and result codes,
the stored and factory settings profiles with the basic commands ``E``, ``V``, ``Q``, ``Z`` and ``&F``,
and the output buffer a pty adapter drains (``read_output``, ``on_output``).

It must not do I/O, read a clock or know any dialect command: ``iridium_modem`` and ``idp_modem``
subclass ``AtEmulator`` and run each command line in ``_execute``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import ClassVar, Generic, TypeVar

from firmware_profiles import ModemProfile

CR, LF, BACKSPACE = 0x0D, 0x0A, 0x08


@dataclass
class Settings:
    """Settings kept in a configuration profile (``AT&W``); dialects add their own fields."""

    echo: bool
    verbose: bool
    quiet: bool


S = TypeVar("S", bound=Settings)


class AtEmulator(Generic[S]):
    """Command-line collection, framing and settings profiles. See the module docstring."""

    #: A line feed inside a command line is part of it (True) or always ignored (False).
    LF_IN_LINE: ClassVar[bool] = False

    def __init__(self, profile: ModemProfile, factory: S, line_limit: int) -> None:
        self.profile = profile
        self._factory = factory
        self._stored: S = replace(factory)
        self.settings: S = replace(factory)
        self._line_limit = line_limit
        #: Called when output appears outside ``feed``/``tick`` (a ring alert), so an adapter can flush.
        self.on_output: Callable[[], None] | None = None
        self._out = bytearray()
        self._line = bytearray()
        self._overflow = False

    def read_output(self) -> bytes:
        """Bytes for the DTE produced so far (and forget them)."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def _notify_output(self) -> None:
        if self.on_output is not None:
            self.on_output()

    def _clear_line(self) -> None:
        self._out = bytearray()
        self._line = bytearray()
        self._overflow = False

    # -- framing ------------------------------------------------------------------------------

    def _frame_info(self, text: str) -> bytes:
        raw = text.encode("latin-1")
        return b"\r\n" + raw + b"\r\n" if self.settings.verbose else raw + b"\r\n"

    def _frame_result(self, ok: bool) -> bytes:
        if self.settings.quiet:
            return b""
        if self.settings.verbose:
            return b"\r\nOK\r\n" if ok else b"\r\nERROR\r\n"
        return b"0\r" if ok else b"4\r"

    # -- command line -------------------------------------------------------------------------

    def _command_byte(self, byte: int, now: float) -> None:
        if byte == LF and (not self.LF_IN_LINE or not self._line):
            return
        if byte == CR:
            if self.settings.echo:
                self._out.append(byte)
            line = bytes(self._line)
            overflow = self._overflow
            self._line.clear()
            self._overflow = False
            self._run_line(line, overflow, now)
            return
        if byte == BACKSPACE:
            if self._line:
                self._line.pop()
                if self.settings.echo:
                    self._out.append(byte)
            return
        if len(self._line) >= self._line_limit:
            self._overflow = True
            return
        self._line.append(byte)
        if self.settings.echo:
            self._out.append(byte)

    def _run_line(self, line: bytes, overflow: bool, now: float) -> None:
        text = line.decode("latin-1")
        start = text.upper().find("AT")
        if start < 0:
            return  # not a command line (V.25ter: characters before "AT" are discarded)
        self._execute(text[start:], overflow, now)

    def _execute(self, text: str, overflow: bool, now: float) -> None:
        """Run one command line (``text`` starts with ``AT``); ``overflow``: it was too long."""
        raise NotImplementedError

    def _setting(self, name: str, value: int) -> bool:
        """The basic commands every dialect shares; False when ``name``/``value`` is not one of them."""
        s = self.settings
        if name == "E" and value in (0, 1):
            s.echo = bool(value)
        elif name == "V" and value in (0, 1):
            s.verbose = bool(value)
        elif name == "Q" and value in (0, 1):
            s.quiet = bool(value)
        elif name == "Z" and value == 0:
            self.settings = replace(self._stored)
        elif name == "&F" and value == 0:
            self.settings = replace(self._factory)
        else:
            return False
        return True


def decimal(text: str) -> bool:
    """ASCII digits only (``str.isdigit`` also accepts characters such as ``¹`` that ``int`` refuses)."""
    return text.isascii() and text.isdigit()
