"""Byte-exact behaviour of the Iridium SBD modem emulator (reference iridium.md §1)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_profiles import load_profile
from simulators.iridium_modem import (
    DEFAULT_IMEI,
    IRIDIUM_EPOCH_ERA2,
    IridiumModemEmulator,
    LoopbackNetwork,
    Mode,
)
from simulators.iridium_queries import ERA3_BROADCAST_FROM, IRIDIUM_EPOCH_ERA3
from simulators.link_model import LinkModel

T0 = 1_735_689_600.0  # 2025-01-01T00:00:00Z
PROFILE = load_profile("iridium-9603")
SESSION_S = LINK_SESSION_S = 0.5  # the "perfect" link profile's session duration


def make(
    profile: str = "iridium-9603", link: str = "perfect", **kwargs: object
) -> tuple[IridiumModemEmulator, LoopbackNetwork]:
    network = LoopbackNetwork()
    modem = IridiumModemEmulator(load_profile(profile), LinkModel(random.Random(1), link), network, **kwargs)
    network.attach(modem)
    return modem, network


def say(modem: IridiumModemEmulator, data: bytes, now: float = T0) -> bytes:
    modem.feed(data, now)
    return modem.read_output()


def session(modem: IridiumModemEmulator, command: bytes = b"AT+SBDIX\r", now: float = T0) -> bytes:
    out = say(modem, command, now)
    modem.tick(now + SESSION_S)
    return out + modem.read_output()


# -- framing ------------------------------------------------------------------------------------


def test_csq_with_echo_and_verbose_is_byte_exact() -> None:
    modem, _ = make()
    assert say(modem, b"AT+CSQ\r") == b"AT+CSQ\r\r\n+CSQ:5\r\n\r\nOK\r\n"


def test_at_echoes_the_carriage_return_but_no_line_feed() -> None:
    modem, _ = make()
    assert say(modem, b"AT\r") == b"AT\r\r\nOK\r\n"


def test_echo_off_sends_only_the_response() -> None:
    modem, _ = make()
    assert say(modem, b"ATE0\r") == b"ATE0\r\r\nOK\r\n"
    assert say(modem, b"AT+CSQF\r") == b"\r\n+CSQF:5\r\n\r\nOK\r\n"
    assert say(modem, b"ATE1\r") == b"\r\nOK\r\n"
    assert say(modem, b"AT\r") == b"AT\r\r\nOK\r\n"


def test_numeric_mode_uses_digit_result_codes() -> None:
    modem, _ = make()
    assert say(modem, b"ATV0\r") == b"ATV0\r0\r"
    assert say(modem, b"AT+CSQ\r") == b"AT+CSQ\r+CSQ:5\r\n0\r"
    assert say(modem, b"AT+NOPE\r") == b"AT+NOPE\r4\r"
    assert say(modem, b"ATV1\r") == b"ATV1\r\r\nOK\r\n"


def test_unknown_commands_answer_error() -> None:
    modem, _ = make()
    for command in (b"AT+FOO\r", b"ATX9\r", b"AT+SBDD7\r", b"AT+SBDMTA=5\r", b"AT&K2\r"):
        assert say(modem, command) == command + b"\r\nERROR\r\n"


def test_lines_without_at_prefix_are_ignored() -> None:
    modem, _ = make()
    assert say(modem, b"hello\r") == b"hello\r"
    assert say(modem, b"\r") == b"\r"


def test_lowercase_and_chained_basic_commands() -> None:
    modem, _ = make()
    assert say(modem, b"at+csq\r") == b"at+csq\r\r\n+CSQ:5\r\n\r\nOK\r\n"
    assert say(modem, b"ATE1V1&K0&D0\r") == b"ATE1V1&K0&D0\r\r\nOK\r\n"


def test_oversize_line_is_bounded_and_answers_error() -> None:
    modem, _ = make()
    out = say(modem, b"AT+SBDWT=" + b"x" * 5000 + b"\r")
    assert out.endswith(b"\r\nERROR\r\n")
    assert len(out) < 300
    assert say(modem, b"AT\r") == b"AT\r\r\nOK\r\n"


def test_quiet_mode_suppresses_result_codes() -> None:
    modem, _ = make()
    assert say(modem, b"ATQ1\r") == b"ATQ1\r"
    assert say(modem, b"AT+CSQ\r") == b"AT+CSQ\r\r\n+CSQ:5\r\n"
    assert say(modem, b"ATQ0\r") == b"ATQ0\r\r\nOK\r\n"


# -- identity and time --------------------------------------------------------------------------


def test_identity_commands() -> None:
    modem, _ = make()
    assert say(modem, b"AT+CGSN\r") == b"AT+CGSN\r\r\n" + DEFAULT_IMEI.encode() + b"\r\n\r\nOK\r\n"
    assert say(modem, b"AT+GSN\r") == b"AT+GSN\r\r\n" + DEFAULT_IMEI.encode() + b"\r\n\r\nOK\r\n"
    assert say(modem, b"AT+CGMI\r") == b"AT+CGMI\r\r\nIridium\r\n\r\nOK\r\n"
    assert say(modem, b"AT+CGMM\r") == b"AT+CGMM\r\r\nIRIDIUM 9600 Family SBD Transceiver\r\n\r\nOK\r\n"


def test_cgmr_answers_seven_framed_lines() -> None:
    modem, _ = make()
    out = say(modem, b"AT+CGMR\r")
    assert out.startswith(b"AT+CGMR\r\r\nCall Processor Version: ")
    assert out.endswith(b"\r\n\r\nOK\r\n")
    body = out[len(b"AT+CGMR\r") : -len(b"\r\nOK\r\n")]
    lines = body.split(b"\r\n\r\n")
    assert len(lines) == 7
    assert lines[0].startswith(b"\r\nCall Processor Version: TA")
    assert lines[-1].startswith(b"BOOT Version: ")


def test_msstm_counts_90ms_ticks_from_the_era2_epoch_before_the_re_epoch() -> None:
    modem, _ = make()
    now = IRIDIUM_EPOCH_ERA2 + 0x12345678 * 0.09 + 0.01
    assert now < ERA3_BROADCAST_FROM
    assert say(modem, b"AT-MSSTM\r", now) == b"AT-MSSTM\r\r\n-MSSTM: 12345678\r\n\r\nOK\r\n"


def test_msstm_counts_from_the_era3_epoch_after_the_re_epoch() -> None:
    modem, _ = make()
    now = IRIDIUM_EPOCH_ERA3 + 0x1617B437 * 0.09 + 0.01
    assert now >= ERA3_BROADCAST_FROM
    assert say(modem, b"AT-MSSTM\r", now) == b"AT-MSSTM\r\r\n-MSSTM: 1617b437\r\n\r\nOK\r\n"


def test_msstm_without_signal_reports_no_network_service() -> None:
    modem, _ = make()
    modem.link.forced_signal = 0
    assert say(modem, b"AT-MSSTM\r") == b"AT-MSSTM\r\r\n-MSSTM: no network service\r\n\r\nOK\r\n"
    assert say(modem, b"AT+CSQ\r") == b"AT+CSQ\r\r\n+CSQ:0\r\n\r\nOK\r\n"


# -- MO buffer ----------------------------------------------------------------------------------


def test_sbdwb_hello_vector() -> None:
    modem, _ = make()
    assert say(modem, b"AT+SBDWB=5\r") == b"AT+SBDWB=5\r\r\nREADY\r\n"
    assert modem.mode is Mode.BINARY
    assert say(modem, bytes.fromhex("68656c6c6f0214")) == b"\r\n0\r\n\r\nOK\r\n"
    assert modem.mo_buffer == b"hello"


def test_sbdwb_payload_is_not_echoed_and_may_contain_anything() -> None:
    modem, _ = make()
    payload = b"\r\nOK\r\nAT+SBDIX\r\x00\xff"
    say(modem, b"AT+SBDWB=%d\r" % len(payload))
    ck = (sum(payload) & 0xFFFF).to_bytes(2, "big")
    assert say(modem, payload + ck) == b"\r\n0\r\n\r\nOK\r\n"
    assert modem.mo_buffer == payload


def test_sbdwb_checksum_mismatch_answers_2() -> None:
    modem, _ = make()
    say(modem, b"AT+SBDWB=5\r")
    assert say(modem, b"hello\x00\x00") == b"\r\n2\r\n\r\nOK\r\n"
    assert modem.mo_buffer == b""


@pytest.mark.parametrize(
    ("profile", "size", "accepted"),
    [
        ("iridium-9603", 0, False),
        ("iridium-9603", 1, True),
        ("iridium-9603", PROFILE.limits.mo_max_bytes, True),
        ("iridium-9603", PROFILE.limits.mo_max_bytes + 1, False),
        ("iridium-9602", load_profile("iridium-9602").limits.mo_max_bytes + 1, False),
        ("iridium-9523", load_profile("iridium-9523").limits.mo_max_bytes, True),
        ("iridium-9523", load_profile("iridium-9523").limits.mo_max_bytes + 1, False),
    ],
)
def test_sbdwb_size_limits_come_from_the_profile(profile: str, size: int, accepted: bool) -> None:
    modem, _ = make(profile)
    command = b"AT+SBDWB=%d\r" % size
    expected = b"\r\nREADY\r\n" if accepted else b"\r\n3\r\n\r\nOK\r\n"
    assert say(modem, command) == command + expected


def test_sbdwb_timeout_answers_1_without_ok() -> None:
    modem, _ = make()
    say(modem, b"AT+SBDWB=5\r")
    say(modem, b"hel")
    assert modem.next_wakeup() == T0 + PROFILE.timings.write_data_timeout_s
    modem.tick(T0 + PROFILE.timings.write_data_timeout_s - 0.1)
    assert modem.read_output() == b""
    modem.tick(T0 + PROFILE.timings.write_data_timeout_s)
    assert modem.read_output() == b"\r\n1\r\n"
    assert say(modem, b"AT\r") == b"AT\r\r\nOK\r\n"


def test_sbdwb_without_a_number_is_an_error() -> None:
    modem, _ = make()
    assert say(modem, b"AT+SBDWB=abc\r") == b"AT+SBDWB=abc\r\r\nERROR\r\n"
    assert say(modem, b"AT+SBDWB\r") == b"AT+SBDWB\r\r\nERROR\r\n"


def test_sbdwt_both_forms() -> None:
    modem, _ = make()
    assert say(modem, b"AT+SBDWT=Hello World\r") == b"AT+SBDWT=Hello World\r\r\nOK\r\n"
    assert modem.mo_buffer == b"Hello World"
    assert say(modem, b"AT+SBDWT\r") == b"AT+SBDWT\r\r\nREADY\r\n"
    assert say(modem, b"catch 42 kg\r") == b"\r\n0\r\n\r\nOK\r\n"
    assert modem.mo_buffer == b"catch 42 kg"


def test_sbdwt_text_too_long_for_the_command_line_is_an_error() -> None:
    modem, _ = make()
    text = b"x" * (PROFILE.limits.text_command_max_chars + 1)
    assert say(modem, b"AT+SBDWT=" + text + b"\r").endswith(b"\r\nERROR\r\n")


def test_sbdd_clears_buffers_and_sbdc_resets_momsn() -> None:
    modem, _ = make(momsn=41)
    say(modem, b"AT+SBDWT=abc\r")
    say(modem, b"AT+SBDTC\r")
    assert say(modem, b"AT+SBDS\r") == b"AT+SBDS\r\r\n+SBDS: 1, 41, 1, 0\r\n\r\nOK\r\n"
    assert say(modem, b"AT+SBDD0\r") == b"AT+SBDD0\r\r\n0\r\n\r\nOK\r\n"
    assert modem.mo_buffer == b"" and modem.mt_buffer == b"abc"
    assert say(modem, b"AT+SBDD2\r") == b"AT+SBDD2\r\r\n0\r\n\r\nOK\r\n"
    assert say(modem, b"AT+SBDS\r") == b"AT+SBDS\r\r\n+SBDS: 0, 41, 0, -1\r\n\r\nOK\r\n"
    assert say(modem, b"AT+SBDC\r") == b"AT+SBDC\r\r\n0\r\n\r\nOK\r\n"
    assert modem.momsn == 0


def test_sbdtc_copies_mo_to_mt() -> None:
    modem, _ = make()
    say(modem, b"AT+SBDWT=abc\r")
    assert say(modem, b"AT+SBDTC\r") == (
        b"AT+SBDTC\r\r\nSBDTC: Outbound SBD Copied to Inbound SBD: size = 3\r\n\r\nOK\r\n"
    )
    assert modem.mt_buffer == b"abc"


# -- MT buffer ----------------------------------------------------------------------------------


def test_sbdrb_vector_follows_the_echo_immediately() -> None:
    modem, network = make()
    network.queue_mt(modem.imei, b"hello", T0)
    session(modem)
    assert say(modem, b"AT+SBDRB\r") == b"AT+SBDRB\r" + bytes.fromhex("000568656c6c6f0214") + b"\r\nOK\r\n"


def test_sbdrb_with_empty_buffer_gives_zero_length_and_checksum() -> None:
    modem, _ = make()
    assert say(modem, b"AT+SBDRB\r") == b"AT+SBDRB\r\x00\x00\x00\x00\r\nOK\r\n"


def test_sbdrb_numeric_mode_ends_with_0_cr() -> None:
    modem, _ = make()
    say(modem, b"ATV0\r")
    assert say(modem, b"AT+SBDRB\r") == b"AT+SBDRB\r\x00\x00\x00\x000\r"


def test_sbdrt_uses_the_real_modem_framing() -> None:
    modem, network = make()
    network.queue_mt(modem.imei, b"Hi crew", T0)
    session(modem)
    assert say(modem, b"AT+SBDRT\r") == b"AT+SBDRT\r\r\n+SBDRT:\r\nHi crew\r\nOK\r\n"


# -- sessions -----------------------------------------------------------------------------------


def test_sbdix_session_delivers_mo_and_answers_after_its_duration() -> None:
    modem, network = make()
    say(modem, b"AT+SBDWT=abc\r")
    assert say(modem, b"AT+SBDIX\r") == b"AT+SBDIX\r"
    assert modem.mode is Mode.SESSION
    assert modem.next_wakeup() == T0 + SESSION_S
    assert say(modem, b"AT+CSQ\r", T0 + 0.1) == b""  # DTE characters are ignored during a session
    modem.tick(T0 + SESSION_S)
    assert modem.read_output() == b"\r\n+SBDIX: 0, 0, 0, 0, 0, 0\r\n\r\nOK\r\n"
    assert [(m.payload, m.momsn) for m in network.mo_messages] == [(b"abc", 0)]
    assert modem.mo_buffer == b"abc"  # a successful send does not clear the MO buffer
    assert say(modem, b"AT\r", T0 + 1) == b"AT\r\r\nOK\r\n"


def test_momsn_increments_only_on_success() -> None:
    modem, network = make(momsn=7)
    modem.link.forced_signal = 0
    assert session(modem).endswith(b"\r\n+SBDIX: 32, 7, 2, 0, 0, 0\r\n\r\nOK\r\n")
    assert modem.momsn == 7 and network.mo_messages == []
    modem.link.forced_signal = None
    assert session(modem).endswith(b"\r\n+SBDIX: 0, 7, 0, 0, 0, 0\r\n\r\nOK\r\n")
    assert session(modem).endswith(b"\r\n+SBDIX: 0, 8, 0, 0, 0, 0\r\n\r\nOK\r\n")


def test_momsn_wraps_at_65535() -> None:
    modem, _ = make(momsn=0xFFFF)
    session(modem)
    assert modem.momsn == 0


def test_momsn_and_registration_survive_a_power_cycle() -> None:
    modem, _ = make()
    session(modem)
    say(modem, b"AT+SBDWT=abc\r")
    modem.power_cycle()
    assert modem.momsn == 1 and modem.mo_buffer == b"" and modem.registered  # registration is in NVM


def test_mt_delivery_and_queued_count_come_from_the_network() -> None:
    modem, network = make()
    for payload in (b"one", b"two", b"three"):
        network.queue_mt(modem.imei, payload, T0, ring=False)
    assert session(modem).endswith(b"\r\n+SBDIX: 0, 0, 1, 1, 3, 2\r\n\r\nOK\r\n")
    assert modem.mt_buffer == b"one"
    assert session(modem).endswith(b"\r\n+SBDIX: 0, 1, 1, 2, 3, 1\r\n\r\nOK\r\n")
    assert modem.mt_buffer == b"two"


def test_mt_buffer_is_cleared_when_the_next_session_starts() -> None:
    modem, network = make()
    network.queue_mt(modem.imei, b"unread", T0, ring=False)
    session(modem)
    assert modem.mt_buffer == b"unread"
    say(modem, b"AT+SBDIX\r")
    assert modem.mt_buffer is None
    modem.tick(T0 + SESSION_S)
    modem.read_output()
    assert say(modem, b"AT+SBDRB\r") == b"AT+SBDRB\r\x00\x00\x00\x00\r\nOK\r\n"


def test_sbdixa_and_location_forms() -> None:
    modem, _ = make()
    assert session(modem, b"AT+SBDIXA\r").endswith(b"\r\n+SBDIXA: 0, 0, 0, 0, 0, 0\r\n\r\nOK\r\n")
    out = session(modem, b"AT+SBDIX=5212.483,-00007.350\r")
    assert out.endswith(b"\r\n+SBDIX: 0, 1, 0, 0, 0, 0\r\n\r\nOK\r\n")
    assert say(modem, b"AT+SBDIX=north\r") == b"AT+SBDIX=north\r\r\nERROR\r\n"


def test_radio_off_fails_sessions_with_34() -> None:
    modem, _ = make()
    say(modem, b"AT*R0\r")
    assert say(modem, b"AT+SBDIX\r") == b"AT+SBDIX\r\r\n+SBDIX: 34, 0, 2, 0, 0, 0\r\n\r\nOK\r\n"


def test_sbdst_local_session_timeout_gives_17() -> None:
    modem, _ = make(link="open-sea")
    say(modem, b"AT+SBDST=1\r")
    say(modem, b"AT+SBDIX\r")
    modem.tick(T0 + 1)
    assert modem.read_output() == b"\r\n+SBDIX: 17, 0, 2, 0, 0, 0\r\n\r\nOK\r\n"


def test_unknown_imei_at_the_gateway_is_access_denied() -> None:
    class Refusing:
        def session(self, imei: str, mo_payload: bytes | None, momsn: int, now: float) -> object:
            raise LookupError(imei)

    modem = IridiumModemEmulator(PROFILE, LinkModel(random.Random(1), "perfect"), Refusing())  # type: ignore[arg-type]
    assert session(modem).endswith(b"\r\n+SBDIX: 15, 0, 2, 0, 0, 0\r\n\r\nOK\r\n")


# -- ring alerts and indicators -----------------------------------------------------------------


def test_ring_alert_needs_sbdmta_and_registration() -> None:
    modem, network = make()
    network.queue_mt(modem.imei, b"x", T0)
    assert modem.read_output() == b""  # not registered: the gateway cannot ring
    session(modem)  # registers (and fetches the MT)
    network.queue_mt(modem.imei, b"y", T0)
    assert modem.read_output() == b""  # SBDMTA is off by default on this profile
    assert say(modem, b"AT+SBDSX\r") == b"AT+SBDSX\r\r\n+SBDSX: 0, 1, 1, 1, 1, 0\r\n\r\nOK\r\n"
    say(modem, b"AT+SBDMTA=1\r")
    assert say(modem, b"AT+SBDMTA?\r") == b"AT+SBDMTA?\r\r\n+SBDMTA:1\r\n\r\nOK\r\n"
    network.queue_mt(modem.imei, b"z", T0)
    assert modem.read_output() == b"\r\nSBDRING\r\n"
    assert say(modem, b"AT+CRIS\r") == b"AT+CRIS\r\r\n+CRIS:0,1\r\n\r\nOK\r\n"


def test_ring_alert_numeric_code() -> None:
    modem, network = make(registered=True)
    say(modem, b"AT+SBDMTA=1\r")
    say(modem, b"ATV0\r")
    network.queue_mt(modem.imei, b"x", T0)
    assert modem.read_output() == b"126\r"


def test_ring_during_a_session_is_written_after_the_session() -> None:
    modem, network = make(registered=True)
    say(modem, b"AT+SBDMTA=1\r")
    say(modem, b"AT+SBDIX\r")
    network.queue_mt(modem.imei, b"x", T0 + 0.1)
    assert modem.read_output() == b""
    modem.tick(T0 + SESSION_S)
    assert modem.read_output() == b"\r\n+SBDIX: 0, 0, 1, 1, 1, 0\r\n\r\nOK\r\n\r\nSBDRING\r\n"


def test_ring_during_a_binary_write_is_written_after_the_result() -> None:
    modem, network = make(registered=True)
    say(modem, b"AT+SBDMTA=1\r")
    say(modem, b"AT+SBDWB=5\r")
    network.queue_mt(modem.imei, b"x", T0)
    assert say(modem, b"hello\x02\x14") == b"\r\n0\r\n\r\nOK\r\n\r\nSBDRING\r\n"


def test_sbdreg_and_sbddet() -> None:
    modem, _ = make()
    assert say(modem, b"AT+SBDREG?\r") == b"AT+SBDREG?\r\r\n+SBDREG:0\r\n\r\nOK\r\n"
    assert say(modem, b"AT+SBDREG\r") == b"AT+SBDREG\r\r\n+SBDREG:2,0\r\n\r\nOK\r\n"
    assert modem.registered
    assert say(modem, b"AT+SBDDET\r") == b"AT+SBDDET\r\r\n+SBDDET:0,0\r\n\r\nOK\r\n"
    assert not modem.registered


def test_cier_reports_signal_changes() -> None:
    modem, _ = make()
    assert say(modem, b"AT+CIER=1,1,1\r") == b"AT+CIER=1,1,1\r\r\nOK\r\n\r\n+CIEV:0,5\r\n\r\n+CIEV:1,1\r\n"
    modem.link.forced_signal = 0
    modem.tick(T0 + 100)
    assert modem.read_output() == b"\r\n+CIEV:0,0\r\n\r\n+CIEV:1,0\r\n"


# -- robustness ---------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=30), st.sampled_from(["perfect", "storm"]))
def test_garbage_never_crashes_the_emulator(chunks: list[bytes], link: str) -> None:
    modem, network = make(link=link, registered=True)
    now = T0
    for i, chunk in enumerate(chunks):
        modem.feed(chunk, now)
        if i % 5 == 0:
            network.queue_mt(modem.imei, chunk[:10], now)
        now += 3.0
        modem.tick(now)
        assert len(modem.read_output()) < 8192
    modem.power_cycle()
    assert say(modem, b"AT\r", now) == b"AT\r\r\nOK\r\n"
