"""The shared sans-I/O AT engine: any bytes give typed outcomes, every operation ends exactly once.

The engine is checked alone (through a minimal dialect defined here: echo, information lines, OK and
ERROR) and under both real dialects (Iridium SBD, Inmarsat IDP), with hypothesis feeding random line
noise and garbage in random pieces while an operation runs.
"""

from __future__ import annotations

import collections
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_profiles import load_profile
from gateway.modem.at_engine import (
    COMMON_TRANSITIONS,
    Action,
    AtEngine,
    BlockFormat,
    CommandError,
    DriverError,
    Event,
    LocalProtocolError,
    ModemError,
    Operation,
    RemoteProtocolError,
    State,
    Step,
    Timeout,
    Tok,
)
from gateway.modem.inmarsat_idp import InmarsatIdp
from gateway.modem.iridium_sbd import IridiumSbd, RingAlert

T0 = 1_000_000.0
TIMEOUT_S = 5.0
_VALUE = re.compile(r"^\+VAL:\s*(\d+)$")


@dataclass(frozen=True)
class Value(Event):
    value: int


@dataclass(frozen=True)
class Block(Event):
    payload: bytes


@dataclass(frozen=True)
class Ring(Event):
    pass


BLOCK_MAX = 300


def _sum16(payload: bytes) -> bytes:
    return (sum(payload) & 0xFFFF).to_bytes(2, "big")


def _framed(payload: bytes) -> bytes:
    return len(payload).to_bytes(2, "big") + payload + _sum16(payload)


class PlainAt(AtEngine):
    """The smallest dialect: ``AT+VAL?`` answered by ``+VAL: <n>`` then OK (echo on)."""

    def __init__(self) -> None:
        super().__init__(max_token_bytes=256)
        self.echo = True

    def query(self, now: float) -> None:
        result: list[int] = []

        def parse(lines: list[str]) -> None:
            for line in lines:
                m = _VALUE.match(line)
                if m is not None:
                    result.append(int(m.group(1)))
                    return
            raise RemoteProtocolError(f"no +VAL in {lines!r}")

        step = Step("AT+VAL?", TIMEOUT_S, on_ok=parse)
        self._start(Operation("value", collections.deque([step]), lambda: Value(result[0])), now)

    def read_block(self, now: float) -> None:
        """``AT+BLK``: a binary block (2-byte length, payload, 2-byte sum), then OK."""
        step = Step("AT+BLK", TIMEOUT_S, block=BlockFormat(BLOCK_MAX, _sum16))

        def finish() -> Event:
            assert self._cur is not None and self._cur.block is not None
            return Block(self._cur.block)

        self._start(Operation("block", collections.deque([step]), finish), now)

    def _classify(self, token: str) -> Tok | None:
        upper = token.upper()
        if upper == "RING":
            return Tok.UNSOLICITED
        if self._is_echo(token):
            return Tok.ECHO
        if upper == "OK":
            return Tok.OK
        if upper == "ERROR":
            return Tok.ERROR
        return None if upper.startswith("AT") else Tok.INFO

    def _on_unsolicited(self, token: str) -> None:
        self._events.append(Ring())

    def _ok_then_block(self, token: str, now: float) -> None:
        cur = self._cur
        assert cur is not None
        if cur.block_error is not None:
            self._end(RemoteProtocolError(cur.block_error))
            return
        self._step_done(now)

    TRANSITIONS: ClassVar[dict[tuple[State, Tok], Action]] = {
        **COMMON_TRANSITIONS,
        (State.AWAIT_FINAL, Tok.OK): _ok_then_block,  # type: ignore[dict-item]
        (State.AWAIT_FINAL, Tok.ERROR): AtEngine._final_error,
    }


def outcomes(engine: AtEngine) -> list[Event | RemoteProtocolError]:
    out: list[Event | RemoteProtocolError] = []
    for _ in range(1000):
        try:
            event = engine.next_event()
        except RemoteProtocolError as exc:
            out.append(exc)
            continue
        if event is None:
            return out
        out.append(event)
    raise AssertionError("event queue never drained")


# -- the engine alone -----------------------------------------------------------------------------


