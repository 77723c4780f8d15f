"""The sans-I/O AT command engine both modem dialects drive (Iridium SBD, Inmarsat IDP).

This module owns what every AT conversation has in common, whatever the modem: an output buffer of
command bytes, an input buffer cut into line tokens at every ``\\r`` or ``\\n`` (bounded, so endless
garbage cannot grow it), one *operation* at a time made of *steps* (one AT command each), a deadline
per step computed from the ``now`` passed in, the typed events an operation ends with, and one error
hierarchy typed by whose fault it is. It must not touch a port, a clock or an event loop, and it does
not know which dialect it plays: commands, answer parsing, operation scripts and the dialect's own
token classes and transitions live in ``iridium_sbd`` and ``inmarsat_idp``.

Theory of operation
-------------------
A dialect subclasses ``AtEngine`` and declares three things:

* ``_classify(token)``: the ``Tok`` class of one line (``None``: noise, dropped);
* ``TRANSITIONS``: the whole line-level state machine as a table, ``(State, Tok) -> action``; a pair
  not in the table is noise. ``COMMON_TRANSITIONS`` holds the entries every dialect shares;
* ``BYTE_READERS``: the states in which input is read by byte count instead of by line,
  ``State -> reader``; a reader returns False when it needs more bytes. The engine's own entries read
  a binary block (a step with a ``BlockFormat``: echo, big-endian length, payload, check value), so a
  payload may contain line ends and result codes.

Every operation ends in exactly one outcome put on the event queue: its result event, ``Timeout``
(from ``tick`` once the step's deadline has passed), ``CommandError`` or a ``RemoteProtocolError``
(raised from ``next_event``). Unsolicited events (a ring alert) may be queued at any time. Starting
an operation while another runs, or asking one the dialect cannot express, is a
``LocalProtocolError``.

Extension points: ``Step.timeout_s`` and ``Step.retries_on_error`` per command; ``Operation.steps``
is a plain list a dialect may build from data (for example settings to re-apply after a reset);
``_on_timeout`` lets a dialect note what a timeout leaves behind in the modem.
"""

from __future__ import annotations

import collections
import enum
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

# -- errors: one hierarchy, typed by whose fault it is ----------------------------------------


class DriverError(Exception):
    """Base of every error the modem drivers and their adapters raise."""


class LocalProtocolError(DriverError):
    """Our side misused the driver: an operation while busy, a payload or name the modem cannot take."""


class RemoteProtocolError(DriverError):
    """The modem sent what the protocol does not allow: bad checksum or CRC, unparsable or short reply.

    The operation that was running is over; the driver is idle and usable again.
    """


class ModemError(DriverError):
    """The modem as a device failed a call: it did not answer, refused, or its port failed.

    Raised by the adapters (``port``, ``serial_link``, ``idp_link``), never by the sans-I/O engine.
    """


# -- events shared by the dialects -------------------------------------------------------------


class Event:
    """Base class of everything ``next_event()`` returns."""

    __slots__ = ()


@dataclass(frozen=True)
class Timeout(Event):
    """No complete answer to ``command`` before its step's deadline."""

    command: str


@dataclass(frozen=True)
class CommandError(Event):
    """``command`` was refused (``ERROR``, or a failure digit); ``reason`` when the dialect can read one."""

    command: str
    reason: int | None = None


@dataclass(frozen=True)
class NetworkTime(Event):
    """Network time in Unix seconds; None when the modem has none (no service)."""

    unix_seconds: float | None


@dataclass(frozen=True)
class NetworkPosition(Event):
    """Where the modem's network or GNSS places the vessel (degrees); None when it does not know."""

    latitude: float | None
    longitude: float | None


# -- the machine's vocabulary ------------------------------------------------------------------


class State(enum.Enum):
    IDLE = "idle"
    AWAIT_ECHO = "await echo"
    AWAIT_FINAL = "await final result"
    AWAIT_CHECK = "await check line"  # a CRC line after the final result
    AWAIT_PROMPT = "await data prompt"  # READY before a binary upload
    AWAIT_UPLOAD_RESULT = "await upload result"
    AWAIT_BLOCK_ECHO = "await block echo"
    AWAIT_BLOCK = "await binary block"


