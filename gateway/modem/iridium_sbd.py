"""Sans-I/O driver for Iridium SBD transceivers (9602, 9603, 9523) speaking the AT command set.

This module owns the Iridium dialect of the conversation: which AT commands each operation sends,
how the modem's tokens are classified, the ``+SBDWB`` upload, the format of the ``+SBDRB`` binary
block, and what each answer means. The machinery (operations, steps, deadlines, line framing, the event queue, the
error types) is the shared ``at_engine.AtEngine`` this driver subclasses. It is fed bytes (``receive_data(data, now)``) and the time
(``tick(now)``); it hands back bytes to write (``data_to_send()``) and typed events
(``next_event()``). It must not touch a serial port, a clock, a thread or an event loop; the
asyncio adapter in ``serial_link`` does that in a few dozen lines.

Theory of operation
-------------------
The caller starts one *operation* at a time (``initialize``, ``request_signal``,
``write_message``, ``start_session``, ``read_message`` ...). An operation is a short script of AT
*steps*; every operation ends in exactly one terminal outcome: its result event, ``Timeout``,
``CommandError`` or a ``RemoteProtocolError`` raised from ``next_event()``. ``RingAlert`` events
may be interleaved at any time, also while idle. Starting an operation while another runs is a
``LocalProtocolError``.

Incoming bytes are cut into *tokens* at every ``\\r`` or ``\\n`` (so verbose ``\\r\\nOK\\r\\n``,
numeric ``0\\r`` and the echo ``AT+CSQ\\r`` all become single tokens), except while an ``+SBDRB``
block is expected: the engine reads that block by its byte count, because a payload may contain
``\\r\\nOK\\r\\n``. Each token is classified (``_classify``) and the pair (state, token class)
is looked up in ``IridiumSbd.TRANSITIONS`` (the engine's common entries plus this dialect's): that
table is the whole line-level state machine. Tokens with no
entry are noise and are dropped. ``SBDRING`` (verbose) or its numeric code is recognised in every
state and becomes a ``RingAlert``.

Once ``ATE1`` has been acknowledged the driver knows the modem echoes, and every later step
ignores all tokens (other than ring alerts) until it has seen the echo of its own command. That
is what keeps a late ``OK`` from an earlier, timed-out command from being taken as the answer to
the current one.

Quirks handled (reference §1, §5): echo without ``\\n``; verbose or numeric result codes;
``+SBDWB`` ``READY`` handshake with a big-endian 16-bit sum checksum and the missing ``OK``
after result ``1``; ``+SBDRB`` binary block right after the echo; ``+SBDIX:`` or ``+SBDIXA:``,
with or without spaces after the commas; ``-MSSTM`` in 90 ms ticks from the era-2 epoch.
"""

from __future__ import annotations

import collections
import enum
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

from firmware_profiles import ModemProfile

from .at_engine import (
    COMMON_TRANSITIONS,
    Action,
    AtEngine,
    BlockFormat,
    CommandError,
    Current,
    Event,
    LocalProtocolError,
    NetworkPosition,
    NetworkTime,
    Operation,
    RemoteProtocolError,
    State,
    Step,
    Timeout,
    Tok,
)

#: Iridium system time: 90 ms ticks since the epoch of the era in force. Iridium re-epochs the counter
#: every decade or so; the modem does not say which era it counts in. Era 1: 2007-03-08 03:50:21
#: (ISU AT Command Reference v2.45 §7.17), era 2: 2014-05-11 14:23:55 (broadcast from 2015-03-03),
#: era 3: 2025-02-14 18:14:17 (Iridium re-epoch bulletin, rolled out from 2026).
IRIDIUM_ERAS = (
    datetime(2025, 2, 14, 18, 14, 17, tzinfo=UTC).timestamp(),
    datetime(2014, 5, 11, 14, 23, 55, tzinfo=UTC).timestamp(),
    datetime(2007, 3, 8, 3, 50, 21, tzinfo=UTC).timestamp(),
)
#: The epoch of the current era (era 3).
IRIDIUM_EPOCH = IRIDIUM_ERAS[0]
IRIDIUM_TICK_S = 0.090
#: A host clock before this (2024-01-01 UTC, older than any Seabridge installation) has been reset and
#: cannot tell the eras apart; the current era is assumed.
NETWORK_TIME_FLOOR = datetime(2024, 1, 1, tzinfo=UTC).timestamp()

