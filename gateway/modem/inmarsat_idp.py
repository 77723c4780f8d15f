"""Sans-I/O driver for Inmarsat IsatData Pro modems (ST2100/ST6100/IDP-800) speaking the ORBCOMM AT set.

This module owns the conversation with an IDP modem: which AT commands each operation sends, how the
byte stream is cut into echo, information lines, result codes and CRC suffixes, and what each answer
means. It is fed bytes (``receive_data(data, now)``) and the time (``tick(now)``) and hands back bytes
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
OK, ERROR, ``*XXXX``, information) and the pair (state, token class) is looked up in ``_TRANSITIONS``:
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
import enum
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from firmware_profiles import ModemProfile

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


class LocalProtocolError(Exception):
    """The caller misused the driver (operation while busy, message too large, bad name)."""


class RemoteProtocolError(Exception):
    """The modem answered something the protocol does not allow (bad CRC, unparsable or short reply)."""


# -- events ---------------------------------------------------------------------------------


class Event:
    __slots__ = ()


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
class NetworkTime(Event):
    unix_seconds: float | None


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


@dataclass(frozen=True)
class Timeout(Event):
    command: str


@dataclass(frozen=True)
class CommandError(Event):
    command: str
    reason: int | None  # ATS80? value, None when it could not be read


# -- machinery ------------------------------------------------------------------------------


class _Tok(enum.Enum):
    ECHO = "echo"
    OK = "OK"
    ERROR = "ERROR"
    CRC = "*XXXX"
    INFO = "info"


class _State(enum.Enum):
    IDLE = "idle"
    AWAIT_ECHO = "await echo"
    AWAIT_FINAL = "await final result"
    AWAIT_CRC = "await CRC"


@dataclass
class _Step:
    command: str
    on_ok: Callable[[list[str]], None] | None = None
    on_error: Callable[[int | None], bool] | None = None  # True: handled (step done)
    resend: int = 0  # resends allowed after a damaged answer (idempotent commands)
    crc_after: bool | None = None  # the CRC mode the answer uses, when the command changes it
    error_retry: int = 0  # plain resends on ERROR before asking ATS80?
    toggle_crc_on_error: bool = False
    reason_query: bool = False  # this is the ATS80? query itself


@dataclass
class _Op:
    name: str
    steps: collections.deque[_Step]
    finish: Callable[[], Event]


@dataclass
class _Current:
    step: _Step
    deadline: float
    sent: str = ""
    info: list[str] = field(default_factory=list)
    raw: bytearray = field(default_factory=bytearray)
    final: str | None = None
    attempts: int = 0
    failed_command: str = ""
    skip_lf: bool = False  # the line feed that ends a stray CRC line is not part of the answer


_STATE_LINE = re.compile(r'^(?:%MG[RF][SN]:\s*)?"([^"]*)",([\d.]+),(\d+),(\d+),(\d+),(\d+),(\d+)$')
_MGFG_LINE = re.compile(r'^%MGFG:\s*"([^"]*)",([\d.]+),(\d+),(\d+),(\d+),(\d+),(\d+),(.*)$')
_GSN_LINE = re.compile(r"^\+GSN:\s*(\S+)$")
_UTC_LINE = re.compile(r"^%UTC:\s*(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2})$")
_CRC_TOKEN = re.compile(r"^\*([0-9A-Fa-f]{4})$")
_NAME = re.compile(r"^[0-9A-Za-z._-]+$")


class InmarsatIdp:
    """The driver state machine for one IDP modem. See the module docstring."""

    def __init__(self, profile: ModemProfile, *, use_crc: bool = True) -> None:
        self.profile = profile
        self.use_crc = use_crc
        self.crc = False  # the modem's CRC mode as far as the driver knows
        self.echo: bool | None = None
        self.mobile_id: str | None = None
        self._name_max = int(profile.at["message_name_max"])
        self._max_token = 4 * (-(-max(profile.limits.mo_max_bytes, profile.limits.mt_max_bytes) // 3))
        self._max_token += TOKEN_MARGIN
        self._buf = bytearray()
        self._out = bytearray()
        self._events: collections.deque[Event | RemoteProtocolError] = collections.deque()
        self._state = _State.IDLE
        self._op: _Op | None = None
        self._cur: _Current | None = None
        self._reason: int | None = None

    # -- sans-I/O surface -------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self._op is not None

    @property
    def state(self) -> str:
        return self._state.value

    def receive_data(self, data: bytes, now: float) -> None:
        self._buf += data
        while self._take_token(now):
            pass

    def tick(self, now: float) -> None:
        if self._cur is not None and now >= self._cur.deadline:
            self._end(Timeout(self._cur.step.command))
            self._buf.clear()

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def next_event(self) -> Event | None:
        if not self._events:
            return None
        item = self._events.popleft()
        if isinstance(item, RemoteProtocolError):
            raise item
        return item

    def next_wakeup(self) -> float | None:
        return self._cur.deadline if self._cur is not None else None

    def reset(self) -> None:
        """Forget the running operation, buffered bytes and what is known of the modem's modes."""
        self._op = None
        self._cur = None
        self._state = _State.IDLE
        self._buf.clear()
        self._out.clear()
        self.echo = None

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
            _Step("AT", toggle_crc_on_error=True, error_retry=2, resend=2),
            _Step("ATE1;V1;Q0", on_ok=echo_on, resend=2),
            _Step(f"AT%CRC={int(want)}", crc_after=want, resend=2),
            _Step("AT+GSN", on_ok=learn_id, resend=2),
        ]
        self._out += b"\r"  # end any half-written line left by an earlier timeout

        def finish() -> Event:
            assert self.mobile_id is not None
            return Ready(self.mobile_id, self.crc)

        self._start(_Op("initialize", collections.deque(steps), finish), now)

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
        holder: list[_Step] = []

        def on_error(reason: int | None) -> bool:
            cur = self._cur
            if reason == REASON_NAME_IN_USE and cur is not None and cur.attempts > 0:
                repeated[0] = True
                return True
            return False

        step = _Step(f'AT%MGRT="{name}",{priority},{sin},3,{b64}', on_error=on_error, resend=2)
        holder.append(step)
        self._start(
            _Op("submit", collections.deque([step]), lambda: MessageSubmitted(name, repeated[0])), now
        )

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
        step = _Step(command, on_ok=parse, on_error=on_error)
        self._start(_Op("mo state", collections.deque([step]), lambda: ReturnStates(tuple(result))), now)

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

        step = _Step("AT%MGFN", on_ok=parse, resend=2)
        self._start(_Op("mt list", collections.deque([step]), lambda: ForwardList(tuple(result))), now)

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

        step = _Step(f'AT%MGFG="{name}",3', on_ok=parse, resend=2)
        self._start(_Op("mt get", collections.deque([step]), lambda: result[0]), now)

    def mark_forward(self, name: str, now: float) -> None:
        """``%MGFM="name"``: mark retrieved without reading; ends in ``ForwardMarked``."""
        self._check_name(name)
        step = _Step(f'AT%MGFM="{name}"', resend=2)
        self._start(_Op("mt mark", collections.deque([step]), lambda: ForwardMarked(name)), now)

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

        step = _Step("ATS90=3 S91=1 S92=1 S122? S116?", on_ok=parse, resend=2)
        self._start(_Op("signal", collections.deque([step]), lambda: result[0]), now)

    def request_network_time(self, now: float) -> None:
        """``%UTC``; ends in ``NetworkTime``."""
        result: list[float | None] = []

        def parse(lines: list[str]) -> None:
            for line in lines:
                m = _UTC_LINE.match(line)
                if m is not None:
                    stamp = datetime.fromisoformat(m.group(1).replace(" ", "T")).replace(tzinfo=UTC)
                    result.append(stamp.timestamp())
                    return
            result.append(None)

        def on_error(reason: int | None) -> bool:
            result.append(None)
            return True

        step = _Step("AT%UTC", on_ok=parse, on_error=on_error, resend=2)
        self._start(_Op("time", collections.deque([step]), lambda: NetworkTime(result[0])), now)

    def _check_name(self, name: str) -> None:
        if not 1 <= len(name) <= self._name_max or not _NAME.match(name):
            raise LocalProtocolError(f"message name {name!r}: 1..{self._name_max} letters/digits")

    # -- step machinery ---------------------------------------------------------------------

    def _start(self, op: _Op, now: float) -> None:
        if self._op is not None:
            raise LocalProtocolError(f"operation {self._op.name!r} still running; cannot start {op.name!r}")
        self._op = op
        self._begin_step(now)

    def _begin_step(self, now: float, attempts: int = 0) -> None:
        assert self._op is not None
        step = self._op.steps[0]
        sent = with_crc(step.command) if self.crc else step.command
        self._cur = _Current(step, now + self.profile.timings.command_timeout_s, sent, attempts=attempts)
        self._out += sent.encode("latin-1") + b"\r"
        self._state = _State.AWAIT_ECHO if self.echo else _State.AWAIT_FINAL

    def _end(self, outcome: Event | RemoteProtocolError) -> None:
        self._events.append(outcome)
        self._op = None
        self._cur = None
        self._state = _State.IDLE

    def _take_token(self, now: float) -> bool:
        """Cut one token off the buffer, keep its bytes for the CRC, and run its transition."""
        buf = self._buf
        ends = [i for i in (buf.find(b"\r"), buf.find(b"\n")) if i >= 0]
        if not ends:
            if len(buf) > self._max_token:
                buf.clear()
                if self._cur is not None:
                    self._cur.raw.clear()
            return False
        end = min(ends)
        segment = bytes(buf[: end + 1])
        del buf[: end + 1]
        cur = self._cur
        if cur is None:
            return True  # idle: noise
        if self._state is not _State.AWAIT_ECHO:  # the answer (and what its CRC covers) starts after the echo
            if cur.skip_lf and segment == b"\n":
                cur.skip_lf = False
                return True
            cur.skip_lf = False
            cur.raw += segment
        token = segment.decode("latin-1").strip()
        if not token:
            return True
        action = _TRANSITIONS.get((self._state, self._classify(token)))
        if action is not None:
            action(self, token, len(segment), now)
        return True

    def _classify(self, token: str) -> _Tok:
        cur = self._cur
        assert cur is not None
        upper = token.upper()
        if self._is_echo(token):
            return _Tok.ECHO
        if upper == "OK" or (token == "0" and not cur.step.reason_query):
            return _Tok.OK
        if upper == "ERROR" or (token == "4" and not cur.step.reason_query):
            return _Tok.ERROR
        if _CRC_TOKEN.match(token):
            return _Tok.CRC
        return _Tok.INFO

    # transitions: one method per (state, token) entry of _TRANSITIONS

    def _echo_seen(self, token: str, seglen: int, now: float) -> None:
        assert self._cur is not None
        self._state = _State.AWAIT_FINAL
        self._cur.raw.clear()

    def _late_echo(self, token: str, seglen: int, now: float) -> None:
        """The echo while the echo setting was unknown: the answer starts after it."""
        assert self._cur is not None
        self._cur.raw.clear()
        self._cur.info.clear()

    def _collect_info(self, token: str, seglen: int, now: float) -> None:
        assert self._cur is not None
        self._cur.info.append(token)

    def _final(self, token: str, seglen: int, now: float) -> None:
        cur = self._cur
        assert cur is not None
        cur.final = "OK" if self._classify(token) is _Tok.OK else "ERROR"
        if self._answer_crc(cur):
            self._state = _State.AWAIT_CRC
        else:
            self._on_final(now)

    def _stray_crc(self, token: str, seglen: int, now: float) -> None:
        """A CRC we did not expect ends an earlier answer (the CRC mode was unknown): start afresh."""
        cur = self._cur
        assert cur is not None
        cur.raw.clear()
        cur.info.clear()
        cur.skip_lf = True

    def _is_echo(self, token: str) -> bool:
        cur = self._cur
        assert cur is not None
        upper = token.upper()
        return upper.endswith(cur.sent.upper()) or upper.endswith(cur.step.command.upper())

    def _answer_crc(self, cur: _Current) -> bool:
        if cur.step.crc_after is not None and cur.final == "OK":
            return cur.step.crc_after
        return self.crc

    def _on_crc(self, token: str, seglen: int, now: float) -> None:
        cur = self._cur
        assert cur is not None
        m = _CRC_TOKEN.match(token)
        covered = bytes(cur.raw[: len(cur.raw) - seglen])
        if m is None or int(m.group(1), 16) != crc16(covered):
            self._damaged(f"answer to {cur.step.command} fails its CRC", now)
            return
        self._on_final(now)

    def _crc_missing(self, token: str, seglen: int, now: float) -> None:
        assert self._cur is not None
        self._damaged(f"answer to {self._cur.step.command} has no CRC", now)

    def _damaged(self, why: str, now: float) -> None:
        cur = self._cur
        assert cur is not None
        if cur.attempts < cur.step.resend:
            self._begin_step(now, cur.attempts + 1)
            return
        self._end(RemoteProtocolError(why))

    def _on_final(self, now: float) -> None:
        cur = self._cur
        assert cur is not None and self._op is not None
        step = cur.step
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
            if step.on_ok is not None:
                try:
                    step.on_ok(cur.info)
                except RemoteProtocolError as exc:
                    self._damaged(str(exc), now)
                    return
            self._next_step(now)
            return
        if step.toggle_crc_on_error and cur.attempts < step.error_retry:
            self.crc = not self.crc
            self._begin_step(now, cur.attempts + 1)
            return
        # ask the reason before anything else is sent
        query = _Step("ATS80?", reason_query=True)
        self._op.steps.appendleft(query)
        attempts = cur.attempts
        self._begin_step(now, attempts)
        assert self._cur is not None
        self._cur.failed_command = cur.sent

    def _after_error(self, step: _Step, reason: int | None, now: float) -> None:
        if step.on_error is not None and step.on_error(reason):
            self._next_step(now)
            return
        self._end(CommandError(step.command, reason))

    def _next_step(self, now: float) -> None:
        assert self._op is not None
        self._op.steps.popleft()
        if self._op.steps:
            self._begin_step(now)
            return
        try:
            outcome: Event | RemoteProtocolError = self._op.finish()
        except RemoteProtocolError as exc:
            outcome = exc
        self._end(outcome)


