"""Sans-I/O emulator of an Inmarsat IsatData Pro modem (ST2100/ST6100/IDP-800 class), byte-exact on the DTE side.

This module owns the modem's behaviour as its serial port shows it: the V.250 command line (echo of
every byte including a ``*XXXX`` CRC suffix and the ``\\r``, ``;`` chaining, space-separated
S-register queries), verbose and numeric result framing, CRC mode (``AT%CRC=1``: CRC-16/CCITT-FALSE
on requests and on every response), ``ATS80?`` error reasons, S-registers including the satellite
status trace registers, the return (MO) message queue (``%MGRT``, ``%MGRS``, ``%MGRC``) and the
forward (MT) queue (``%MGFN``, ``%MGFS``, ``%MGFG``, ``%MGFM``), shared queue slots with queue-full
errors, and the event bitmap ``S89``. Radio conditions come from a ``LinkModel``: each transmission
or reception attempt takes the model's session duration and succeeds or fails as it says.

It must not do I/O: bytes come in through ``feed(data, now)``, bytes for the DTE go out through
``read_output()``, time moves only through ``now`` arguments and ``tick(now)``. ``PtyModem`` puts it on
a pseudo-terminal. It must not import the gateway's driver: it is the independent reference.

The network side is any ``IdpSatelliteNetwork``: the modem hands it each return message when the
transmission completes and pulls forward messages from it (``next_forward``/``forward_result``). The
network calls ``forward_waiting(now)`` when it has something new, so an idle modem wakes up.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Protocol

from firmware_profiles import ModemProfile
from simulators.link_model import MO_NO_NETWORK_SERVICE, MO_SUCCESS, LinkModel

DEFAULT_MOBILE_ID = "01097623SKYFDA1"

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

# S89 event bits.
EVENT_MT_RECEIVED = 0x2
EVENT_MO_COMPLETE = 0x4
EVENT_REGISTERED = 0x8
EVENT_RESET_COMPLETE = 0x10

# Satellite control states (S122 in trace class 3 subclass 1).
CONTROL_ACTIVE = 10
CONTROL_BLOCKED = 11
#: C/N0 (dB-Hz) shown for 0..5 signal bars; drivers map C/N0 back with thresholds 37/39/41/43/45.5.
_CN0_FOR_BARS = (33.0, 38.0, 40.0, 42.0, 44.0, 46.5)

_READ_ONLY = {54, 80, 81, 85, 89, *range(100, 124)}
_WIDE_5 = {41, 88, 89}
_PROTOCOL_ERROR_MIN = 2


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF): the IDP AT ``*XXXX`` checksum."""
    return binascii.crc_hqx(data, 0xFFFF)


class IdpSatelliteNetwork(Protocol):
    """The IDP network as one modem sees it."""

    def return_message(self, mobile_id: str, raw: bytes, now: float) -> None:
        """A return message (SIN + data) arrived from ``mobile_id``. LookupError: unknown mobile."""
        ...

    def next_forward(self, mobile_id: str, now: float) -> tuple[int, bytes] | None:
        """The forward message (reference number, SIN + data) to deliver now, without removing it."""
        ...

    def forward_result(self, mobile_id: str, reference: int, delivered: bool, now: float) -> None:
        """The modem took (``delivered``) or refused (queue full) the offered forward message."""
        ...


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


@dataclass
class Settings:
    echo: bool
    verbose: bool
    quiet: bool
    crc: bool


