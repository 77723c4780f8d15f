"""The IDP modem emulator: byte-exact framing, CRC mode, queues and error reasons (reference inmarsat.md)."""

from __future__ import annotations

import base64
import random

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from firmware_profiles import load_profile
from simulators.fault_plan import FaultPlan, SessionFault
from simulators.idp_modem import (
    ERR_NAME_IN_USE,
    ERR_QUEUE_FULL,
    ERR_TOO_LONG,
    ERR_UNAVAILABLE,
    IdpLoopbackNetwork,
    IdpModemEmulator,
    crc16,
)
from simulators.link_model import MO_CONNECTION_LOST, LinkModel

PROFILE = load_profile("inmarsat-idp")
T0 = 1_735_689_600.0


class Modem:
    def __init__(self, link: str = "perfect", **kwargs: object) -> None:
        self.network = IdpLoopbackNetwork()
        self.emu = IdpModemEmulator(PROFILE, LinkModel(random.Random(1), link), self.network, **kwargs)  # type: ignore[arg-type]
        self.network.attach(self.emu)
        self.now = T0

    def tx(self, line: bytes) -> bytes:
        self.emu.feed(line, self.now)
        return self.emu.read_output()

    def wait(self, seconds: float) -> None:
        end = self.now + seconds
        while True:
            wake = self.emu.next_wakeup()
            if wake is None or wake > end:
                break
            self.now = max(self.now, wake)
            self.emu.tick(self.now)
        self.now = end
        self.emu.tick(self.now)


def test_crc_matches_the_documented_vectors() -> None:
    assert crc16(b"123456789") == 0x29B1
    assert crc16(b"AT") == 0x3983
    assert crc16(b"ATZ") == 0xDFC5
    assert crc16(b"AT%CRC=0") == 0xBBEB
    assert crc16(b"ATS80?") == 0xFD5E
    assert crc16(b"\r\nOK\r\n") == 0x86C5
    assert crc16(b"\r\nERROR\r\n") == 0x84D9


def test_documented_transcript_is_reproduced_byte_for_byte() -> None:
    m = Modem()
    assert m.tx(b"ATZ;E1;V1;Q0;%CRC=0\r") == b"ATZ;E1;V1;Q0;%CRC=0\r\r\nOK\r\n"
    assert m.tx(b"AT%CRC=1\r") == b"AT%CRC=1\r\r\nOK\r\n*86C5\r\n"
    assert m.tx(b"AT%BOGUS*311D\r") == b"AT%BOGUS*311D\r\r\nERROR\r\n*84D9\r\n"
    assert m.tx(b"ATS80?*FD5E\r") == b"ATS80?*FD5E\r\r\n101\r\n\r\nOK\r\n*C691\r\n"
    assert m.tx(b"AT%CRC=0*BBEB\r") == b"AT%CRC=0*BBEB\r\r\nOK\r\n"


def test_crc_mismatch_and_missing_crc_are_error_100() -> None:
    m = Modem()
    m.tx(b"AT%CRC=1\r")
    assert m.tx(b"ATZ\r") == b"ATZ\r\r\nERROR\r\n*84D9\r\n"
    assert b"\r\n100\r\n" in m.tx(b"ATS80?*FD5E\r")
    assert b"ERROR" in m.tx(b"AT*0000\r")
    # the documented resync: ATZ with its CRC reloads the stored configuration (CRC off)
    assert m.tx(b"ATZ*DFC5\r") == b"ATZ*DFC5\r\r\nOK\r\n"
    assert m.tx(b"AT\r") == b"AT\r\r\nOK\r\n"


def test_crc_suffix_while_crc_is_off_is_an_error_without_crc() -> None:
    m = Modem()
    assert m.tx(b"AT%CRC=0*BBEB\r") == b"AT%CRC=0*BBEB\r\r\nERROR\r\n"


