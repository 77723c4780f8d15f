"""The sans-I/O IDP driver: against the emulator in memory, CRC handling, and noise that must never break it."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_profiles import load_profile
from gateway.modem.inmarsat_idp import (
    CommandError,
    Event,
    ForwardList,
    ForwardMarked,
    ForwardMessage,
    InmarsatIdp,
    LocalProtocolError,
    MessageSubmitted,
    NetworkTime,
    Ready,
    RemoteProtocolError,
    ReturnStates,
    SignalQuality,
    Timeout,
    with_crc,
)
from simulators.idp_modem import IdpLoopbackNetwork, IdpModemEmulator
from simulators.link_model import LinkModel

PROFILE = load_profile("inmarsat-idp")
SIN = int(PROFILE.limits.sin or 0)
T0 = 1_735_689_600.0

Outcome = Event | RemoteProtocolError


class Bench:
    """Driver and emulator wired by function calls; ``mangle`` may damage modem → driver bytes."""

    def __init__(self, link: str = "perfect", use_crc: bool = True, seed: int = 5) -> None:
        self.network = IdpLoopbackNetwork()
        self.modem = IdpModemEmulator(PROFILE, LinkModel(random.Random(seed), link), self.network)
        self.network.attach(self.modem)
        self.driver = InmarsatIdp(PROFILE, use_crc=use_crc)
        self.now = T0
        self.mangle = lambda data: data
        self.cuts: list[int] = []  # sizes of the pieces modem output is delivered in (cycled)

    def run(self, start: object, limit_s: float = 60.0) -> Outcome:
        """Start an operation (a callable taking ``now``) and step until its outcome."""
        start(self.now)  # type: ignore[operator]
        end = self.now + limit_s
        while self.now < end:
            out = self.driver.data_to_send()
            if out:
                self.modem.feed(out, self.now)
            back = self.modem.read_output()
            if back:
                data = self.mangle(back)
                i = 0
                while i < len(data):
                    size = self.cuts[i % len(self.cuts)] if self.cuts else len(data)
                    self.driver.receive_data(data[i : i + size], self.now)
                    i += size
            try:
                event = self.driver.next_event()
            except RemoteProtocolError as exc:
                return exc
            if event is not None:
                return event
            if not out and not back:
                self.now += 0.05
                self.modem.tick(self.now)
                self.driver.tick(self.now)
        raise AssertionError("operation never ended")

    def wait(self, seconds: float) -> None:
        end = self.now + seconds
        while self.now < end:
            self.now += 0.05
            self.modem.tick(self.now)


def test_initialize_turns_crc_on_and_learns_the_mobile_id() -> None:
    bench = Bench()
    event = bench.run(bench.driver.initialize)
    assert event == Ready("01097623SKYFDA1", True)
    assert bench.modem.settings.crc and bench.modem.settings.echo and bench.modem.settings.verbose


def test_initialize_finds_a_modem_already_in_crc_mode_and_with_echo_off() -> None:
    bench = Bench()
    bench.modem.settings.crc = True
    bench.modem.settings.echo = False
    assert isinstance(bench.run(bench.driver.initialize), Ready)
    assert bench.driver.crc and bench.modem.settings.echo


def test_initialize_without_crc_turns_it_off() -> None:
    bench = Bench(use_crc=False)
    bench.modem.settings.crc = True
    assert bench.run(bench.driver.initialize) == Ready("01097623SKYFDA1", False)
    assert not bench.modem.settings.crc


@pytest.mark.parametrize("use_crc", [True, False])
def test_submit_poll_and_receive_a_forward_message(use_crc: bool) -> None:
    bench = Bench(use_crc=use_crc)
    d = bench.driver
    bench.run(d.initialize)
    assert bench.run(lambda now: d.submit("00000001", SIN, b"frame-1", now)) == MessageSubmitted("00000001")
    bench.wait(5)
    states = bench.run(lambda now: d.return_states(now, "00000001"))
    assert isinstance(states, ReturnStates) and states.states[0].state == 6
    assert states.states[0].length == 8 and states.states[0].acked == 8
    assert bench.run(lambda now: d.return_states(now, "00000001")) == ReturnStates(())
    assert [r.raw for r in bench.network.returns] == [bytes([SIN]) + b"frame-1"]

    bench.network.queue_forward(bench.modem.mobile_id, bytes([SIN]) + b"reply\r\nOK\r\n", bench.now)
    bench.wait(5)
    listing = bench.run(d.forward_list)
    assert isinstance(listing, ForwardList) and len(listing.messages) == 1
    name = listing.messages[0].name
    message = bench.run(lambda now: d.get_forward(name, now))
    assert message == ForwardMessage(name, bytes([SIN]) + b"reply\r\nOK\r\n")
    assert bench.run(lambda now: d.mark_forward(name, now)) == ForwardMarked(name)
    assert bench.run(d.forward_list) == ForwardList(())


def test_signal_and_network_time() -> None:
    bench = Bench()
    bench.run(bench.driver.initialize)
    signal = bench.run(bench.driver.request_signal)
    assert signal == SignalQuality(5, 46.5, 10)
    bench.modem.link.forced_signal = 0
    assert bench.run(bench.driver.request_signal) == SignalQuality(0, 33.0, 11)
    when = bench.run(bench.driver.request_network_time)
    assert isinstance(when, NetworkTime) and when.unix_seconds == int(bench.now)


def test_error_answers_carry_the_s80_reason() -> None:
    bench = Bench()
    d = bench.driver
    bench.run(d.initialize)
    bench.modem.link.forced_signal = 0
    assert isinstance(bench.run(lambda now: d.submit("dup", SIN, b"x", now)), MessageSubmitted)
    assert bench.run(lambda now: d.submit("dup", SIN, b"x", now)) == CommandError(
        'AT%MGRT="dup",4,128,3,eA==', 107
    )
    assert bench.run(lambda now: d.get_forward("nope", now)) == CommandError('AT%MGFG="nope",3', 109)


def test_a_damaged_submit_answer_is_repeated_and_the_name_in_use_proves_it_was_taken() -> None:
    bench = Bench()
    d = bench.driver
    bench.run(d.initialize)
    bench.modem.link.forced_signal = 0
    damaged = [True]

    def mangle(data: bytes) -> bytes:
        if damaged[0] and b"%MGRT" in data:
            damaged[0] = False
            return data[:-3] + bytes([data[-3] ^ 1]) + data[-2:]  # one bit of the CRC flipped
        return data

    bench.mangle = mangle
    assert bench.run(lambda now: d.submit("once", SIN, b"payload", now)) == MessageSubmitted("once", True)
    assert [e.name for e in bench.modem.returns] == ["once"]


def test_a_response_with_a_wrong_crc_is_never_acted_on() -> None:
    bench = Bench()
    d = bench.driver
    bench.run(d.initialize)
    bench.network.queue_forward(bench.modem.mobile_id, bytes([SIN]) + b"abc", bench.now)
    bench.wait(5)
    bench.mangle = lambda data: data.replace(b"YWJj", b"YWJk")  # "abc" -> "abd", CRC now wrong
    assert isinstance(bench.run(lambda now: d.get_forward("FM00.01", now)), RemoteProtocolError)
    bench.mangle = lambda data: data
    assert bench.run(lambda now: d.get_forward("FM00.01", now)) == ForwardMessage(
        "FM00.01", bytes([SIN]) + b"abc"
    )


def test_a_silent_modem_times_out_after_the_profile_timeout() -> None:
    bench = Bench()
    d = bench.driver
    bench.run(d.initialize)
    bench.modem.power_off()
    start = bench.now
    assert bench.run(d.forward_list) == Timeout("AT%MGFN")
    assert bench.now - start == pytest.approx(PROFILE.timings.command_timeout_s, abs=0.1)
    bench.modem.power_on()
    assert isinstance(bench.run(d.initialize), Ready)


def test_requests_in_crc_mode_carry_their_crc() -> None:
    assert with_crc("AT") == "AT*3983"
    assert with_crc("ATS80?") == "ATS80?*FD5E"


def test_local_misuse_is_a_local_protocol_error() -> None:
    d = InmarsatIdp(PROFILE)
    with pytest.raises(LocalProtocolError):
        d.submit("name", SIN, bytes(PROFILE.limits.mo_max_bytes), T0)
    with pytest.raises(LocalProtocolError):
        d.submit("much-too-long", SIN, b"x", T0)
    with pytest.raises(LocalProtocolError):
        d.submit("ok", 5, b"x", T0)
    d.forward_list(T0)
    with pytest.raises(LocalProtocolError):
        d.forward_list(T0)


def test_endless_garbage_without_line_ends_stays_bounded() -> None:
    d = InmarsatIdp(PROFILE)
    d.forward_list(T0)
    for _ in range(200):
        d.receive_data(b"x" * 1000, T0)
    assert len(d._buf) < 20_000
    d.tick(T0 + PROFILE.timings.command_timeout_s)
    assert d.next_event() == Timeout("AT%MGFN")


# -- hypothesis: noise and truncation -----------------------------------------------------------


def _drain(driver: InmarsatIdp) -> list[Outcome]:
    out: list[Outcome] = []
    while True:
        try:
            event = driver.next_event()
        except RemoteProtocolError as exc:
            out.append(exc)
            continue
        if event is None:
            return out
        out.append(event)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    chunks=st.lists(st.binary(max_size=64), max_size=30),
    crc=st.booleans(),
    echo=st.booleans(),
)
def test_any_bytes_give_only_typed_outcomes_and_each_operation_ends_once(
    chunks: list[bytes], crc: bool, echo: bool
) -> None:
    d = InmarsatIdp(PROFILE)
    d.crc, d.echo = crc, echo
    d.forward_list(T0)
    outcomes: list[Outcome] = []
    for chunk in chunks:
        d.receive_data(chunk, T0)
        outcomes += _drain(d)
        if not d.busy:
            d.data_to_send()
            d.return_states(T0, "n1")
    d.tick(T0 + PROFILE.timings.command_timeout_s * 3)
    outcomes += _drain(d)
    assert not d.busy
    assert all(isinstance(o, Event | RemoteProtocolError) for o in outcomes)


NOISE = st.sampled_from(
    [
        b"\r\n",
        b"garbage",
        b"\x00\xff",
        b"*1234\r\n",
        b"OK",
        b"ERROR",
        b"\r\nERROR\r\n",
        b"%MGFN:",
        b"0\r",
        b"4",
    ]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**16),
    cut=st.integers(1, 40),
    noise=st.lists(NOISE, max_size=3),
    drop=st.booleans(),
)
def test_a_damaged_exchange_never_delivers_wrong_data_and_the_driver_recovers(
    seed: int, cut: int, noise: list[bytes], drop: bool
) -> None:
    """Cut the answer stream at a random point, inject noise, maybe drop the rest: the operation
    ends in a typed outcome; a ForwardMessage it reports is the real one; a re-initialise heals."""
    bench = Bench(seed=seed)
    d = bench.driver
    bench.run(d.initialize)
    payload = bytes([SIN]) + random.Random(seed).randbytes(40)
    bench.network.queue_forward(bench.modem.mobile_id, payload, bench.now)
    bench.wait(5)
    once = [True]

    def mangle(data: bytes) -> bytes:
        if not once[0]:
            return data
        once[0] = False
        head, tail = data[:cut], data[cut:]
        return head + b"".join(noise) + (b"" if drop else tail)

    bench.mangle = mangle
    outcome = bench.run(lambda now: d.get_forward("FM00.01", now))
    assert isinstance(outcome, ForwardMessage | Timeout | RemoteProtocolError | CommandError)
    if isinstance(outcome, ForwardMessage):
        assert outcome.raw == payload
    bench.mangle = lambda data: data
    d.reset()
    assert isinstance(bench.run(d.initialize), Ready)
    assert bench.run(lambda now: d.get_forward("FM00.01", now)) == ForwardMessage("FM00.01", payload)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cuts=st.lists(st.integers(1, 12), min_size=1, max_size=8), crc=st.booleans())
def test_answers_delivered_in_any_pieces_give_the_same_results(cuts: list[int], crc: bool) -> None:
    bench = Bench(use_crc=crc)
    bench.cuts = cuts
    d = bench.driver
    assert isinstance(bench.run(d.initialize), Ready)
    assert bench.run(lambda now: d.submit("p1", SIN, b"\r\nOK\r\n*1234", now)) == MessageSubmitted("p1")
    bench.wait(5)
    states = bench.run(lambda now: d.return_states(now, "p1"))
    assert isinstance(states, ReturnStates) and states.states[0].state == 6
    bench.network.queue_forward(bench.modem.mobile_id, bytes([SIN]) + b"x\r\n", bench.now)
    bench.wait(5)
    assert bench.run(lambda now: d.get_forward("FM00.01", now)) == ForwardMessage(
        "FM00.01", bytes([SIN]) + b"x\r\n"
    )
