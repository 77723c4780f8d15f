"""``seabridge sim modem`` as a subprocess: read the printed endpoints, drive the pty, use the network side."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator

import httpx
import pytest

from common.clock import SystemClock
from firmware_profiles import load_profile, profile_names
from gateway.modem import IdpModem, IridiumModem, open_modem
from shore.directip import MtMessage, decode_mo, encode_mo_confirmation
from shore.directip_server import read_message, send_mt

pytestmark = pytest.mark.timeout(60)

IMEI = "300234010000042"


@contextlib.asynccontextmanager
async def sim_modem(*args: str, lines: int) -> AsyncIterator[dict[str, str]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "seabridge.cli",
        "sim",
        "modem",
        *args,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    try:
        endpoints: dict[str, str] = {}
        for _ in range(lines):
            raw = await asyncio.wait_for(proc.stdout.readline(), 20)
            name, sep, value = raw.decode().strip().partition(": ")
            assert sep, f"unexpected output line {raw!r}"
            endpoints[name] = value
        yield endpoints
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 10)
        assert code == 0


def test_list_profiles_prints_every_profile_name() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "seabridge.cli", "sim", "modem", "--list-profiles"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert out.stdout.split() == profile_names()


def test_iridium_9603_perfect_link_delivers_mo_by_directip_and_mt_from_the_printed_server() -> None:
    async def main() -> None:
        delivered: asyncio.Queue[bytes] = asyncio.Queue()

        async def shore(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            data = await read_message(reader, timeout_s=5)
            writer.write(encode_mo_confirmation(True))
            await writer.drain()
            writer.close()
            await delivered.put(data)

        server = await asyncio.start_server(shore, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        args = ["--profile", "iridium-9603", "--link", "perfect", "--imei", IMEI, "--seed", "1"]
        async with server, sim_modem(*args, "--directip-mo", f"127.0.0.1:{port}", lines=2) as ep:
            assert ep["pty"].startswith("/dev/")
            modem = open_modem(ep["pty"], load_profile("iridium-9603"), SystemClock())
            assert isinstance(modem, IridiumModem)
            await modem.open()
            try:
                assert modem.imei == IMEI
                report = await modem.session(b"catch: 40 kg tuna")
                assert report.mo_sent and report.error is None
                mo = decode_mo(await asyncio.wait_for(delivered.get(), 10))
                assert (mo.header.imei, mo.payload) == (IMEI, b"catch: 40 kg tuna")

                host, _, mt_port = ep["directip-mt"].rpartition(":")
                confirmation = await send_mt(host, int(mt_port), MtMessage(b"msg1", IMEI, payload=b"reply 1"))
                assert confirmation.status == 1
                await asyncio.wait_for(modem.ring_event.wait(), 10)
                report = await modem.session(None, answer_ring=True)
                assert report.mt_messages == [b"reply 1"]
            finally:
                await modem.close()

    asyncio.run(main())


def test_idp_profile_serves_the_pty_and_the_messaging_api() -> None:
    async def main() -> None:
        args = [
            "--profile",
            "inmarsat-idp",
            "--link",
            "perfect",
            "--seed",
            "2",
            "--mobile-id",
            "01234567SKY89AB",
        ]
        async with sim_modem(*args, lines=3) as ep, httpx.AsyncClient(timeout=10) as http:
            access_id, _, password = ep["api-credentials"].partition(":")
            profile = load_profile("inmarsat-idp")
            modem = IdpModem(ep["pty"], profile, SystemClock(), poll_interval_s=0.2)
            await modem.open()
            try:
                assert modem.mobile_id == "01234567SKY89AB"
                report = await modem.session(b"catch: 12 kg squid")
                assert report.mo_sent and report.error is None  # queued in the terminal, which sends it
                for _ in range(100):  # bounded: the perfect link sends it within a second
                    r = await http.get(
                        ep["api"] + "get_return_messages.json/",
                        params={
                            "access_id": access_id,
                            "password": password,
                            "start_utc": "2000-01-01 00:00:00",
                        },
                    )
                    page = r.json()
                    if page["Messages"]:
                        break
                    await asyncio.sleep(0.1)
                assert page["ErrorID"] == 0
                [message] = page["Messages"]
                assert message["MobileID"] == "01234567SKY89AB"
                assert (
                    bytes(message["RawPayload"]) == bytes([profile.limits.sin or 0]) + b"catch: 12 kg squid"
                )

                r = await http.post(
                    ep["api"] + "submit_messages.json/",
                    json={
                        "accessID": access_id,
                        "password": password,
                        "messages": [
                            {
                                "DestinationID": "01234567SKY89AB",
                                "UserMessageID": 7,
                                "RawPayload": list(bytes([profile.limits.sin or 0]) + b"reply"),
                            }
                        ],
                    },
                )
                [submission] = r.json()["SubmitForwardMessages_JResult"]["Submissions"]
                assert submission["ErrorID"] == 0
                await asyncio.wait_for(modem.ring_event.wait(), 10)
                report = await modem.session(None, answer_ring=True)
                assert report.mt_messages == [b"reply"]
                r = await http.get(
                    ep["api"] + "get_forward_statuses.json/",
                    params={
                        "access_id": access_id,
                        "password": password,
                        "fwIDs": submission["ForwardMessageID"],
                    },
                )
                [status] = r.json()["Statuses"]
                assert (status["State"], status["IsClosed"]) == (1, True)
            finally:
                await modem.close()

    asyncio.run(main())