def test_return_message_goes_ready_sending_complete_and_is_deleted_once_reported() -> None:
    m = Modem()
    assert m.tx(b'AT%MGRT="95610604",4,128,3,AWhlbGxv\r').endswith(b"\r\nOK\r\n")
    assert b'%MGRS: "95610604",00.01,4,128,5,7,0' in m.tx(b'AT%MGRS="95610604"\r')  # sending at once
    m.wait(5)
    assert m.tx(b'AT%MGRS="95610604"\r') == (
        b'AT%MGRS="95610604"\r\r\n%MGRS: "95610604",00.01,4,128,6,7,7\r\n\r\nOK\r\n'
    )
    assert m.tx(b'AT%MGRS="95610604"\r').endswith(b"\r\nERROR\r\n")
    assert f"\r\n{ERR_UNAVAILABLE}\r\n".encode() in m.tx(b"ATS80?\r")
    assert [r.raw for r in m.network.returns] == [b"\x80\x01hello"]


def test_sin_dot_min_form_and_text_and_hex_formats() -> None:
    m = Modem()
    m.tx(b'AT%MGRT="a",4,128.1,1,"Hello World!"\r')
    m.tx(b'AT%MGRT="b",4,130,2,0102FF\r')
    m.tx(b'AT%MGRT="c",4,131,1,"\\01A\\22"\r')
    m.wait(10)
    assert sorted(r.raw for r in m.network.returns) == sorted(
        [b"\x80\x01Hello World!", b"\x82\x01\x02\xff", b"\x83\x01A\x22"]
    )


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (
            b'AT%MGRT="x",4,128,3,' + base64.b64encode(bytes(PROFILE.limits.mo_max_bytes)) + b"\r",
            ERR_TOO_LONG,
        ),
        (b'AT%MGRT="toolongname",4,128,3,AA==\r', 102),
        (b'AT%MGRT="x",5,128,3,AA==\r', 102),
        (b'AT%MGRT="x",4,15,3,AA==\r', 102),
        (b'AT%MGRT="x",4,128,3,!!\r', 102),
        (b'AT%MGFG="nothere",3\r', ERR_UNAVAILABLE),
        (b"AT%NOPE\r", 101),
    ],
)
def test_bad_commands_answer_error_with_their_s80_reason(line: bytes, reason: int) -> None:
    m = Modem()
    assert m.tx(line).endswith(b"\r\nERROR\r\n")
    assert m.tx(b"ATS80?\r") == f"ATS80?\r\r\n{reason:03d}\r\n\r\nOK\r\n".encode()


def test_duplicate_name_is_107_and_a_full_queue_is_106() -> None:
    m = Modem("perfect")
    m.emu.link.forced_signal = 0  # nothing leaves the modem
    assert m.tx(b'AT%MGRT="n0",4,128,3,AA==\r').endswith(b"OK\r\n")
    assert b'"n0",0.0,4,128,4,2,0' in m.tx(b"AT%MGRS\r")  # Tx Ready, no message number yet
    assert m.tx(b'AT%MGRT="n0",4,128,3,AA==\r').endswith(b"ERROR\r\n")
    assert f"\r\n{ERR_NAME_IN_USE}\r\n".encode() in m.tx(b"ATS80?\r")
    for i in range(1, m.emu.queue_slots):
        assert m.tx(f'AT%MGRT="n{i}",4,128,3,AA==\r'.encode()).endswith(b"OK\r\n")
    assert m.tx(b'AT%MGRT="full",4,128,3,AA==\r').endswith(b"ERROR\r\n")
    assert f"\r\n{ERR_QUEUE_FULL}\r\n".encode() in m.tx(b"ATS80?\r")


