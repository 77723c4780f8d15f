"""DirectIP over real TCP: the shore's MO server, the emulated Iridium network's MO pushes and MT server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import pytest

from common.clock import ManualClock, SystemClock
from firmware_profiles import load_profile
from shore.directip import (
    MO_PAYLOAD_MAX,
    MoLocation,
    MoMessage,
    MtConfirmation,
    MtFlags,
    MtMessage,
    decode_mt_confirmation,
)
from shore.directip_server import DirectIpMoServer, send_mo, send_mt
from simulators.iridium_network import (
    MO_LIFETIME_S,
    MO_RETRY_REPEAT_S,
    MO_RETRY_SCHEDULE_S,
    IridiumNetwork,
)

IMEI = "300234063904190"
OTHER_IMEI = "300234010753370"
PROFILE = load_profile("iridium-9603")
HOST = "127.0.0.1"

# The real MO message from the gateway (gadomski/sbd-rs data/0-mo.sbd).
MO_VECTOR = bytes.fromhex(
    "01003801001c70ec076933303032333430363339303431393000004b0000559eba2c02001674657374206d657373616765"
    "2066726f6d2070657465"
)
CONFIRM_OK = bytes([0x01, 0x00, 0x04, 0x05, 0x00, 0x01, 0x01])
CONFIRM_FAILED = bytes([0x01, 0x00, 0x04, 0x05, 0x00, 0x01, 0x00])

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T], timeout_s: float = 30.0) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout_s)

    return asyncio.run(bounded())


async def until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Poll (in real time) until ``condition()`` holds."""
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.005)


async def settle(seconds: float = 0.05) -> None:
    await asyncio.sleep(seconds)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


async def exchange(port: int, data: bytes, *, close_write: bool = False) -> bytes:
    """Raw TCP: send ``data``, return everything the server answers before it closes.

    A server that closes with our bytes still unread makes the kernel reset the connection; that
    counts as closing without an answer.
    """
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(data)
        await writer.drain()
        if close_write:
            writer.write_eof()
        return await asyncio.wait_for(reader.read(), 5)
    except ConnectionResetError:
        return b""
    finally:
        writer.close()
        with contextlib.suppress(ConnectionResetError):
            await writer.wait_closed()


class Shore:
    """Collects MO messages; answers with the next of ``verdicts`` (True once they run out)."""

    def __init__(self, *verdicts: bool) -> None:
        self.received: list[MoMessage] = []
        self._verdicts = list(verdicts)

    async def __call__(self, message: MoMessage) -> bool:
        self.received.append(message)
        return self._verdicts.pop(0) if self._verdicts else True


# --------------------------------------------------------------------------------------------------
# Shore MO server


def test_mo_server_confirms_a_real_gateway_message() -> None:
    async def scenario() -> None:
        shore = Shore()
        async with DirectIpMoServer(HOST, 0, shore, read_timeout_s=2) as server:
            assert await exchange(server.port, MO_VECTOR) == CONFIRM_OK
        assert [m.payload for m in shore.received] == [b"test message from pete"]
        assert shore.received[0].header.momsn == 75
        assert server.counters["accepted"] == 1

    run(scenario())


def test_mo_server_confirms_failure_when_the_handler_declines_or_raises() -> None:
    async def scenario() -> None:
        async def broken(message: MoMessage) -> bool:
            raise RuntimeError("archive unavailable")

        async with DirectIpMoServer(HOST, 0, Shore(False), read_timeout_s=2) as server:
            assert await exchange(server.port, MO_VECTOR) == CONFIRM_FAILED
            assert await exchange(server.port, MO_VECTOR) == CONFIRM_OK
        assert server.counters["handler_failed"] == 1
        async with DirectIpMoServer(HOST, 0, broken, read_timeout_s=2) as server:
            assert await exchange(server.port, MO_VECTOR) == CONFIRM_FAILED
        assert server.counters["handler_failed"] == 1

    run(scenario())


