"""Sans-I/O emulator of an Inmarsat IsatData Pro modem (ST2100/ST6100/IDP-800 class), byte-exact on the DTE side.

This module owns the modem's behaviour as its serial port shows it: the V.250 command line (echo of
every byte including a ``*XXXX`` CRC suffix and the ``\\r``, ``;`` chaining, space-separated
S-register queries), verbose and numeric result framing, CRC mode (``AT%CRC=1``: CRC-16/CCITT-FALSE
on requests and on every response), ``ATS80?`` error reasons, S-registers including the satellite
status trace registers, and the event bitmap ``S89``; the return and forward message queues and
their commands are mixed in from ``idp_messages``, the command-line collection and framing come from
``at_emulator.AtEmulator``. Radio conditions come from a ``LinkModel``: each transmission
or reception attempt takes the model's session duration and succeeds or fails as it says. The return
and the forward channel are separate carriers, as on the real system: a return message being sent (or
waiting to be retried) never holds up the reception of a forward message, and the other way round;
both need the same sky (no blockage, signal, an acquired beam).

It must not do I/O: bytes come in through ``feed(data, now)``, bytes for the DTE go out through
``read_output()``, time moves only through ``now`` arguments and ``tick(now)``. ``PtyModem`` puts it on
a pseudo-terminal. It must not import the gateway's driver: it is the independent reference.

The network side is any ``IdpSatelliteNetwork``: the modem hands it each return message when the
transmission completes and pulls forward messages from it (``next_forward``/``forward_result``). The
network calls ``forward_waiting(now)`` when it has something new, so an idle modem wakes up.
"""

from __future__ import annotations

import binascii
import contextlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Protocol

from firmware_profiles import ModemProfile
from simulators.at_emulator import AtEmulator
from simulators.at_emulator import Settings as BaseSettings
from simulators.fault_plan import FaultPlan
from simulators.idp_acquisition import ACTIVE, BEAM_SEARCH, BLOCKED, Acquisition
from simulators.idp_messages import (
    ERR_CRC,
    ERR_NAME_IN_USE,
    ERR_OK,
    ERR_PARAMETERS,
    ERR_QUEUE_FULL,
    ERR_READ_ONLY,
    ERR_TOO_LONG,
    ERR_UNAVAILABLE,
    ERR_UNKNOWN_COMMAND,
    MESSAGE_HANDLERS,
    RX_COMPLETE,
    RX_PENDING,
    RX_RETRIEVED,
    TX_CANCELLED,
    TX_COMPLETE,
    TX_FAILED,
    TX_READY,
    TX_SENDING,
    ForwardEntry,
    IdpMessageQueues,
    ModemRefusal,
    ReturnEntry,
    msg_num,
)
from simulators.link_model import MO_CONNECTION_LOST, MO_NO_NETWORK_SERVICE, MO_SUCCESS, LinkModel

DEFAULT_MOBILE_ID = "01097623SKYFDA1"
#: ``ATS80?`` reason for a GNSS fix not obtained in time.
ERR_GNSS_TIMEOUT = 108

#: S51 wakeup interval codes in seconds (0 = 5 s, always on; 7-10 on newer firmware).
WAKEUP_INTERVAL_S = {0: 5, 1: 30, 2: 60, 3: 180, 4: 600, 5: 1800, 6: 3600, 7: 120, 8: 300, 9: 900, 10: 1200}

# S89 event bits.
EVENT_MT_RECEIVED = 0x2
EVENT_MO_COMPLETE = 0x4
EVENT_REGISTERED = 0x8
EVENT_RESET_COMPLETE = 0x10

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
class Settings(BaseSettings):
    crc: bool


@dataclass
class _Attempt:
    end: float
    status: int
    kind: str  # "tx" or "rx"
    reference: int = 0
    raw: bytes = b""
    entry: ReturnEntry | None = None


_S_REG_RE = re.compile(r"S(\d{1,3})(\?|=(\d+))")