class Tok(enum.Enum):
    ECHO = "echo"
    OK = "OK"
    ERROR = "ERROR"
    INFO = "info"
    DIGIT = "digit"
    UNSOLICITED = "unsolicited"
    PROMPT = "prompt"
    CHECK = "check"


@dataclass(frozen=True)
class BlockFormat:
    """A binary answer read by byte count: a big-endian length, that many bytes, a check value.

    ``check(payload)`` computes the check value the block must end with. A length beyond
    ``max_length`` that starts with CR LF is taken as an unsolicited line before the block.
    """

    max_length: int
    check: Callable[[bytes], bytes]
    length_bytes: int = 2
    check_bytes: int = 2


@dataclass
class Step:
    """One AT command of an operation and how to treat its answer.

    ``on_ok`` gets the information lines of a successful answer and may raise ``RemoteProtocolError``.
    ``on_error`` gets the error reason (None if unknown) and returns True when the refusal is an
    acceptable outcome (the step then counts as done). ``retries_on_error``: plain resends on ERROR;
    ``resend``: resends allowed after a damaged answer (idempotent commands only).
    """

    command: str
    timeout_s: float
    on_ok: Callable[[list[str]], None] | None = None
    on_error: Callable[[int | None], bool] | None = None
    retries_on_error: int = 0
    resend: int = 0
    block: BlockFormat | None = None  # the answer is a binary block right after the echo


@dataclass
class Operation:
    name: str
    steps: collections.deque[Step]
    finish: Callable[[], Event]


@dataclass
class Current:
    """The step on the line: what was sent, its deadline, what has come back so far."""

    step: Step
    deadline: float
    sent: str = ""
    info: list[str] = field(default_factory=list)
    attempts: int = 0
    digit: int | None = None  # a one-digit answer line, when the step expects one
    block: bytes | None = None  # the binary block read, when the step expects one
    block_error: str | None = None  # why that block cannot be trusted


Outcome = Event | RemoteProtocolError
Action = Callable[["AtEngine", str, float], None]