_Action = Callable[[InmarsatIdp, str, int, float], None]

#: The line-level state machine: (state, token class) -> transition. Pairs not listed are noise.
_TRANSITIONS: dict[tuple[_State, _Tok], _Action] = {
    (_State.AWAIT_ECHO, _Tok.ECHO): InmarsatIdp._echo_seen,
    (_State.AWAIT_FINAL, _Tok.ECHO): InmarsatIdp._late_echo,
    (_State.AWAIT_FINAL, _Tok.INFO): InmarsatIdp._collect_info,
    (_State.AWAIT_FINAL, _Tok.OK): InmarsatIdp._final,
    (_State.AWAIT_FINAL, _Tok.ERROR): InmarsatIdp._final,
    (_State.AWAIT_FINAL, _Tok.CRC): InmarsatIdp._stray_crc,
    (_State.AWAIT_CRC, _Tok.CRC): InmarsatIdp._on_crc,
    (_State.AWAIT_CRC, _Tok.INFO): InmarsatIdp._crc_missing,
    (_State.AWAIT_CRC, _Tok.OK): InmarsatIdp._crc_missing,
    (_State.AWAIT_CRC, _Tok.ERROR): InmarsatIdp._crc_missing,
    (_State.AWAIT_CRC, _Tok.ECHO): InmarsatIdp._crc_missing,
}