class IdpModemEmulator(AtEmulator[Settings], IdpMessageQueues):
    """One emulated IDP modem. See the module docstring for the model."""

    LF_IN_LINE = True

    def __init__(
        self,
        profile: ModemProfile,
        link: LinkModel,
        network: IdpSatelliteNetwork,
        *,
        mobile_id: str = DEFAULT_MOBILE_ID,
        tx_lifetime_s: float | None = None,
        faults: FaultPlan | None = None,
    ) -> None:
        self.faults = faults if faults is not None else FaultPlan()
        self.gnss_position: tuple[float, float] | None = None  # the terminal's GNSS fix, for %GPS
        self.acquisition = Acquisition(link.duration_scale)
        at = profile.at
        factory = Settings(
            echo=bool(at.get("echo_default", True)),
            verbose=bool(at.get("verbose_default", True)),
            quiet=False,
            crc=bool(at.get("crc_default", False)),
        )
        # the longest legal line: %MGRT with a base64 body of the largest return message
        super().__init__(profile, factory, 4 * (-(-profile.limits.mo_max_bytes // 3)) + 64)
        self.link = link
        self.network = network
        self.mobile_id = mobile_id
        self.queue_slots = int(at["queue_slots"])
        self.name_max = int(at["message_name_max"])
        self.tx_lifetime_s = profile.timings.session_timeout_s if tx_lifetime_s is None else tx_lifetime_s
        # non-volatile queues survive resets
        self.returns: list[ReturnEntry] = []
        self.forwards: list[ForwardEntry] = []
        self._msg_seq = 0
        self.powered = True
        self._now = 0.0
        self._power_on()

    def _power_on(self) -> None:
        self.settings = replace(self._stored)
        self._clear_line()
        self.sregs: dict[int, int] = {0: 0, 3: 13, 4: 10, 5: 8, 39: 0, 41: 180, 50: 0, 51: 0, 52: 0}
        self.sregs.update({55: 0, 56: 0, 57: 0, 60: 1, 61: 0, 62: 1, 63: 0, 64: 42, 80: 0, 81: 0})
        self.sregs.update({85: 220, 88: 0, 89: EVENT_RESET_COMPLETE, 90: 0, 91: 0, 92: 0})
        self._attempt: _Attempt | None = None  # the return channel: a transmission under way
        self._retry_at: float | None = None  # when the return channel next looks for work
        self._reception: _Attempt | None = None  # the forward channel: a reception under way
        self._rx_retry_at: float | None = None  # when the forward channel next looks for work
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
                self._finish_transmission(now)
                continue
            if self._reception is not None and now >= self._reception.end:
                self._finish_reception(now)
                continue
            if _due(self._attempt, self._retry_at, now) and self._start_transmission(now):
                continue
            if _due(self._reception, self._rx_retry_at, now) and self._start_reception(now):
                continue
            break

    def next_wakeup(self) -> float | None:
        if not self.powered:
            return None
        times = [
            attempt.end if attempt is not None else retry_at
            for attempt, retry_at in ((self._attempt, self._retry_at), (self._reception, self._rx_retry_at))
        ]
        due = [t for t in times if t is not None]
        return min(due) if due else None

    def forward_waiting(self, now: float) -> None:
        """The network has a new forward message for this modem (wakes an idle modem)."""
        self._forward_check = True
        if self._reception is None:
            self._rx_retry_at = now
        if self._attempt is None:  # an idle modem looks at its whole state again, the return queue too
            self._retry_at = now
        self._notify_output()

    def power_off(self) -> None:
        """Remove power: nothing is answered; queues are kept (they are non-volatile)."""
        self.powered = False
        self._attempt = None
        self._reception = None

    def power_on(self) -> None:
        """Restore power: stored settings, S-registers to defaults, queues as they were."""
        self.powered = True
        self._power_on()
        self.acquisition.cold_start(self._now)

    # -- radio ----------------------------------------------------------------------------------

    @property
    def wakeup_interval_s(self) -> float:
        """How often the terminal listens for forward messages (S51); 5 s means always on."""
        return float(WAKEUP_INTERVAL_S.get(self.sregs.get(51, 0), 5))

    def next_wakeup_slot(self, now: float) -> float:
        """When a low-power terminal next listens (``now`` when it is always on)."""
        interval = self.wakeup_interval_s
        if interval <= WAKEUP_INTERVAL_S[0]:
            return now
        return math.ceil(now / interval) * interval

    def signal_bars(self, now: float) -> int:
        return self.link.signal(now)

    def _sky_closed(self, now: float) -> float | None:
        """When to look again if nothing can go over the air at ``now`` (blockage, no signal, beam not
        yet acquired); None when the terminal is active."""
        if self.faults.blocked(now):  # the mast, a crane: nothing goes until the blockage ends
            return self.faults.blocked_until
        if self.link.signal(now) == 0:
            self.acquisition.state(now, 0)
            return self.link.next_change(now)
        if self.acquisition.state(now, self.link.signal(now)) != ACTIVE:  # still acquiring the beam
            return self.acquisition.active_at(now)
        return None

    def _start_transmission(self, now: float) -> bool:
        """Start sending the oldest highest-priority ready return message."""
        ready = [e for e in self.returns if e.state == TX_READY]
        for entry in ready:
            if now - entry.created > self.tx_lifetime_s:
                entry.state = TX_FAILED
                self.sregs[89] |= EVENT_MO_COMPLETE
        ready = [e for e in ready if e.state == TX_READY]
        if not ready:
            self._retry_at = None
            return False
        closed = self._sky_closed(now)
        if closed is not None:
            self._retry_at = closed
            return False
        fault = self.faults.take(now)
        if fault is not None and fault.blockage_s > 0:
            self._retry_at = self.faults.blocked_until
            return False
        entry = min(ready, key=lambda e: (e.priority, e.created))
        status, duration = self.link.session_outcome(now, len(entry.raw))
        if fault is not None and fault.mo_status is not None:
            status = fault.mo_status
        if fault is not None and fault.lost_after_s is not None and fault.lost_after_s < duration:
            status, duration = MO_CONNECTION_LOST, fault.lost_after_s
        entry.state = TX_SENDING
        if entry.msg_num == "0.0":
            self._msg_seq += 1
            entry.msg_num = msg_num(self._msg_seq)
        self._attempt = _Attempt(now + duration, status, "tx", entry=entry)
        self._retry_at = None
        return True

    def _start_reception(self, now: float) -> bool:
        """Start receiving the forward message the network offers, at the terminal's next wakeup slot."""
        if not self._forward_check:
            self._rx_retry_at = None
            return False
        if now < self.next_wakeup_slot(now):
            self._rx_retry_at = self.next_wakeup_slot(now)  # asleep until the next wakeup slot
            return False
        offer = self.network.next_forward(self.mobile_id, now)
        if offer is None:
            self._forward_check = False
            self._rx_retry_at = None
            return False
        closed = self._sky_closed(now)
        if closed is not None:
            self._rx_retry_at = closed
            return False
        status, duration = self.link.session_outcome(now, len(offer[1]))
        self._reception = _Attempt(now + duration, status, "rx", reference=offer[0], raw=offer[1])
        self._rx_retry_at = None
        return True

    def _finish_transmission(self, now: float) -> None:
        attempt = self._attempt
        assert attempt is not None and attempt.entry is not None
        self._attempt = None
        entry = attempt.entry
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

    def _finish_reception(self, now: float) -> None:
        attempt = self._reception
        assert attempt is not None
        self._reception = None
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

    # -- framing --------------------------------------------------------------------------------

    def _info(self, resp: bytearray, text: str) -> None:
        resp += self._frame_info(text)

    def _finish_line(self, resp: bytearray, ok: bool | None) -> None:
        if ok is not None:
            resp += self._frame_result(ok)
        if self.settings.crc and resp:
            resp += b"*%04X\r\n" % crc16(bytes(resp))
        self._out += resp

    # -- command line ---------------------------------------------------------------------------

    def _execute(self, text: str, overflow: bool, now: float) -> None:
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
        except ModemRefusal as exc:
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
                raise ModemRefusal(ERR_UNKNOWN_COMMAND)
            handler = _EXTENDED.get(m.group(1).upper())
            if handler is None:
                raise ModemRefusal(ERR_UNKNOWN_COMMAND)
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
                raise ModemRefusal(ERR_UNKNOWN_COMMAND)
            name, value = m.group(1), int(m.group(2) or 0)
            pos = m.end()
            if self._setting(name, value):
                s = self.settings
            elif name == "&W" and value == 0:
                self._stored = replace(self.settings)
            elif name == "&V" and value == 0:
                self._info(resp, "ACTIVE CONFIGURATION:")
                self._info(resp, f"E{int(s.echo)} Q{int(s.quiet)} V{int(s.verbose)} CRC={int(s.crc)}")
            elif name == "I" and value in (0, 1, 2, 3, 4, 5):
                self._info(resp, "ORBCOMM Inc" if value == 0 else self.profile.model)
            else:
                raise ModemRefusal(ERR_UNKNOWN_COMMAND)

    def _sreg(self, reg: int, value: str | None, resp: bytearray) -> None:
        if reg > 123:
            raise ModemRefusal(ERR_PARAMETERS)
        if value is not None:
            if reg in _READ_ONLY:
                raise ModemRefusal(ERR_READ_ONLY)
            v = int(value)
            if v > 0xFFFF:
                raise ModemRefusal(ERR_PARAMETERS)
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
        if reg == 54:  # 5 can transmit, 3 acquiring, 2 searching, 8 blocked
            control = self._control_state()
            return {ACTIVE: 5, BLOCKED: 8, BEAM_SEARCH: 2}.get(control, 3)
        if reg >= 100:
            trace = (self.sregs.get(90, 0), self.sregs.get(91, 0))
            bars = self._bars()
            if trace == (3, 1):
                if reg == 116:
                    return int(_CN0_FOR_BARS[bars] * 100)
                if reg == 122:
                    return self._control_state()
                if reg == 123:  # beam search state: 1 searching any traffic beam, 0 idle
                    return 1 if self._control_state() in (BEAM_SEARCH, BLOCKED) else 0
            return 0
        return self.sregs.get(reg, 0)

    def _bars(self) -> int:
        return self.link.signal(self._now) if self._control_state() == ACTIVE else 0

    def _control_state(self) -> int:
        return self.acquisition.state(self._now, self.link.signal(self._now))

    # -- extended commands ----------------------------------------------------------------------

    def _cmd_crc(self, arg: str, resp: bytearray, now: float) -> None:
        if arg == "?":
            self._info(resp, f"%CRC: {int(self.settings.crc)}")
        elif arg in ("=0", "=1"):
            self.settings.crc = arg == "=1"
        else:
            raise ModemRefusal(ERR_PARAMETERS)

    def _cmd_gsn(self, arg: str, resp: bytearray, now: float) -> None:
        if arg:
            raise ModemRefusal(ERR_PARAMETERS)
        self._info(resp, f"+GSN: {self.mobile_id}")

    def _cmd_gmr(self, arg: str, resp: bytearray, now: float) -> None:
        if arg:
            raise ModemRefusal(ERR_PARAMETERS)
        self._info(resp, "+GMR: 3.003,3.1,8")

    def _cmd_utc(self, arg: str, resp: bytearray, now: float) -> None:
        if arg:
            raise ModemRefusal(ERR_PARAMETERS)
        stamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M:%S")
        self._info(resp, f"%UTC: {stamp}")

    def _cmd_gps(self, arg: str, resp: bytearray, now: float) -> None:
        """``%GPS=<stale>,<wait>[,"RMC"...]``: an RMC sentence of ``gnss_position``; reason 108 without a fix."""
        if not re.fullmatch(r'=\d{1,3},\d{1,3}(,"[A-Z]{3}")*', arg):
            raise ModemRefusal(ERR_PARAMETERS)
        if self.gnss_position is None:
            raise ModemRefusal(ERR_GNSS_TIMEOUT)
        lat, lon = self.gnss_position
        when = datetime.fromtimestamp(now, UTC)
        body = "GPRMC,{},A,{:02d}{:07.4f},{},{:03d}{:07.4f},{},0.0,0.0,{},,,A".format(
            when.strftime("%H%M%S"),
            int(abs(lat)),
            abs(lat) % 1 * 60,
            "S" if lat < 0 else "N",
            int(abs(lon)),
            abs(lon) % 1 * 60,
            "W" if lon < 0 else "E",
            when.strftime("%d%m%y"),
        )
        check = 0
        for ch in body.encode():
            check ^= ch
        self._info(resp, f"%GPS: ${body}*{check:02X}")

    def _cmd_off(self, arg: str, resp: bytearray, now: float) -> None:
        if arg:
            raise ModemRefusal(ERR_PARAMETERS)


_EXTENDED: dict[str, Callable[[IdpModemEmulator, str, bytearray, float], None]] = {
    **MESSAGE_HANDLERS,
    "%CRC": IdpModemEmulator._cmd_crc,
    "+GSN": IdpModemEmulator._cmd_gsn,
    "+GMR": IdpModemEmulator._cmd_gmr,
    "%UTC": IdpModemEmulator._cmd_utc,
    "%GPS": IdpModemEmulator._cmd_gps,
    "%OFF": IdpModemEmulator._cmd_off,
}


def _due(attempt: _Attempt | None, retry_at: float | None, now: float) -> bool:
    """A channel with nothing under way whose retry time (if any) has come."""
    return attempt is None and (retry_at is None or now >= retry_at)


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


__all__ = [
    "DEFAULT_MOBILE_ID",
    "ERR_NAME_IN_USE",
    "ERR_QUEUE_FULL",
    "ERR_TOO_LONG",
    "ERR_UNAVAILABLE",
    "RX_COMPLETE",
    "RX_PENDING",
    "RX_RETRIEVED",
    "TX_CANCELLED",
    "TX_COMPLETE",
    "TX_FAILED",
    "TX_READY",
    "ForwardEntry",
    "IdpLoopbackNetwork",
    "IdpModemEmulator",
    "IdpSatelliteNetwork",
    "ReturnEntry",
    "ReturnRecord",
    "Settings",
    "crc16",
]