#: A token longer than this without a line end is noise; it is dropped (the longest real line,
#: ``+SBDWT=<text>`` or a ``-MSGEO`` answer, is far shorter).
MAX_TOKEN_BYTES = 1024


# -- events ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ready(Event):
    """``initialize`` finished: the modem answers, is configured, and this is its state."""

    imei: str
    mo_flag: int
    momsn: int
    mt_flag: int
    mtmsn: int
    ring_flag: int
    mt_waiting: int


@dataclass(frozen=True)
class SignalQuality(Event):
    level: int  # 0..5 bars


@dataclass(frozen=True)
class StatusReport(Event):
    """Answer to ``AT+SBDSX``."""

    mo_flag: int
    momsn: int
    mt_flag: int
    mtmsn: int
    ring_flag: int
    mt_waiting: int


@dataclass(frozen=True)
class SettingsState(Event):
    """Answer to ``AT+SBDST?``: the modem-side session timeout now in force (0 after a reset)."""

    session_timeout_s: int


@dataclass(frozen=True)
class SettingsApplied(Event):
    commands: tuple[str, ...]


@dataclass(frozen=True)
class MessageWritten(Event):
    length: int


@dataclass(frozen=True)
class WriteFailed(Event):
    code: int  # 1 timeout, 2 checksum mismatch, 3 bad size


@dataclass(frozen=True)
class BuffersCleared(Event):
    which: int  # 0 MO, 1 MT, 2 both


@dataclass(frozen=True)
class SessionResult(Event):
    mo_status: int
    momsn: int
    mt_status: int
    mtmsn: int
    mt_length: int
    mt_queued: int

    @property
    def mo_success(self) -> bool:
        """MO status 0..4 means the session (and the MO, if any) went through."""
        return 0 <= self.mo_status <= 4


@dataclass(frozen=True)
class MessageReceived(Event):
    payload: bytes
    mtmsn: int


@dataclass(frozen=True)
class RingAlert(Event):
    pass


# -- steps ----------------------------------------------------------------------------------


class _Kind(enum.Enum):
    PLAIN = "plain"  # info lines, then OK
    DIGIT = "digit"  # one digit info line, then OK (+SBDD, +SBDC)
    WRITE = "write"  # +SBDWB: READY, data, digit, OK (no OK after 1)
    READ = "read"  # +SBDRB: echo, binary block, OK


@dataclass
class _Step(Step):
    kind: _Kind = _Kind.PLAIN
    payload: bytes = b""


_CSQ_RE = re.compile(r"^\+CSQF?:\s*(\d)$")
_SBDIX_RE = re.compile(r"^\+SBDIXA?:\s*" + r"\s*,\s*".join([r"(-?\d+)"] * 6) + r"\s*$")
_SBDSX_RE = re.compile(r"^\+SBDSX:\s*" + r"\s*,\s*".join([r"(-?\d+)"] * 6) + r"\s*$")
_MSSTM_RE = re.compile(r"^-MSSTM:\s*([0-9A-Fa-f]{1,8})$")  # hex without leading zeros
_MSGEO_RE = re.compile(r"^-MSGEO:\s*(-?\d+)\s*,\s*(-?\d+)\s*,\s*(-?\d+)\s*,\s*([0-9A-Fa-f]+)$")
_SBDST_RE = re.compile(r"^\+SBDST:\s*(\d+)$")
_IMEI_RE = re.compile(r"^\d{15}$")
_LOCATION_RE = re.compile(r"^[+-]?\d{4}\.\d{1,3},[+-]?\d{5}\.\d{1,3}$")


def checksum(payload: bytes) -> bytes:
    """Iridium SBD checksum: sum of the bytes modulo 65536, big-endian."""
    return (sum(payload) & 0xFFFF).to_bytes(2, "big")