def test_mo_server_survives_garbage_truncation_and_silence(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        shore = Shore()
        async with DirectIpMoServer(HOST, 0, shore, read_timeout_s=0.3) as server:
            assert await exchange(server.port, b"not an sbd file\n") == b""
            assert await exchange(server.port, MO_VECTOR[:20], close_write=True) == b""
            assert await exchange(server.port, b"\x01\xff\xff" + b"\x00" * 10) == b""  # length above the cap
            header_only_garbage = b"\x01\x00\x05\x01\x00\x02\x00\x00"  # MO header IE of 2 bytes
            assert await exchange(server.port, header_only_garbage) == b""
            reader, writer = await asyncio.open_connection(HOST, server.port)
            assert await asyncio.wait_for(reader.read(), 5) == b""  # silent peer: closed after the deadline
            writer.close()
            await writer.wait_closed()
            assert await exchange(server.port, MO_VECTOR) == CONFIRM_OK  # still serving
        assert server.counters["rejected"] == 4
        assert server.counters["timeouts"] == 1
        assert server.counters["accepted"] == 1
        assert len(shore.received) == 1

    with caplog.at_level(logging.WARNING):
        run(scenario())
    assert "BadRevision" in caplog.text


def test_mo_server_refuses_connections_beyond_its_limit() -> None:
    async def scenario() -> None:
        release = asyncio.Event()

        async def slow(message: MoMessage) -> bool:
            await release.wait()
            return True

        async with DirectIpMoServer(HOST, 0, slow, read_timeout_s=2, max_connections=1) as server:
            first = asyncio.create_task(exchange(server.port, MO_VECTOR))
            await until(lambda: server.active_connections == 1)
            assert await exchange(server.port, MO_VECTOR) == b""
            release.set()
            assert await first == CONFIRM_OK
        assert server.counters["refused"] == 1

    run(scenario())


def test_send_mo_reports_the_confirmation() -> None:
    async def scenario() -> None:
        async with DirectIpMoServer(HOST, 0, Shore(False, True), read_timeout_s=2) as server:
            assert await send_mo(HOST, server.port, MO_VECTOR, timeout_s=2) is False
            assert await send_mo(HOST, server.port, MO_VECTOR, timeout_s=2) is True
        with pytest.raises(OSError):
            await send_mo(HOST, free_port(), MO_VECTOR, timeout_s=2)

    run(scenario())


# --------------------------------------------------------------------------------------------------
# Network → shore MO delivery


def test_network_delivers_an_mo_session_to_the_shore() -> None:
    async def scenario() -> None:
        shore = Shore()
        clock = SystemClock()
        async with DirectIpMoServer(HOST, 0, shore, read_timeout_s=2) as server:
            network = IridiumNetwork(
                clock=clock, shore=[(HOST, server.port)], imeis={IMEI: PROFILE.name}, cdr_start=500
            )
            network.set_location(IMEI, MoLocation(10.5, -20.25, 3))
            async with network:
                now = clock.now()
                delivery = network.session(IMEI, b"hello shore", 7, now)
                assert (delivery.payload, delivery.mtmsn, delivery.queued) == (None, 0, 0)
                network.session(IMEI, None, 8, now + 1)  # mailbox check
                await until(lambda: len(shore.received) == 2)
        first, second = shore.received
        assert first.header.imei == IMEI
        assert (first.header.momsn, first.header.mtmsn, first.header.session_status) == (7, 0, 0)
        assert first.header.session_time == int(now)
        assert first.header.cdr_reference == 500
        assert first.payload == b"hello shore"
        assert first.location == MoLocation(10.5, -20.25, 3)
        assert (second.header.momsn, second.header.cdr_reference, second.payload) == (8, 501, None)
        assert network.stats["mo_delivered"] == 2
        assert all(a.delivered for a in network.attempts)

    run(scenario())


def test_network_pushes_to_every_destination() -> None:
    async def scenario() -> None:
        a, b = Shore(), Shore()
        async with DirectIpMoServer(HOST, 0, a) as sa, DirectIpMoServer(HOST, 0, b) as sb:
            shore = [(HOST, sa.port), (HOST, sb.port)]
            async with IridiumNetwork(
                clock=SystemClock(), shore=shore, imeis={IMEI: PROFILE.name}
            ) as network:
                network.session(IMEI, b"x", 1, 0)
                await until(lambda: len(a.received) == len(b.received) == 1)

    run(scenario())


def test_network_rejects_unknown_imeis_and_oversized_mo() -> None:
    network = IridiumNetwork(clock=ManualClock(), imeis={IMEI: PROFILE.name})
    with pytest.raises(LookupError):
        network.session(OTHER_IMEI, b"x", 1, 0)
    with pytest.raises(ValueError):
        network.session(IMEI, b"x" * (PROFILE.limits.mo_max_bytes + 1), 1, 0)
    assert PROFILE.limits.mo_max_bytes < MO_PAYLOAD_MAX


def expected_attempt_times(lifetime: float) -> list[float]:
    times, t, failures = [0.0], 0.0, 0
    while True:
        failures += 1
        t += MO_RETRY_SCHEDULE_S[failures - 1] if failures <= len(MO_RETRY_SCHEDULE_S) else MO_RETRY_REPEAT_S
        if t > lifetime:
            return times
        times.append(t)


def test_unreachable_shore_is_retried_on_the_gateway_schedule_until_the_message_expires() -> None:
    async def scenario() -> None:
        clock = ManualClock(start=0.0)
        network = IridiumNetwork(
            clock=clock, shore=[(HOST, free_port())], imeis={IMEI: PROFILE.name}, io_timeout_s=2
        )
        expected = expected_attempt_times(MO_LIFETIME_S)
        assert expected[:11] == [0, 1, 6, 16, 36, 66, 126, 246, 486, 846, 1206]
        async with network:
            network.session(IMEI, b"nobody listens", 1, clock.now())
            await until(lambda: len(network.attempts) == 1)
            for n, due in enumerate(expected[1:], start=2):
                clock.advance(due - clock.now() - 0.5)
                await settle(0.002)
                assert len(network.attempts) == n - 1, f"attempt {n} came early"
                clock.advance(0.5)
                await until(lambda n=n: len(network.attempts) == n)
            clock.advance(MO_RETRY_REPEAT_S)
            await until(lambda: network.stats["mo_expired"] == 1)
        assert [a.at for a in network.attempts] == expected
        assert not any(a.delivered for a in network.attempts)
        assert network.pending_mo() == 0

    run(scenario(), timeout_s=60)


def test_shore_coming_back_gets_the_message_exactly_once() -> None:
    async def scenario() -> None:
        clock = ManualClock(start=0.0)
        port = free_port()
        shore = Shore()
        network = IridiumNetwork(clock=clock, shore=[(HOST, port)], imeis={IMEI: PROFILE.name})
        async with network:
            network.session(IMEI, b"first", 1, clock.now())
            network.session(IMEI, b"second", 2, clock.now())
            await until(lambda: len(network.attempts) == 1)
            clock.advance(1)
            await until(lambda: len(network.attempts) == 2)
            async with DirectIpMoServer(HOST, port, shore, read_timeout_s=2):
                await settle()
                assert shore.received == []  # nothing is sent before the next scheduled attempt
                clock.advance(4.5)
                await settle()
                assert shore.received == []
                clock.advance(0.5)
                await until(lambda: len(shore.received) == 2)
                clock.advance(MO_LIFETIME_S)
                await settle()
        assert [m.payload for m in shore.received] == [b"first", b"second"]  # FIFO
        assert [(a.momsn, a.attempt, a.delivered) for a in network.attempts] == [
            (1, 1, False),
            (1, 2, False),
            (1, 3, True),
            (2, 1, True),
        ]

    run(scenario())


def test_negative_confirmation_requeues_the_message() -> None:
    async def scenario() -> None:
        clock = ManualClock(start=0.0)
        shore = Shore(False)
        async with DirectIpMoServer(HOST, 0, shore, read_timeout_s=2) as server:
            network = IridiumNetwork(clock=clock, shore=[(HOST, server.port)], imeis={IMEI: PROFILE.name})
            async with network:
                network.session(IMEI, b"again", 3, clock.now())
                await until(lambda: len(shore.received) == 1)
                clock.advance(1)
                await until(lambda: len(shore.received) == 2)
                clock.advance(3600)
                await settle()
        assert [m.payload for m in shore.received] == [b"again", b"again"]  # at-least-once: shore dedupes
        assert network.stats["mo_delivered"] == 1
        assert network.attempts[0].error == "shore confirmed with status 0"

    run(scenario())


def test_scaled_schedule_and_latency() -> None:
    async def scenario() -> None:
        clock = SystemClock()
        port = free_port()
        shore = Shore()
        network = IridiumNetwork(
            clock=clock, shore=[(HOST, port)], imeis={IMEI: PROFILE.name}, retry_scale=0.01, latency_s=0.05
        )
        async with network:
            start = clock.now()
            network.session(IMEI, b"scaled", 1, start)
            await until(lambda: len(network.attempts) == 3)
            assert network.attempts[0].at - start >= 0.05
            async with DirectIpMoServer(HOST, port, shore):
                await until(lambda: len(shore.received) == 1)
        gaps = [b.at - a.at for a, b in zip(network.attempts, list(network.attempts)[1:], strict=False)]
        for failures, gap in enumerate(gaps, start=1):
            assert gap >= network.retry_delay(failures) - 1e-3
        assert network.retry_delay(1) == pytest.approx(0.01)
        assert network.retry_delay(20) == pytest.approx(3.6)

    run(scenario())


# --------------------------------------------------------------------------------------------------
# Network MT server


def mt(
    payload: bytes | None = b"reply", *, imei: str = IMEI, cid: bytes = b"Msg1", **kwargs: Any
) -> MtMessage:
    return MtMessage(client_message_id=cid, imei=imei, payload=payload, **kwargs)


async def started_network(clock: ManualClock | SystemClock | None = None) -> IridiumNetwork:
    network = IridiumNetwork(clock=clock or ManualClock(), imeis={IMEI: PROFILE.name})
    await network.start()
    return network


def test_mt_is_queued_confirmed_with_its_position_and_delivered_in_the_next_session() -> None:
    async def scenario() -> None:
        network = await started_network()
        host, port = network.mt_address
        try:
            first = await send_mt(host, port, mt(b"one", cid=b"\x00\x00\x00\x07"), timeout_s=2)
            second = await send_mt(host, port, mt(b"two"), timeout_s=2)
        finally:
            await network.stop()
        assert (first.client_message_id, first.imei, first.status) == (b"\x00\x00\x00\x07", IMEI, 1)
        assert second.status == 2 and second.ok
        assert first.auto_id != 0 and second.auto_id != first.auto_id
        one = network.session(IMEI, None, 1, 0)
        two = network.session(IMEI, None, 2, 0)
        three = network.session(IMEI, None, 3, 0)
        assert (one.payload, one.mtmsn, one.queued) == (b"one", 1, 1)
        assert (two.payload, two.mtmsn, two.queued) == (b"two", 2, 0)
        assert (three.payload, three.mtmsn, three.queued) == (None, 0, 0)

    run(scenario())


def test_mt_error_statuses() -> None:
    async def scenario() -> None:
        network = await started_network()
        host, port = network.mt_address
        try:
            too_large = await send_mt(host, port, mt(b"x" * (PROFILE.limits.mt_max_bytes + 1)), timeout_s=2)
            unknown = await send_mt(host, port, mt(imei=OTHER_IMEI), timeout_s=2)
            missing = await send_mt(host, port, mt(None), timeout_s=2)
            bad_mtmsn = await send_mt(host, port, mt(cid=bytes(4), flags=MtFlags.ASSIGN_MTMSN), timeout_s=2)
            ring_with_payload = await send_mt(host, port, mt(flags=MtFlags.SEND_RING_ALERT), timeout_s=2)
            # Invalid IMEI and an over-absolute-maximum payload can only be sent as hand-built bytes.
            bad_imei = decode_mt_confirmation(
                await exchange(
                    port,
                    bytes.fromhex("01 001c 41 0015") + b"Msg2" + b"30023406390419X\x00\x00" + b"B\x00\x01x",
                )
            )
            huge_payload = b"B\x07\xd0" + b"x" * 2000
            huge = decode_mt_confirmation(
                await exchange(
                    port, b"\x01\x07\xeb" + b"A\x00\x15Msg3" + IMEI.encode() + b"\x00\x00" + huge_payload
                )
            )
            garbage = decode_mt_confirmation(
                await exchange(port, b"\x01\x00\x03\x41\x00\x05", close_write=True)
            )
        finally:
            await network.stop()
        assert too_large.status == -3 and too_large.auto_id == 0 and not too_large.ok
        assert unknown.status == -2
        assert missing.status == -4
        assert bad_mtmsn.status == -11
        assert ring_with_payload.status == -7
        assert (bad_imei.client_message_id, bad_imei.imei, bad_imei.status) == (
            b"Msg2",
            "30023406390419X",
            -1,
        )
        assert (huge.client_message_id, huge.imei, huge.status) == (b"Msg3", IMEI, -3)
        assert garbage.status == -7
        assert network.mt_queue_length(IMEI) == 0
        assert network.stats["mt_rejected"] == 8

    run(scenario())


def test_mt_queue_full_and_flush() -> None:
    async def scenario() -> None:
        network = await started_network()
        host, port = network.mt_address
        limit = PROFILE.limits.mt_queue_max
        try:
            statuses = [(await send_mt(host, port, mt(bytes([i])), timeout_s=2)).status for i in range(limit)]
            full = await send_mt(host, port, mt(b"one too many"), timeout_s=2)
            flushed = await send_mt(host, port, mt(None, flags=MtFlags.FLUSH_MT_QUEUE), timeout_s=2)
            after = await send_mt(host, port, mt(b"fresh"), timeout_s=2)
        finally:
            await network.stop()
        assert statuses == list(range(1, limit + 1))
        assert full == MtConfirmation(b"Msg1", IMEI, 0, -5)
        assert full.status_text == "MT queue full"
        assert flushed.status == 0 and flushed.ok
        assert after.status == 1
        assert network.queued_mt(IMEI) == [b"fresh"]

    run(scenario())


def test_ring_callbacks_fire_on_queued_mt_and_ring_alert_requests() -> None:
    async def scenario() -> None:
        clock = ManualClock(start=1000.0)
        network = await started_network(clock)
        rings: list[tuple[str, float]] = []
        async_rings: list[str] = []

        async def async_ring(imei: str, now: float) -> None:
            await asyncio.sleep(0)
            async_rings.append(imei)

        def broken_ring(imei: str, now: float) -> Awaitable[None] | None:
            raise RuntimeError("modem gone")

        network.add_ring_callback(broken_ring)
        network.on_mt_queued(lambda imei, now: rings.append((imei, now)))
        network.add_ring_callback(async_ring)
        host, port = network.mt_address
        network.session(IMEI, None, 0, clock.now())  # registered: ring alerts can reach it
        try:
            await send_mt(host, port, mt(b"ding"), timeout_s=2)
            clock.advance(5)
            ring_only = await send_mt(host, port, mt(None, flags=MtFlags.SEND_RING_ALERT), timeout_s=2)
            await send_mt(host, port, mt(b"x" * 1000), timeout_s=2)  # rejected: no ring
        finally:
            await network.stop()
        assert ring_only.status == 0
        assert rings == [(IMEI, 1000.0), (IMEI, 1005.0)]
        assert async_rings == [IMEI, IMEI]
        assert network.mt_queue_length(IMEI) == 1

    run(scenario())


def test_ring_alert_requests_answer_minus_9_before_registration_and_minus_8_when_disabled() -> None:
    async def scenario() -> None:
        network = await started_network(ManualClock(start=1000.0))
        rings: list[str] = []
        network.add_ring_callback(lambda imei, now: rings.append(imei))
        host, port = network.mt_address
        try:
            ring = mt(None, flags=MtFlags.SEND_RING_ALERT)
            not_attached = await send_mt(host, port, ring, timeout_s=2)
            network.session(IMEI, None, 0, 1000.0)
            attached = await send_mt(host, port, ring, timeout_s=2)
            network.ring_alerts_disabled.add(IMEI)
            disabled = await send_mt(host, port, ring, timeout_s=2)
            with_payload = await send_mt(host, port, mt(b"still queued"), timeout_s=2)
        finally:
            await network.stop()
        assert (not_attached.status, attached.status, disabled.status) == (-9, 0, -8)
        assert with_payload.status == 1  # -8/-9 only answer ring-alert requests
        assert rings == [IMEI, IMEI]

    run(scenario())


def test_assigned_mtmsn_priority_and_mtmsn_in_the_mo_header() -> None:
    async def scenario() -> None:
        clock = ManualClock(start=0.0)
        shore = Shore()
        async with DirectIpMoServer(HOST, 0, shore, read_timeout_s=2) as server:
            network = IridiumNetwork(clock=clock, shore=[(HOST, server.port)], imeis={IMEI: PROFILE.name})
            async with network:
                host, port = network.mt_address
                await send_mt(host, port, mt(b"routine"), timeout_s=2)
                urgent = await send_mt(
                    host,
                    port,
                    mt(
                        b"urgent",
                        cid=(300).to_bytes(4, "big"),
                        flags=MtFlags.ASSIGN_MTMSN | MtFlags.HIGH_PRIORITY,
                        priority=1,
                    ),
                    timeout_s=2,
                )
                assert urgent.status == 1  # jumped ahead of the default-priority message
                delivery = network.session(IMEI, b"mo", 9, clock.now())
                await until(lambda: len(shore.received) == 1)
        assert (delivery.payload, delivery.mtmsn, delivery.queued) == (b"urgent", 300, 1)
        assert shore.received[0].header.mtmsn == 300

    run(scenario())


def test_attach_rings_a_modem_emulator() -> None:
    class FakeModem:
        imei = OTHER_IMEI
        profile = load_profile("iridium-9602")

        def __init__(self) -> None:
            self.rings: list[float] = []

        def ring_alert(self, now: float) -> None:
            self.rings.append(now)

    async def scenario() -> FakeModem:
        modem = FakeModem()
        network = await started_network(ManualClock(start=42.0))
        network.attach(modem)  # type: ignore[arg-type]
        try:
            host, port = network.mt_address
            assert (await send_mt(host, port, mt(b"hi", imei=OTHER_IMEI), timeout_s=2)).status == 1
            await send_mt(host, port, mt(b"not for the modem"), timeout_s=2)
        finally:
            await network.stop()
        assert network.imeis[OTHER_IMEI] == "iridium-9602"
        return modem

    assert run(scenario()).rings == [42.0]