def test_forward_message_listed_fetched_and_marked() -> None:
    m = Modem()
    assert m.tx(b"AT%MGFN\r") == b"AT%MGFN\r\r\n%MGFN:\r\n\r\nOK\r\n"
    m.network.queue_forward(m.emu.mobile_id, b"\x80\x01Hello World", m.now)
    m.wait(5)
    assert m.tx(b"AT%MGFN\r") == b'AT%MGFN\r\r\n%MGFN: "FM00.01",00.01,0,128,2,13,13\r\n\r\nOK\r\n'
    assert m.tx(b'AT%MGFG="FM00.01",3\r') == (
        b'AT%MGFG="FM00.01",3\r\r\n%MGFG: "FM00.01",00.01,0,128,2,13,3,AUhlbGxvIFdvcmxk\r\n\r\nOK\r\n'
    )
    assert m.tx(b"AT%MGFN\r").endswith(b"%MGFN:\r\n\r\nOK\r\n")
    # still readable by name after retrieval
    assert b',128,3,13,1,"\\01Hello World"' in m.tx(b'AT%MGFG="FM00.01",1\r')
    assert m.network.forward_states == {1: "delivered"}


def test_a_forward_message_arrives_while_a_return_message_keeps_failing() -> None:
    """The forward and the return channel are separate carriers: a return message retried again and
    again (a storm) does not hold up the reception of a forward message."""
    m = Modem(faults=FaultPlan([SessionFault(mo_status=MO_CONNECTION_LOST)] * 100))
    m.tx(b'AT%MGRT="stuck",4,128,3,AA==\r')
    m.network.queue_forward(m.emu.mobile_id, b"\x80\x01Hello World", m.now)
    m.wait(5)
    assert m.network.forward_states == {1: "delivered"}
    assert b'%MGFN: "FM' in m.tx(b"AT%MGFN\r")
    assert m.network.returns == []  # the return message is still being retried
    assert b'"stuck"' in m.tx(b'AT%MGRS="stuck"\r')


def test_full_queue_refuses_a_forward_message_with_a_protocol_error() -> None:
    m = Modem()
    m.emu.link.forced_signal = 0
    for i in range(m.emu.queue_slots):
        m.tx(f'AT%MGRT="n{i}",4,128,3,AA==\r'.encode())
    m.emu.link.forced_signal = 5
    m.emu.tx_lifetime_s = 0.0  # let the queued returns sit: they fail rather than leave
    m.network.queue_forward(m.emu.mobile_id, b"\x80zz", m.now)
    m.wait(10)  # back from the outage it searches and acquires the beam again (5 s) before it receives
    assert m.network.forward_states == {1: "refused"}
    assert m.network.returns[-1].raw[:2] == b"\x00\x02"  # protocolError (SIN 0, MIN 2)
    assert m.tx(b"AT%MGFN\r").endswith(b"%MGFN:\r\n\r\nOK\r\n")


def test_satellite_status_and_event_bitmap_clear_on_read() -> None:
    m = Modem()
    out = m.tx(b"ATS90=3 S91=1 S92=1 S122? S116?\r")
    assert out == b"ATS90=3 S91=1 S92=1 S122? S116?\r\r\n0000000010\r\n\r\n0000004650\r\n\r\nOK\r\n"
    assert m.tx(b"ATS89?\r") == b"ATS89?\r\r\n00016\r\n\r\nOK\r\n"  # reset complete
    assert m.tx(b"ATS89?\r") == b"ATS89?\r\r\n00000\r\n\r\nOK\r\n"
    assert m.tx(b"ATS80=1\r").endswith(b"ERROR\r\n")  # read-only
    m.emu.link.forced_signal = 0
    assert b"\r\n0000000011\r\n" in m.tx(b"ATS90=3 S91=1 S92=1 S122?\r")


def test_echo_off_and_numeric_mode_framing() -> None:
    m = Modem()
    assert m.tx(b"ATE0\r") == b"ATE0\r\r\nOK\r\n"
    assert m.tx(b"AT+GSN\r") == b"\r\n+GSN: 01097623SKYFDA1\r\n\r\nOK\r\n"
    assert m.tx(b"ATV0\r") == b"0\r"
    assert m.tx(b"AT+GSN\r") == b"+GSN: 01097623SKYFDA1\r\n0\r"
    assert m.tx(b"AT%NOPE\r") == b"4\r"