def network_time_from_ticks(ticks: int, hint: float | None = None) -> float:
    """Unix seconds for an ``-MSSTM`` tick count.

    The count is read in the era whose time lies closest to ``hint`` (the host's own idea of the
    time, which may drift by hours but not by years); without a usable hint, in the current era.
    """
    candidates = [epoch + ticks * IRIDIUM_TICK_S for epoch in IRIDIUM_ERAS]
    if hint is None or hint < NETWORK_TIME_FLOOR:
        return candidates[0]
    return min(candidates, key=lambda t: abs(t - hint))


def modem_session_timeout_s(profile: ModemProfile) -> int:
    """``AT+SBDST``: the modem gives up a session (MO status 17) just before the host's deadline, so the
    host never re-initialises a modem that is still in a session which may yet deliver the MO."""
    t = profile.timings
    return max(1, int(t.session_timeout_s - t.command_timeout_s))


def settings_commands(profile: ModemProfile) -> list[str]:
    """The settings ``initialize`` writes, in order.

    Echo and verbose results; ``AT&D0`` (ignore DTR) with ``AT&K0`` on a 3-wire link (no DTR, no
    RTS/CTS) or ``AT&K3`` with RTS/CTS; ring alerts on; all stored as profile 0 (``AT&W0``) and
    made the power-up profile (``AT&Y0``) so a brown-out does not switch ring alerts off. The
    modem-side session timeout (``AT+SBDST``) is not stored by the modem: it comes last, and finding
    it gone (``session_settings_lost``) is how the driver notices the modem was reset.
    """
    flow = ["AT&K3"] if profile.serial.flow_control == "rtscts" else ["AT&D0", "AT&K0"]
    return [
        "ATE1",
        "ATV1",
        *flow,
        "AT+SBDMTA=1",
        "AT&W0",
        "AT&Y0",
        f"AT+SBDST={modem_session_timeout_s(profile)}",
    ]


def _find_info(lines: list[str], pattern: re.Pattern[str], what: str) -> re.Match[str]:
    for line in lines:
        m = pattern.match(line)
        if m is not None:
            return m
    raise RemoteProtocolError(f"no {what} in the answer {lines!r}")


