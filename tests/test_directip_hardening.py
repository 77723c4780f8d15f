"""The DirectIP MO port under attack: idle and trickling connections, floods from one address, peers
outside the accept-list. Real TCP on loopback (Linux routes all of 127.0.0.0/8 to lo, so a client can
speak from 127.0.0.2 as "another address")."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from shore.config import ShoreConfig
from shore.directip import MoMessage
from shore.directip_server import LOOPBACK_ONLY, DirectIpMoServer, parse_networks, send_mo

HOST = "127.0.0.1"
OTHER = "127.0.0.2"
VECTOR_DIR = Path(__file__).parent / "vectors" / "directip"
MO_VECTOR = (VECTOR_DIR / "0-mo.sbd").read_bytes()
CONFIRM_OK = bytes([0x01, 0x00, 0x04, 0x05, 0x00, 0x01, 0x01])
OLD_LIMIT = 64  # the connection limit the idle-connection attack exhausted

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T], timeout_s: float = 30.0) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout_s)

    return asyncio.run(bounded())


class Shore:
    def __init__(self) -> None:
        self.received: list[MoMessage] = []

    async def __call__(self, message: MoMessage) -> bool:
        self.received.append(message)
        return True


async def deliver(port: int, source: str = HOST) -> bytes:
    """One real delivery from ``source``: the whole answer the server sends before closing."""
    reader, writer = await asyncio.open_connection(HOST, port, local_addr=(source, 0))
    try:
        writer.write(MO_VECTOR)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 5)
    except ConnectionResetError:
        return b""
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def idle_connections(port: int, count: int, source: str) -> list[asyncio.StreamWriter]:
    writers = []
    for _ in range(count):
        _reader, writer = await asyncio.open_connection(HOST, port, local_addr=(source, 0))
        writers.append(writer)
    return writers


async def close_all(writers: list[asyncio.StreamWriter]) -> None:
    for w in writers:
        w.close()
    for w in writers:
        with contextlib.suppress(OSError):
            await w.wait_closed()


async def until(condition: Any, timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.005)


@pytest.mark.parametrize("source", [HOST, OTHER], ids=["same-address", "other-address"])
def test_more_idle_connections_than_the_old_limit_do_not_block_a_real_delivery(source: str) -> None:
    """70 silent connections (the attack used 66 against a limit of 64), then a real delivery from
    127.0.0.1: it is confirmed at once, long before any read deadline."""

    async def scenario() -> None:
        shore = Shore()
        async with DirectIpMoServer(HOST, 0, shore, read_timeout_s=20, idle_timeout_s=20) as server:
            idle = await idle_connections(server.port, OLD_LIMIT + 6, source)
            await until(lambda: server.counters["connections"] == OLD_LIMIT + 6)
            assert server.active_connections <= server.max_per_peer
            loop = asyncio.get_running_loop()
            started = loop.time()
            assert await deliver(server.port) == CONFIRM_OK
            assert loop.time() - started < 5, "the delivery waited for idle connections to time out"
            assert [m.payload for m in shore.received] == [b"test message from pete"]
            assert server.counters["evicted"] >= OLD_LIMIT + 6 - server.max_per_peer
            assert server.counters["refused"] == 0
            await close_all(idle)

    run(scenario())


def test_a_flood_from_many_addresses_still_leaves_room_for_a_delivery() -> None:
    async def scenario() -> None:
        shore = Shore()
        async with DirectIpMoServer(
            HOST, 0, shore, read_timeout_s=20, max_connections=16, max_per_peer=8
        ) as server:
            idle = []
            for n in range(2, 6):  # 127.0.0.2 … 127.0.0.5, 8 each: 32 connections for 16 places
                idle += await idle_connections(server.port, 8, f"127.0.0.{n}")
            await until(lambda: server.counters["connections"] == 32)
            assert server.active_connections <= 16
            assert await deliver(server.port) == CONFIRM_OK
            assert len(shore.received) == 1
            await close_all(idle)

    run(scenario())


def test_idle_and_trickling_peers_are_cut_by_their_deadlines() -> None:
    async def scenario() -> None:
        async with DirectIpMoServer(HOST, 0, Shore(), read_timeout_s=0.6, idle_timeout_s=0.2) as server:
            reader, writer = await asyncio.open_connection(HOST, server.port)
            loop = asyncio.get_running_loop()
            started = loop.time()
            assert await asyncio.wait_for(reader.read(), 5) == b""  # silent: closed after the idle limit
            assert loop.time() - started < 0.55
            writer.close()
            reader, writer = await asyncio.open_connection(HOST, server.port)
            started = loop.time()
            for byte in MO_VECTOR[:20]:  # one byte every 0.1 s: never idle, never finished
                if reader.at_eof():
                    break
                writer.write(bytes([byte]))
                with contextlib.suppress(ConnectionResetError):
                    await writer.drain()
                await asyncio.sleep(0.1)
            with contextlib.suppress(ConnectionResetError):
                assert await asyncio.wait_for(reader.read(), 5) == b""
            assert loop.time() - started < 2.5
            writer.close()
            assert server.counters["timeouts"] == 2
            assert await deliver(server.port) == CONFIRM_OK

    run(scenario())


def test_a_peer_outside_the_accept_list_is_closed_unread_and_counted() -> None:
    async def scenario() -> None:
        shore = Shore()
        async with DirectIpMoServer(HOST, 0, shore, accept_from=[f"{OTHER}/32"]) as server:
            assert await deliver(server.port, HOST) == b""
            assert shore.received == []
            assert server.counters["not_allowed"] == 1
            assert await deliver(server.port, OTHER) == CONFIRM_OK
            assert len(shore.received) == 1
            assert await send_mo(HOST, server.port, MO_VECTOR, timeout_s=2, wait_confirmation=False)
            await until(lambda: server.counters["not_allowed"] == 2)
            assert len(shore.received) == 1

    run(scenario())


def test_connections_in_the_handler_are_never_cut_to_make_room() -> None:
    async def scenario() -> None:
        release = asyncio.Event()

        async def slow(message: MoMessage) -> bool:
            await release.wait()
            return True

        async with DirectIpMoServer(HOST, 0, slow, max_connections=2, max_per_peer=2) as server:
            busy = [asyncio.create_task(deliver(server.port)) for _ in range(2)]
            await until(lambda: server.active_connections == 2 and server._oldest_waiting(None) is None)
            assert await deliver(server.port) == b""  # no room: refused, the busy ones keep going
            release.set()
            assert await asyncio.gather(*busy) == [CONFIRM_OK, CONFIRM_OK]
            assert (server.counters["refused"], server.counters["evicted"]) == (1, 0)

    run(scenario())


def test_the_shore_listens_on_loopback_and_accepts_only_loopback_unless_configured() -> None:
    cfg = ShoreConfig()
    assert cfg.directip.mo_listen.startswith("127.0.0.1:")
    assert tuple(cfg.directip.mo_accept_from) == LOOPBACK_ONLY
    assert all(not n.is_global for n in parse_networks(cfg.directip.mo_accept_from))
    with pytest.raises(ValueError, match="not an address"):
        parse_networks(["12.47.179.11", "iridium.com"])
