"""The sans-I/O Iridium SBD driver: transcripts, quirks, and noise that must never break it."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_profiles import load_profile
from gateway.modem.iridium_sbd import (
    IRIDIUM_EPOCH,
    NETWORK_TIME_FLOOR,
    BuffersCleared,
    CommandError,
    Event,
    IridiumSbd,
    LocalProtocolError,
    MessageReceived,
    MessageWritten,
    NetworkTime,
    Ready,
    RemoteProtocolError,
    RingAlert,
    SessionResult,
    SignalQuality,
    StatusReport,
    Timeout,
    WriteFailed,
    network_time_from_ticks,
)
from simulators.iridium_modem import IridiumModemEmulator, LoopbackNetwork
from simulators.link_model import LinkModel

PROFILE = load_profile("iridium-9603")
T0 = 1_735_689_600.0
RING = b"\r\nSBDRING\r\n"


def block(payload: bytes) -> bytes:
    return len(payload).to_bytes(2, "big") + payload + (sum(payload) & 0xFFFF).to_bytes(2, "big")


def drain(driver: IridiumSbd) -> list[Event | RemoteProtocolError]:
    out: list[Event | RemoteProtocolError] = []
    while True:
        try:
            event = driver.next_event()
        except RemoteProtocolError as exc:
            out.append(exc)
            continue
        if event is None:
            return out
        out.append(event)


def echoing_driver() -> IridiumSbd:
    driver = IridiumSbd(PROFILE)
    driver.echo = True
    return driver


def feed(driver: IridiumSbd, *chunks: bytes, now: float = T0) -> list[Event | RemoteProtocolError]:
    for chunk in chunks:
        driver.receive_data(chunk, now)
    return drain(driver)


# -- against the emulator, in memory ------------------------------------------------------------


class Bench:
    """The driver wired to the emulator through plain function calls (no pty)."""

    def __init__(self, link: str = "perfect") -> None:
        self.network = LoopbackNetwork()
        self.modem = IridiumModemEmulator(PROFILE, LinkModel(random.Random(5), link), self.network)
        self.network.attach(self.modem)
        self.driver = IridiumSbd(PROFILE)
        self.now = T0
        self.rings = 0

    def run(self, start: Callable[[float], None]) -> Event | RemoteProtocolError:
        start(self.now)
        for _ in range(10_000):
            out = self.driver.data_to_send()
            if out:
                self.modem.feed(out, self.now)
            back = self.modem.read_output()
            if back:
                self.driver.receive_data(back, self.now)
            for event in drain(self.driver):
                if isinstance(event, RingAlert):
                    self.rings += 1
                else:
                    return event
            self.now += 0.05
            self.modem.tick(self.now)
            self.driver.tick(self.now)
        raise AssertionError("operation never ended")


def test_initialize_learns_the_imei_and_modem_state() -> None:
    bench = Bench()
    event = bench.run(bench.driver.initialize)
    assert event == Ready("300234010753370", 0, 0, 0, -1, 0, 0)
    assert bench.driver.imei == "300234010753370"
    assert bench.driver.echo is True
    assert bench.modem.settings.ring_alerts


def test_full_cycle_against_the_emulator() -> None:
    bench = Bench()
    d = bench.driver
    bench.run(d.initialize)
    assert bench.run(d.request_signal) == SignalQuality(5)
    assert bench.run(lambda now: d.write_message(b"catch\r\nOK\r\n", now)) == MessageWritten(11)
    bench.network.queue_mt(bench.modem.imei, b"\x00\r\nOK\r\n\xff", bench.now)
    assert bench.rings == 0  # not registered yet: no ring alert
    result = bench.run(d.start_session)
    assert result == SessionResult(0, 0, 1, 1, 8, 0)
    assert isinstance(result, SessionResult) and result.mo_success
    assert bench.run(d.read_message) == MessageReceived(b"\x00\r\nOK\r\n\xff", 1)
    assert bench.run(lambda now: d.clear_buffers(0, now)) == BuffersCleared(0)
    assert [m.payload for m in bench.network.mo_messages] == [b"catch\r\nOK\r\n"]
    bench.network.queue_mt(bench.modem.imei, b"ring me", bench.now)
    assert bench.run(d.request_status) == StatusReport(0, 1, 1, 1, 1, 0)
    assert bench.rings == 1
    assert bench.run(lambda now: d.start_session(now, answer_ring=True)) == SessionResult(0, 1, 1, 2, 7, 0)


def test_network_time_against_the_emulator() -> None:
    bench = Bench()
    bench.run(bench.driver.initialize)
    event = bench.run(bench.driver.request_network_time)
    assert isinstance(event, NetworkTime) and event.unix_seconds is not None
    assert abs(event.unix_seconds - bench.now) < 0.2


def test_network_time_is_read_in_the_era_closest_to_the_host_clock() -> None:
    """-MSSTM counts from the epoch of the era in force; the era-2 epoch on an era-3 count was 541.8 days off."""
    era3 = datetime(2025, 2, 14, 18, 14, 17, tzinfo=UTC).timestamp()
    era2 = datetime(2014, 5, 11, 14, 23, 55, tzinfo=UTC).timestamp()
    true_now = datetime(2026, 12, 7, 3, 0, tzinfo=UTC).timestamp()
    ticks = int((true_now - era3) / 0.09)
    assert era3 == IRIDIUM_EPOCH
    assert network_time_from_ticks(ticks, true_now + 3 * 86400) == pytest.approx(true_now, abs=0.1)
    assert network_time_from_ticks(ticks) == pytest.approx(true_now, abs=0.1)  # no hint: current era
    assert network_time_from_ticks(ticks, NETWORK_TIME_FLOOR - 1) == pytest.approx(true_now, abs=0.1)
    before = datetime(2025, 6, 1, tzinfo=UTC).timestamp()  # a modem logged before the re-epoch
    assert network_time_from_ticks(int((before - era2) / 0.09), before + 3600) == pytest.approx(
        before, abs=0.1
    )


@pytest.mark.parametrize("answer", [b"617b437", b"0617b437", b"617B437", b"1"])
def test_msstm_answer_without_leading_zeros_is_accepted(answer: bytes) -> None:
    d = IridiumSbd(load_profile("iridium-9603"))
    now = datetime(2026, 12, 7, tzinfo=UTC).timestamp()
    d.request_network_time(now)
    d.data_to_send()
    d.receive_data(b"AT-MSSTM\r\r\n-MSSTM: " + answer + b"\r\n\r\nOK\r\n", now)
    event = d.next_event()
    assert isinstance(event, NetworkTime)
    assert event.unix_seconds == pytest.approx(network_time_from_ticks(int(answer, 16), now))


# -- transcripts --------------------------------------------------------------------------------


def test_csq_with_echo() -> None:
    d = echoing_driver()
    d.request_signal(T0)
    assert d.data_to_send() == b"AT+CSQ\r"
    assert feed(d, b"AT+CSQ\r\r\n+CSQ:3\r\n\r\nOK\r\n") == [SignalQuality(3)]
    assert not d.busy


def test_echo_off_and_numeric_mode() -> None:
    d = IridiumSbd(PROFILE)
    d.request_signal(T0)
    assert feed(d, b"+CSQ:2\r\n0\r") == [SignalQuality(2)]
    d.clear_buffers(1, T0)
    assert feed(d, b"0\r\n", b"0\r") == [BuffersCleared(1)]
    d.start_session(T0)
    assert feed(d, b"+SBDIX:0,4,0,0,0,0\r\n0\r") == [SessionResult(0, 4, 0, 0, 0, 0)]


def test_ring_alerts_are_filtered_from_inside_responses() -> None:
    d = echoing_driver()
    d.request_signal(T0)
    events = feed(d, RING + b"AT+CSQ\r" + RING + b"\r\n+CSQ:4\r\n" + RING + b"\r\nOK\r\n" + RING)
    assert events == [RingAlert(), RingAlert(), RingAlert(), SignalQuality(4), RingAlert()]


def test_numeric_ring_code_is_a_ring_alert() -> None:
    d = echoing_driver()
    assert feed(d, b"126\r") == [RingAlert()]


def test_stale_ok_before_the_echo_is_ignored() -> None:
    d = echoing_driver()
    d.start_session(T0)
    events = feed(d, b"\r\nOK\r\n\r\n0\r\nAT+SBDIX\r\r\n+SBDIX: 32, 3, 2, 0, 0, 0\r\n\r\nOK\r\n")
    assert events == [SessionResult(32, 3, 2, 0, 0, 0)]
    assert isinstance(events[0], SessionResult) and not events[0].mo_success


def test_sbdixa_answer_with_and_without_spaces() -> None:
    d = echoing_driver()
    d.start_session(T0, answer_ring=True, location="5212.483,-00007.350")
    assert d.data_to_send() == b"AT+SBDIXA=5212.483,-00007.350\r"
    events = feed(d, b"AT+SBDIXA=5212.483,-00007.350\r\r\n+SBDIXA: 1,65535 , 1,9,3,  2\r\n\r\nOK\r\n")
    assert events == [SessionResult(1, 65535, 1, 9, 3, 2)]


def test_sbdwb_handshake_sends_payload_and_checksum_after_ready() -> None:
    d = echoing_driver()
    d.write_message(b"hello", T0)
    assert d.data_to_send() == b"AT+SBDWB=5\r"
    assert feed(d, b"AT+SBDWB=5\r\r\nREA") == []
    assert d.data_to_send() == b""
    assert feed(d, b"DY\r\n") == []
    assert d.data_to_send() == bytes.fromhex("68656c6c6f0214")
    assert feed(d, b"\r\n0\r\n\r\nOK\r\n") == [MessageWritten(5)]


def test_sbdwb_result_1_ends_the_write_without_waiting_for_ok() -> None:
    d = echoing_driver()
    d.write_message(b"hello", T0)
    assert feed(d, b"AT+SBDWB=5\r\r\nREADY\r\n", b"\r\n1\r\n") == [WriteFailed(1)]
    assert not d.busy


@pytest.mark.parametrize("code", [2, 3])
def test_sbdwb_failure_codes_then_ok(code: int) -> None:
    d = echoing_driver()
    d.write_message(b"hello", T0)
    if code == 3:
        events = feed(d, b"AT+SBDWB=5\r\r\n3\r\n\r\nOK\r\n")
    else:
        events = feed(d, b"AT+SBDWB=5\r\r\nREADY\r\n\r\n2\r\n\r\nOK\r\n")
    assert events == [WriteFailed(code)]


def test_sbdwb_numeric_mode() -> None:
    d = IridiumSbd(PROFILE)
    d.write_message(b"hello", T0)
    assert feed(d, b"READY\r\n", b"0\r\n0\r") == [MessageWritten(5)]


def test_sbdrb_reads_by_byte_count() -> None:
    d = echoing_driver()
    d.read_message(T0)
    payload = b"\r\nOK\r\nSBDRING\r\nERROR\r\n"
    assert feed(d, b"AT+SBDRB\r" + block(payload) + b"\r\nOK\r\n") == [MessageReceived(payload, -1)]


def test_sbdrb_vector() -> None:
    d = echoing_driver()
    d.read_message(T0)
    assert feed(d, b"AT+SBDRB\r" + bytes.fromhex("000568656c6c6f0214") + b"\r\nOK\r\n") == [
        MessageReceived(b"hello", -1)
    ]


def test_sbdrb_ring_before_echo_and_before_block() -> None:
    d = echoing_driver()
    d.read_message(T0)
    events = feed(d, RING + b"AT+SBDRB\r" + RING + block(b"abc") + RING + b"\r\nOK\r\n")
    assert events == [RingAlert(), RingAlert(), RingAlert(), MessageReceived(b"abc", -1)]


def test_sbdrb_checksum_mismatch_is_a_remote_protocol_error_and_the_driver_recovers() -> None:
    d = echoing_driver()
    d.read_message(T0)
    d.receive_data(b"AT+SBDRB\r\x00\x03abc\x00\x00\r\nOK\r\n", T0)
    with pytest.raises(RemoteProtocolError, match="checksum"):
        d.next_event()
    assert not d.busy
    d.request_signal(T0)
    assert feed(d, b"AT+CSQ\r\r\n+CSQ:1\r\n\r\nOK\r\n") == [SignalQuality(1)]


def test_sbdrb_length_beyond_the_mt_limit_is_a_remote_protocol_error() -> None:
    d = echoing_driver()
    d.read_message(T0)
    too_long = (PROFILE.limits.mt_max_bytes + 1).to_bytes(2, "big")
    events = feed(d, b"AT+SBDRB\r" + too_long + b"xxxx")
    assert len(events) == 1 and isinstance(events[0], RemoteProtocolError)


def test_session_result_remembers_mtmsn_for_the_read() -> None:
    d = echoing_driver()
    d.start_session(T0)
    feed(d, b"AT+SBDIX\r\r\n+SBDIX: 0, 5, 1, 77, 2, 0\r\n\r\nOK\r\n")
    d.read_message(T0)
    assert feed(d, b"AT+SBDRB\r" + block(b"hi") + b"\r\nOK\r\n") == [MessageReceived(b"hi", 77)]


def test_msstm_without_service_is_none() -> None:
    d = echoing_driver()
    d.request_network_time(T0)
    assert feed(d, b"AT-MSSTM\r\r\n-MSSTM: no network service\r\n\r\nOK\r\n") == [NetworkTime(None)]


def test_error_answer_is_a_command_error() -> None:
    d = echoing_driver()
    d.start_session(T0)
    assert feed(d, b"AT+SBDIX\r\r\nERROR\r\n") == [CommandError("AT+SBDIX")]


def test_sbdd_failure_digit_is_a_command_error() -> None:
    d = echoing_driver()
    d.clear_buffers(2, T0)
    assert feed(d, b"AT+SBDD2\r\r\n1\r\n\r\nOK\r\n") == [CommandError("AT+SBDD2")]


def test_missing_information_line_is_a_remote_protocol_error() -> None:
    d = echoing_driver()
    d.request_signal(T0)
    events = feed(d, b"AT+CSQ\r\r\nOK\r\n")
    assert len(events) == 1 and isinstance(events[0], RemoteProtocolError)


def test_timeouts_come_from_the_profile() -> None:
    d = echoing_driver()
    d.start_session(T0)
    assert d.next_wakeup() == T0 + PROFILE.timings.session_timeout_s
    d.tick(T0 + PROFILE.timings.session_timeout_s - 1)
    assert drain(d) == []
    d.tick(T0 + PROFILE.timings.session_timeout_s)
    assert drain(d) == [Timeout("AT+SBDIX")]
    d.request_signal(T0)
    assert d.next_wakeup() == T0 + PROFILE.timings.signal_timeout_s
    d.tick(T0 + 1000)
    d.write_message(b"x", T0)
    assert d.next_wakeup() == T0 + PROFILE.timings.command_timeout_s


def test_initialize_retries_at_after_an_error_from_a_stale_line() -> None:
    d = IridiumSbd(PROFILE)
    d.initialize(T0)
    assert d.data_to_send() == b"AT\r"
    feed(d, b"\r\nERROR\r\n")
    assert d.data_to_send() == b"AT\r"
    feed(d, b"AT\r\r\nOK\r\n")
    assert d.data_to_send() == b"ATE1\r"


def test_initialize_uses_rts_cts_when_the_profile_says_so() -> None:
    d = IridiumSbd(load_profile("iridium-9523"))
    d.initialize(T0)
    sent = d.data_to_send()
    for reply in (b"AT\r\r\nOK\r\n", b"ATE1\r\r\nOK\r\n", b"ATV1\r\r\nOK\r\n"):
        feed(d, reply)
        sent += d.data_to_send()
    assert sent == b"AT\rATE1\rATV1\rAT&K3\r"


def test_local_misuse_is_a_local_protocol_error() -> None:
    d = echoing_driver()
    with pytest.raises(LocalProtocolError):
        d.write_message(b"", T0)
    with pytest.raises(LocalProtocolError):
        d.write_message(b"x" * (PROFILE.limits.mo_max_bytes + 1), T0)
    with pytest.raises(LocalProtocolError):
        d.clear_buffers(3, T0)
    with pytest.raises(LocalProtocolError):
        d.start_session(T0, location="here")
    d.request_signal(T0)
    with pytest.raises(LocalProtocolError):
        d.start_session(T0)


def test_endless_garbage_without_line_ends_stays_bounded() -> None:
    d = echoing_driver()
    for _ in range(1000):
        d.receive_data(b"x" * 100, T0)
    assert len(d._buf) <= 2048


# -- property tests -----------------------------------------------------------------------------

OPERATIONS: dict[str, Callable[[IridiumSbd, float], None]] = {
    "initialize": lambda d, now: d.initialize(now),
    "signal": lambda d, now: d.request_signal(now),
    "time": lambda d, now: d.request_network_time(now),
    "status": lambda d, now: d.request_status(now),
    "write": lambda d, now: d.write_message(b"hello", now),
    "clear": lambda d, now: d.clear_buffers(2, now),
    "session": lambda d, now: d.start_session(now),
    "read": lambda d, now: d.read_message(now),
}

VALID_ANSWERS = [
    b"AT+CSQ\r\r\n+CSQ:5\r\n\r\nOK\r\n",
    b"AT+SBDIX\r\r\n+SBDIX: 0, 1, 1, 2, 3, 0\r\n\r\nOK\r\n",
    b"AT+SBDRB\r" + block(b"\r\nOK\r\n") + b"\r\nOK\r\n",
    b"AT+SBDWB=5\r\r\nREADY\r\n\r\n0\r\n\r\nOK\r\n",
    b"AT+SBDWB=5\r\r\nREADY\r\n\r\n1\r\n",
    b"AT+SBDD2\r\r\n0\r\n\r\nOK\r\n",
    b"AT-MSSTM\r\r\n-MSSTM: 0a1b2c3d\r\n\r\nOK\r\n",
    b"AT+SBDSX\r\r\n+SBDSX: 0, 1, 0, -1, 0, 0\r\n\r\nOK\r\n",
    b"AT+CGSN\r\r\n300234010753370\r\n\r\nOK\r\n",
    b"\r\nERROR\r\n",
    b"4\r",
    b"0\r",
    RING,
    b"126\r",
]


@settings(max_examples=400, deadline=None)
@given(
    ops=st.lists(st.sampled_from(sorted(OPERATIONS)), min_size=1, max_size=6),
    stream=st.lists(st.one_of(st.binary(max_size=40), st.sampled_from(VALID_ANSWERS)), max_size=25),
    cuts=st.lists(st.integers(min_value=1, max_value=16), min_size=1, max_size=8),
    echo=st.sampled_from([None, True]),
)
def test_any_bytes_give_only_typed_events_or_errors(
    ops: list[str], stream: list[bytes], cuts: list[int], echo: bool | None
) -> None:
    d = IridiumSbd(PROFILE)
    d.echo = echo
    data = b"".join(stream)
    now = T0
    outcomes = 0
    for op in ops:
        OPERATIONS[op](d, now)
        pos = 0
        i = 0
        while pos < len(data):
            step = cuts[i % len(cuts)]
            d.receive_data(data[pos : pos + step], now)
            pos += step
            i += 1
            d.data_to_send()
        for item in drain(d):
            assert isinstance(item, Event | RemoteProtocolError)
            if not isinstance(item, RingAlert):
                outcomes += 1
        now += 1000.0  # past every deadline: the operation must end
        d.tick(now)
        for item in drain(d):
            assert isinstance(item, Event | RemoteProtocolError)
            if not isinstance(item, RingAlert):
                outcomes += 1
        assert not d.busy
    assert outcomes == len(ops)  # exactly one outcome per operation


NOISE_LINE = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=30
).filter(
    lambda s: (
        not s.strip().isdigit()
        and s.strip().upper() not in {"OK", "ERROR", "READY", "SBDRING"}
        and not s.strip().startswith(("+", "-", "AT", "at", "At", "aT"))
        and s.strip() != ""
    )
)


@settings(max_examples=300, deadline=None)
@given(
    noise=st.lists(
        st.one_of(NOISE_LINE.map(lambda s: b"\r\n" + s.encode() + b"\r\n"), st.just(RING)), max_size=4
    ),
    where=st.lists(st.integers(min_value=0, max_value=3), max_size=4),
    payload=st.binary(min_size=0, max_size=PROFILE.limits.mt_max_bytes),
    cut=st.integers(min_value=1, max_value=50),
)
def test_noise_lines_between_answers_do_not_change_the_result(
    noise: list[bytes], where: list[int], payload: bytes, cut: int
) -> None:
    d = echoing_driver()
    d.start_session(T0)
    parts = [b"AT+SBDIX\r", b"\r\n+SBDIX: 0, 1, 1, 9, %d, 0\r\n" % len(payload), b"\r\nOK\r\n"]
    for line, w in zip(noise, where, strict=False):
        parts.insert(w, line)
    data = b"".join(parts)
    events: list[Event | RemoteProtocolError] = []
    for i in range(0, len(data), cut):
        events += feed(d, data[i : i + cut])
    results = [e for e in events if not isinstance(e, RingAlert)]
    assert results == [SessionResult(0, 1, 1, 9, len(payload), 0)]

    d.read_message(T0)
    answer = b"AT+SBDRB\r" + block(payload) + b"\r\nOK\r\n"
    events = []
    for i in range(0, len(answer), cut):
        events += feed(d, answer[i : i + cut])
    assert events == [MessageReceived(payload, 9)]


@settings(max_examples=300, deadline=None)
@given(payload=st.binary(max_size=PROFILE.limits.mt_max_bytes), echo=st.booleans(), verbose=st.booleans())
def test_sbdrb_payloads_read_back_exactly(payload: bytes, echo: bool, verbose: bool) -> None:
    d = IridiumSbd(PROFILE)
    d.echo = echo or None
    d.read_message(T0)
    answer = (b"AT+SBDRB\r" if echo else b"") + block(payload) + (b"\r\nOK\r\n" if verbose else b"0\r")
    assert feed(d, answer) == [MessageReceived(payload, -1)]


def test_initialize_after_a_write_timeout_first_ends_a_pending_data_transfer() -> None:
    bench = Bench()
    d = bench.driver
    bench.run(d.initialize)
    d.write_message(b"hello", bench.now)
    bench.modem.feed(d.data_to_send(), bench.now)  # the modem says READY, but the payload gets lost
    assert bench.modem.read_output() == b"AT+SBDWB=5\r\r\nREADY\r\n"
    d.receive_data(b"AT+SBDWB=5\r\r\nREA", bench.now)  # ... and so does half the READY
    bench.now += PROFILE.timings.command_timeout_s
    d.tick(bench.now)
    assert drain(d) == [Timeout("AT+SBDWB=5")]
    assert isinstance(bench.run(d.initialize), Ready)
    assert bench.run(d.request_signal) == SignalQuality(5)