class IridiumSbd(AtEngine):
    """The driver state machine for one modem. See the module docstring."""

    def __init__(self, profile: ModemProfile) -> None:
        super().__init__(MAX_TOKEN_BYTES)
        self.profile = profile
        self.imei: str | None = None
        self._ring_token = str(profile.at.get("numeric_ring_code", 126))
        self._last_mtmsn = -1
        self._written_code = 0
        self._read_payload: bytes | None = None
        self._maybe_in_data_mode = False

    def assume_unknown_state(self) -> None:
        """The modem may be in any state (a new process, after a power cut of the host only): the next
        ``initialize`` first ends a ``+SBDWB`` transfer that may still be waiting for payload bytes."""
        self._maybe_in_data_mode = True

    # -- operations ---------------------------------------------------------------------------

    def initialize(self, now: float) -> None:
        """Configure the modem: AT, ATE1, ATV1, AT&K, AT+SBDMTA=1, learn the IMEI, read +SBDSX.

        After a ``+SBDWB`` timed out the modem may still be waiting for payload bytes; then the
        first ``AT`` is preceded by enough carriage returns to end that transfer (the modem
        answers a checksum error; in command mode empty lines are ignored).
        """
        if self._op is not None:
            raise LocalProtocolError(f"operation {self._op.name!r} still running; cannot initialize")
        t = self.profile.timings.command_timeout_s
        self.echo = None
        if self._maybe_in_data_mode:
            self._out += b"\r" * (self.profile.limits.mo_max_bytes + 2)
            self._maybe_in_data_mode = False
        state: dict[str, StatusReport] = {}

        def echo_on(_: list[str]) -> None:
            self.echo = True

        def learn_imei(lines: list[str]) -> None:
            self.imei = _find_info(lines, _IMEI_RE, "IMEI").group(0)

        def status(lines: list[str]) -> None:
            state["sx"] = self._parse_sbdsx(lines)

        steps = [
            _Step("AT", t, retries_on_error=2),
            *(_Step(c, t, on_ok=echo_on if c == "ATE1" else None) for c in settings_commands(self.profile)),
            _Step("AT+CGSN", t, on_ok=learn_imei),
            _Step("AT+SBDSX", t, on_ok=status),
        ]

        def finish() -> Event:
            sx = state["sx"]
            assert self.imei is not None
            if sx.mt_flag:
                self._last_mtmsn = sx.mtmsn
            return Ready(self.imei, sx.mo_flag, sx.momsn, sx.mt_flag, sx.mtmsn, sx.ring_flag, sx.mt_waiting)

        self._run_steps("initialize", steps, finish, now)

    def request_signal(self, now: float, *, fresh: bool = True) -> None:
        """``AT+CSQ`` (waits for a fresh reading) or ``AT+CSQF`` (last known); ends in ``SignalQuality``."""
        result: list[int] = []

        def parse(lines: list[str]) -> None:
            result.append(int(_find_info(lines, _CSQ_RE, "+CSQ").group(1)))

        timeout = self.profile.timings.signal_timeout_s if fresh else self.profile.timings.command_timeout_s
        step = _Step("AT+CSQ" if fresh else "AT+CSQF", timeout, on_ok=parse)
        self._run_steps("signal", [step], lambda: SignalQuality(result[0]), now)

    def request_network_time(self, now: float) -> None:
        """``AT-MSSTM``; ends in ``NetworkTime`` (None without network service)."""
        result: list[float | None] = []

        def parse(lines: list[str]) -> None:
            for line in lines:
                m = _MSSTM_RE.match(line)
                if m is not None:
                    result.append(network_time_from_ticks(int(m.group(1), 16), now))
                    return
                if line.startswith("-MSSTM:") and "no network service" in line:
                    result.append(None)
                    return
            raise RemoteProtocolError(f"no -MSSTM in the answer {lines!r}")

        step = _Step("AT-MSSTM", self.profile.timings.command_timeout_s, on_ok=parse)
        self._run_steps("network time", [step], lambda: NetworkTime(result[0]), now)

    def request_position(self, now: float) -> None:
        """``AT-MSGEO`` (ECEF km); ends in ``NetworkPosition`` (None, None while the network has none)."""
        result: list[NetworkPosition] = []

        def parse(lines: list[str]) -> None:
            x, y, z = (int(v) for v in _find_info(lines, _MSGEO_RE, "-MSGEO").groups()[:3])
            if x == y == z == 0:
                result.append(NetworkPosition(None, None))
                return
            lat = math.degrees(math.atan2(z, math.hypot(x, y)))
            result.append(NetworkPosition(lat, math.degrees(math.atan2(y, x))))

        step = _Step("AT-MSGEO", self.profile.timings.command_timeout_s, on_ok=parse)
        self._run_steps("position", [step], lambda: result[0], now)

    def check_settings(self, now: float) -> None:
        """``AT+SBDST?``; ends in ``SettingsState``. The modem does not store this setting, so a value
        other than ``modem_session_timeout_s`` means it was reset (a brown-out) since ``initialize``."""
        result: list[int] = []

        def parse(lines: list[str]) -> None:
            result.append(int(_find_info(lines, _SBDST_RE, "+SBDST").group(1)))

        step = _Step("AT+SBDST?", self.profile.timings.command_timeout_s, on_ok=parse)
        self._run_steps("check settings", [step], lambda: SettingsState(result[0]), now)

    def apply_settings(self, commands: list[str], now: float) -> None:
        """Send plain setting commands (e.g. ``AT*R1`` after MO status 34); ends in ``SettingsApplied``."""
        t = self.profile.timings.command_timeout_s
        steps = [_Step(c, t) for c in commands]
        self._run_steps("apply settings", steps, lambda: SettingsApplied(tuple(commands)), now)

    def request_status(self, now: float) -> None:
        """``AT+SBDSX``; ends in ``StatusReport``."""
        result: list[StatusReport] = []

        def parse(lines: list[str]) -> None:
            result.append(self._parse_sbdsx(lines))

        step = _Step("AT+SBDSX", self.profile.timings.command_timeout_s, on_ok=parse)
        self._run_steps("status", [step], lambda: result[0], now)

    def write_message(self, payload: bytes, now: float) -> None:
        """``AT+SBDWB`` into the MO buffer; ends in ``MessageWritten`` or ``WriteFailed``."""
        size = len(payload)
        if not 1 <= size <= self.profile.limits.mo_max_bytes:
            raise LocalProtocolError(
                f"MO payload of {size} bytes; {self.profile.name} takes 1..{self.profile.limits.mo_max_bytes}"
            )
        t = self.profile.timings.command_timeout_s
        step = _Step(f"AT+SBDWB={size}", t, kind=_Kind.WRITE, payload=payload)

        def finish() -> Event:
            code = self._written_code
            return MessageWritten(size) if code == 0 else WriteFailed(code)

        self._run_steps("write", [step], finish, now)

    def clear_buffers(self, which: int, now: float) -> None:
        """``AT+SBDD<which>`` (0 MO, 1 MT, 2 both); ends in ``BuffersCleared``."""
        if which not in (0, 1, 2):
            raise LocalProtocolError(f"no buffer {which}: 0 MO, 1 MT, 2 both")
        step = _Step(f"AT+SBDD{which}", self.profile.timings.command_timeout_s, kind=_Kind.DIGIT)
        self._run_steps("clear", [step], lambda: BuffersCleared(which), now)

    def start_session(self, now: float, *, answer_ring: bool = False, location: str | None = None) -> None:
        """``AT+SBDIX`` (``AT+SBDIXA`` when answering a ring alert); ends in ``SessionResult``."""
        command = "AT+SBDIXA" if answer_ring else "AT+SBDIX"
        if location is not None:
            if not _LOCATION_RE.match(location):
                raise LocalProtocolError(f"location {location!r} is not [+-]DDMM.MMM,[+-]dddmm.mmm")
            command += "=" + location
        result: list[SessionResult] = []

        def parse(lines: list[str]) -> None:
            m = _find_info(lines, _SBDIX_RE, "+SBDIX")
            values = [int(v) for v in m.groups()]
            result.append(SessionResult(*values))
            if values[2] == 1:
                self._last_mtmsn = values[3]

        step = _Step(command, self.profile.timings.session_timeout_s, on_ok=parse)
        self._run_steps("session", [step], lambda: result[0], now)

    def read_message(self, now: float) -> None:
        """``AT+SBDRB``: read the MT buffer by byte count; ends in ``MessageReceived``."""
        block = BlockFormat(self.profile.limits.mt_max_bytes, checksum)
        step = _Step("AT+SBDRB", self.profile.timings.command_timeout_s, kind=_Kind.READ, block=block)

        def finish() -> Event:
            assert self._read_payload is not None
            return MessageReceived(self._read_payload, self._last_mtmsn)

        self._run_steps("read", [step], finish, now)

    # -- engine hooks -------------------------------------------------------------------------

    def _run_steps(self, name: str, steps: list[_Step], finish: Callable[[], Event], now: float) -> None:
        if self._op is None:
            self._written_code = 0
            self._read_payload = None
        self._start(Operation(name, collections.deque(steps), finish), now)

    def _state_after_echo(self, step: Step) -> State:
        assert isinstance(step, _Step)
        return State.AWAIT_PROMPT if step.kind is _Kind.WRITE else State.AWAIT_FINAL

    def _on_timeout(self, cur: Current) -> None:
        if self._step().kind is _Kind.WRITE:
            # The modem may still sit in +SBDWB data mode, swallowing our next commands.
            self._maybe_in_data_mode = True

    def _on_unsolicited(self, token: str) -> None:
        self._events.append(RingAlert())

    def _step(self) -> _Step:
        assert self._cur is not None and isinstance(self._cur.step, _Step)
        return self._cur.step

    def _parse_sbdsx(self, lines: list[str]) -> StatusReport:
        m = _find_info(lines, _SBDSX_RE, "+SBDSX")
        return StatusReport(*(int(v) for v in m.groups()))

    def _classify(self, token: str) -> Tok | None:
        upper = token.upper()
        if upper == "SBDRING" or token == self._ring_token:
            return Tok.UNSOLICITED
        if upper in _RESULT_TOKENS:
            return _RESULT_TOKENS[upper]
        if len(token) == 1 and "0" <= token <= "9":
            return Tok.DIGIT
        if upper.startswith("AT"):
            return Tok.ECHO if self._is_echo(token) else None
        return Tok.INFO

    # -- transitions: one method per dialect entry of TRANSITIONS -----------------------------

    def _final_digit(self, token: str, now: float) -> None:
        """A digit while awaiting the final result: an info digit, or a numeric result code."""
        cur = self._cur
        assert cur is not None
        digit = int(token)
        if self._step().kind is _Kind.DIGIT and cur.digit is None:
            cur.digit = digit
        elif digit == 0:
            self._final_ok(token, now)
        elif digit == 4:
            self._final_error(token, now)
        else:
            cur.info.append(token)

    def _final_ok(self, token: str, now: float) -> None:
        cur = self._cur
        assert cur is not None
        kind = self._step().kind
        if kind is _Kind.DIGIT and cur.digit not in (None, 0):
            self._end(CommandError(cur.step.command))
        elif kind is _Kind.READ:
            if cur.block_error is not None:
                self._end(RemoteProtocolError(cur.block_error))
                return
            self._read_payload = cur.block
            self._step_done(now)
        else:
            if kind is _Kind.WRITE:
                self._written_code = cur.digit or 0
            self._step_done(now)

    def _ready_seen(self, token: str, now: float) -> None:
        cur = self._cur
        assert cur is not None
        payload = self._step().payload
        self._out += payload + checksum(payload)
        cur.deadline = now + self.profile.timings.command_timeout_s
        self._state = State.AWAIT_UPLOAD_RESULT

    def _write_refused(self, token: str, now: float) -> None:
        """A digit instead of READY: the modem refused the size (3); its OK follows."""
        assert self._cur is not None
        self._cur.digit = int(token)
        self._state = State.AWAIT_FINAL

    def _write_code(self, token: str, now: float) -> None:
        cur = self._cur
        assert cur is not None
        code = int(token)
        cur.digit = code
        if code == 1:  # data timeout: the modem sends no OK after this one
            self._written_code = code
            self._step_done(now)
        else:
            self._state = State.AWAIT_FINAL

    #: The line-level state machine: (state, token class) -> transition. Pairs not listed are noise.
    TRANSITIONS: ClassVar[dict[tuple[State, Tok], Action]] = {
        **COMMON_TRANSITIONS,
        (State.AWAIT_FINAL, Tok.DIGIT): _final_digit,
        (State.AWAIT_FINAL, Tok.OK): _final_ok,
        (State.AWAIT_FINAL, Tok.ERROR): AtEngine._final_error,
        (State.AWAIT_PROMPT, Tok.PROMPT): _ready_seen,
        (State.AWAIT_PROMPT, Tok.DIGIT): _write_refused,
        (State.AWAIT_PROMPT, Tok.ERROR): AtEngine._final_error,
        (State.AWAIT_UPLOAD_RESULT, Tok.DIGIT): _write_code,
        (State.AWAIT_UPLOAD_RESULT, Tok.ERROR): AtEngine._final_error,
    }  # type: ignore[dict-item]


_RESULT_TOKENS = {"OK": Tok.OK, "ERROR": Tok.ERROR, "READY": Tok.PROMPT}

__all__ = [
    "IRIDIUM_EPOCH",
    "NETWORK_TIME_FLOOR",
    "BuffersCleared",
    "CommandError",
    "Event",
    "IridiumSbd",
    "LocalProtocolError",
    "MessageReceived",
    "MessageWritten",
    "NetworkPosition",
    "NetworkTime",
    "Ready",
    "RemoteProtocolError",
    "RingAlert",
    "SessionResult",
    "SettingsApplied",
    "SettingsState",
    "SignalQuality",
    "StatusReport",
    "Timeout",
    "WriteFailed",
    "checksum",
    "modem_session_timeout_s",
    "network_time_from_ticks",
    "settings_commands",
]