def test_a_clean_answer_ends_the_operation_with_its_result() -> None:
    engine = PlainAt()
    engine.query(T0)
    assert engine.data_to_send() == b"AT+VAL?\r"
    engine.receive_data(b"AT+VAL?\r\r\n+VAL: 42\r\n\r\nOK\r\n", T0)
    assert outcomes(engine) == [Value(42)]
    assert not engine.busy and engine.next_wakeup() is None


def test_an_answer_before_the_echo_is_noise() -> None:
    engine = PlainAt()
    engine.query(T0)
    engine.receive_data(b"\r\n+VAL: 1\r\n\r\nOK\r\nAT+VAL?\r\r\n+VAL: 2\r\n\r\nOK\r\n", T0)
    assert outcomes(engine) == [Value(2)]


def test_an_unparsable_answer_is_a_remote_protocol_error_and_the_engine_stays_usable() -> None:
    engine = PlainAt()
    engine.query(T0)
    engine.receive_data(b"AT+VAL?\r\r\n+VAL: x\r\n\r\nOK\r\n", T0)
    [error] = outcomes(engine)
    assert isinstance(error, RemoteProtocolError)
    engine.query(T0)
    engine.receive_data(b"AT+VAL?\r\r\n+VAL: 7\r\n\r\nOK\r\n", T0)
    assert outcomes(engine) == [Value(7)]


def test_error_is_a_command_error_without_a_reason() -> None:
    engine = PlainAt()
    engine.query(T0)
    engine.receive_data(b"AT+VAL?\r\r\nERROR\r\n", T0)
    assert outcomes(engine) == [CommandError("AT+VAL?")]


def test_the_deadline_is_computed_from_the_time_passed_in() -> None:
    engine = PlainAt()
    engine.query(T0)
    assert engine.next_wakeup() == T0 + TIMEOUT_S
    engine.tick(T0 + TIMEOUT_S - 0.001)
    assert outcomes(engine) == []
    engine.tick(T0 + TIMEOUT_S)
    assert outcomes(engine) == [Timeout("AT+VAL?")]
    assert not engine.busy


def test_starting_a_second_operation_is_a_local_protocol_error() -> None:
    engine = PlainAt()
    engine.query(T0)
    with pytest.raises(LocalProtocolError):
        engine.query(T0)


def test_one_error_hierarchy_typed_by_whose_fault() -> None:
    for error in (LocalProtocolError, RemoteProtocolError, ModemError):
        assert issubclass(error, DriverError)
    assert not issubclass(LocalProtocolError, RemoteProtocolError)
    assert not issubclass(RemoteProtocolError, LocalProtocolError)
    assert not issubclass(ModemError, (LocalProtocolError, RemoteProtocolError))


@settings(max_examples=200, deadline=None)
@given(
    payload=st.binary(max_size=BLOCK_MAX) | st.sampled_from([b"\r\nOK\r\n", b"ERROR\r", b"RING\r\n"]),
    ring_first=st.booleans(),
    cut=st.integers(min_value=1, max_value=17),
)
def test_a_binary_block_is_read_by_byte_count_whatever_it_contains(
    payload: bytes, ring_first: bool, cut: int
) -> None:
    engine = PlainAt()
    engine.read_block(T0)
    stream = (b"\r\nRING\r\n" if ring_first else b"") + b"AT+BLK\r" + _framed(payload) + b"\r\nOK\r\n"
    for i in range(0, len(stream), cut):
        engine.receive_data(stream[i : i + cut], T0)
    expected: list[Event | RemoteProtocolError] = [Ring()] if ring_first else []
    assert outcomes(engine) == [*expected, Block(payload)]


def test_a_block_failing_its_check_is_a_remote_protocol_error() -> None:
    engine = PlainAt()
    engine.read_block(T0)
    engine.receive_data(b"AT+BLK\r\x00\x03abc\x00\x00\r\nOK\r\n", T0)
    [error] = outcomes(engine)
    assert isinstance(error, RemoteProtocolError)
    assert "checksum mismatch" in str(error)


def test_a_block_longer_than_the_limit_is_a_remote_protocol_error() -> None:
    engine = PlainAt()
    engine.read_block(T0)
    engine.receive_data(b"AT+BLK\r\xff\xff", T0)
    [error] = outcomes(engine)
    assert isinstance(error, RemoteProtocolError)
    assert not engine.busy


