"""IDP messaging API: strict parsing of its JSON (any garbage is a counted rejection), the poller's
persisted high-water mark (a restart neither skips nor repeats), forward submissions and statuses,
and the shore service end to end: return messages polled over real HTTP out through Mosquitto, a
reply submitted with the Seabridge SIN."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import pytest
import uvicorn
from hypothesis import given, settings
from hypothesis import strategies as st
from relay_kit import Collector, RunningShore, ShoreKeys, VesselSender, make_relay, shore_config
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from common.clock import ManualClock
from firmware_profiles import load_profile
from shore.archive import Archive
from shore.idp_poller import (
    IdpApiError,
    IdpClient,
    IdpPoller,
    parse_forward_statuses,
    parse_return_messages,
    parse_submit,
)
from shore.mqtt import MqttClient
from wire.frame import Direction, open_frame
from wire.items import RecordItem
from wire.records import CrewReply

pytestmark = pytest.mark.timeout(120)

SIN = load_profile("inmarsat-idp").limits.sin
MOBILE = "01097623SKYFB2C"


class FakeIdpApi:
    """The IDP messaging API v1 over real HTTP: a mailbox of return messages (``start_utc`` filter,
    pages of ``page`` messages with ``More``/``NextStartUTC``), forward submissions and statuses."""

    def __init__(self, page: int = 3) -> None:
        self.page = page
        self.returns: list[dict] = []
        self.forwards: list[dict] = []
        self.broken: bytes | None = None
        self.failed_forwards: set[int] = set()
        self.requests = 0
        routes = [
            Route("/get_return_messages.json/", self._returns),
            Route("/submit_messages.json/", self._submit, methods=["POST"]),
            Route("/get_forward_statuses.json/", self._statuses),
        ]
        self.server = uvicorn.Server(uvicorn.Config(Starlette(routes=routes), port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}/"

    def add(self, mobile: str, frame: bytes, utc: str, sin: int = SIN) -> None:
        self.returns.append(
            {
                "ID": 1000 + len(self.returns),
                "MessageUTC": utc,
                "ReceiveUTC": utc,
                "SIN": sin,
                "MobileID": mobile,
                "RawPayload": [sin, *frame],
                "RegionName": "AMERRB16",
                "OTAMessageSize": len(frame) + 1,
            }
        )

    async def _returns(self, request: Request) -> Response:
        self.requests += 1
        if self.broken is not None:
            return Response(self.broken, media_type="application/json")
        q = request.query_params
        if q.get("access_id") != "acct" or q.get("password") != "pw":
            return JSONResponse({"ErrorID": 21785})
        start = q["start_utc"]
        due = [m for m in self.returns if m["ReceiveUTC"] >= start]
        chunk = due[: self.page]
        more = len(due) > self.page
        next_start = due[self.page]["ReceiveUTC"] if more else (chunk[-1]["ReceiveUTC"] if chunk else start)
        return JSONResponse(
            {"ErrorID": 0, "More": more, "NextStartUTC": next_start, "Messages": chunk or None}
        )

    async def _submit(self, request: Request) -> Response:
        body = await request.json()
        subs = []
        for m in body["messages"]:
            self.forwards.append(m)
            subs.append(
                {
                    "ErrorID": 0,
                    "ForwardMessageID": 5000 + len(self.forwards),
                    "UserMessageID": m["UserMessageID"],
                    "DestinationID": m["DestinationID"],
                }
            )
        return JSONResponse({"SubmitForwardMessages_JResult": {"ErrorID": 0, "Submissions": subs}})

    async def _statuses(self, request: Request) -> Response:
        ids = [int(x) for x in request.query_params["fwIDs"].split(",")]
        return JSONResponse(
            {
                "ErrorID": 0,
                "More": False,
                "Statuses": [
                    {
                        "ForwardMessageID": i,
                        "State": 3 if i in self.failed_forwards else 1,
                        "IsClosed": True,
                        "ErrorID": 0,
                    }
                    for i in ids
                ],
            }
        )

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(5)


@pytest.fixture
def api():
    fake = FakeIdpApi()
    yield fake
    fake.stop()


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=200),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=10),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(
                    st.sampled_from(
                        ["ErrorID", "More", "Messages", "ID", "MobileID", "RawPayload", "NextStartUTC"]
                    ),
                    inner,
                    max_size=5,
                )
            ),
            max_leaves=20,
        ).map(lambda v: json.dumps(v).encode()),
    )
)
def test_any_api_answer_parses_or_raises_a_counted_reason(body: bytes) -> None:
    for parse in (parse_return_messages, parse_submit, parse_forward_statuses):
        try:
            parse(body)
        except IdpApiError as exc:
            assert exc.reason


def test_a_raw_payload_with_a_non_byte_or_too_many_bytes_is_refused() -> None:
    msg = {"ID": 1, "MobileID": "x", "RawPayload": [128, 256]}
    with pytest.raises(IdpApiError, match="not a byte"):
        parse_return_messages(json.dumps({"ErrorID": 0, "Messages": [msg]}).encode())
    msg["RawPayload"] = [1] * 10001
    with pytest.raises(IdpApiError):
        parse_return_messages(json.dumps({"ErrorID": 0, "Messages": [msg]}).encode())
    with pytest.raises(IdpApiError) as err:
        parse_return_messages(b'{"ErrorID": 16}')
    assert err.value.reason == "idp-error-16"
    with pytest.raises(IdpApiError) as err:
        parse_return_messages(b"[" * 100_000)
    assert err.value.reason == "malformed-json"


def _poller(archive: Archive, api: FakeIdpApi, sink, clock: ManualClock) -> tuple[IdpPoller, IdpClient]:
    client = IdpClient(api.url, "acct", "pw")
    return IdpPoller(client, archive, sink, clock, sin=SIN, start_utc="2026-11-25 00:00:00"), client


def test_a_restarted_poller_neither_skips_nor_repeats(tmp_path: Path, api: FakeIdpApi) -> None:
    keys = ShoreKeys(tmp_path / "keys")
    archive, relay = make_relay(tmp_path, keys)
    v = VesselSender(keys, MOBILE, "Idp One", profile="inmarsat-idp", network="inmarsat-idp")
    v.register(archive)
    clock = ManualClock(1.8e9)
    outcomes: list[str] = []
    crash_after: list[int] = []

    async def sink(mobile: str, msg_id: int, frame: bytes) -> str:
        if crash_after and len(outcomes) >= crash_after[0]:
            raise RuntimeError("process dies here")
        outcome = relay.handle_mo(mobile, msg_id, frame, "inmarsat-idp", clock.now())
        outcomes.append(outcome)
        return outcome

    for i in range(5):
        api.add(MOBILE, v.frame([v.catch_item(i)]), f"2026-11-25 10:00:0{i}")
    api.add(MOBILE, b"\x00" * 5, "2026-11-25 10:00:05", sin=0)  # a modem registration: not ours

    async def scenario() -> None:
        poller, client = _poller(archive, api, sink, clock)
        crash_after.append(4)  # dies in the middle of the second page
        with pytest.raises(RuntimeError):
            await poller.poll_once()
        await client.close()
        crash_after.clear()
        again, client = _poller(Archive(archive.location), api, sink, clock)
        assert await again.poll_once() == 2
        for i in range(5, 8):
            api.add(MOBILE, v.frame([v.catch_item(i)]), f"2026-11-25 10:01:0{i}")
        assert await again.poll_once() == 3
        assert await again.poll_once() == 0
        assert again.rejections["idp-foreign-sin"] == 1
        await client.close()

    asyncio.run(scenario())
    assert outcomes.count("accepted") == 8
    assert archive.query("SELECT COUNT(*) FROM records")[0][0] == 8
    assert archive.get_mark("idp:acct") == "2026-11-25 10:01:07"
    archive.close()


def test_malformed_api_answers_are_counted_and_polling_continues(tmp_path: Path, api: FakeIdpApi) -> None:
    archive = Archive(tmp_path / "a.sqlite3")

    async def sink(mobile: str, msg_id: int, frame: bytes) -> str:
        return "accepted"

    async def scenario() -> None:
        poller, client = _poller(archive, api, sink, ManualClock(1.8e9))
        for body in (b"{", b'{"ErrorID": 0, "Messages": [{"ID": "x"}]}', b'{"ErrorID": 21817}'):
            api.broken = body
            assert await poller.poll_once() == 0
        api.broken = None
        api.add(MOBILE, b"\x01\x02\x03", "2026-11-25 11:00:00")
        assert await poller.poll_once() == 1
        await client.close()
        return poller

    poller = asyncio.run(scenario())
    assert poller.rejections["malformed-json"] == 2 and poller.rejections["idp-error-21817"] == 1
    archive.close()


def test_forward_submissions_and_statuses_round_trip(api: FakeIdpApi) -> None:
    async def scenario() -> None:
        client = IdpClient(api.url, "acct", "pw")
        subs = await client.submit_messages([(MOBILE, 7, bytes([SIN, 1, 2, 3]))])
        assert subs[0].error_id == 0 and subs[0].user_message_id == 7
        statuses = await client.get_forward_statuses([subs[0].forward_id])
        assert statuses[0].state == 1 and statuses[0].is_closed
        await client.close()

    asyncio.run(scenario())
    assert api.forwards[0]["RawPayload"] == [SIN, 1, 2, 3]


def test_idp_traffic_end_to_end_through_the_shore_service(tmp_path: Path, api: FakeIdpApi, mosquitto) -> None:
    keys = ShoreKeys(tmp_path / "keys")
    cfg = shore_config(tmp_path, keys, broker_url=mosquitto.url)
    cfg.idp.base_url, cfg.idp.access_id, cfg.idp.password = api.url, "acct", "pw"
    cfg.idp.poll_s, cfg.idp.start_utc = 0.2, "2026-11-25 00:00:00"
    running = RunningShore(cfg)
    collector = Collector(mosquitto.url, "seabridge/v1/#")
    desk = MqttClient(mosquitto.url, "idp-desk")
    try:
        v = VesselSender(keys, MOBILE, "Idp Two", profile="inmarsat-idp", network="inmarsat-idp")
        v.register(running.service.archive)
        api.add(MOBILE, v.frame([v.epoch_item(), v.crew_item("via inmarsat")]), "2026-11-25 12:00:00")
        assert collector.wait_for("/up/crew", 1)[0]["text"] == "via inmarsat"
        desk.start()
        assert desk.wait_connected(10)
        desk.publish(
            "seabridge/v1/test-fleet/idp-two/down/crew", json.dumps({"member": 1, "text": "copy"}).encode()
        )
        deadline = time.monotonic() + 15
        texts: list[str] = []
        while time.monotonic() < deadline and not texts:
            for fwd in list(api.forwards):
                raw = bytes(fwd["RawPayload"])
                assert raw[0] == SIN and fwd["DestinationID"] == MOBILE
                _h, items = open_frame(v.key, raw[1:], Direction.MT)
                texts += [CrewReply.from_body(i.body).text for i in items if isinstance(i, RecordItem)]
            time.sleep(0.1)
        assert texts == ["copy"]
    finally:
        desk.stop()
        collector.stop()
        running.stop()


def test_a_forward_message_the_network_failed_to_deliver_is_submitted_again(
    tmp_path: Path, api: FakeIdpApi, mosquitto
) -> None:
    api.failed_forwards.add(5001)  # the first submission ends "delivery failed"
    keys = ShoreKeys(tmp_path / "keys")
    cfg = shore_config(tmp_path, keys, broker_url=mosquitto.url)
    cfg.idp.base_url, cfg.idp.access_id, cfg.idp.password = api.url, "acct", "pw"
    cfg.idp.poll_s, cfg.idp.start_utc = 0.2, "2026-11-25 00:00:00"
    running = RunningShore(cfg)
    desk = MqttClient(mosquitto.url, "idp-desk-2")
    try:
        v = VesselSender(keys, MOBILE, "Idp Three", profile="inmarsat-idp", network="inmarsat-idp")
        v.register(running.service.archive)
        desk.start()
        assert desk.wait_connected(10)
        time.sleep(0.3)
        desk.publish(
            "seabridge/v1/test-fleet/idp-three/down/crew", json.dumps({"member": 2, "text": "again"}).encode()
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(api.forwards) < 2:
            time.sleep(0.1)
        texts = []
        for fwd in api.forwards[:2]:
            _h, items = open_frame(v.key, bytes(fwd["RawPayload"])[1:], Direction.MT)
            texts += [CrewReply.from_body(i.body).text for i in items if isinstance(i, RecordItem)]
        assert texts == ["again", "again"]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            states = running.service.archive.query("SELECT ref, state FROM mt_submissions ORDER BY ref")
            if states == [("5001", "delivery-failed"), ("5002", "delivered")]:
                break
            time.sleep(0.1)
        assert states == [("5001", "delivery-failed"), ("5002", "delivered")]
    finally:
        desk.stop()
        running.stop()