class _Err(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class _Attempt:
    end: float
    status: int
    kind: str  # "tx" or "rx"
    reference: int = 0
    raw: bytes = b""
    entry: ReturnEntry | None = None


_NAME_RE = re.compile(r'^"([^"]{1,12})"$')
_S_REG_RE = re.compile(r"S(\d{1,3})(\?|=(\d+))")


class IdpModemEmulator:
    """One emulated IDP modem. See the module docstring for the model."""

    def __init__(
        self,
        profile: ModemProfile,
        link: LinkModel,
        network: IdpSatelliteNetwork,
        *,
        mobile_id: str = DEFAULT_MOBILE_ID,
        tx_lifetime_s: float | None = None,
    ) -> None:
        self.profile = profile
        self.link = link
        self.network = network
        self.mobile_id = mobile_id
        at = profile.at
        self._factory = Settings(
            echo=bool(at.get("echo_default", True)),
            verbose=bool(at.get("verbose_default", True)),
            quiet=False,
            crc=bool(at.get("crc_default", False)),
        )
        self._stored = replace(self._factory)
        self.queue_slots = int(at["queue_slots"])
        self.name_max = int(at["message_name_max"])
        self.tx_lifetime_s = profile.timings.session_timeout_s if tx_lifetime_s is None else tx_lifetime_s
        # the longest legal line: %MGRT with a base64 body of the largest return message
        self._line_limit = 4 * (-(-profile.limits.mo_max_bytes // 3)) + 64
        self.on_output: Callable[[], None] | None = None
        # non-volatile queues survive resets
        self.returns: list[ReturnEntry] = []
        self.forwards: list[ForwardEntry] = []
        self._msg_seq = 0
        self.powered = True
        self._now = 0.0
        self._power_on()

    def _power_on(self) -> None:
        self.settings = replace(self._stored)
        self._out = bytearray()
        self._line = bytearray()
        self._overflow = False
        self.sregs: dict[int, int] = {0: 0, 3: 13, 4: 10, 5: 8, 39: 0, 41: 180, 50: 0, 51: 0, 52: 0}
        self.sregs.update({55: 0, 56: 0, 57: 0, 60: 1, 61: 0, 62: 1, 63: 0, 64: 42, 80: 0, 81: 0})
        self.sregs.update({85: 220, 88: 0, 89: EVENT_RESET_COMPLETE, 90: 0, 91: 0, 92: 0})
        self._attempt: _Attempt | None = None
        self._retry_at: float | None = None
        self._forward_check = True
        for entry in self.returns:
            if entry.state == TX_SENDING:
                entry.state = TX_READY

    # -- sans-I/O surface ---------------------------------------------------------------------

    def feed(self, data: bytes, now: float) -> None:
        """Bytes written by the DTE at ``now``."""
        self.tick(now)
        if not self.powered:
            return
        self._now = now
        for byte in data:
            self._command_byte(byte, now)

    def tick(self, now: float) -> None:
        """Let time pass: transmissions and receptions end, new ones start."""
        if not self.powered:
            return
        self._now = max(self._now, now)
        for _ in range(64):  # bounded: each pass ends or starts at most one attempt
            if self._attempt is not None and now >= self._attempt.end:
                self._finish_attempt(now)
                continue
            idle = self._attempt is None and (self._retry_at is None or now >= self._retry_at)
            if idle and self._start_attempt(now):
                continue
            break

    def read_output(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def next_wakeup(self) -> float | None:
        if not self.powered:
            return None
        if self._attempt is not None:
            return self._attempt.end
        return self._retry_at

    def forward_waiting(self, now: float) -> None:
        """The network has a new forward message for this modem (wakes an idle modem)."""
        self._forward_check = True
        if self._attempt is None:
            self._retry_at = now
        if self.on_output is not None:
            self.on_output()

    def power_off(self) -> None:
        """Remove power: nothing is answered; queues are kept (they are non-volatile)."""
        self.powered = False
        self._attempt = None

    def power_on(self) -> None:
        """Restore power: stored settings, S-registers to defaults, queues as they were."""
        self.powered = True
        self._power_on()

    # -- radio ----------------------------------------------------------------------------------

    def signal_bars(self, now: float) -> int:
        return self.link.signal(now)

    def _free_slots(self) -> int:
        used = sum(1 for e in self.returns) + sum(1 for f in self.forwards if f.state != RX_RETRIEVED)
        return self.queue_slots - used

    def _start_attempt(self, now: float) -> bool:
        """Start sending the oldest highest-priority ready message, or receiving a forward one."""
        ready = [e for e in self.returns if e.state == TX_READY]
        for entry in ready:
            if now - entry.created > self.tx_lifetime_s:
                entry.state = TX_FAILED
                self.sregs[89] |= EVENT_MO_COMPLETE
        ready = [e for e in ready if e.state == TX_READY]
        offer = self.network.next_forward(self.mobile_id, now) if self._forward_check else None
        if offer is None:
            self._forward_check = False
        if not ready and offer is None:
            self._retry_at = None
            return False
        if self.link.signal(now) == 0:
            self._retry_at = self.link.next_change(now)
            return False
        status, duration = self.link.session_outcome(now)
        if ready:
            entry = min(ready, key=lambda e: (e.priority, e.created))
            entry.state = TX_SENDING
            if entry.msg_num == "0.0":
                self._msg_seq += 1
                entry.msg_num = _msg_num(self._msg_seq)
            self._attempt = _Attempt(now + duration, status, "tx", entry=entry)
        else:
            assert offer is not None
            self._attempt = _Attempt(now + duration, status, "rx", reference=offer[0], raw=offer[1])
        self._retry_at = None
        return True

    def _finish_attempt(self, now: float) -> None:
        attempt = self._attempt
        assert attempt is not None
        self._attempt = None
        if attempt.kind == "tx":
            entry = attempt.entry
            assert entry is not None
            if entry.state != TX_SENDING:
                return
            delivered = False
            if attempt.status == MO_SUCCESS:
                try:
                    self.network.return_message(self.mobile_id, entry.raw, now)
                    delivered = True
                except LookupError:
                    delivered = False
            if delivered:
                entry.state = TX_COMPLETE
                entry.acked = len(entry.raw)
                self.sregs[89] |= EVENT_MO_COMPLETE
            else:
                entry.state = TX_READY
                if attempt.status == MO_NO_NETWORK_SERVICE:
                    self._retry_at = self.link.next_change(now)
            return
        self._forward_check = True
        if attempt.status != MO_SUCCESS:
            return  # the network keeps the message and offers it again
        if self._free_slots() <= 0:
            self._evict_retrieved()
        if self._free_slots() <= 0:
            self.network.forward_result(self.mobile_id, attempt.reference, False, now)
            # a full queue is reported to the network with a protocolError (SIN 0, MIN 2)
            error = bytes([0, _PROTOCOL_ERROR_MIN]) + attempt.reference.to_bytes(4, "big")
            with contextlib.suppress(LookupError):
                self.network.return_message(self.mobile_id, error, now)
            return
        name = self._forward_name(attempt.reference)
        raw = attempt.raw
        self.forwards.append(ForwardEntry(name, name[2:7], raw[0], raw))
        self.sregs[89] |= EVENT_MT_RECEIVED
        self.network.forward_result(self.mobile_id, attempt.reference, True, now)

    def _evict_retrieved(self) -> None:
        for i, f in enumerate(self.forwards):
            if f.state == RX_RETRIEVED:
                del self.forwards[i]
                return

    def _forward_name(self, reference: int) -> str:
        base = "FM" + _msg_num(reference)
        names = {f.name for f in self.forwards}
        if base not in names:
            return base
        for n in range(1, 10):
            if f"{base}{n}" not in names:
                return f"{base}{n}"
        self._evict_retrieved()
        return f"{base}9"

    # -- framing --------------------------------------------------------------------------------

    def _info(self, resp: bytearray, text: str) -> None:
        raw = text.encode("latin-1")
        resp += b"\r\n" + raw + b"\r\n" if self.settings.verbose else raw + b"\r\n"

    def _finish_line(self, resp: bytearray, ok: bool | None) -> None:
        if ok is not None and not self.settings.quiet:
            if self.settings.verbose:
                resp += b"\r\nOK\r\n" if ok else b"\r\nERROR\r\n"
            else:
                resp += b"0\r" if ok else b"4\r"
        if self.settings.crc and resp:
            resp += b"*%04X\r\n" % crc16(bytes(resp))
        self._out += resp

    # -- command line ---------------------------------------------------------------------------

    def _command_byte(self, byte: int, now: float) -> None:
        if byte == 0x0A and not self._line:
            return
        if byte == 0x0D:
            if self.settings.echo:
                self._out.append(byte)
            line = bytes(self._line)
            overflow = self._overflow
            self._line.clear()
            self._overflow = False
            self._execute(line, overflow, now)
            return
        if byte == 0x08:
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

    def _execute(self, line: bytes, overflow: bool, now: float) -> None:
        text = line.decode("latin-1")
        start = text.upper().find("AT")
        if start < 0:
            return
        text = text[start:]
        resp = bytearray()
        crc_on_entry = self.settings.crc
        if overflow:
            self._error(resp, ERR_TOO_LONG)
            return
        star = text.rfind("*")
        has_crc = star >= 0 and re.fullmatch(r"\*[0-9A-Fa-f]{4}", text[star:]) is not None
        if crc_on_entry:
            if not has_crc or int(text[star + 1 :], 16) != crc16(text[:star].encode("latin-1")):
                self._error(resp, ERR_CRC)
                return
            text = text[:star]
        elif has_crc:
            self._error(resp, ERR_CRC)
            return
        try:
            for command in _split_commands(text[2:]):
                self._dispatch(command, resp, now)
        except _Err as exc:
            self._error(resp, exc.code)
            return
        self.sregs[80] = ERR_OK
        self.sregs[81] = 0
        self._finish_line(resp, True)

    def _error(self, resp: bytearray, code: int) -> None:
        self.sregs[80] = code
        self.sregs[81] = 4
        self._finish_line(resp, False)

    def _dispatch(self, command: str, resp: bytearray, now: float) -> None:
        upper = command.upper()
        if upper.startswith("%") or upper.startswith("+"):
            m = re.match(r"([%+][A-Z]+)(.*)", command, re.DOTALL | re.IGNORECASE)
            if m is None:
                raise _Err(ERR_UNKNOWN_COMMAND)
            handler = _EXTENDED.get(m.group(1).upper())
            if handler is None:
                raise _Err(ERR_UNKNOWN_COMMAND)
            handler(self, m.group(2), resp, now)
            return
        self._basic(upper, resp, now)

    def _basic(self, text: str, resp: bytearray, now: float) -> None:
        pos = 0
        s = self.settings
        while pos < len(text):
            ch = text[pos]
            if ch == " ":
                pos += 1
                continue
            m = _S_REG_RE.match(text, pos)
            if m is not None:
                self._sreg(int(m.group(1)), m.group(3), resp)
                pos = m.end()
                continue
            m = re.compile(r"(&[A-Z]|[A-Z])(\d*)").match(text, pos)
            if m is None:
                raise _Err(ERR_UNKNOWN_COMMAND)
            name, value = m.group(1), int(m.group(2) or 0)
            pos = m.end()
            if name == "E" and value in (0, 1):
                s.echo = bool(value)
            elif name == "V" and value in (0, 1):
                s.verbose = bool(value)
            elif name == "Q" and value in (0, 1):
                s.quiet = bool(value)
            elif name == "Z" and value == 0:
                self.settings = replace(self._stored)
                s = self.settings
            elif name == "&F" and value == 0:
                self.settings = replace(self._factory)
                s = self.settings
            elif name == "&W" and value == 0:
                self._stored = replace(self.settings)
            elif name == "&V" and value == 0:
                self._info(resp, "ACTIVE CONFIGURATION:")
                self._info(resp, f"E{int(s.echo)} Q{int(s.quiet)} V{int(s.verbose)} CRC={int(s.crc)}")
            elif name == "I" and value in (0, 1, 2, 3, 4, 5):
                self._info(resp, "ORBCOMM Inc" if value == 0 else self.profile.model)
            else:
                raise _Err(ERR_UNKNOWN_COMMAND)

    def _sreg(self, reg: int, value: str | None, resp: bytearray) -> None:
        if reg > 123:
            raise _Err(ERR_PARAMETERS)
        if value is not None:
            if reg in _READ_ONLY:
                raise _Err(ERR_READ_ONLY)
            v = int(value)
            if v > 0xFFFF:
                raise _Err(ERR_PARAMETERS)
            self.sregs[reg] = v
            if reg == 63:
                self.settings.crc = bool(v)
            return
        v = self._sreg_value(reg)
        if reg == 89:
            self.sregs[89] = 0  # the event bitmap clears on read
        width = 10 if reg >= 100 else 5 if reg in _WIDE_5 else 3
        self._info(resp, f"{v:0{width}d}")

    def _sreg_value(self, reg: int) -> int:
        if reg == 63:
            return int(self.settings.crc)
        if reg == 54:
            return 5 if self._bars() > 0 else 8
        if reg >= 100:
            trace = (self.sregs.get(90, 0), self.sregs.get(91, 0))
            bars = self._bars()
            if trace == (3, 1):
                if reg == 116:
                    return int(_CN0_FOR_BARS[bars] * 100)
                if reg == 122:
                    return CONTROL_ACTIVE if bars > 0 else CONTROL_BLOCKED
                if reg == 123:
                    return 0 if bars > 0 else 1
            return 0
        return self.sregs.get(reg, 0)

    def _bars(self) -> int:
        return self.link.signal(self._now)

    # -- extended commands ----------------------------------------------------------------------

    def _cmd_crc(self, arg: str, resp: bytearray, now: float) -> None:
        if arg == "?":
            self._info(resp, f"%CRC: {int(self.settings.crc)}")
        elif arg in ("=0", "=1"):
            self.settings.crc = arg == "=1"
        else:
            raise _Err(ERR_PARAMETERS)

    def _cmd_gsn(self, arg: str, resp: bytearray, now: float) -> None:
        if arg:
            raise _Err(ERR_PARAMETERS)
        self._info(resp, f"+GSN: {self.mobile_id}")

    def _cmd_gmr(self, arg: str, resp: bytearray, now: float) -> None:
        if arg:
            raise _Err(ERR_PARAMETERS)
        self._info(resp, "+GMR: 3.003,3.1,8")

    def _cmd_utc(self, arg: str, resp: bytearray, now: float) -> None:
        if arg:
            raise _Err(ERR_PARAMETERS)
        stamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M:%S")
        self._info(resp, f"%UTC: {stamp}")

    def _cmd_off(self, arg: str, resp: bytearray, now: float) -> None:
        if arg:
            raise _Err(ERR_PARAMETERS)

    def _cmd_mgrt(self, arg: str, resp: bytearray, now: float) -> None:
        if not arg.startswith("="):
            raise _Err(ERR_PARAMETERS)
        parts = _split_args(arg[1:], 5)
        if len(parts) != 5:
            raise _Err(ERR_PARAMETERS)
        name = self._name(parts[0])
        try:
            priority = int(parts[1])
            sin_text, _, min_text = parts[2].partition(".")
            sin = int(sin_text)
            min_byte = bytes([int(min_text)]) if min_text else b""
            fmt = int(parts[3])
        except ValueError:
            raise _Err(ERR_PARAMETERS) from None
        if not 1 <= priority <= 4 or not 16 <= sin <= 255 or fmt not in (1, 2, 3):
            raise _Err(ERR_PARAMETERS)
        data = _decode_data(parts[4], fmt)
        raw = bytes([sin]) + min_byte + data
        if len(raw) > self.profile.limits.mo_max_bytes:
            raise _Err(ERR_TOO_LONG)
        if any(e.name == name for e in self.returns):
            raise _Err(ERR_NAME_IN_USE)
        if self._free_slots() <= 0:
            self._evict_retrieved()
        if self._free_slots() <= 0:
            raise _Err(ERR_QUEUE_FULL)
        self.returns.append(ReturnEntry(name, priority, sin, raw, now))
        if self._attempt is None:
            self._retry_at = now

    def _name(self, text: str) -> str:
        m = _NAME_RE.match(text.strip())
        if m is None or len(m.group(1)) > self.name_max:
            raise _Err(ERR_PARAMETERS)
        return m.group(1)

    def _cmd_mgrs(self, arg: str, resp: bytearray, now: float) -> None:
        if arg == "":
            entries = list(self.returns)
        elif arg.startswith("="):
            name = self._name(arg[1:])
            entries = [e for e in self.returns if e.name == name]
            if not entries:
                raise _Err(ERR_UNAVAILABLE)
        else:
            raise _Err(ERR_PARAMETERS)
        lines = [
            f'"{e.name}",{e.msg_num},{e.priority},{e.sin},{e.state},{len(e.raw)},{e.acked}' for e in entries
        ]
        self._listing(resp, "%MGRS:", lines)
        for e in entries:  # final states are deleted once reported
            if e.state in (TX_COMPLETE, TX_FAILED, TX_CANCELLED):
                self.returns.remove(e)

    def _cmd_mgrc(self, arg: str, resp: bytearray, now: float) -> None:
        if not arg.startswith("="):
            raise _Err(ERR_PARAMETERS)
        name = self._name(arg[1:])
        for e in self.returns:
            if e.name == name:
                if e.state != TX_READY:
                    raise _Err(ERR_UNAVAILABLE)
                e.state = TX_CANCELLED
                return
        raise _Err(ERR_UNAVAILABLE)

    def _listing(self, resp: bytearray, prefix: str, lines: list[str]) -> None:
        if not lines:
            self._info(resp, prefix)
            return
        self._info(resp, f"{prefix} {lines[0]}")
        for line in lines[1:]:
            self._info(resp, line)

    def _forward_line(self, f: ForwardEntry) -> str:
        return f'"{f.name}",{f.msg_num},0,{f.sin},{f.state},{len(f.raw)},{len(f.raw)}'

    def _cmd_mgfn(self, arg: str, resp: bytearray, now: float) -> None:
        if arg:
            raise _Err(ERR_PARAMETERS)
        lines = [self._forward_line(f) for f in self.forwards if f.state in (RX_PENDING, RX_COMPLETE)]
        self._listing(resp, "%MGFN:", lines)

    def _cmd_mgfs(self, arg: str, resp: bytearray, now: float) -> None:
        if arg == "":
            entries = list(self.forwards)
        elif arg.startswith("="):
            entries = [self._forward(arg[1:])]
        else:
            raise _Err(ERR_PARAMETERS)
        self._listing(resp, "%MGFS:", [self._forward_line(f) for f in entries])

    def _forward(self, quoted: str) -> ForwardEntry:
        name = self._name(quoted)
        for f in self.forwards:
            if f.name == name:
                return f
        raise _Err(ERR_UNAVAILABLE)

    def _cmd_mgfg(self, arg: str, resp: bytearray, now: float) -> None:
        if not arg.startswith("="):
            raise _Err(ERR_PARAMETERS)
        parts = _split_args(arg[1:], 2)
        if len(parts) != 2 or parts[1].strip() not in ("1", "2", "3"):
            raise _Err(ERR_PARAMETERS)
        f = self._forward(parts[0])
        fmt = int(parts[1])
        data = _encode_data(f.raw[1:], fmt)
        self._info(resp, f'%MGFG: "{f.name}",{f.msg_num},0,{f.sin},{f.state},{len(f.raw)},{fmt},{data}')
        f.state = RX_RETRIEVED

    def _cmd_mgfm(self, arg: str, resp: bytearray, now: float) -> None:
        if not arg.startswith("="):
            raise _Err(ERR_PARAMETERS)
        self._forward(arg[1:]).state = RX_RETRIEVED


_EXTENDED: dict[str, Callable[[IdpModemEmulator, str, bytearray, float], None]] = {
    "%CRC": IdpModemEmulator._cmd_crc,
    "+GSN": IdpModemEmulator._cmd_gsn,
    "+GMR": IdpModemEmulator._cmd_gmr,
    "%UTC": IdpModemEmulator._cmd_utc,
    "%OFF": IdpModemEmulator._cmd_off,
    "%MGRT": IdpModemEmulator._cmd_mgrt,
    "%MGRS": IdpModemEmulator._cmd_mgrs,
    "%MGRC": IdpModemEmulator._cmd_mgrc,
    "%MGFN": IdpModemEmulator._cmd_mgfn,
    "%MGFS": IdpModemEmulator._cmd_mgfs,
    "%MGFG": IdpModemEmulator._cmd_mgfg,
    "%MGFM": IdpModemEmulator._cmd_mgfm,
}


def _msg_num(n: int) -> str:
    return f"{(n // 100) % 100:02d}.{n % 100:02d}"


def _split_commands(body: str) -> list[str]:
    """Split a command line body at ``;`` outside double quotes."""
    out: list[str] = []
    cur: list[str] = []
    quoted = False
    for ch in body:
        if ch == '"':
            quoted = not quoted
        if ch == ";" and not quoted:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur).strip())
    return [c for c in out if c]


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
        raise _Err(ERR_PARAMETERS) from None
    t = text.strip()
    if len(t) < 2 or not (t.startswith('"') and t.endswith('"')):
        raise _Err(ERR_PARAMETERS)
    body = t[1:-1]
    out = bytearray()
    i = 0
    while i < len(body):
        if body[i] == "\\":
            try:
                out.append(int(body[i + 1 : i + 3], 16))
            except ValueError:
                raise _Err(ERR_PARAMETERS) from None
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


@dataclass(frozen=True)
class ReturnRecord:
    mobile_id: str
    raw: bytes
    time: float


class IdpLoopbackNetwork:
    """In-memory IDP network side for tests: records return messages, queues forward messages.

    ``attach(modem)`` lets ``queue_forward`` wake the modem. ``forward_states`` maps each forward
    reference number to ``"delivered"`` or ``"refused"`` once the modem has answered.
    """

    def __init__(self) -> None:
        self.returns: list[ReturnRecord] = []
        self.forward_states: dict[int, str] = {}
        self._forward: dict[str, list[tuple[int, bytes]]] = {}
        self._modems: dict[str, IdpModemEmulator] = {}
        self._next_ref = 1

    def attach(self, modem: IdpModemEmulator) -> None:
        self._modems[modem.mobile_id] = modem

    def queue_forward(self, mobile_id: str, raw: bytes, now: float) -> int:
        reference = self._next_ref
        self._next_ref += 1
        self._forward.setdefault(mobile_id, []).append((reference, bytes(raw)))
        modem = self._modems.get(mobile_id)
        if modem is not None:
            modem.forward_waiting(now)
        return reference

    def pending_forward(self, mobile_id: str) -> int:
        return len(self._forward.get(mobile_id, ()))

    def return_message(self, mobile_id: str, raw: bytes, now: float) -> None:
        self.returns.append(ReturnRecord(mobile_id, bytes(raw), now))

    def next_forward(self, mobile_id: str, now: float) -> tuple[int, bytes] | None:
        queue = self._forward.get(mobile_id)
        return queue[0] if queue else None

    def forward_result(self, mobile_id: str, reference: int, delivered: bool, now: float) -> None:
        queue = self._forward.get(mobile_id, [])
        self._forward[mobile_id] = [item for item in queue if item[0] != reference]
        self.forward_states[reference] = "delivered" if delivered else "refused"