class AtEngine:
    """Operations, steps, deadlines, line framing and event queue. See the module docstring."""

    TRANSITIONS: ClassVar[dict[tuple[State, Tok], Action]] = {}
    #: States in which the input is read by byte count instead of by line.
    BYTE_READERS: ClassVar[dict[State, Callable[[AtEngine, float], bool]]] = {
        State.AWAIT_BLOCK_ECHO: lambda engine, now: engine._find_block_echo(now),
        State.AWAIT_BLOCK: lambda engine, now: engine._take_block(now),
    }
    #: The record of the step on the line; a dialect may extend ``Current`` with its own fields.
    current_type: ClassVar[type[Current]] = Current

    def __init__(self, max_token_bytes: int) -> None:
        self.max_token_bytes = max_token_bytes
        self.echo: bool | None = None  # None until the dialect knows whether the modem echoes
        self._buf = bytearray()
        self._out = bytearray()
        self._events: collections.deque[Outcome] = collections.deque()
        self._state = State.IDLE
        self._op: Operation | None = None
        self._cur: Current | None = None

    # -- sans-I/O surface -------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self._op is not None

    @property
    def state(self) -> str:
        return self._state.value

    @property
    def buffered(self) -> int:
        """Bytes received and not yet consumed (bounded by the token limit)."""
        return len(self._buf)

    def receive_data(self, data: bytes, now: float) -> None:
        """Bytes read from the modem at ``now``."""
        self._buf += data
        while True:
            reader = self.BYTE_READERS.get(self._state)
            progressed = reader(self, now) if reader is not None else self._take_token(now)
            if not progressed:
                return

    def tick(self, now: float) -> None:
        """Let time pass: a step past its deadline ends its operation with ``Timeout``."""
        if self._cur is not None and now >= self._cur.deadline:
            self._on_timeout(self._cur)
            self._end(Timeout(self._cur.step.command))
            self._buf.clear()

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def next_event(self) -> Event | None:
        """The next event, or None. Raises ``RemoteProtocolError`` as an operation's outcome."""
        if not self._events:
            return None
        item = self._events.popleft()
        if isinstance(item, RemoteProtocolError):
            raise item
        return item

    def next_wakeup(self) -> float | None:
        """When ``tick`` must next be called (the current step's deadline), or None."""
        return self._cur.deadline if self._cur is not None else None

    def reset(self) -> None:
        """Forget the running operation, buffered bytes and whether the modem echoes."""
        self._op = None
        self._cur = None
        self._state = State.IDLE
        self._buf.clear()
        self._out.clear()
        self.echo = None

    # -- hooks for the dialect --------------------------------------------------------------

    def _classify(self, token: str) -> Tok | None:
        raise NotImplementedError

    def _encode(self, command: str) -> str:
        """The command line as sent (a dialect may add a checksum suffix)."""
        return command

    def _state_after_echo(self, step: Step) -> State:
        return State.AWAIT_FINAL

    def _on_segment(self, segment: bytes) -> bool:
        """Every line's raw bytes before classification; False drops the segment."""
        return True

    def _on_timeout(self, cur: Current) -> None:
        """What a timeout of ``cur`` leaves behind (e.g. a modem still in a data transfer)."""

    def _on_unsolicited(self, token: str) -> None:
        """A line that is an unsolicited result code (e.g. a ring alert)."""

    def _on_failed(self, cur: Current, now: float) -> None:
        """A final ERROR with no retries left: by default the operation ends in ``CommandError``."""
        self._after_error(cur.step, None, now)

    # -- operations and steps ---------------------------------------------------------------

    def _start(self, op: Operation, now: float) -> None:
        if self._op is not None:
            raise LocalProtocolError(f"operation {self._op.name!r} still running; cannot start {op.name!r}")
        self._op = op
        self._begin_step(now)

    def _begin_step(self, now: float, attempts: int = 0) -> None:
        """Send the first step of the running operation and wait for its echo (or its answer)."""
        assert self._op is not None
        step = self._op.steps[0]
        sent = self._encode(step.command)
        self._cur = self.current_type(step, now + step.timeout_s, sent, attempts=attempts)
        self._out += sent.encode("latin-1") + b"\r"
        if step.block is not None:
            self._state = State.AWAIT_BLOCK_ECHO if self.echo else State.AWAIT_BLOCK
            if not self.echo:
                self._buf.clear()  # nothing before the block can be told from it
            return
        self._state = State.AWAIT_ECHO if self.echo else self._state_after_echo(step)

    def _step_done(self, now: float) -> None:
        """The step succeeded: parse its lines, then run the next step or finish the operation."""
        assert self._op is not None and self._cur is not None
        step = self._cur.step
        if step.on_ok is not None:
            try:
                step.on_ok(self._cur.info)
            except RemoteProtocolError as exc:
                self._damaged(exc, now)
                return
        self._next_step(now)

    def _next_step(self, now: float) -> None:
        assert self._op is not None
        self._op.steps.popleft()
        if self._op.steps:
            self._begin_step(now)
            return
        try:
            outcome: Outcome = self._op.finish()
        except RemoteProtocolError as exc:
            outcome = exc
        self._end(outcome)

    def _damaged(self, exc: RemoteProtocolError, now: float) -> None:
        """An answer that cannot be trusted: resend an idempotent step, else end the operation."""
        cur = self._cur
        assert cur is not None
        if cur.attempts < cur.step.resend:
            self._begin_step(now, cur.attempts + 1)
            return
        self._end(exc)

    def _after_error(self, step: Step, reason: int | None, now: float) -> None:
        if step.on_error is not None and step.on_error(reason):
            self._next_step(now)
            return
        self._end(CommandError(step.command, reason))

    def _end(self, outcome: Outcome) -> None:
        """End the running operation with ``outcome``."""
        self._events.append(outcome)
        self._op = None
        self._cur = None
        self._state = State.IDLE

    # -- line framing -----------------------------------------------------------------------

    def _take_token(self, now: float) -> bool:
        """Cut one line off the buffer and run its transition; False when no full line is buffered."""
        buf = self._buf
        ends = [i for i in (buf.find(b"\r"), buf.find(b"\n")) if i >= 0]
        if not ends:
            if len(buf) > self.max_token_bytes:
                buf.clear()
                self._on_overflow()
            return False
        end = min(ends)
        segment = bytes(buf[: end + 1])
        del buf[: end + 1]
        if not self._on_segment(segment):
            return True
        token = segment.decode("latin-1").strip()
        if token:
            self._on_token(token, now)
        return True

    def _on_overflow(self) -> None:
        """A line longer than any real answer was dropped."""

    def _on_token(self, token: str, now: float) -> None:
        tok = self._classify(token)
        if tok is Tok.UNSOLICITED:
            self._on_unsolicited(token)
            return
        if tok is None:
            return
        action = self.TRANSITIONS.get((self._state, tok))
        if action is not None:
            action(self, token, now)

    def _is_echo(self, token: str) -> bool:
        """``token`` ends with the current command as sent (or without its suffix)."""
        cur = self._cur
        if cur is None:
            return False
        upper = token.upper()
        return upper.endswith(cur.sent.upper()) or upper.endswith(cur.step.command.upper())

    # -- binary framing ---------------------------------------------------------------------

    def _find_block_echo(self, now: float) -> bool:
        """Skip to the end of our echo (the block follows it at once, with no line end)."""
        cur = self._cur
        assert cur is not None
        echo = cur.sent.encode("latin-1") + b"\r"
        buf = self._buf
        idx = buf.find(echo)
        if idx < 0:
            if len(buf) > self.max_token_bytes:
                self._scan_unsolicited(bytes(buf[: -len(echo)]))
                del buf[: -len(echo)]
            return False
        self._scan_unsolicited(bytes(buf[:idx]))
        del buf[: idx + len(echo)]
        self._state = State.AWAIT_BLOCK
        return True

    def _scan_unsolicited(self, noise: bytes) -> None:
        """Unsolicited result codes among skipped bytes still count (a ring alert before an echo)."""
        for raw in re.split(rb"[\r\n]", noise):
            token = raw.decode("latin-1").strip()
            if token and self._classify(token) is Tok.UNSOLICITED:
                self._on_unsolicited(token)

    def _take_block(self, now: float) -> bool:
        """Read length, payload and check value; then the final result follows as lines."""
        cur = self._cur
        assert cur is not None and cur.step.block is not None
        fmt = cur.step.block
        buf = self._buf
        head = fmt.length_bytes
        if len(buf) < head:
            return False
        length = int.from_bytes(buf[:head], "big")
        if length > fmt.max_length:
            return self._line_before_block(cur.step.command, length)
        end = head + length + fmt.check_bytes
        if len(buf) < end:
            return False
        payload = bytes(buf[head : head + length])
        received = bytes(buf[head + length : end])
        del buf[:end]
        cur.block = payload
        if fmt.check(payload) != received:
            cur.block_error = (
                f"{cur.step.command} checksum mismatch: got {received.hex()}, "
                f"computed {fmt.check(payload).hex()}"
            )
        self._state = State.AWAIT_FINAL
        return True

    def _line_before_block(self, command: str, length: int) -> bool:
        """A too-long "length" that is CR LF: an unsolicited line may precede the block."""
        buf = self._buf
        if buf.startswith(b"\r\n"):
            end = buf.find(b"\r\n", 2)
            if end < 0 and len(buf) <= self.max_token_bytes:
                return False  # wait for the rest of the line
            token = bytes(buf[2:end]).decode("latin-1").strip() if end >= 0 else ""
            if token and self._classify(token) is Tok.UNSOLICITED:
                del buf[: end + 2]
                self._on_unsolicited(token)
                return True
        buf.clear()
        self._end(RemoteProtocolError(f"{command} block length {length} exceeds the limit"))
        return False

    # -- transitions every dialect shares ---------------------------------------------------

    def _echo_seen(self, token: str, now: float) -> None:
        assert self._cur is not None
        self._state = self._state_after_echo(self._cur.step)

    def _collect_info(self, token: str, now: float) -> None:
        assert self._cur is not None
        self._cur.info.append(token)

    def _ok_seen(self, token: str, now: float) -> None:
        """OK: the step succeeded."""
        self._step_done(now)

    def _final_error(self, token: str, now: float) -> None:
        """ERROR: resend while retries last, then the dialect decides (reason query or CommandError)."""
        cur = self._cur
        assert cur is not None
        if cur.step.retries_on_error > cur.attempts:
            self._begin_step(now, cur.attempts + 1)
            return
        self._on_failed(cur, now)


#: Transitions every dialect has; a dialect's ``TRANSITIONS`` starts from a copy of this.
COMMON_TRANSITIONS: dict[tuple[State, Tok], Action] = {
    (State.AWAIT_ECHO, Tok.ECHO): AtEngine._echo_seen,
    (State.AWAIT_FINAL, Tok.INFO): AtEngine._collect_info,
}
