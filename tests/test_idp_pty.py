"""The gateway's IDP adapter (``IdpModem``) against the emulator on a real pty: calls, rings, recovery."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from common.clock import ScaledClock
from firmware_profiles import load_profile
from gateway.modem import IdpModem, ModemError, open_modem
from simulators.idp_modem import IdpLoopbackNetwork, IdpModemEmulator
from simulators.link_model import LinkModel
from simulators.pty_modem import PtyModem
from wire.records import CrewMessage, Kind, to_wire_time

pytestmark = pytest.mark.timeout(30)

PROFILE = load_profile("inmarsat-idp")
SIN = int(PROFILE.limits.sin or 0)
SPEED = 20.0


class Rig:
    def __init__(self) -> None:
        self.clock = ScaledClock(SPEED)
        self.network = IdpLoopbackNetwork()
        self.emulator = IdpModemEmulator(PROFILE, LinkModel(random.Random(3), "perfect"), self.network)
        self.network.attach(self.emulator)


async def returned(rig: Rig, count: int, timeout: float = 10.0) -> list[bytes]:
    """The raw return messages once ``count`` have reached the network (bounded wait)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(rig.network.returns) < count:
        assert loop.time() < deadline, f"only {len(rig.network.returns)} of {count} return messages arrived"
        await asyncio.sleep(0.02)
    return [r.raw for r in rig.network.returns]


def run(scenario: Callable[[Rig, PtyModem, IdpModem], Awaitable[None]]) -> None:
    async def main() -> None:
        rig = Rig()
        async with PtyModem(rig.emulator, rig.clock) as pty:
            modem = open_modem(pty.path, PROFILE, rig.clock)
            assert isinstance(modem, IdpModem)
            modem.poll_interval_s = 0.5
            try:
                await modem.open()
                await scenario(rig, pty, modem)
            finally:
                await modem.close()

    asyncio.run(main())


def test_open_learns_the_mobile_id_signal_and_network_time() -> None:
    async def scenario(rig: Rig, pty: PtyModem, modem: IdpModem) -> None:
        assert modem.mobile_id == rig.emulator.mobile_id == modem.imei
        assert rig.emulator.settings.crc  # CRC mode on the wire
        assert await modem.signal() == 5
        when = await modem.network_time()
        assert when is not None and abs(when - rig.clock.now()) < 2

    run(scenario)


def test_messages_are_sent_in_order_and_replies_come_back_without_their_sin() -> None:
    async def scenario(rig: Rig, pty: PtyModem, modem: IdpModem) -> None:
        for i in range(3):
            report = await modem.session(b"frame %d" % i)
            assert report.mo_sent and report.mo_status == 4 and report.error is None  # queued: Tx Ready
        assert await returned(rig, 3) == [bytes([SIN]) + b"frame %d" % i for i in range(3)]
        pty.call(rig.network.queue_forward, rig.emulator.mobile_id, bytes([SIN]) + b"reply", rig.clock.now())
        pty.call(rig.network.queue_forward, rig.emulator.mobile_id, bytes([0, 72]), rig.clock.now())
        await asyncio.wait_for(modem.ring_event.wait(), 10)
        while len(rig.emulator.forwards) < 2:  # both have reached the modem
            await asyncio.sleep(0.01)
        report = await modem.session(None, answer_ring=True)
        assert report.mt_messages == [b"reply"]
        assert all(f.state == 3 for f in rig.emulator.forwards)  # the foreign SIN was marked, not returned

    run(scenario)


def test_a_message_that_fails_in_the_modem_is_counted_failed_at_the_next_call() -> None:
    async def scenario(rig: Rig, pty: PtyModem, modem: IdpModem) -> None:
        rig.emulator.link.forced_signal = 0
        rig.emulator.tx_lifetime_s = 1.0
        report = await modem.session(b"doomed")
        assert report.mo_sent and list(modem.in_flight) and modem.returns_failed == 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while modem.in_flight:
            assert loop.time() < deadline
            await asyncio.sleep(0.1)
            await modem.session(None)
        assert modem.returns_failed == 1 and modem.returns_complete == 0
        assert rig.network.returns == []

    run(scenario)


def test_recovers_after_the_modem_power_cycles_mid_call() -> None:
    async def scenario(rig: Rig, pty: PtyModem, modem: IdpModem) -> None:
        pty.call(rig.emulator.power_off)
        report = await modem.session(b"lost in the dark")
        assert not report.mo_sent and report.error is not None
        pty.call(rig.emulator.power_on)
        rig.emulator.settings.echo = False  # came back with other settings
        report = await modem.session(b"after the reset")
        assert report.mo_sent, report.error
        assert (await returned(rig, 1))[-1] == bytes([SIN]) + b"after the reset"

    run(scenario)


def test_open_raises_modem_error_when_nothing_answers() -> None:
    async def main() -> None:
        rig = Rig()
        rig.emulator.power_off()
        async with PtyModem(rig.emulator, rig.clock) as pty:
            modem = IdpModem(pty.path, PROFILE, rig.clock, background_poll=False)
            with pytest.raises(ModemError):
                await modem.open()
            await modem.close()

    asyncio.run(main())


