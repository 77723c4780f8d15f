"""The unmodified third-party IDP driver ``pynimomodem`` against the IDP emulator on a real pty.

It checks the emulator's framing from outside: echo, verbose framing, the CRC handshake, ``%MGRT`` in
its ``sin.min`` form, ``%MGRS``, ``%MGFN``, ``%MGFG``, ``%MGFM`` and the satellite status registers.
"""

from __future__ import annotations

import random
import time

import pytest
from pynimomodem import NimoModem

from common.clock import SystemClock
from firmware_profiles import load_profile
from simulators.idp_modem import IdpLoopbackNetwork, IdpModemEmulator
from simulators.link_model import LinkModel
from simulators.pty_modem import PtyModem

pytestmark = pytest.mark.timeout(30)

PROFILE = load_profile("inmarsat-idp")


def wait_for(condition: object, timeout_s: float = 5.0) -> None:
    end = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < end, "condition not met in time"
        time.sleep(0.02)


def test_pynimomodem_sends_receives_and_reads_status_in_crc_mode() -> None:
    clock = SystemClock()
    network = IdpLoopbackNetwork()
    emulator = IdpModemEmulator(PROFILE, LinkModel(random.Random(1), "perfect"), network)
    network.attach(emulator)
    with PtyModem.in_thread(emulator, clock) as pty:
        modem = NimoModem(pty.path, baudrate=PROFILE.serial.baud)
        try:
            assert modem.is_connected()
            assert modem.initialize()
            assert modem.set_crc(True)
            assert emulator.settings.crc
            assert modem.get_mobile_id() == emulator.mobile_id

            name = modem.send_data(b"\x80\x01hello")
            wait_for(lambda: network.returns)
            [state] = modem.get_mo_message_states(name)
            assert (state.name, int(state.state), state.length, state.bytes_delivered) == (name, 6, 7, 7)
            assert [r.raw for r in network.returns] == [b"\x80\x01hello"]

            pty.call(network.queue_forward, emulator.mobile_id, b"\x80\x01Hello World", clock.now())
            wait_for(lambda: emulator.forwards)
            [mt] = modem.get_mt_message_states()
            assert (int(mt.state), mt.length) == (2, 13)
            assert modem.receive_data(mt.name) == b"\x80\x01Hello World"
            assert modem.delete_mt_message(mt.name)
            assert modem.get_mt_message_states() == []
            assert modem.get_network_status() == 5  # ATS54?: OK, can transmit
        finally:
            modem._serial.close()
