"""Sans-I/O driver for Inmarsat IsatData Pro modems (ST2100/ST6100/IDP-800) speaking the ORBCOMM AT set.

This module owns the IDP dialect of the conversation: which AT commands each operation sends, how the
modem's tokens are classified, the CRC suffixes and ``ATS80?`` error reasons, and what each answer
means. The machinery (operations, steps, deadlines, line framing, the event queue, the error types) is
the shared ``at_engine.AtEngine`` this driver subclasses. It is fed bytes (``receive_data(data, now)``) and the time (``tick(now)``) and hands back bytes
to write (``data_to_send()``) and typed events (``next_event()``). It must not touch a port, a clock,
a thread or an event loop; ``idp_link.IdpModem`` does that.

Theory of operation
-------------------
One *operation* runs at a time (``initialize``, ``submit``, ``return_states``, ``forward_list``,
``get_forward``, ``mark_forward``, ``request_signal``, ``request_network_time``); it is a short list of
AT *steps* and ends in exactly one outcome: its result event, ``Timeout``, ``CommandError`` (with the
``ATS80?`` reason read right after the ``ERROR``) or a ``RemoteProtocolError`` raised from
``next_event()``.

Bytes are cut into tokens at every ``\\r`` or ``\\n``; each token is classified (``_classify``: echo,
OK, ERROR, ``*XXXX``, information) and the pair (state, token class) is looked up in
``InmarsatIdp.TRANSITIONS``:
that table is the whole line-level state machine; pairs not in it are noise. After the echo of the
current command every byte is also kept, so that in CRC mode (``AT%CRC=1``) the ``*XXXX`` line after
the result code can be checked over exactly the bytes it covers (CRC-16/CCITT-FALSE). A response whose CRC does not match is
never acted on: idempotent commands are sent again, others end in ``RemoteProtocolError``. Requests in
CRC mode carry their own ``*XXXX`` suffix.

``initialize`` does not know the modem's state: it sends ``AT`` plain; an ``ERROR`` means the modem
has CRC on, so ``AT*3983`` follows. It then sets ``E1;V1;Q0``, the CRC mode wanted, and reads the
mobile ID. Until ``ATE1`` is acknowledged the echo is optional (recognised and skipped when it comes).

Message names are unique in the modem's queue, which makes ``%MGRT`` safe to repeat: when a repeated
submit after a damaged answer gets ``ERROR`` with reason 107 (name in use), the first one was taken.
``%MGRS`` deletes a final state once reported, so a damaged ``%MGRS`` answer can lose a final state;
the caller then sees the message as unknown (``ReturnState`` missing) and must decide (see
``idp_link``).
"""

from __future__ import annotations

import base64
import binascii
import collections
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from firmware_profiles import ModemProfile