LINES = st.sampled_from(
    [b"OK", b"ERROR", b"AT+VAL?", b"+VAL: 3", b"+VAL: zz", b"", b"AT+OTHER", b"READY", b"0", b"4"]
)
NOISE = st.lists(
    st.one_of(
        st.binary(max_size=64),
        st.builds(lambda line, end: line + end, LINES, st.sampled_from([b"\r", b"\n", b"\r\n"])),
    ),
    max_size=20,
)


@settings(max_examples=300, deadline=None)
@given(noise=NOISE)
def test_any_noise_ends_the_operation_once_with_a_typed_outcome(noise: list[bytes]) -> None:
    engine = PlainAt()
    engine.query(T0)
    engine.data_to_send()
    for chunk in noise:
        engine.receive_data(chunk, T0)
        assert engine.buffered <= engine.max_token_bytes + len(chunk)
    engine.tick(T0 + TIMEOUT_S)  # past the deadline: whatever happened, the operation is over
    ended = outcomes(engine)
    assert len(ended) == 1
    assert isinstance(ended[0], Value | CommandError | Timeout | RemoteProtocolError)
    assert not engine.busy and engine.next_wakeup() is None
    engine.query(T0 + TIMEOUT_S)  # never stuck: the next operation runs normally
    engine.receive_data(b"AT+VAL?\r\r\n+VAL: 5\r\n\r\nOK\r\n", T0 + TIMEOUT_S)
    assert outcomes(engine) == [Value(5)]


@settings(max_examples=200, deadline=None)
@given(noise=NOISE)
def test_noise_while_idle_is_ignored(noise: list[bytes]) -> None:
    engine = PlainAt()
    for chunk in noise:
        engine.receive_data(chunk, T0)
    assert outcomes(engine) == []
    assert not engine.busy and engine.next_wakeup() is None


# -- under both dialects --------------------------------------------------------------------------

IRIDIUM = load_profile("iridium-9603")
IDP = load_profile("inmarsat-idp")


def _iridium() -> tuple[AtEngine, Callable[[float], None]]:
    driver = IridiumSbd(IRIDIUM)
    driver.echo = True
    return driver, driver.request_status


def _iridium_read() -> tuple[AtEngine, Callable[[float], None]]:
    driver = IridiumSbd(IRIDIUM)
    driver.echo = True
    return driver, driver.read_message


def _idp() -> tuple[AtEngine, Callable[[float], None]]:
    driver = InmarsatIdp(IDP)
    return driver, driver.forward_list


DIALECTS = {"iridium status": _iridium, "iridium read": _iridium_read, "idp forward list": _idp}
DIALECT_LINES = st.sampled_from(
    [
        b"OK",
        b"ERROR",
        b"0",
        b"4",
        b"SBDRING",
        b"AT+SBDSX",
        b"AT+SBDRB",
        b"AT%MGFN",
        b"+SBDSX: 0, 1, 0, -1, 0, 0",
        b"%MGFN: ",
        b"*1D0F",
        b"",
    ]
)


@settings(max_examples=200, deadline=None)
@given(
    name=st.sampled_from(sorted(DIALECTS)),
    noise=st.lists(
        st.one_of(
            st.binary(max_size=48),
            st.builds(lambda line, end: line + end, DIALECT_LINES, st.sampled_from([b"\r", b"\n", b"\r\n"])),
        ),
        max_size=16,
    ),
)
def test_under_each_dialect_noise_gives_one_typed_outcome_and_a_timeout_always_surfaces(
    name: str, noise: list[bytes]
) -> None:
    engine, start = DIALECTS[name]()
    start(T0)
    engine.data_to_send()
    for chunk in noise:
        engine.receive_data(chunk, T0)
    deadline = engine.next_wakeup()
    if deadline is not None:
        engine.tick(deadline)
    ended = [o for o in outcomes(engine) if not isinstance(o, RingAlert)]
    assert len(ended) == 1
    assert isinstance(ended[0], Event | RemoteProtocolError)
    assert not engine.busy and engine.next_wakeup() is None