def test_a_lost_submit_answer_is_resolved_by_asking_the_modem_and_sends_once() -> None:
    async def scenario(rig: Rig, pty: PtyModem, modem: IdpModem) -> None:
        emulator = rig.emulator
        original = emulator.read_output
        swallow = [True]

        def lossy() -> bytes:
            out = original()
            if swallow[0] and b"%MGRT" in out:
                swallow[0] = False
                return b""  # the whole answer vanishes on the wire
            return out

        emulator.read_output = lossy  # type: ignore[method-assign]
        report = await modem.session(b"only once")
        assert report.mo_sent, report.error
        assert await returned(rig, 1) == [bytes([SIN]) + b"only once"]
        await asyncio.sleep(0.5)
        assert len(rig.network.returns) == 1

    run(scenario)


def test_a_long_blockage_does_not_hold_the_gateway_and_sos_goes_first_when_it_clears() -> None:
    """Issue 16 point 1: with the mast blocking the satellite, each call returns at once; up to the
    terminal's limit of messages wait in the modem; an SOS queued behind them goes out first."""

    async def scenario(rig: Rig, pty: PtyModem, modem: IdpModem) -> None:
        pty.call(rig.emulator.faults.block, rig.clock.now(), 2 * 3600.0)  # two hours of mast shadow
        loop = asyncio.get_running_loop()
        started = loop.time()
        for i in range(modem.return_queue_max - 1):
            report = await modem.session(b"catch %d" % i)
            assert report.mo_sent, report.error
        report = await modem.session(b"SOS", priority=1)
        assert report.mo_sent and len(modem.in_flight) == modem.return_queue_max == 8
        full = await modem.session(b"one too many")
        assert not full.mo_sent and full.error is not None and "full" in full.error
        assert loop.time() - started < 10  # not the 3-hour message lifetime per call
        assert rig.network.returns == []
        pty.call(setattr, rig.emulator.faults, "blocked_until", rig.clock.now())  # the vessel turns
        pty.call(rig.emulator.forward_waiting, rig.clock.now())  # wake the radio
        raws = await returned(rig, 8)
        assert raws[0] == bytes([SIN]) + b"SOS"
        assert sorted(raws[1:]) == sorted(bytes([SIN]) + b"catch %d" % i for i in range(7))
        await modem.session(None)
        assert modem.in_flight == {} and modem.returns_complete == 8

    run(scenario)


def test_the_daemon_submits_a_frame_carrying_an_sos_at_priority_1_and_other_frames_at_4(
    tmp_path: Path,
) -> None:
    """The gateway daemon's own sessions on the IDP adapter: the frame with the vessel's SOS record is
    the return message the modem takes at ``%MGRT`` priority 1; a frame of crew traffic keeps 4."""
    from gateway_world import make_daemon

    rig = Rig()
    daemon, _none, _shore = make_daemon(
        tmp_path,
        rig.clock,
        modem=False,
        **{"modem.profile": "inmarsat-idp", "latency.crew_s": 0.0, "link.mailbox_check_s": 0},
    )
    sent: list[tuple[set[int], int, bytes]] = []  # (kinds carried, priority taken, payload) per frame

    async def session(pty: PtyModem) -> None:
        turn = daemon.turn(daemon.clock.now())
        assert turn.decision.open, turn.decision.reason
        await daemon._run_session(turn)
        plan = daemon.session_plan
        assert plan is not None and plan.queued
        with daemon.store.transaction() as db:
            kinds = {
                db.execute("SELECT kind FROM records WHERE rid = ?", (q.unit.rid,)).fetchone()[0]
                for q in plan.queued
            }
        entries = pty.call(lambda: [(e.priority, e.raw) for e in rig.emulator.returns])
        assert len(entries) == len(sent) + 1  # this session handed the modem one return message
        sent.append((kinds, *entries[-1]))

    async def main() -> None:
        async with PtyModem(rig.emulator, rig.clock) as pty:
            modem = IdpModem(pty.path, PROFILE, rig.clock, background_poll=False)
            daemon.modem = modem
            await modem.open()
            try:
                daemon.desk.sos("fire in the engine room", 9.5, 97.8)
                await session(pty)
                now = daemon.clock.now()
                body = CrewMessage(1, 1, bytes(40), to_wire_time(now)).body()
                daemon.store.accept(Kind.CREW_MESSAGE, lambda _rid: body, now, member=1)
                await session(pty)
            finally:
                await modem.close()
                daemon.store.close()

    asyncio.run(main())
    (sos_kinds, sos_priority, sos_raw), (crew_kinds, crew_priority, crew_raw) = sent
    assert Kind.SOS in sos_kinds and sos_priority == 1
    assert Kind.SOS not in crew_kinds and Kind.CREW_MESSAGE in crew_kinds and crew_priority == 4
    assert sos_raw[0] == crew_raw[0] == SIN and sos_raw != crew_raw
