"""Issue points 2-8 for Iridium: fault plans in the emulator, the driver's answers to each condition,
the retry schedule per MO status, and a link model whose statistics match its configuration."""

from __future__ import annotations

import asyncio
import random
import statistics
from collections import Counter

import pytest

from common.clock import ScaledClock
from firmware_profiles import load_profile
from gateway.modem.retry import retry_delay
from gateway.modem.serial_link import IridiumModem
from simulators.fault_plan import FaultPlan, SessionFault
from simulators.iridium_modem import RING_REPEAT_S, IridiumModemEmulator, LoopbackNetwork
from simulators.link_model import LINK_PROFILES, LinkModel
from simulators.pty_modem import PtyModem

pytestmark = pytest.mark.timeout(60)

PROFILE = load_profile("iridium-9603")
T0 = 1_735_689_600.0
SPEED = 20.0

#: Every MO status the SBD developer guide lists (0-4 success, the rest failures).
DOCUMENTED_MO_STATUSES = [
    0,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    10,
    11,
    12,
    13,
    14,
    15,
    16,
    17,
    18,
    19,
    32,
    33,
    34,
    35,
    36,
    37,
    38,
    64,
    65,
]


def make(
    faults: FaultPlan | None = None, link: str = "perfect"
) -> tuple[IridiumModemEmulator, LoopbackNetwork]:
    network = LoopbackNetwork()
    modem = IridiumModemEmulator(PROFILE, LinkModel(random.Random(1), link), network, faults=faults)
    network.attach(modem)
    return modem, network


def say(modem: IridiumModemEmulator, data: bytes, now: float = T0) -> bytes:
    modem.feed(data, now)
    return modem.read_output()


# -- the emulator produces every documented status (point 2) ------------------------------------


@pytest.mark.parametrize("status", DOCUMENTED_MO_STATUSES)
def test_fault_plan_makes_the_emulator_report_any_documented_mo_status(status: int) -> None:
    modem, network = make(FaultPlan([SessionFault(mo_status=status)]))
    say(modem, b"AT+SBDWT=hi\r")
    say(modem, b"AT+SBDIX\r")
    modem.tick(T0 + 60)
    out = modem.read_output()
    assert out.startswith(f"\r\n+SBDIX: {status}, 0, ".encode())
    assert [m.payload for m in network.mo_messages] == ([b"hi"] if status <= 4 else [])  # 0-4: success


def test_an_mt_error_reports_mt_status_2_and_the_message_stays_queued() -> None:
    modem, network = make(FaultPlan([SessionFault(mt_status=2)]))
    network.queue_mt(modem.imei, b"reply", T0, ring=False)
    say(modem, b"AT+SBDIX\r")
    modem.tick(T0 + 1)
    assert modem.read_output().startswith(b"\r\n+SBDIX: 0, 0, 2, 0, 0, 1\r\n")
    say(modem, b"AT+SBDIX\r", T0 + 2)
    modem.tick(T0 + 3)
    assert modem.read_output().startswith(b"\r\n+SBDIX: 0, 1, 1, 1, 5, 0\r\n")
    assert network.queued(modem.imei) == 0


def test_an_mt_error_is_followed_by_another_session_that_reads_it() -> None:
    async def scenario(modem, network, driver, sent, clock) -> None:  # type: ignore[no-untyped-def]
        network.queue_mt(modem.imei, b"reply", clock.now(), ring=False)
        report = await driver.session(b"up")
        assert report.mo_sent and report.mt_messages == [b"reply"] and report.sessions == 2

    run(scenario, FaultPlan([SessionFault(mt_status=2)]))


def test_mid_session_loss_ends_the_session_early_with_status_18() -> None:
    modem, network = make(FaultPlan([SessionFault(duration_s=30.0, lost_after_s=4.0)]))
    say(modem, b"AT+SBDWT=hi\r")
    say(modem, b"AT+SBDIX\r")
    modem.tick(T0 + 3.9)
    assert modem.read_output() == b""
    modem.tick(T0 + 4.0)
    assert modem.read_output().startswith(b"\r\n+SBDIX: 18, 0, 2, 0, 0, 0\r\n")
    assert network.mo_messages == []