from .at_engine import (
    COMMON_TRANSITIONS,
    Action,
    AtEngine,
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

#: A token longer than this without a line end is noise (the longest real line is a ``%MGFG`` answer
#: carrying the largest forward message in base64, plus its fields).
TOKEN_MARGIN = 128

#: ``ATS80?`` reasons (reference §1.2).
REASON_CRC = 100
REASON_UNKNOWN_COMMAND = 101
REASON_PARAMETERS = 102
REASON_TOO_LONG = 103
REASON_QUEUE_FULL = 106
REASON_NAME_IN_USE = 107
REASON_UNAVAILABLE = 109

TX_READY, TX_SENDING, TX_COMPLETE, TX_FAILED, TX_CANCELLED = 4, 5, 6, 7, 8
RX_PENDING, RX_COMPLETE, RX_RETRIEVED = 1, 2, 3
CONTROL_ACTIVE = 10
#: C/N0 thresholds (dB-Hz) for 1..5 signal bars, as the IDP client libraries use them.
CN0_BARS = (37.0, 39.0, 41.0, 43.0, 45.5)


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no xor-out."""
    return binascii.crc_hqx(data, 0xFFFF)


def with_crc(command: str) -> str:
    """``command`` with its ``*XXXX`` suffix."""
    return f"{command}*{crc16(command.encode('latin-1')):04X}"


# -- events ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ready(Event):
    mobile_id: str
    crc: bool


@dataclass(frozen=True)
class SignalQuality(Event):
    level: int  # 0..5 bars
    cn0: float  # dB-Hz
    control_state: int  # 10 = active (registered)


@dataclass(frozen=True)
class MessageSubmitted(Event):
    name: str
    repeated: bool = False  # a repeat after a damaged answer found the first submit taken


@dataclass(frozen=True)
class ReturnState:
    name: str
    msg_num: str
    priority: int
    sin: int
    state: int
    length: int
    acked: int


@dataclass(frozen=True)
class ReturnStates(Event):
    states: tuple[ReturnState, ...]


@dataclass(frozen=True)
class ForwardState:
    name: str
    msg_num: str
    priority: int
    sin: int
    state: int
    length: int
    received: int


@dataclass(frozen=True)
class ForwardList(Event):
    messages: tuple[ForwardState, ...]


@dataclass(frozen=True)
class ForwardMessage(Event):
    name: str
    raw: bytes  # SIN byte followed by the data (MIN first)

    @property
    def sin(self) -> int:
        return self.raw[0]


@dataclass(frozen=True)
class ForwardMarked(Event):
    name: str


# -- machinery ------------------------------------------------------------------------------


@dataclass
class _Step(Step):
    crc_after: bool | None = None  # the CRC mode the answer uses, when the command changes it
    toggle_crc_on_error: bool = False  # an ERROR may mean the CRC mode is not what we think
    reason_query: bool = False  # this is the ATS80? query itself


@dataclass
class _Current(Current):
    raw: bytearray = field(default_factory=bytearray)  # the answer's bytes, for its CRC
    seglen: int = 0  # length of the last line taken
    final: str | None = None
    failed_command: str = ""
    skip_lf: bool = False  # the line feed that ends a stray CRC line is not part of the answer


_STATE_LINE = re.compile(r'^(?:%MG[RF][SN]:\s*)?"([^"]*)",([\d.]+),(\d+),(\d+),(\d+),(\d+),(\d+)$')
_MGFG_LINE = re.compile(r'^%MGFG:\s*"([^"]*)",([\d.]+),(\d+),(\d+),(\d+),(\d+),(\d+),(.*)$')
_GSN_LINE = re.compile(r"^\+GSN:\s*(\S+)$")
_UTC_LINE = re.compile(r"^%UTC:\s*([0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2})$")
_CRC_TOKEN = re.compile(r"^\*([0-9A-Fa-f]{4})$")
_NAME = re.compile(r"^[0-9A-Za-z._-]+$")


class InmarsatIdp(AtEngine):
    """The driver state machine for one IDP modem. See the module docstring."""

    current_type = _Current

    def __init__(self, profile: ModemProfile, *, use_crc: bool = True) -> None:
        longest = 4 * (-(-max(profile.limits.mo_max_bytes, profile.limits.mt_max_bytes) // 3))
        super().__init__(longest + TOKEN_MARGIN)
        self.profile = profile
        self.use_crc = use_crc
        self.crc = False  # the modem's CRC mode as far as the driver knows
        self.mobile_id: str | None = None
        self._name_max = int(profile.at["message_name_max"])

    # -- operations -------------------------------------------------------------------------

    def initialize(self, now: float) -> None:
        """Find the CRC mode, set ``E1;V1;Q0`` and the wanted CRC mode, read the mobile ID."""
        self.echo = None
        self.crc = False

        def echo_on(_: list[str]) -> None:
            self.echo = True

        def learn_id(lines: list[str]) -> None:
            for line in lines:
                m = _GSN_LINE.match(line)
                if m is not None:
                    self.mobile_id = m.group(1)
                    return
            raise RemoteProtocolError(f"no +GSN in {lines!r}")

        want = self.use_crc
        steps = [
            self._cmd("AT", toggle_crc_on_error=True, retries_on_error=2, resend=2),
            self._cmd("ATE1;V1;Q0", on_ok=echo_on, resend=2),
            self._cmd(f"AT%CRC={int(want)}", crc_after=want, resend=2),
            self._cmd("AT+GSN", on_ok=learn_id, resend=2),
        ]
        self._out += b"\r"  # end any half-written line left by an earlier timeout

        def finish() -> Event:
            assert self.mobile_id is not None
            return Ready(self.mobile_id, self.crc)

        self._run_steps("initialize", steps, finish, now)

    def submit(self, name: str, sin: int, data: bytes, now: float, *, priority: int = 4) -> None:
        """``%MGRT`` one return message (SIN + ``data``, base64); ends in ``MessageSubmitted``."""
        self._check_name(name)
        if not 16 <= sin <= 255:
            raise LocalProtocolError(f"SIN {sin} is reserved or out of range (16..255)")
        if not 1 <= priority <= 4:
            raise LocalProtocolError("priority is 1 (high) .. 4 (low)")
        if 1 + len(data) > self.profile.limits.mo_max_bytes:
            raise LocalProtocolError(
                f"return message of {1 + len(data)} bytes; {self.profile.name} takes "
                f"{self.profile.limits.mo_max_bytes} including the SIN"
            )
        b64 = base64.b64encode(data).decode("ascii")
        repeated: list[bool] = [False]

        def on_error(reason: int | None) -> bool:
            cur = self._cur
            if reason == REASON_NAME_IN_USE and cur is not None and cur.attempts > 0:
                repeated[0] = True
                return True
            return False

        step = self._cmd(f'AT%MGRT="{name}",{priority},{sin},3,{b64}', on_error=on_error, resend=2)
        self._run_steps("submit", [step], lambda: MessageSubmitted(name, repeated[0]), now)

    def return_states(self, now: float, name: str | None = None) -> None:
        """``%MGRS[="name"]``; ends in ``ReturnStates`` (empty when the name is unknown: reason 109)."""
        if name is not None:
            self._check_name(name)
        result: list[ReturnState] = []

        def parse(lines: list[str]) -> None:
            for line in lines:
                m = _STATE_LINE.match(line)
                if m is not None:
                    g = m.groups()
                    result.append(ReturnState(g[0], g[1], *(int(v) for v in g[2:])))
                elif not line.startswith("%MGRS:"):
                    raise RemoteProtocolError(f"unparsable %MGRS line {line!r}")

        def on_error(reason: int | None) -> bool:
            return reason == REASON_UNAVAILABLE

        command = "AT%MGRS" if name is None else f'AT%MGRS="{name}"'
        step = self._cmd(command, on_ok=parse, on_error=on_error)
        self._run_steps("mo state", [step], lambda: ReturnStates(tuple(result)), now)

    def forward_list(self, now: float) -> None:
        """``%MGFN``: forward messages waiting; ends in ``ForwardList``."""
        result: list[ForwardState] = []

        def parse(lines: list[str]) -> None:
            for line in lines:
                m = _STATE_LINE.match(line)
                if m is not None:
                    g = m.groups()
                    result.append(ForwardState(g[0], g[1], *(int(v) for v in g[2:])))
                elif not line.startswith("%MGFN:"):
                    raise RemoteProtocolError(f"unparsable %MGFN line {line!r}")

        step = self._cmd("AT%MGFN", on_ok=parse, resend=2)
        self._run_steps("mt list", [step], lambda: ForwardList(tuple(result)), now)

    def get_forward(self, name: str, now: float) -> None:
        """``%MGFG="name",3``; ends in ``ForwardMessage`` (raw = SIN + data), length checked."""
        self._check_name(name)
        result: list[ForwardMessage] = []

        def parse(lines: list[str]) -> None:
            for line in lines:
                m = _MGFG_LINE.match(line)
                if m is None:
                    continue
                sin, length, fmt = int(m.group(4)), int(m.group(6)), int(m.group(7))
                if fmt != 3 or not 0 <= sin <= 255:
                    raise RemoteProtocolError(f"%MGFG answer in format {fmt}")
                try:
                    data = base64.b64decode(m.group(8).strip(), validate=True)
                except (binascii.Error, ValueError) as exc:
                    raise RemoteProtocolError(f"%MGFG data is not base64: {exc}") from exc
                raw = bytes([sin]) + data
                if len(raw) != length:
                    raise RemoteProtocolError(f"%MGFG carried {len(raw)} bytes, announced {length}")
                result.append(ForwardMessage(m.group(1), raw))
                return
            raise RemoteProtocolError(f"no %MGFG in {lines!r}")

        step = self._cmd(f'AT%MGFG="{name}",3', on_ok=parse, resend=2)
        self._run_steps("mt get", [step], lambda: result[0], now)

    def mark_forward(self, name: str, now: float) -> None:
        """``%MGFM="name"``: mark retrieved without reading; ends in ``ForwardMarked``."""
        self._check_name(name)
        step = self._cmd(f'AT%MGFM="{name}"', resend=2)
        self._run_steps("mt mark", [step], lambda: ForwardMarked(name), now)

    def request_signal(self, now: float) -> None:
        """Satellite status trace (``S122`` control state, ``S116`` C/N0); ends in ``SignalQuality``."""
        result: list[SignalQuality] = []

        def parse(lines: list[str]) -> None:
            values = [int(v) for v in lines if v.isascii() and v.isdigit()]
            if len(values) != 2:
                raise RemoteProtocolError(f"satellite status answer {lines!r}")
            control, cn0 = values[0], values[1] / 100.0
            bars = sum(1 for t in CN0_BARS if cn0 >= t) if control == CONTROL_ACTIVE else 0
            result.append(SignalQuality(bars, cn0, control))

        step = self._cmd("ATS90=3 S91=1 S92=1 S122? S116?", on_ok=parse, resend=2)
        self._run_steps("signal", [step], lambda: result[0], now)

    def request_network_time(self, now: float) -> None:
        """``%UTC``; ends in ``NetworkTime``."""
        result: list[float | None] = []

        def parse(lines: list[str]) -> None:
            for line in lines:
                m = _UTC_LINE.match(line)
                if m is not None:
                    try:  # the shape is checked above; the calendar is not (month 21, 30 February)
                        stamp = datetime.fromisoformat(m.group(1).replace(" ", "T")).replace(tzinfo=UTC)
                    except ValueError:
                        raise RemoteProtocolError(f"impossible date in {line!r}") from None
                    result.append(stamp.timestamp())
                    return
            result.append(None)

        def on_error(reason: int | None) -> bool:
            result.append(None)
            return True

        step = self._cmd("AT%UTC", on_ok=parse, on_error=on_error, resend=2)
        self._run_steps("time", [step], lambda: NetworkTime(result[0]), now)

    def request_position(self, now: float) -> None:
        """``%GPS`` for an RMC sentence (a fix at most 15 s old, waiting up to 5 s); ends in
        ``NetworkPosition`` (None, None when the terminal has no fix: reason 108)."""
        result: list[NetworkPosition] = []

        def parse(lines: list[str]) -> None:
            for line in lines:
                fix = _rmc_position(line)
                if fix is not None:
                    result.append(NetworkPosition(*fix))
                    return
            result.append(NetworkPosition(None, None))

        def on_error(reason: int | None) -> bool:
            result.append(NetworkPosition(None, None))
            return True

        step = _Step(
            'AT%GPS=15,5,"RMC"', self.profile.timings.command_timeout_s + 5, on_ok=parse, on_error=on_error
        )
        self._run_steps("position", [step], lambda: result[0], now)

    def _check_name(self, name: str) -> None:
        if not 1 <= len(name) <= self._name_max or not _NAME.match(name):
            raise LocalProtocolError(f"message name {name!r}: 1..{self._name_max} letters/digits")

    # -- engine hooks -----------------------------------------------------------------------

    def _cmd(self, command: str, **answer: Any) -> _Step:
        """A step for ``command``; every IDP command has the profile's command timeout."""
        return _Step(command, self.profile.timings.command_timeout_s, **answer)

    def _run_steps(self, name: str, steps: list[_Step], finish: Callable[[], Event], now: float) -> None:
        self._start(Operation(name, collections.deque(steps), finish), now)

    def _encode(self, command: str) -> str:
        return with_crc(command) if self.crc else command

    def _current(self) -> _Current:
        assert isinstance(self._cur, _Current)
        return self._cur

    def _on_segment(self, segment: bytes) -> bool:
        """Keep the answer's bytes (after the echo) for its CRC; idle lines are noise."""
        cur = self._cur
        if not isinstance(cur, _Current):
            return False
        cur.seglen = len(segment)
        if self._state is not State.AWAIT_ECHO:  # the answer (and what its CRC covers) starts after the echo
            if cur.skip_lf and segment == b"\n":
                cur.skip_lf = False
                return False
            cur.skip_lf = False
            cur.raw += segment
        return True

    def _on_overflow(self) -> None:
        if isinstance(self._cur, _Current):
            self._cur.raw.clear()

    def _classify(self, token: str) -> Tok:
        cur = self._current()
        upper = token.upper()
        numeric_results = not (isinstance(cur.step, _Step) and cur.step.reason_query)
        if self._is_echo(token):
            return Tok.ECHO
        if upper == "OK" or (token == "0" and numeric_results):
            return Tok.OK
        if upper == "ERROR" or (token == "4" and numeric_results):
            return Tok.ERROR
        if _CRC_TOKEN.match(token):
            return Tok.CHECK
        return Tok.INFO

    def _step_of(self, cur: Current) -> _Step:
        assert isinstance(cur.step, _Step)
        return cur.step

    # -- transitions: one method per dialect entry of TRANSITIONS ---------------------------

    def _echo_then_answer(self, token: str, now: float) -> None:
        """Our echo: the answer, and what its CRC covers, starts after it."""
        self._echo_seen(token, now)
        self._current().raw.clear()

    def _late_echo(self, token: str, now: float) -> None:
        """The echo while the echo setting was unknown: the answer starts after it."""
        cur = self._current()
        cur.raw.clear()
        cur.info.clear()

    def _final(self, token: str, now: float) -> None:
        cur = self._current()
        cur.final = "OK" if self._classify(token) is Tok.OK else "ERROR"
        if self._answer_crc(cur):
            self._state = State.AWAIT_CHECK
        else:
            self._on_final(now)

    def _stray_crc(self, token: str, now: float) -> None:
        """A CRC we did not expect ends an earlier answer (the CRC mode was unknown): start afresh."""
        cur = self._current()
        cur.raw.clear()
        cur.info.clear()
        cur.skip_lf = True

    def _answer_crc(self, cur: _Current) -> bool:
        crc_after = self._step_of(cur).crc_after
        if crc_after is not None and cur.final == "OK":
            return crc_after
        return self.crc

    def _on_crc(self, token: str, now: float) -> None:
        cur = self._current()
        m = _CRC_TOKEN.match(token)
        covered = bytes(cur.raw[: len(cur.raw) - cur.seglen])
        if m is None or int(m.group(1), 16) != crc16(covered):
            self._damaged(RemoteProtocolError(f"answer to {cur.step.command} fails its CRC"), now)
            return
        self._on_final(now)

    def _crc_missing(self, token: str, now: float) -> None:
        self._damaged(RemoteProtocolError(f"answer to {self._current().step.command} has no CRC"), now)

    def _on_final(self, now: float) -> None:
        cur = self._current()
        assert self._op is not None
        step = self._step_of(cur)
        if step.reason_query:
            values = [int(v) for v in cur.info if v.isascii() and v.isdigit()]
            reason = values[0] if cur.final == "OK" and values else None
            self._op.steps.popleft()
            failed = self._op.steps[0]
            self._cur = _Current(failed, now, cur.failed_command, attempts=cur.attempts)
            self._after_error(failed, reason, now)
            return
        if cur.final == "OK":
            if step.crc_after is not None:
                self.crc = step.crc_after
            self._step_done(now)
            return
        if step.toggle_crc_on_error and cur.attempts < step.retries_on_error:
            self.crc = not self.crc
            self._begin_step(now, cur.attempts + 1)
            return
        self._on_failed(cur, now)

    def _on_failed(self, cur: Current, now: float) -> None:
        """Ask the reason (``ATS80?``) before anything else is sent."""
        assert self._op is not None
        self._op.steps.appendleft(self._cmd("ATS80?", reason_query=True))
        self._begin_step(now, cur.attempts)
        self._current().failed_command = cur.sent

    #: The line-level state machine: (state, token class) -> transition. Pairs not listed are noise.
    TRANSITIONS: ClassVar[dict[tuple[State, Tok], Action]] = {
        **COMMON_TRANSITIONS,
        (State.AWAIT_ECHO, Tok.ECHO): _echo_then_answer,
        (State.AWAIT_FINAL, Tok.ECHO): _late_echo,
        (State.AWAIT_FINAL, Tok.OK): _final,
        (State.AWAIT_FINAL, Tok.ERROR): _final,
        (State.AWAIT_FINAL, Tok.CHECK): _stray_crc,
        (State.AWAIT_CHECK, Tok.CHECK): _on_crc,
        (State.AWAIT_CHECK, Tok.INFO): _crc_missing,
        (State.AWAIT_CHECK, Tok.OK): _crc_missing,
        (State.AWAIT_CHECK, Tok.ERROR): _crc_missing,
        (State.AWAIT_CHECK, Tok.ECHO): _crc_missing,
    }  # type: ignore[dict-item]


__all__ = [
    "CommandError",
    "Event",
    "ForwardList",
    "ForwardMarked",
    "ForwardMessage",
    "ForwardState",
    "InmarsatIdp",
    "LocalProtocolError",
    "MessageSubmitted",
    "NetworkTime",
    "Ready",
    "RemoteProtocolError",
    "ReturnState",
    "ReturnStates",
    "SignalQuality",
    "Timeout",
    "crc16",
    "with_crc",
]


def _rmc_position(line: str) -> tuple[float, float] | None:
    """Latitude and longitude of a valid ``$xxRMC`` sentence (after an optional ``%GPS:`` prefix)."""
    text = line.split(":", 1)[1].strip() if line.startswith("%GPS:") else line.strip()
    fields = text.split("*", 1)[0].split(",")
    if len(fields) < 7 or not fields[0].endswith("RMC") or fields[2] != "A":
        return None
    try:
        lat = int(fields[3][:2]) + float(fields[3][2:]) / 60
        lon = int(fields[5][:3]) + float(fields[5][3:]) / 60
    except ValueError:
        return None
    lat = -lat if fields[4] == "S" else lat
    lon = -lon if fields[6] == "W" else lon
    return (lat, lon) if -90 <= lat <= 90 and -180 <= lon <= 180 else None
