"""Sans-I/O emulator of an Iridium 9602/9603/9523 SBD transceiver, byte-exact on the DTE side.

This module owns the modem's behaviour as seen on its serial port: AT command parsing, echo,
verbose and numeric result framing, the MO and MT buffers, ``+SBDWB``/``+SBDRB`` binary
transfers with their checksums, sessions (``+SBDIX``/``+SBDIXA``) whose outcome and duration
come from a ``LinkModel``, MOMSN bookkeeping, ring alerts and the unsolicited result codes.
Sizes and timeouts come from the ``ModemProfile``; nothing here hard-codes a modem number.

It must not do I/O: bytes come in through ``feed(data, now)``, bytes for the DTE go out through
``read_output()``, time only moves through ``now`` arguments and ``tick(now)``. The pty adapter
(``pty_modem``) and tests drive it. It must not import the gateway's driver either: it is the
independent reference the driver is checked against.

Theory of operation: the modem is always in one of four interface modes (reference §1.1):
*command* (characters are echoed and collected into a line ended by ``\\r``), *binary data*
(``+SBDWB`` payload, nothing echoed), *text data* (``+SBDWT`` without ``=``) and *session*
(``+SBDIX``: every DTE character is ignored until the session ends). Unsolicited codes
(``SBDRING``, ``+CIEV``) are only written in command mode; ones that happen in another mode are
held and written when the modem returns to command mode.

The command line, framing and settings profiles come from ``at_emulator.AtEmulator``; the query and
registration commands from ``iridium_queries``. The network side is any object satisfying
``SatelliteNetwork``; it calls ``ring_alert(now)`` on the emulator when a mobile-terminated message is
queued. ``LoopbackNetwork`` (``iridium_loopback``) is a small in-memory implementation for tests.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import ClassVar

from firmware_profiles import ModemProfile
from simulators.at_emulator import AtEmulator, decimal
from simulators.at_emulator import Settings as BaseSettings
from simulators.fault_plan import FaultPlan, SessionFault
from simulators.iridium_loopback import LoopbackNetwork, MoRecord, MtDelivery, SatelliteNetwork
from simulators.iridium_queries import (
    IRIDIUM_EPOCH_ERA2,
    LOCATION_RE,
    QUERY_HANDLERS,
    CommandRefused,
    Indicators,
    IridiumQueries,
)
from simulators.link_model import (
    MO_ACCESS_DENIED,
    MO_CONNECTION_LOST,
    MO_LOCAL_SESSION_TIMEOUT,
    MO_NO_NETWORK_SERVICE,
    MO_RADIO_DISABLED,
    MO_SUCCESS,
    LinkModel,
)

#: MO statuses 0-4 all mean the MO was transferred (1: MT too big, 2: location not accepted, 3-4 reserved).
MO_LAST_SUCCESS = 4
#: The gateway repeats a ring alert about 20 s after the first, once per MT (SBDG §7.1.1, §9.4.2).
RING_REPEAT_S = 20.0

DEFAULT_IMEI = "300234010753370"

_BASIC_RE = re.compile(r"(&[A-Z]|\*[A-Z]|%[A-Z]|[A-Z])(\d*)")
_EXTENDED_RE = re.compile(r"([+-][A-Z]+)(.*)", re.DOTALL | re.IGNORECASE)


# -- modem ----------------------------------------------------------------------------------


class Mode(enum.Enum):
    COMMAND = "command"
    BINARY = "binary data"
    TEXT = "text data"
    SESSION = "session"


@dataclass
class Settings(BaseSettings):
    """Settings stored in the modem's configuration profile (``AT&W0``)."""

    ring_alerts: bool
    flow_control: int = 0
    dtr: int = 0


@dataclass
class _Session:
    end: float
    status: int
    prefix: str
    fault: SessionFault | None = None


def checksum(payload: bytes) -> bytes:
    """Iridium SBD checksum: sum of the bytes modulo 65536, big-endian."""
    return (sum(payload) & 0xFFFF).to_bytes(2, "big")