def test_blockage_answers_no_service_and_misses_ring_alerts_until_it_ends() -> None:
    modem, network = make(FaultPlan([SessionFault(blockage_s=600.0)]))
    say(modem, b"AT+SBDMTA=1\r")
    modem.registered = True
    say(modem, b"AT+SBDIX\r")
    modem.tick(T0 + 5)
    assert b"+SBDIX: 32," in modem.read_output()
    network.queue_mt(modem.imei, b"x", T0 + 10)
    assert b"SBDRING" not in modem.read_output()
    network.queue_mt(modem.imei, b"y", T0 + 700)
    assert b"SBDRING" in say(modem, b"", T0 + 700)


def test_the_network_repeats_a_ring_alert_about_20_s_later_unless_a_session_took_the_mt() -> None:
    modem, network = make()
    say(modem, b"AT+SBDMTA=1\r")
    modem.registered = True
    network.queue_mt(modem.imei, b"x", T0)
    assert modem.read_output().count(b"SBDRING") == 1
    assert modem.next_wakeup() == pytest.approx(T0 + RING_REPEAT_S)
    modem.tick(T0 + RING_REPEAT_S)
    assert modem.read_output().count(b"SBDRING") == 1
    modem.tick(T0 + 10 * RING_REPEAT_S)
    assert modem.read_output() == b""  # only two per MT
    network.queue_mt(modem.imei, b"y", T0 + 300)
    say(modem, b"AT+SBDIXA\r", T0 + 301)
    modem.tick(T0 + 302)
    modem.read_output()
    modem.tick(T0 + 300 + RING_REPEAT_S)
    assert b"SBDRING" not in modem.read_output()


# -- retry schedule per status (point 2) ---------------------------------------------------------


def test_fatal_statuses_are_held_not_retried_on_the_schedule() -> None:
    rng = random.Random(1)
    for status in (12, 14, 16):
        assert retry_delay(PROFILE.retry, 1, status, rng) == PROFILE.retry.fatal_hold_s >= 3600


def test_status_36_waits_three_minutes_and_37_38_33_wait_the_back_off() -> None:
    rng = random.Random(1)
    assert retry_delay(PROFILE.retry, 1, 36, rng) == 180.0
    for status in (33, 37, 38):
        assert retry_delay(PROFILE.retry, 1, status, rng) == 300.0


def test_rockblock_schedule_random_short_steps_then_the_full_five_minutes() -> None:
    rng = random.Random(5)
    firsts = [retry_delay(PROFILE.retry, 1, 18, rng) for _ in range(500)]
    thirds = [retry_delay(PROFILE.retry, 3, 18, rng) for _ in range(500)]
    assert min(firsts) >= 0 and max(firsts) <= 5 and statistics.mean(firsts) == pytest.approx(2.5, abs=0.3)
    assert min(thirds) >= 0 and max(thirds) <= 30
    assert {retry_delay(PROFILE.retry, n, 18, rng) for n in (5, 6, 50)} == {300.0}


# -- the driver: 3-wire set-up, session timeout, brown-outs (points 3, 4, 5) ---------------------


def run(scenario, faults: FaultPlan | None = None) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        clock = ScaledClock(SPEED)
        modem, network = make(faults)
        sent = bytearray()
        feed = modem.feed

        def recording(data: bytes, now: float) -> None:
            sent.extend(data)
            feed(data, now)

        modem.feed = recording  # type: ignore[method-assign]
        async with PtyModem(modem, clock) as pty:
            driver = IridiumModem(pty.path, PROFILE, clock)
            try:
                await driver.open()
                await scenario(modem, network, driver, sent, clock)
            finally:
                await driver.close()

    asyncio.run(main())


def test_three_wire_setup_sends_d0_with_k0_and_stores_the_settings() -> None:
    async def scenario(modem, network, driver, sent, clock) -> None:  # type: ignore[no-untyped-def]
        text = bytes(sent)
        assert (
            text.index(b"AT&D0\r") < text.index(b"AT&K0\r") < text.index(b"AT&W0\r") < text.index(b"AT&Y0\r")
        )
        assert modem.settings.dtr == 0 and modem._stored.ring_alerts

    run(scenario)


