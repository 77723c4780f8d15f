"""The gateway takes the satellite network's time when no GNSS fix keeps its clock right (issue 16, point 6)."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest
from gateway_world import make_daemon

from common.clock import ScaledClock
from firmware_profiles import load_profile
from gateway.modem.serial_link import IridiumModem
from simulators.iridium_modem import IridiumModemEmulator, LoopbackNetwork
from simulators.link_model import LinkModel
from simulators.pty_modem import PtyModem

pytestmark = pytest.mark.timeout(60)

PROFILE = load_profile("iridium-9603")
HOST_BEHIND_S = 3 * 3600.0  # the wheelhouse PC lost its RTC: three hours behind


class Shifted:
    """The true time, as the satellite network keeps it: the host's clock plus a shift."""

    def __init__(self, base: ScaledClock, shift: float) -> None:
        self.base, self.shift = base, shift

    def now(self) -> float:
        return self.base.now() + self.shift

    async def sleep(self, seconds: float) -> None:
        await self.base.sleep(seconds)


def run_sessions(tmp_path: Path, with_gps_fix: bool) -> tuple[float, float]:
    """Run one frame through the daemon; return (gateway time - true time) before and after."""
    host = ScaledClock(20.0)
    truth = Shifted(host, HOST_BEHIND_S)
    daemon, _loop_modem, _shore = make_daemon(tmp_path, host)
    network = LoopbackNetwork()
    emulator = IridiumModemEmulator(PROFILE, LinkModel(random.Random(1), "perfect"), network)
    network.attach(emulator)
    if with_gps_fix:
        daemon.gps.feed_line("$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A", host.now())

    async def main() -> tuple[float, float]:
        async with PtyModem(emulator, truth) as pty:
            modem = IridiumModem(pty.path, PROFILE, host)
            daemon.modem = modem
            await modem.open()
            try:
                before = daemon.clock.now() - truth.now()
                report = await modem.session(b"x")
                assert report.mo_sent
                await daemon._take_network_time()
                return before, daemon.clock.now() - truth.now()
            finally:
                await modem.close()

    return asyncio.run(main())


def test_without_a_gnss_fix_the_clock_follows_the_network_time(tmp_path: Path) -> None:
    before, after = run_sessions(tmp_path, with_gps_fix=False)
    assert before == pytest.approx(-HOST_BEHIND_S, abs=1.0)
    assert abs(after) < 1.5


def test_with_a_gnss_fix_the_network_time_is_not_taken(tmp_path: Path) -> None:
    before, after = run_sessions(tmp_path, with_gps_fix=True)
    assert after == pytest.approx(before, abs=1.0)


def test_the_iridium_network_position_reaches_the_vessel_position_chain(tmp_path: Path) -> None:
    host = ScaledClock(20.0)
    daemon, _loop_modem, _shore = make_daemon(tmp_path, host)
    network = LoopbackNetwork()
    emulator = IridiumModemEmulator(PROFILE, LinkModel(random.Random(1), "perfect"), network)
    emulator.network_position = (9.75, 101.25)  # Gulf of Thailand
    network.attach(emulator)

    async def main() -> None:
        async with PtyModem(emulator, host) as pty:
            modem = IridiumModem(pty.path, PROFILE, host)
            daemon.modem = modem
            await modem.open()
            try:
                assert await modem.position() is None  # not registered yet: -MSGEO: 0,0,0,0
                assert (await modem.session(b"x")).mo_sent
                await daemon._take_network_position(host.now())
            finally:
                await modem.close()

    asyncio.run(main())
    fix = daemon.positions.best(host.now())
    assert fix is not None and fix.source == "iridium"
    assert fix.latitude == pytest.approx(9.75, abs=0.1) and fix.longitude == pytest.approx(101.25, abs=0.1)


def test_the_idp_terminals_gnss_fix_reaches_the_vessel_position_chain(tmp_path: Path) -> None:
    from gateway.modem import IdpModem
    from simulators.idp_modem import IdpLoopbackNetwork, IdpModemEmulator

    idp = load_profile("inmarsat-idp")
    host = ScaledClock(20.0)
    daemon, _loop_modem, _shore = make_daemon(tmp_path, host)
    daemon.profile = idp
    network = IdpLoopbackNetwork()
    emulator = IdpModemEmulator(idp, LinkModel(random.Random(1), "perfect"), network)
    network.attach(emulator)

    async def main() -> None:
        async with PtyModem(emulator, host) as pty:
            modem = IdpModem(pty.path, idp, host, background_poll=False)
            daemon.modem = modem
            await modem.open()
            try:
                assert await modem.position() is None  # no fix yet: reason 108
                emulator.gnss_position = (-8.5, -34.875)  # off Recife
                await daemon._take_network_position(host.now())
            finally:
                await modem.close()

    asyncio.run(main())
    fix = daemon.positions.best(host.now())
    assert fix is not None and fix.source == "idp-gnss"
    assert (fix.latitude, fix.longitude) == (pytest.approx(-8.5, abs=1e-4), pytest.approx(-34.875, abs=1e-4))
