"""The IDP emulator's message queues: return (MO) and forward (MT) messages as the AT commands show them.

This module owns the ``%MGRT``, ``%MGRS``, ``%MGRC`` (return queue) and ``%MGFN``, ``%MGFS``, ``%MGFG``,
``%MGFM`` (forward queue) commands, the queue entries and their states, the shared queue slots, the
message names, and the text/hex/base64 data formats of these commands. ``IdpMessageQueues`` is mixed
into ``IdpModemEmulator``, which owns the radio that moves the messages; the ``ATS80?`` reasons a
refused command leaves are the ``ERR_*`` values here.

It must not do I/O or read a clock: time comes in as ``now``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simulators.idp_modem import IdpModemEmulator

# S80 error reasons (reference §1.2).
ERR_OK = 0
ERR_CRC = 100
ERR_UNKNOWN_COMMAND = 101
ERR_PARAMETERS = 102
ERR_TOO_LONG = 103
ERR_SYSTEM = 105
ERR_QUEUE_FULL = 106
ERR_NAME_IN_USE = 107
ERR_UNAVAILABLE = 109
ERR_READ_ONLY = 112

# Return (MO) message states and forward (MT) message states.
TX_READY = 4
TX_SENDING = 5
TX_COMPLETE = 6
TX_FAILED = 7
TX_CANCELLED = 8
RX_PENDING = 1
RX_COMPLETE = 2
RX_RETRIEVED = 3


class ModemRefusal(Exception):
    """The command line answers ERROR and ``ATS80?`` then reports ``code``."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class ReturnEntry:
    name: str
    priority: int
    sin: int
    raw: bytes
    created: float
    state: int = TX_READY
    msg_num: str = "0.0"
    acked: int = 0


@dataclass
class ForwardEntry:
    name: str
    msg_num: str
    sin: int
    raw: bytes
    state: int = RX_COMPLETE


_NAME_RE = re.compile(r'^"([^"]{1,12})"$')


class IdpMessageQueues:
    """Command handlers and queue bookkeeping mixed into ``IdpModemEmulator``."""

    returns: list[ReturnEntry]
    forwards: list[ForwardEntry]
    queue_slots: int
    name_max: int

    def _free_slots(self) -> int:
        used = sum(1 for e in self.returns) + sum(1 for f in self.forwards if f.state != RX_RETRIEVED)
        return self.queue_slots - used

    def _evict_retrieved(self) -> None:
        for i, f in enumerate(self.forwards):
            if f.state == RX_RETRIEVED:
                del self.forwards[i]
                return

    def _forward_name(self, reference: int) -> str:
        base = "FM" + msg_num(reference)
        names = {f.name for f in self.forwards}
        if base not in names:
            return base
        for n in range(1, 10):
            if f"{base}{n}" not in names:
                return f"{base}{n}"
        self._evict_retrieved()
        return f"{base}9"

    def _cmd_mgrt(self: IdpModemEmulator, arg: str, resp: bytearray, now: float) -> None:
        if not arg.startswith("="):
            raise ModemRefusal(ERR_PARAMETERS)
        parts = _split_args(arg[1:], 5)
        if len(parts) != 5:
            raise ModemRefusal(ERR_PARAMETERS)
        name = self._name(parts[0])
        try:
            priority = int(parts[1])
            sin_text, _, min_text = parts[2].partition(".")
            sin = int(sin_text)
            min_byte = bytes([int(min_text)]) if min_text else b""
            fmt = int(parts[3])
        except ValueError:
            raise ModemRefusal(ERR_PARAMETERS) from None
        if not 1 <= priority <= 4 or not 16 <= sin <= 255 or fmt not in (1, 2, 3):
            raise ModemRefusal(ERR_PARAMETERS)
        data = _decode_data(parts[4], fmt)
        raw = bytes([sin]) + min_byte + data
        if len(raw) > self.profile.limits.mo_max_bytes:
            raise ModemRefusal(ERR_TOO_LONG)
        if any(e.name == name for e in self.returns):
            raise ModemRefusal(ERR_NAME_IN_USE)
        if self._free_slots() <= 0:
            self._evict_retrieved()
        if self._free_slots() <= 0:
            raise ModemRefusal(ERR_QUEUE_FULL)
        self.returns.append(ReturnEntry(name, priority, sin, raw, now))
        if self._attempt is None:
            self._retry_at = now

    def _name(self, text: str) -> str:
        m = _NAME_RE.match(text.strip())
        if m is None or len(m.group(1)) > self.name_max:
            raise ModemRefusal(ERR_PARAMETERS)
        return m.group(1)

    def _cmd_mgrs(self: IdpModemEmulator, arg: str, resp: bytearray, now: float) -> None:
        if arg == "":
            entries = list(self.returns)
        elif arg.startswith("="):
            name = self._name(arg[1:])
            entries = [e for e in self.returns if e.name == name]
            if not entries:
                raise ModemRefusal(ERR_UNAVAILABLE)
        else:
            raise ModemRefusal(ERR_PARAMETERS)
        lines = [
            f'"{e.name}",{e.msg_num},{e.priority},{e.sin},{e.state},{len(e.raw)},{e.acked}' for e in entries
        ]
        self._listing(resp, "%MGRS:", lines)
        for e in entries:  # final states are deleted once reported
            if e.state in (TX_COMPLETE, TX_FAILED, TX_CANCELLED):
                self.returns.remove(e)

    def _cmd_mgrc(self: IdpModemEmulator, arg: str, resp: bytearray, now: float) -> None:
        if not arg.startswith("="):
            raise ModemRefusal(ERR_PARAMETERS)
        name = self._name(arg[1:])
        for e in self.returns:
            if e.name == name:
                if e.state != TX_READY:
                    raise ModemRefusal(ERR_UNAVAILABLE)
                e.state = TX_CANCELLED
                return
        raise ModemRefusal(ERR_UNAVAILABLE)

    def _listing(self, resp: bytearray, prefix: str, lines: list[str]) -> None:
        if not lines:
            self._info(resp, prefix)
            return
        self._info(resp, f"{prefix} {lines[0]}")
        for line in lines[1:]:
            self._info(resp, line)

    def _forward_line(self, f: ForwardEntry) -> str:
        return f'"{f.name}",{f.msg_num},0,{f.sin},{f.state},{len(f.raw)},{len(f.raw)}'

    def _cmd_mgfn(self: IdpModemEmulator, arg: str, resp: bytearray, now: float) -> None:
        if arg:
            raise ModemRefusal(ERR_PARAMETERS)
        lines = [self._forward_line(f) for f in self.forwards if f.state in (RX_PENDING, RX_COMPLETE)]
        self._listing(resp, "%MGFN:", lines)

    def _cmd_mgfs(self: IdpModemEmulator, arg: str, resp: bytearray, now: float) -> None:
        if arg == "":
            entries = list(self.forwards)
        elif arg.startswith("="):
            entries = [self._forward(arg[1:])]
        else:
            raise ModemRefusal(ERR_PARAMETERS)
        self._listing(resp, "%MGFS:", [self._forward_line(f) for f in entries])

    def _forward(self, quoted: str) -> ForwardEntry:
        name = self._name(quoted)
        for f in self.forwards:
            if f.name == name:
                return f
        raise ModemRefusal(ERR_UNAVAILABLE)

    def _cmd_mgfg(self: IdpModemEmulator, arg: str, resp: bytearray, now: float) -> None:
        if not arg.startswith("="):
            raise ModemRefusal(ERR_PARAMETERS)
        parts = _split_args(arg[1:], 2)
        if len(parts) != 2 or parts[1].strip() not in ("1", "2", "3"):
            raise ModemRefusal(ERR_PARAMETERS)
        f = self._forward(parts[0])
        fmt = int(parts[1])
        data = _encode_data(f.raw[1:], fmt)
        self._info(resp, f'%MGFG: "{f.name}",{f.msg_num},0,{f.sin},{f.state},{len(f.raw)},{fmt},{data}')
        f.state = RX_RETRIEVED

    def _cmd_mgfm(self: IdpModemEmulator, arg: str, resp: bytearray, now: float) -> None:
        if not arg.startswith("="):
            raise ModemRefusal(ERR_PARAMETERS)
        self._forward(arg[1:]).state = RX_RETRIEVED