def test_modem_session_timeout_ends_a_long_session_before_the_host_gives_up() -> None:
    async def scenario(modem, network, driver, sent, clock) -> None:  # type: ignore[no-untyped-def]
        assert (
            modem.session_timeout_s == PROFILE.timings.session_timeout_s - PROFILE.timings.command_timeout_s
        )
        report = await driver.session(b"long one")
        assert report.mo_status == 17 and not report.mo_sent and network.mo_messages == []
        report = await driver.session(b"long one")
        assert report.mo_sent and [m.payload for m in network.mo_messages] == [b"long one"]

    run(scenario, FaultPlan([SessionFault(duration_s=PROFILE.timings.session_timeout_s + 30)]))


def test_a_brown_out_keeps_ring_alerts_and_the_driver_reapplies_its_settings() -> None:
    async def scenario(modem, network, driver, sent, clock) -> None:  # type: ignore[no-untyped-def]
        assert (await driver.session(None)).mo_sent  # registered
        modem.power_cycle()  # silent: the driver's port never sees it
        network.queue_mt(modem.imei, b"reply", clock.now())
        await asyncio.wait_for(driver.ring_event.wait(), 5)  # stored ring alerts survived
        assert modem.session_timeout_s == 0
        report = await driver.session(None, answer_ring=True)
        assert report.mt_messages == [b"reply"]
        assert driver.resets_detected == 1
        assert modem.session_timeout_s > 0 and modem.settings.ring_alerts

    run(scenario)


def test_a_brown_out_during_a_session_is_recovered_without_sending_twice() -> None:
    async def scenario(modem, network, driver, sent, clock) -> None:  # type: ignore[no-untyped-def]
        report = await driver.session(b"once")
        assert not report.mo_sent and report.error is not None
        for _ in range(3):
            report = await driver.session(b"once")
            if report.mo_sent:
                break
        assert [m.payload for m in network.mo_messages] == [b"once"] and modem.power_cycles == 1

    run(scenario, FaultPlan([SessionFault(power_cycle=True)]))


def test_radio_disabled_is_switched_back_on() -> None:
    async def scenario(modem, network, driver, sent, clock) -> None:  # type: ignore[no-untyped-def]
        modem.radio_on = False
        report = await driver.session(b"x")
        assert report.mo_status == 34 and modem.radio_on
        assert (await driver.session(b"x")).mo_sent

    run(scenario)


# -- the link model (point 7) --------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["port", "storm"])
def test_signal_walk_visits_low_bars_at_the_configured_spread(profile: str) -> None:
    link = LinkModel(random.Random(11), profile)
    p = LINK_PROFILES[profile]
    step = p.signal_step_s
    levels = []
    for i in range(20000):
        link.signal(T0 + i * step)
        levels.append(link._level)
    assert statistics.mean(levels) == pytest.approx(p.signal_mean, abs=0.2)
    assert statistics.pstdev(levels) == pytest.approx(p.signal_sd, rel=0.15)
    bars = Counter(max(0, min(5, round(v))) for v in levels)
    assert all(bars[b] > 0.03 * len(levels) for b in (1, 2, 3))


def test_open_sea_signal_is_not_stuck_at_four_bars() -> None:
    link = LinkModel(random.Random(2), "open-sea")
    step = LINK_PROFILES["open-sea"].signal_step_s
    seen = Counter(link.signal(T0 + i * step) for i in range(20000))
    assert seen[3] > 0.05 * 20000 and seen[5] > 0.05 * 20000


def test_larger_messages_take_longer_and_fail_more_often() -> None:
    def run_many(size: int) -> tuple[float, float]:
        link = LinkModel(random.Random(4), "storm")
        link.forced_signal = 3
        results = [link.session_outcome(T0 + i, size) for i in range(4000)]
        ok = [d for s, d in results if s == 0]
        return statistics.mean(ok), sum(1 for s, _ in results if s != 0) / len(results)

    small_time, small_fail = run_many(50)
    big_time, big_fail = run_many(340)
    assert big_time > small_time + 3 and big_fail > small_fail + 0.1


def test_connection_lost_sessions_end_partway() -> None:
    link = LinkModel(random.Random(6), "storm")
    link.forced_signal = 2
    lost = [d for s, d in (link.session_outcome(T0 + i, 100) for i in range(3000)) if s == 18]
    low, _ = LINK_PROFILES["storm"].success_duration_s
    assert lost and min(lost) < low
