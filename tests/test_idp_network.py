"""The emulated IDP network's Messaging API over real HTTP: auth, high-water marks, submit and statuses."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

import httpx
import pytest

from common.clock import ManualClock
from firmware_profiles import load_profile
from simulators.idp_modem import IdpModemEmulator
from simulators.idp_network import (
    ERR_AUTH,
    ERR_PARAMETER,
    ERR_TIMESTAMP,
    ERR_UNKNOWN_DESTINATION,
    IdpNetwork,
    utc_text,
)
from simulators.link_model import LinkModel

pytestmark = pytest.mark.timeout(30)

PROFILE = load_profile("inmarsat-idp")
MOBILE = "01097623SKYFDA1"


def run(
    scenario: Callable[[IdpNetwork, IdpModemEmulator, httpx.AsyncClient, ManualClock], Awaitable[None]],
) -> None:
    async def main() -> None:
        clock = ManualClock()
        network = IdpNetwork(clock=clock, access_id="70000001", password="secret", page_size=3)
        modem = IdpModemEmulator(PROFILE, LinkModel(random.Random(1), "perfect"), network, mobile_id=MOBILE)
        network.attach(modem)
        async with network, httpx.AsyncClient(base_url=network.url, timeout=5) as http:
            await scenario(network, modem, http, clock)

    asyncio.run(main())


AUTH = {"access_id": "70000001", "password": "secret"}


def test_wrong_credentials_are_error_21785() -> None:
    async def scenario(
        net: IdpNetwork, modem: IdpModemEmulator, http: httpx.AsyncClient, clock: ManualClock
    ) -> None:
        r = await http.get(
            "get_return_messages.json/",
            params={"access_id": "70000001", "password": "x", "start_utc": "2025-01-01 00:00:00"},
        )
        assert r.json()["ErrorID"] == ERR_AUTH
        r = await http.post(
            "submit_messages.json/", json={"accessID": "nope", "password": "secret", "messages": []}
        )
        assert r.json()["SubmitForwardMessages_JResult"]["ErrorID"] == ERR_AUTH

    run(scenario)


def test_return_messages_page_with_high_water_marks_by_time_and_by_id() -> None:
    async def scenario(
        net: IdpNetwork, modem: IdpModemEmulator, http: httpx.AsyncClient, clock: ManualClock
    ) -> None:
        start = utc_text(clock.now())
        for i in range(5):
            net.return_message(MOBILE, bytes([128, i]), clock.now())
            clock.advance(1)
        r = await http.get("get_return_messages.json/", params={**AUTH, "start_utc": start})
        page = r.json()
        assert page["ErrorID"] == 0 and page["More"] is True
        assert [m["RawPayload"] for m in page["Messages"]] == [[128, 0], [128, 1], [128, 2]]
        first = page["Messages"][0]
        assert first["SIN"] == 128 and first["MobileID"] == MOBILE and first["OTAMessageSize"] == 2
        assert first["ReceiveUTC"] == start
        r = await http.get("get_return_messages.json/", params={**AUTH, "start_utc": page["NextStartUTC"]})
        page2 = r.json()
        assert page2["More"] is False
        assert [m["RawPayload"][1] for m in page2["Messages"]] == [3, 4]
        r = await http.get("get_return_messages.json/", params={**AUTH, "from_id": page["NextStartID"]})
        assert [m["RawPayload"][1] for m in r.json()["Messages"]] == [3, 4]
        r = await http.get("get_return_messages.json/", params={**AUTH, "from_id": page2["NextStartID"]})
        assert r.json()["Messages"] is None

    run(scenario)


def test_bad_parameters_have_their_error_ids() -> None:
    async def scenario(
        net: IdpNetwork, modem: IdpModemEmulator, http: httpx.AsyncClient, clock: ManualClock
    ) -> None:
        r = await http.get("get_return_messages.json/", params={**AUTH, "start_utc": "yesterday"})
        assert r.json()["ErrorID"] == ERR_TIMESTAMP
        r = await http.get("get_return_messages.json/", params=AUTH)
        assert r.json()["ErrorID"] == ERR_PARAMETER
        r = await http.post(
            "submit_messages.json/",
            json={
                "accessID": "70000001",
                "password": "secret",
                "messages": [{"DestinationID": "X", "RawPayload": [128]}],
            },
        )
        assert (
            r.json()["SubmitForwardMessages_JResult"]["Submissions"][0]["ErrorID"] == ERR_UNKNOWN_DESTINATION
        )
        too_big = list(bytes(PROFILE.limits.mt_max_bytes + 1))
        r = await http.post(
            "submit_messages.json/",
            json={
                "accessID": "70000001",
                "password": "secret",
                "messages": [{"DestinationID": MOBILE, "RawPayload": too_big}],
            },
        )
        assert r.json()["SubmitForwardMessages_JResult"]["Submissions"][0]["ErrorID"] == ERR_PARAMETER

    run(scenario)


def test_submitted_forward_message_reaches_the_modem_and_its_status_closes() -> None:
    async def scenario(
        net: IdpNetwork, modem: IdpModemEmulator, http: httpx.AsyncClient, clock: ManualClock
    ) -> None:
        r = await http.post(
            "submit_messages.json/",
            json={
                "accessID": "70000001",
                "password": "secret",
                "messages": [{"DestinationID": MOBILE, "UserMessageID": 9, "RawPayload": [128, 1, 2, 3]}],
            },
        )
        [sub] = r.json()["SubmitForwardMessages_JResult"]["Submissions"]
        assert sub["ErrorID"] == 0 and sub["UserMessageID"] == 9 and sub["OTAMessageSize"] == 4
        fid = sub["ForwardMessageID"]
        r = await http.get("get_forward_statuses.json/", params={**AUTH, "fwIDs": str(fid)})
        assert r.json()["Statuses"][0]["State"] == 0 and r.json()["Statuses"][0]["IsClosed"] is False
        clock.advance(5)
        modem.tick(clock.now())
        clock.advance(5)
        modem.tick(clock.now())
        assert [f.raw for f in modem.forwards] == [bytes([128, 1, 2, 3])]
        r = await http.get("get_forward_statuses.json/", params={**AUTH, "fwIDs": str(fid)})
        status = r.json()["Statuses"][0]
        assert (status["State"], status["IsClosed"], status["ForwardMessageID"]) == (1, True, fid)
        r = await http.get("get_forward_messages.json/", params={**AUTH, "fwIDs": str(fid)})
        assert r.json()["Messages"][0]["RawPayload"] == [128, 1, 2, 3]
        r = await http.get("get_mobiles_paged.json/", params=AUTH)
        assert r.json()["Mobiles"][0]["ID"] == MOBILE
        r = await http.get("info_utc_time.json/")
        assert r.json() == utc_text(clock.now())

    run(scenario)


async def _submit(http: httpx.AsyncClient, raw: list[int]) -> dict:  # type: ignore[type-arg]
    r = await http.post(
        "submit_messages.json/",
        json={
            "accessID": "70000001",
            "password": "secret",
            "messages": [{"DestinationID": MOBILE, "RawPayload": raw}],
        },
    )
    [sub] = r.json()["SubmitForwardMessages_JResult"]["Submissions"]
    return sub  # type: ignore[no-any-return]


async def _state(http: httpx.AsyncClient, fid: int) -> tuple[int, bool]:
    r = await http.get("get_forward_statuses.json/", params={**AUTH, "fwIDs": str(fid)})
    status = r.json()["Statuses"][0]
    return status["State"], status["IsClosed"]


def test_forward_messages_can_be_cancelled_before_delivery_and_time_out_after_their_lifetime() -> None:
    async def scenario(
        net: IdpNetwork, modem: IdpModemEmulator, http: httpx.AsyncClient, clock: ManualClock
    ) -> None:
        modem.link.forced_signal = 0  # out of reach: nothing is delivered
        first, second = await _submit(http, [128, 1]), await _submit(http, [128, 2])
        r = await http.get(
            "submit_cancelations.json/", params={**AUTH, "fwIDs": str(first["ForwardMessageID"])}
        )
        [cancelled] = r.json()["Submissions"]
        assert cancelled["ErrorID"] == 0
        assert await _state(http, first["ForwardMessageID"]) == (5, True)
        clock.advance(net.forward_lifetime_s + 1)
        assert await _state(http, second["ForwardMessageID"]) == (4, True)
        r = await http.get(
            "submit_cancelations.json/", params={**AUTH, "fwIDs": str(second["ForwardMessageID"])}
        )
        assert r.json()["Submissions"][0]["ErrorID"] == 17685  # closed: cannot cancel
        modem.link.forced_signal = None
        modem.tick(clock.now())
        clock.advance(5)
        modem.tick(clock.now())
        assert modem.forwards == []

    run(scenario)


def test_a_low_power_terminal_gets_forward_messages_at_its_wakeup_slot_and_at_most_5000_bytes() -> None:
    async def scenario(
        net: IdpNetwork, modem: IdpModemEmulator, http: httpx.AsyncClient, clock: ManualClock
    ) -> None:
        modem.sregs[51] = 4  # wake every 10 minutes
        clock.advance(1)  # just after a slot: the next is almost 10 minutes away
        too_long = await _submit(http, [128] + [0] * 5000)
        assert too_long["ErrorID"] == 21797 and too_long["ForwardMessageID"] == 0
        sub = await _submit(http, [128, 7])
        slot = modem.next_wakeup_slot(clock.now())
        assert sub["ErrorID"] == 0 and sub["TerminalWakeupPeriod"] == 4
        assert sub["ScheduledSendUTC"] == utc_text(slot) and 590 < slot - clock.now() <= 600
        while clock.now() + 30 < slot:
            clock.advance(30)
            modem.tick(clock.now())
            assert modem.forwards == [], "a sleeping terminal does not receive"
        clock.advance(slot - clock.now())
        modem.tick(clock.now())
        clock.advance(5)
        modem.tick(clock.now())
        assert [f.raw for f in modem.forwards] == [bytes([128, 7])]
        modem.sregs[51] = 0  # always on: the full 10 000 bytes are accepted
        assert (await _submit(http, [128] + [0] * 5000))["ErrorID"] == 0

    run(scenario)
