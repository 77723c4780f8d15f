"""Each driver against its emulator on a real pty through a link-model storm: nothing lost, nothing duplicated.

The storm keeps its statistics (dropouts, failure rates, MO status codes) but runs compressed in time
(``duration_scale`` and ``time_scale``), so a few hundred messages each way take seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter

import pytest

from common.clock import SystemClock
from firmware_profiles import load_profile
from gateway.modem import IdpModem, IridiumModem
from simulators.idp_modem import IdpLoopbackNetwork, IdpModemEmulator
from simulators.iridium_modem import IridiumModemEmulator, LoopbackNetwork
from simulators.link_model import LinkModel
from simulators.pty_modem import PtyModem

pytestmark = pytest.mark.timeout(90)

SCALE = 0.0002  # storm sessions of 12-45 s last 2-9 ms; dropouts of ~90 s last ~18 ms
MO_COUNT = 200
MT_COUNT = 100


def payloads(prefix: bytes, n: int, rng: random.Random, max_len: int) -> list[bytes]:
    out = []
    for i in range(n):
        body = rng.randbytes(rng.randrange(0, max_len - 12))
        out.append(prefix + i.to_bytes(4, "big") + body)
    return out


def retry_delay(schedule: tuple[float, ...], failures: int) -> float:
    return schedule[min(failures, len(schedule)) - 1] * SCALE


def test_iridium_driver_through_a_storm_loses_and_duplicates_nothing() -> None:
    profile = load_profile("iridium-9603")
    rng = random.Random(11)
    mos = payloads(b"MO", MO_COUNT, rng, profile.mo_max_bytes)
    mts = payloads(b"MT", MT_COUNT, rng, profile.mt_max_bytes)

    async def main() -> tuple[list[bytes | None], list[bytes], dict[str, int]]:
        clock = SystemClock()
        network = LoopbackNetwork()
        link = LinkModel(random.Random(12), "storm", duration_scale=SCALE, time_scale=SCALE)
        emulator = IridiumModemEmulator(profile, link, network)
        network.attach(emulator)
        received: list[bytes] = []
        stats = Counter[str]()
        async with PtyModem(emulator, clock) as pty:
            modem = IridiumModem(pty.path, profile, clock)
            await modem.open()
            pending = list(mos)
            to_queue = list(mts)
            failures = 0
            try:
                while pending or to_queue or network.queued(emulator.imei) or len(received) < MT_COUNT:
                    if to_queue and rng.random() < 0.5:  # replies trickle in while the vessel sends
                        network.queue_mt(emulator.imei, to_queue.pop(0), clock.now())
                    ring = modem.ring_event.is_set()
                    report = await modem.session(pending[0] if pending else None, answer_ring=ring)
                    stats["sessions"] += report.sessions
                    received.extend(report.mt_messages)
                    if report.mo_sent:
                        failures = 0
                        if pending:
                            pending.pop(0)
                    else:
                        failures += 1
                        stats[f"failed {report.mo_status}"] += 1
                        await asyncio.sleep(retry_delay(profile.retry.schedule_s, failures))
                    stats["calls"] += 1
                    assert stats["calls"] < 20_000, "the storm never let the traffic through"
            finally:
                await modem.close()
        return [m.payload for m in network.mo_messages], received, dict(stats)

    delivered, received, stats = asyncio.run(main())
    sent = [p for p in delivered if p is not None]
    assert sent == mos  # every MO exactly once, in order
    assert received == mts  # every MT exactly once, in order
    failed = sum(v for k, v in stats.items() if k.startswith("failed"))
    assert failed > MO_COUNT // 4, f"not much of a storm: {stats}"


def test_idp_driver_through_a_storm_loses_and_duplicates_nothing() -> None:
    profile = load_profile("inmarsat-idp")
    sin = int(profile.limits.sin or 0)
    rng = random.Random(21)
    mos = payloads(b"MO", MO_COUNT, rng, 300)
    mts = payloads(b"MT", MT_COUNT, rng, 300)

    async def main() -> tuple[list[bytes], list[bytes], dict[str, int]]:
        clock = SystemClock()
        network = IdpLoopbackNetwork()
        link = LinkModel(random.Random(22), "storm", duration_scale=SCALE, time_scale=SCALE)
        emulator = IdpModemEmulator(
            profile, link, network, tx_lifetime_s=profile.timings.session_timeout_s * SCALE
        )
        network.attach(emulator)
        received: list[bytes] = []
        stats = Counter[str]()
        async with PtyModem(emulator, clock) as pty:
            modem = IdpModem(pty.path, profile, clock, poll_interval_s=0.005)
            await modem.open()
            pending = list(mos)
            to_queue = list(mts)
            failures = 0
            try:
                # until every return message has left the modem: forward messages no longer wait for them
                while pending or to_queue or len(received) < MT_COUNT or modem.in_flight:
                    if to_queue and rng.random() < 0.5:
                        network.queue_forward(emulator.mobile_id, bytes([sin]) + to_queue.pop(0), clock.now())
                    if not pending:  # only replies left: wait for the modem's "ring" (a poll found one)
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(modem.ring_event.wait(), 0.05)
                    modem.ring_event.clear()
                    report = await modem.session(pending[0] if pending else None)
                    received.extend(report.mt_messages)
                    if report.mo_sent:
                        failures = 0
                        if pending:
                            pending.pop(0)
                    else:
                        failures += 1
                        stats[f"failed {report.mo_status}: {report.error}"] += 1
                        await asyncio.sleep(retry_delay(profile.retry.schedule_s, failures))
                    stats["calls"] += 1
                    assert stats["calls"] < 20_000, "the storm never let the traffic through"
            finally:
                await modem.close()
        return [r.raw for r in network.returns], received, dict(stats)

    delivered, received, stats = asyncio.run(main())
    assert delivered == [bytes([sin]) + p for p in mos]  # every return message exactly once, in order
    assert Counter(received) == Counter(mts)  # every forward message exactly once
    assert len(received) == len(mts)
    assert stats["calls"] >= MO_COUNT
