"""The RockBLOCK-style service emulator: webhook POSTs with a verifiable JWT, retries, and the MT send API."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import httpx
import jwt
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from common.clock import SystemClock
from firmware_profiles import load_profile
from simulators.iridium_modem import IridiumModemEmulator
from simulators.link_model import LinkModel
from simulators.rockblock_network import RockBlockNetwork, transmit_time_text

pytestmark = pytest.mark.timeout(30)

PROFILE = load_profile("iridium-9603")
IMEI = "300234010753370"


class Shore:
    """A webhook receiver that answers the given HTTP statuses in turn (then 200)."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = list(statuses)
        self.forms: list[dict[str, str]] = []
        self.json_bodies = 0
        self.got = asyncio.Event()
        self.app = Starlette(routes=[Route("/mo", self.hook, methods=["POST"])])

    async def hook(self, request: Request) -> PlainTextResponse:
        if request.headers.get("content-type", "").startswith("application/json"):
            self.forms.append({k: str(v) for k, v in (await request.json()).items()})
            self.json_bodies += 1
        else:
            self.forms.append({k: str(v) for k, v in (await request.form()).items()})
        status = self.statuses.pop(0) if self.statuses else 200
        if status == 200:
            self.got.set()
        return PlainTextResponse("", status_code=status)


def run(
    statuses: list[int],
    scenario: Callable[[RockBlockNetwork, IridiumModemEmulator, Shore, httpx.AsyncClient], Awaitable[None]],
    delivery_format: str = "HTTP_POST",
) -> None:
    async def main() -> None:
        shore = Shore(statuses)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(shore.app, log_level="warning", lifespan="off"))
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            await asyncio.sleep(0.01)
        clock = SystemClock()
        network = RockBlockNetwork(
            clock=clock,
            webhook_url=f"http://127.0.0.1:{port}/mo",
            retry_scale=0.01,
            username="u",
            password="p",
            delivery_format=delivery_format,
        )
        modem = IridiumModemEmulator(
            PROFILE, LinkModel(random.Random(1), "perfect"), network, imei=IMEI, registered=True
        )
        network.attach(modem)
        try:
            async with network, httpx.AsyncClient(timeout=5) as http:
                await scenario(network, modem, shore, http)
        finally:
            server.should_exit = True
            await serving

    asyncio.run(main())


def test_transmit_time_format_is_yy_mm_dd() -> None:
    t = datetime(2021, 10, 31, 10, 41, 50, tzinfo=UTC).timestamp()
    assert transmit_time_text(t) == "21-10-31 10:41:50"


def test_mo_is_posted_with_every_field_and_a_jwt_the_public_key_verifies() -> None:
    async def scenario(
        net: RockBlockNetwork, modem: IridiumModemEmulator, shore: Shore, http: httpx.AsyncClient
    ) -> None:
        net.set_location(IMEI, -43.5212, 172.6049, 2.0)
        now = SystemClock().now()
        net.session(IMEI, b"\x01\x02hello", 7, now)
        net.session(IMEI, None, 8, now)  # a mailbox check is not posted
        await asyncio.wait_for(shore.got.wait(), 5)
        [form] = shore.forms
        assert form["imei"] == IMEI and form["momsn"] == "7" and form["data"] == "010268656c6c6f"
        assert form["transmit_time"] == transmit_time_text(now)
        assert (form["iridium_latitude"], form["iridium_longitude"], form["iridium_cep"]) == (
            "-43.5212",
            "172.6049",
            "2.0",
        )
        assert form["device_type"] == "ROCKBLOCK" and form["serial"]
        claims = jwt.decode(form["JWT"], net.public_key_pem, algorithms=["RS256"], issuer="Rock 7")
        assert {k: claims[k] for k in form if k != "JWT"} == {k: v for k, v in form.items() if k != "JWT"}
        assert claims["iss"] == "Rock 7"
        other = RockBlockNetwork(clock=SystemClock())
        with pytest.raises(jwt.InvalidSignatureError):
            jwt.decode(form["JWT"], other.public_key_pem, algorithms=["RS256"])

    run([], scenario)


def test_the_json_delivery_format_posts_the_same_signed_fields_as_one_object() -> None:
    async def scenario(
        net: RockBlockNetwork, modem: IridiumModemEmulator, shore: Shore, http: httpx.AsyncClient
    ) -> None:
        net.session(IMEI, b"json please", 3, SystemClock().now())
        await asyncio.wait_for(shore.got.wait(), 5)
        [fields] = shore.forms
        assert shore.json_bodies == 1
        assert fields["momsn"] == "3" and fields["data"] == b"json please".hex()
        claims = jwt.decode(fields["JWT"], net.public_key_pem, algorithms=["RS256"], issuer="Rock 7")
        assert claims["data"] == fields["data"]

    run([], scenario, delivery_format="HTTP_JSON")


def test_a_non_200_answer_is_retried_until_the_shore_takes_it() -> None:
    async def scenario(
        net: RockBlockNetwork, modem: IridiumModemEmulator, shore: Shore, http: httpx.AsyncClient
    ) -> None:
        net.session(IMEI, b"frame", 1, SystemClock().now())
        await asyncio.wait_for(shore.got.wait(), 10)
        while net.pending_mo():  # the answer is in; let the sender record it
            await asyncio.sleep(0.01)
        assert len(shore.forms) == 3
        assert [a.status for a in net.attempts] == [500, 503, 200]
        assert net.stats["mo_delivered"] == 1 and net.pending_mo() == 0

    run([500, 503], scenario)


def test_mt_api_answers_ok_or_failed_with_the_documented_codes_and_rings_the_modem() -> None:
    async def scenario(
        net: RockBlockNetwork, modem: IridiumModemEmulator, shore: Shore, http: httpx.AsyncClient
    ) -> None:
        async def mt(**fields: str) -> str:
            r = await http.post(net.mt_url, data={"imei": IMEI, "username": "u", "password": "p", **fields})
            assert r.status_code == 200
            return r.text

        assert (await mt(data="414243")).startswith("OK,")
        assert modem.ra_flag  # the queued MT rang the modem
        assert (await mt(data="4445")).startswith("OK,")
        assert net.queued_mt(IMEI) == [b"ABC", b"DE"]
        assert (await mt(data="46", flush="yes")).startswith("OK,")
        assert net.queued_mt(IMEI) == [b"F"]
        assert await mt(data="41", password="wrong") == "FAILED,10,Invalid login credentials"
        assert (await mt(data="41", imei="300234010000000")).startswith("FAILED,11,")
        assert (await mt(data="4g")).startswith("FAILED,14,")
        assert (await mt(data="00" * (PROFILE.mt_max_bytes + 1))).startswith("FAILED,15,")
        assert (await mt(data="")).startswith("FAILED,16,")
        delivery = net.session(IMEI, None, 1, SystemClock().now())
        assert (delivery.payload, delivery.mtmsn, delivery.queued) == (b"F", 3, 0)
        for _ in range(PROFILE.limits.mt_queue_max):
            assert (await mt(data="00")).startswith("OK,")
        assert (await mt(data="00")).startswith("FAILED,99,")

    run([], scenario)