def test_queues_survive_a_power_cycle_and_settings_do_not() -> None:
    m = Modem()
    m.emu.link.forced_signal = 0
    m.tx(b"ATE0\r")
    m.tx(b'AT%MGRT="keep",4,128,3,AA==\r')
    m.emu.power_off()
    assert m.tx(b"AT\r") == b""
    m.emu.power_on()
    assert m.tx(b"AT\r") == b"AT\r\r\nOK\r\n"
    assert b'"keep"' in m.tx(b"AT%MGRS\r")


ALPHABET = [
    b"AT",
    b"%MGRT=",
    b"%MGFG=",
    b"%MGRS",
    b"%CRC=1",
    b"S80?",
    b"S90=3",
    b'"n1"',
    b",",
    b";",
    b".",
    b"*",
    b"\r",
]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=8), st.sampled_from(ALPHABET)), max_size=40))
@example([b"AT", b"%CRC=1", b"\r"])  # CRC mode left on
def test_any_bytes_from_the_dte_never_crash_the_emulator(chunks: list[bytes]) -> None:
    m = Modem()
    for chunk in chunks:
        m.emu.feed(chunk, m.now)
        m.now += 0.1
        m.emu.tick(m.now)
    m.emu.read_output()
    m.now += 600.0  # past any data or session deadline the garbage may have started
    m.emu.tick(m.now)
    m.emu.read_output()
    # the garbage may have turned CRC mode on (AT%CRC=1): then a request carries its CRC, as a driver's does
    answer = m.tx(b"\rAT*3983\r" if m.emu.settings.crc else b"\rAT\r")
    assert b"OK" in answer or b"0\r" in answer, answer


def test_acquisition_walks_through_the_control_states_after_outages_and_a_cold_start() -> None:
    """Issue 16 point 7: more than two acquisition states; only an active terminal transmits."""
    from simulators.idp_acquisition import (
        ACTIVE,
        BEAM_ACQUIRED,
        BEAM_SEARCH,
        BLOCKED,
        BULLETIN_BOARD,
        REGISTRATION,
        WAITING_FOR_GNSS,
        Acquisition,
    )

    acq = Acquisition()
    t = 1000.0
    assert acq.state(t, 5) == ACTIVE
    assert acq.state(t + 1, 0) == BLOCKED
    short = [acq.state(t + 30 + dt, 4) for dt in (0, 4, 6)]
    assert short == [BEAM_SEARCH, BEAM_ACQUIRED, ACTIVE]
    acq.state(t + 100, 0)
    long_ = [acq.state(t + 100 + 900 + dt, 4) for dt in (0, 13, 16, 21)]
    assert long_ == [BEAM_SEARCH, BEAM_ACQUIRED, REGISTRATION, ACTIVE]
    acq.cold_start(t + 2000)
    seen = {acq.state(t + 2000 + dt, 4) for dt in range(0, 60)}
    assert {WAITING_FOR_GNSS, BEAM_SEARCH, BULLETIN_BOARD, REGISTRATION, ACTIVE} <= seen

    m = Modem()
    m.emu.link.forced_signal = 0
    m.tx(b'AT%MGRT="late",4,128,3,AA==\r')
    m.wait(1)
    assert m.tx(b"ATS90=3 S91=1 S92=1 S122?\r").count(b"0000000011") == 1  # blocked
    m.emu.link.forced_signal = 5
    m.wait(1)
    assert b"0000000003" in m.tx(b"ATS122?\r")  # beam search
    assert m.network.returns == []  # not yet active: nothing sent
    m.wait(70)  # the radio looks again at the sky's next change (the perfect link's 60 s step)
    assert b"0000000010" in m.tx(b"ATS122?\r") and len(m.network.returns) == 1