class IridiumModemEmulator(AtEmulator[Settings], IridiumQueries):
    """One emulated Iridium SBD transceiver. See the module docstring for the model."""

    def __init__(
        self,
        profile: ModemProfile,
        link: LinkModel,
        network: SatelliteNetwork,
        *,
        imei: str = DEFAULT_IMEI,
        registered: bool = False,
        momsn: int = 0,
        faults: FaultPlan | None = None,
    ) -> None:
        at = profile.at
        factory = Settings(
            echo=bool(at.get("echo_default", True)),
            verbose=bool(at.get("verbose_default", True)),
            quiet=False,
            ring_alerts=bool(at.get("ring_alerts_default", False)),
        )
        super().__init__(profile, factory, len("AT+SBDWT=") + profile.limits.text_command_max_chars)
        self.link = link
        self.network = network
        self.imei = imei
        self._ring_code = int(at.get("numeric_ring_code", 126))
        self.faults = faults if faults is not None else FaultPlan()
        # persistent state (survives power cycles): MOMSN, the ring alert flag and the registration
        self.momsn = momsn & 0xFFFF
        self.ra_flag = False
        self.registered = registered
        self.power_cycles = 0
        #: Where the network places the unit (latitude, longitude), for ``-MSGEO``; None: unknown.
        self.network_position: tuple[float, float] | None = None
        self._power_on_state()

    def _power_on_state(self) -> None:
        self._clear_line()
        self.mode = Mode.COMMAND
        self.mo_buffer = b""
        self.mt_buffer: bytes | None = None
        self.mtmsn = -1
        self.radio_on = True
        self.msg_waiting = 0
        self.sri = 0
        self.session_timeout_s = 0.0
        self._data_expected = 0
        self._data = bytearray()
        self._data_deadline: float | None = None
        self._session: _Session | None = None
        self._pending_ring = False
        self._indicators = Indicators()
        self._indicator_due = 0.0
        self._ring_repeat_at: float | None = None

    # -- sans-I/O surface ---------------------------------------------------------------------

    def feed(self, data: bytes, now: float) -> None:
        """Bytes written by the DTE at ``now``."""
        self.tick(now)
        i = 0
        n = len(data)
        while i < n:
            if self.mode is Mode.SESSION:
                return  # every DTE character is ignored during a session
            if self.mode is Mode.BINARY:
                take = self._data_expected + 2 - len(self._data)
                self._data += data[i : i + take]
                i += take
                if len(self._data) >= self._data_expected + 2:
                    self._finish_binary_write()
                continue
            byte = data[i]
            i += 1
            if self.mode is Mode.TEXT:
                self._text_byte(byte)
            else:
                self._command_byte(byte, now)

    def tick(self, now: float) -> None:
        """Let time pass to ``now``: data timeouts, session ends, indicator events."""
        if self._data_deadline is not None and now >= self._data_deadline:
            self._data_timeout()
        if self._session is not None and now >= self._session.end:
            self._finish_session(now)
        if self._ring_repeat_at is not None and now >= self._ring_repeat_at:
            self._ring_repeat_at = None
            self._ring(now)
        if self._indicators.enabled:
            self._poll_indicators(now)

    def next_wakeup(self) -> float | None:
        """When ``tick`` next has something to do, or None."""
        session_end = self._session.end if self._session is not None else None
        times = [t for t in (self._data_deadline, session_end, self._ring_repeat_at) if t is not None]
        if self._indicators.enabled and self._indicators.last_signal is not None:
            times.append(self._indicator_due)
        return min(times) if times else None

    @property
    def in_command_mode(self) -> bool:
        return self.mode is Mode.COMMAND

    def ring_alert(self, now: float) -> None:
        """The network signals a queued MT message (called by the network side); it repeats the alert
        ``RING_REPEAT_S`` later unless a session picks the message up first."""
        if not self.registered:
            return  # the gateway does not know where we are
        self._ring_repeat_at = now + RING_REPEAT_S
        self._ring(now)

    def _ring(self, now: float) -> None:
        if not self.radio_on or self.link.signal(now) == 0 or self.faults.blocked(now):
            return  # the simplex ring alert is missed
        if self.faults.ring_alert_missed():
            return
        self.ra_flag = True
        self.sri = 1
        if not self.settings.ring_alerts:
            return
        if self.mode is Mode.COMMAND:
            self._write_ring()
            self._notify_output()
        else:
            self._pending_ring = True

    def power_cycle(self) -> None:
        """Remove and restore power: volatile state is lost; the power-up settings profile (``AT&W0``,
        ``AT&Y0``), MOMSN, the ring alert flag and the registration are non-volatile and survive."""
        self.settings = replace(self._stored)
        self.power_cycles += 1
        self._power_on_state()

    # -- framing ------------------------------------------------------------------------------

    def _info(self, text: str) -> None:
        self._out += self._frame_info(text)

    def _result(self, ok: bool) -> None:
        self._out += self._frame_result(ok)

    def _ready(self) -> None:
        self._out += b"\r\nREADY\r\n" if self.settings.verbose else b"READY\r\n"

    def _write_ring(self) -> None:
        self._out += b"\r\nSBDRING\r\n" if self.settings.verbose else b"%d\r" % self._ring_code

    def _back_to_command_mode(self) -> None:
        self.mode = Mode.COMMAND
        if self._pending_ring:
            self._pending_ring = False
            self._write_ring()
        for indicator, value in sorted(self._indicators.held.items()):
            self._info(f"+CIEV:{indicator},{value}")
        self._indicators.held.clear()

    # -- command mode -------------------------------------------------------------------------

    def _execute(self, text: str, overflow: bool, now: float) -> None:
        if overflow:
            self._result(False)
            return
        body = text[2:]
        try:
            final = self._dispatch(body, now)
        except CommandRefused:
            self._result(False)
            return
        if final:
            self._result(True)

    def _dispatch(self, body: str, now: float) -> bool:
        """Run the commands after ``AT``; True if the caller should write OK now."""
        pos = 0
        upper = body.upper()
        while pos < len(body):
            if upper[pos] in "+-":
                return self._extended(body[pos:], now)
            m = _BASIC_RE.match(upper, pos)
            if m is None:
                raise CommandRefused
            self._basic(m.group(1), int(m.group(2) or 0))
            pos = m.end()
        return True

    def _basic(self, name: str, value: int) -> None:
        s = self.settings
        if self._setting(name, value):
            pass
        elif name == "&W" and value in (0, 1):
            self._stored = replace(self.settings)
        elif name == "&Y" and value in (0, 1):
            pass
        elif name == "&K" and value in (0, 3):
            s.flow_control = value
        elif name == "&D" and value in (0, 1, 2, 3):
            s.dtr = value
        elif name == "*R" and value in (0, 1):
            self.radio_on = bool(value)
        elif name == "*F" and value == 0:
            pass
        else:
            raise CommandRefused

    # -- extended commands --------------------------------------------------------------------

    def _extended(self, text: str, now: float) -> bool:
        m = _EXTENDED_RE.match(text)
        if m is None:
            raise CommandRefused
        name = m.group(1).upper()
        arg = m.group(2)
        handler = self._HANDLERS.get(name)
        if handler is None:
            raise CommandRefused
        return handler(self, arg, now)

    def _cmd_sbdwb(self, arg: str, now: float) -> bool:
        if not arg.startswith("=") or not decimal(arg[1:].strip()):
            raise CommandRefused
        size = int(arg[1:])
        if not 1 <= size <= self.profile.limits.mo_max_bytes:
            self._info("3")
            return True
        self._ready()
        self.mode = Mode.BINARY
        self._data_expected = size
        self._data.clear()
        self._data_deadline = now + self.profile.timings.write_data_timeout_s
        return False

    def _finish_binary_write(self) -> None:
        data = bytes(self._data)
        payload, ck = data[:-2], data[-2:]
        self._data.clear()
        self._data_deadline = None
        if checksum(payload) == ck:
            self.mo_buffer = payload
            self._info("0")
        else:
            self._info("2")
        self._result(True)
        self._back_to_command_mode()

    def _data_timeout(self) -> None:
        self._data_deadline = None
        self._data.clear()
        self._info("1")
        if self.mode is Mode.TEXT:  # +SBDWT answers OK after a timeout, +SBDWB does not
            self._result(True)
        self._back_to_command_mode()

    def _cmd_sbdwt(self, arg: str, now: float) -> bool:
        if arg.startswith("="):
            text = arg[1:]
            if len(text) > self.profile.limits.text_command_max_chars or not text:
                raise CommandRefused
            self.mo_buffer = text.encode("latin-1")
            return True
        if arg != "":
            raise CommandRefused
        self._ready()
        self.mode = Mode.TEXT
        self._data.clear()
        self._overflow = False
        self._data_deadline = now + self.profile.timings.write_data_timeout_s
        return False

    def _text_byte(self, byte: int) -> None:
        if byte == 0x0A:
            return
        if byte != 0x0D:
            if len(self._data) >= self.profile.limits.mo_max_bytes:
                self._overflow = True
            else:
                self._data.append(byte)
            return
        self._data_deadline = None
        ok = not self._overflow and len(self._data) > 0
        if ok:
            self.mo_buffer = bytes(self._data)
        self._data.clear()
        self._overflow = False
        if ok:
            self._info("0")
        self._result(ok)
        self._back_to_command_mode()

    def _cmd_sbdrb(self, arg: str, now: float) -> bool:
        self._no_args(arg)
        if arg:
            return True
        payload = self.mt_buffer or b""
        self._out += len(payload).to_bytes(2, "big") + payload + checksum(payload)
        return True

    def _cmd_sbdrt(self, arg: str, now: float) -> bool:
        self._no_args(arg)
        if arg:
            return True
        text = self.mt_buffer or b""
        self._out += (b"\r\n+SBDRT:\r\n" if self.settings.verbose else b"+SBDRT:\r\n") + text
        return True

    def _cmd_sbdd(self, arg: str, now: float) -> bool:
        if arg not in ("0", "1", "2"):
            raise CommandRefused
        if arg in ("0", "2"):
            self.mo_buffer = b""
        if arg in ("1", "2"):
            self.mt_buffer = None
            self.mtmsn = -1
        self._info("0")
        return True

    def _cmd_sbdc(self, arg: str, now: float) -> bool:
        self._no_args(arg)
        if arg == "":
            self.momsn = 0
            self._info("0")
        return True

    def _cmd_sbds(self, arg: str, now: float) -> bool:
        self._no_args(arg)
        if arg == "":
            mo, mt = int(bool(self.mo_buffer)), int(self.mt_buffer is not None)
            self._info(f"+SBDS: {mo}, {self.momsn}, {mt}, {self.mtmsn if mt else -1}")
        return True

    def _cmd_sbdsx(self, arg: str, now: float) -> bool:
        self._no_args(arg)
        if arg == "":
            mo, mt = int(bool(self.mo_buffer)), int(self.mt_buffer is not None)
            self._info(
                f"+SBDSX: {mo}, {self.momsn}, {mt}, {self.mtmsn if mt else -1}, "
                f"{int(self.ra_flag)}, {self.msg_waiting}"
            )
        return True

    def _cmd_sbdmta(self, arg: str, now: float) -> bool:
        if arg == "?":
            self._info(f"+SBDMTA:{int(self.settings.ring_alerts)}")
        elif arg == "=?":
            self._info("+SBDMTA:(0-1)")
        elif arg in ("=0", "=1"):
            self.settings.ring_alerts = arg == "=1"
        else:
            raise CommandRefused
        return True

    def _cmd_sbdst(self, arg: str, now: float) -> bool:
        if arg == "?":
            self._info(f"+SBDST:{int(self.session_timeout_s)}")
        elif arg.startswith("=") and decimal(arg[1:]):
            self.session_timeout_s = float(int(arg[1:]))
        else:
            raise CommandRefused
        return True

    def _session_command(self, prefix: str, arg: str, now: float) -> bool:
        if arg == "=?":
            return True
        if arg and not (arg.startswith("=") and LOCATION_RE.match(arg[1:])):
            raise CommandRefused
        fault = self.faults.take(now)
        if fault is not None and fault.power_cycle:
            self.power_cycle()  # a brown-out as the transmitter keys up: the command is never answered
            return False
        status, duration = self._session_outcome(fault, now)
        self.mt_buffer = None  # the MT buffer is cleared when a session starts
        self.mtmsn = -1
        self._session = _Session(end=now + duration, status=status, prefix=prefix, fault=fault)
        self.mode = Mode.SESSION
        if duration <= 0:
            self._finish_session(now)
        return False

    def _session_outcome(self, fault: SessionFault | None, now: float) -> tuple[int, float]:
        """MO status and duration: the fault plan's entry first, then the radio, the sky and the link."""
        if not self.radio_on:
            return MO_RADIO_DISABLED, 0.0
        if fault is not None and fault.mo_status is not None:
            status = fault.mo_status
            _, duration = self.link.session_outcome(now, len(self.mo_buffer))
        elif self.faults.blocked(now):
            status, duration = MO_NO_NETWORK_SERVICE, self.link.session_outcome(now, 0, blocked=True)[1]
        else:
            status, duration = self.link.session_outcome(now, len(self.mo_buffer))
        if fault is not None and fault.duration_s is not None:
            duration = fault.duration_s
        if fault is not None and fault.lost_after_s is not None and fault.lost_after_s < duration:
            status, duration = MO_CONNECTION_LOST, fault.lost_after_s
        if self.session_timeout_s > 0 and duration > self.session_timeout_s:
            status, duration = MO_LOCAL_SESSION_TIMEOUT, self.session_timeout_s
        return status, duration

    def _cmd_sbdix(self, arg: str, now: float) -> bool:
        return self._session_command("+SBDIX", arg, now)

    def _cmd_sbdixa(self, arg: str, now: float) -> bool:
        return self._session_command("+SBDIXA", arg, now)

    def _finish_session(self, now: float) -> None:
        session = self._session
        assert session is not None
        self._session = None
        momsn = self.momsn
        if MO_SUCCESS <= session.status <= MO_LAST_SUCCESS:  # 0-4: the MO went through
            try:
                mt_failed = session.fault is not None and session.fault.mt_status == 2
                keep_mt = {"take_mt": False} if mt_failed else {}  # older networks know only the default
                delivery = self.network.session(self.imei, self.mo_buffer or None, momsn, now, **keep_mt)
            except LookupError:  # the gateway does not know this IMEI
                self._info(f"{session.prefix}: {MO_ACCESS_DENIED}, {momsn}, 2, 0, 0, 0")
                self._result(True)
                self._back_to_command_mode()
                return
            self.registered = True
            self.momsn = (momsn + 1) & 0xFFFF
            self.ra_flag = False
            self._ring_repeat_at = None  # the MT was picked up: the gateway's second alert is cancelled
            self.sri = 0
            self.msg_waiting = delivery.queued
            mo_status, mt_status, mtmsn, mt_len = session.status, 0, 0, 0
            if delivery.payload is not None:
                mtmsn = delivery.mtmsn
                if len(delivery.payload) > self.profile.limits.mt_max_bytes:
                    mo_status, mt_status = 1, 2  # MT too big for one session
                else:
                    self.mt_buffer = delivery.payload
                    self.mtmsn = mtmsn
                    mt_status, mt_len = 1, len(delivery.payload)
            if mt_failed:  # error while receiving the MT: it stays queued at the gateway
                mt_status, mtmsn = 2, 0
            queued = delivery.queued
            line = f"{session.prefix}: {mo_status}, {momsn}, {mt_status}, {mtmsn}, {mt_len}, {queued}"
        else:
            line = f"{session.prefix}: {session.status}, {momsn}, 2, 0, 0, 0"
        self._info(line)
        self._result(True)
        self._back_to_command_mode()

    def _cmd_sbdtc(self, arg: str, now: float) -> bool:
        self._no_args(arg)
        if arg == "":
            self.mt_buffer = self.mo_buffer
            self.mtmsn = max(self.mtmsn, 0)
            self._info(f"SBDTC: Outbound SBD Copied to Inbound SBD: size = {len(self.mo_buffer)}")
        return True

    _HANDLERS: ClassVar[dict[str, Callable[[IridiumModemEmulator, str, float], bool]]] = {
        **QUERY_HANDLERS,
        "+SBDWB": _cmd_sbdwb,
        "+SBDWT": _cmd_sbdwt,
        "+SBDRB": _cmd_sbdrb,
        "+SBDRT": _cmd_sbdrt,
        "+SBDD": _cmd_sbdd,
        "+SBDC": _cmd_sbdc,
        "+SBDS": _cmd_sbds,
        "+SBDSX": _cmd_sbdsx,
        "+SBDMTA": _cmd_sbdmta,
        "+SBDST": _cmd_sbdst,
        "+SBDIX": _cmd_sbdix,
        "+SBDIXA": _cmd_sbdixa,
        "+SBDTC": _cmd_sbdtc,
    }


__all__ = [
    "DEFAULT_IMEI",
    "IRIDIUM_EPOCH_ERA2",
    "IridiumModemEmulator",
    "LoopbackNetwork",
    "MoRecord",
    "Mode",
    "MtDelivery",
    "SatelliteNetwork",
    "Settings",
    "checksum",
]