#: The commands this module answers, by name (merged into the emulator's command table).
MESSAGE_HANDLERS: dict[str, Callable[[IdpModemEmulator, str, bytearray, float], None]] = {
    "%MGRT": IdpMessageQueues._cmd_mgrt,
    "%MGRS": IdpMessageQueues._cmd_mgrs,
    "%MGRC": IdpMessageQueues._cmd_mgrc,
    "%MGFN": IdpMessageQueues._cmd_mgfn,
    "%MGFS": IdpMessageQueues._cmd_mgfs,
    "%MGFG": IdpMessageQueues._cmd_mgfg,
    "%MGFM": IdpMessageQueues._cmd_mgfm,
}


def msg_num(n: int) -> str:
    return f"{(n // 100) % 100:02d}.{n % 100:02d}"


def _split_args(text: str, count: int) -> list[str]:
    """Split at commas outside quotes into at most ``count`` fields (the last takes the rest)."""
    out: list[str] = []
    cur: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted and len(out) < count - 1:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return out


def _decode_data(text: str, fmt: int) -> bytes:
    try:
        if fmt == 3:
            return base64.b64decode(text.strip(), validate=True)
        if fmt == 2:
            return bytes.fromhex(text.strip())
    except (binascii.Error, ValueError):
        raise ModemRefusal(ERR_PARAMETERS) from None
    t = text.strip()
    if len(t) < 2 or not (t.startswith('"') and t.endswith('"')):
        raise ModemRefusal(ERR_PARAMETERS)
    body = t[1:-1]
    out = bytearray()
    i = 0
    while i < len(body):
        if body[i] == "\\":
            try:
                out.append(int(body[i + 1 : i + 3], 16))
            except ValueError:
                raise ModemRefusal(ERR_PARAMETERS) from None
            i += 3
        else:
            out += body[i].encode("latin-1")
            i += 1
    return bytes(out)


def _encode_data(data: bytes, fmt: int) -> str:
    if fmt == 3:
        return base64.b64encode(data).decode("ascii")
    if fmt == 2:
        return data.hex().upper()
    text = "".join(chr(b) if 0x20 <= b < 0x7F and b not in (0x22, 0x5C) else f"\\{b:02X}" for b in data)
    return f'"{text}"'
