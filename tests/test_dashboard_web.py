"""The dashboard over real HTTP (uvicorn on a loopback port) with a real SQLite archive: who sees
what, CSRF, lock-out, the audit log, the live stream, replies, alerts and catch exports."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.exceptions import HTTPException
from starlette.requests import Request

from common.clock import ManualClock
from common.web import BAD_ENCODING, MAX_FORM_BYTES, FormRefused, read_form
from shore.archive import Archive
from shore.dashboard import create_app
from shore.dashboard.auth import LockoutPolicy, Role
from shore.dashboard.data import DashboardData
from shore.dashboard.pages import form_of
from wire.records import PERSONAL_ALERT_TEXT

PASSWORD = "correct horse battery"
IMEI_A, IMEI_B = "300234010753370", "300234010753371"


class Dashboard:
    def __init__(self, archive: Archive, url: str, published: list[tuple[str, bytes]], clock: ManualClock):
        self.archive = archive
        self.url = url
        self.published = published
        self.clock = clock
        self.data = DashboardData(archive)

    def event(self, topic: str, payload: dict[str, Any], retain: bool = False) -> None:
        now = self.clock.now()
        with self.archive.tx() as db:
            db.execute(
                "INSERT INTO events (topic, payload, retain, created) VALUES (?, ?, ?, ?)",
                (topic, json.dumps(payload).encode(), int(retain), now),
            )

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10.0)

    def login(self, name: str, password: str = PASSWORD) -> tuple[httpx.Client, str]:
        web = self.client()
        page = web.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        r = web.post("/login", data={"csrf": token, "username": name, "password": password, "next": "/"})
        assert r.status_code == 303, r.text
        assert "error" not in r.headers["location"], r.headers["location"]
        home = web.get("/", follow_redirects=True)
        csrf = re.search(r'data-csrf="([^"]+)"', home.text).group(1)  # type: ignore[union-attr]
        return web, csrf


@pytest.fixture(scope="module")
def template_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Vessels and users made once (password hashing is deliberately slow); each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "archive.sqlite3"
    archive = Archive(path)
    archive.register_vessel(IMEI_A, "Sea Star 7", bytes(32), "north", "iridium-9603")
    archive.register_vessel(IMEI_B, "Moon Ray", bytes(32), "south", "iridium-9603")
    data = DashboardData(archive)
    data.add_user("admin", Role.ADMINISTRATOR, PASSWORD, None, 0.0)
    data.add_user("desk", Role.HOTLINE, PASSWORD, None, 0.0)
    data.add_user("northowner", Role.OWNER, PASSWORD, "north", 0.0)
    data.add_user("moonowner", Role.OWNER, PASSWORD, "south", 0.0)
    data.add_user("watcher", Role.VIEWER, PASSWORD, None, 0.0)
    archive.close()
    return path


@pytest.fixture
def dash(tmp_path: Path, template_archive: Path) -> Iterator[Dashboard]:
    shutil.copy(template_archive, tmp_path / "archive.sqlite3")
    archive = Archive(tmp_path / "archive.sqlite3")
    clock = ManualClock(1_790_000_000.0)
    published: list[tuple[str, bytes]] = []
    app = create_app(
        archive,
        lambda topic, payload: published.append((topic, payload)),
        clock=clock,
        lockout=LockoutPolicy(max_failures=3, lock_s=600.0),
        poll_s=0.1,
    )
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "dashboard did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    d = Dashboard(archive, f"http://127.0.0.1:{port}", published, clock)
    now = clock.now()
    d.event(
        "seabridge/v1/north/sea-star-7/up/crew",
        {
            "msg_id": "sea-star-7:5",
            "vessel": "Sea Star 7",
            "member": 3,
            "handle": "deckhand",
            "to": "hotline",
            "text": "secret crew words",
            "created": now - 120,
            "received": now,
        },
    )
    d.event(
        "seabridge/v1/north/sea-star-7/state/link",
        {"vessel": "Sea Star 7", "last_contact": now, "network": "iridium-directip"},
        retain=True,
    )
    d.event(
        "seabridge/v1/north/sea-star-7/up/catch/haul",
        {
            "msg_id": "sea-star-7:9",
            "vessel": "Sea Star 7",
            "received": now,
            "body": {
                "trip": "T-0425",
                "haul": 2,
                "lat": 8.5,
                "lon": 97.9,
                "gear": "3.12",
                "area": "57",
                "catch": [{"species": "SKJ", "kg": 120.5}, {"species": "YFT", "kg": 40}],
                "etp": [{"species": "TTH", "count": 1, "fate": "released alive"}],
            },
        },
    )
    d.event(
        "seabridge/v1/south/moon-ray/up/catch",
        {
            "msg_id": "moon-ray:4",
            "vessel": "Moon Ray",
            "received": now,
            "body": {"trip": "S-1", "type": "haul"},
        },
    )
    yield d
    server.should_exit = True
    thread.join(10)
    archive.close()


FORBIDDEN = {
    "admin": ["/hotline", "/hotline?c=sea-star-7:3", "/hotline/list", "/hotline/estimate?vessel=sea-star-7"],
    "desk": ["/catch", "/catch/sea-star-7/T-0425.csv", "/admin", "/catch/panel"],
    "northowner": ["/hotline", "/admin", "/hotline?c=sea-star-7:3"],
    "watcher": ["/hotline", "/catch", "/admin", "/catch/sea-star-7/T-0425.jsonld"],
}
ALLOWED = {
    "admin": ["/fleet", "/catch", "/admin", "/catch/sea-star-7/T-0425.csv", "/catch/moon-ray/S-1.csv"],
    "desk": ["/fleet", "/hotline", "/hotline?c=sea-star-7:3"],
    "northowner": ["/fleet", "/catch", "/catch/sea-star-7/T-0425.jsonld"],
    "watcher": ["/fleet"],
}


@pytest.mark.parametrize("name", sorted(FORBIDDEN))
def test_each_role_reaches_its_pages_and_is_refused_the_others_by_direct_url(
    dash: Dashboard, name: str
) -> None:
    web, _csrf = dash.login(name)
    for path in ALLOWED[name]:
        assert web.get(path).status_code == 200, path
    for path in FORBIDDEN[name]:
        r = web.get(path)
        assert r.status_code == 403, path
        assert "secret crew words" not in r.text
    denied = [a for a in dash.data.audit_log(100, "denied") if a["name"] == name]
    assert len(denied) == len(FORBIDDEN[name])


def test_without_a_session_every_page_redirects_to_login_and_apis_refuse(dash: Dashboard) -> None:
    web = dash.client()
    for path in ("/fleet", "/hotline", "/catch", "/admin"):
        r = web.get(path)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    assert web.get("/events").status_code == 401
    assert web.get("/alerts").status_code == 401
    assert (
        web.post("/hotline/reply", data={"vessel": "sea-star-7", "member": "3", "text": "x"}).status_code
        == 401
    )


def test_crew_content_only_on_the_hotline_desk_and_every_view_is_audited(dash: Dashboard) -> None:
    for name in ("admin", "northowner", "watcher"):
        web, _ = dash.login(name)
        for path in ("/fleet", "/fleet/panel", "/catch", "/admin", "/alerts"):
            assert "secret crew words" not in web.get(path).text
    web, _ = dash.login("desk")
    page = web.get("/hotline?c=sea-star-7:3")
    assert "secret crew words" in page.text and "deckhand" in page.text
    views = [a for a in dash.data.audit_log(100, "view") if a["name"] == "desk"]
    assert any(a["target"] == "conversation:sea-star-7:3" for a in views)


def test_fleet_owner_sees_only_their_own_fleet(dash: Dashboard) -> None:
    web, _ = dash.login("northowner")
    fleet = web.get("/fleet").text
    assert "Sea Star 7" in fleet and "Moon Ray" not in fleet
    catch = web.get("/catch").text
    assert "T-0425" in catch and "S-1" not in catch
    assert web.get("/catch/moon-ray/S-1.csv").status_code == 404


def test_mutations_without_the_csrf_token_or_from_another_origin_are_refused(dash: Dashboard) -> None:
    web, csrf = dash.login("desk")
    form = {"vessel": "sea-star-7", "member": "3", "text": "hello"}
    assert web.post("/hotline/reply", data=form).status_code == 403
    assert web.post("/hotline/reply", data={**form, "csrf": "forged"}).status_code == 403
    r = web.post("/hotline/reply", data={**form, "csrf": csrf}, headers={"origin": "http://evil.example"})
    assert r.status_code == 403
    assert dash.published == []
    r = web.post("/hotline/reply", data={**form, "csrf": csrf}, headers={"accept": "application/json"})
    assert r.status_code == 200
    assert len(dash.published) == 1
    refused = dash.data.audit_log(100, "csrf-refused")
    assert len(refused) == 3
    # The login form has its own token.
    anon = dash.client()
    r = anon.post("/login", data={"username": "desk", "password": PASSWORD})
    assert r.status_code == 303 and "error=expired" in r.headers["location"]


def _try_login(web: httpx.Client, name: str, password: str) -> str:
    token = re.search(r'name="csrf" value="([^"]+)"', web.get("/login").text).group(1)  # type: ignore[union-attr]
    r = web.post("/login", data={"csrf": token, "username": name, "password": password})
    assert r.status_code == 303
    return str(r.headers["location"])


def test_repeated_failed_logins_lock_the_account_and_the_answer_never_says_so(dash: Dashboard) -> None:
    web = dash.client()
    unknown = _try_login(web, "nobody", "wrong 0 password")
    assert "error=" in unknown
    answers = [_try_login(web, "desk", f"wrong {i} password") for i in range(3)]
    # Locked now: even the right password is refused, with the answer an unknown name gets, so the
    # lockout cannot be used to learn which user names exist.
    answers.append(_try_login(web, "desk", PASSWORD))
    assert answers == [unknown] * 4
    assert len(dash.data.audit_log(100, "login-locked")) == 2
    page = web.get(unknown).text
    assert "locked" in page and "Wrong user name or password" in page


def test_reply_is_published_on_the_vessel_down_topic_and_receipt_shown(dash: Dashboard) -> None:
    web, csrf = dash.login("desk")
    est = web.get("/hotline/estimate", params={"vessel": "sea-star-7", "text": "ไม่เป็นไร เราช่วยได้"}).json()
    assert 0 < est["frame_bytes"] <= 270 and est["credits"] >= 1 and est["currency"]
    r = web.post(
        "/hotline/reply",
        data={"vessel": "sea-star-7", "member": "3", "text": "we hear you", "csrf": csrf},
        headers={"accept": "application/json"},
    )
    msg_id = r.json()["msg_id"]
    topic, payload = dash.published[0]
    assert topic == "seabridge/v1/north/sea-star-7/down/crew"
    assert json.loads(payload) == {"msg_id": msg_id, "member": 3, "text": "we hear you", "sender": "hotline"}
    assert "sent to relay" in web.get("/hotline?c=sea-star-7:3").text
    dash.event(
        "seabridge/v1/north/sea-star-7/evt/delivery",
        {"msg_id": msg_id, "rid": 1, "status": "delivered", "at": dash.clock.now()},
    )
    assert "✓ delivered" in web.get("/hotline?c=sea-star-7:3").text


def test_unread_counts_fall_when_the_conversation_is_opened(dash: Dashboard) -> None:
    web, _ = dash.login("desk")
    assert 'data-unread="1"' in web.get("/hotline/list").text
    web.get("/hotline?c=sea-star-7:3")
    assert 'data-unread="0"' in web.get("/hotline/list").text


def _read_stream(
    url: str, cookies: httpx.Cookies, after: int, seconds: float, page: str = ""
) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        async with httpx.AsyncClient(base_url=url, cookies=cookies, timeout=10) as web:
            try:
                async with asyncio.timeout(seconds):
                    async with web.stream("GET", f"/events?after={after}&page={page}") as r:
                        async for line in r.aiter_lines():
                            if line.startswith("data: "):
                                out.append(json.loads(line[6:]))
            except TimeoutError:
                pass
        return out

    return asyncio.run(read())


def test_live_stream_filters_events_by_role_and_audits_crew_content(dash: Dashboard) -> None:
    desk, _ = dash.login("desk")
    owner, _ = dash.login("northowner")
    dash.event(
        "seabridge/v1/north/sea-star-7/up/sos",
        {"msg_id": "sea-star-7:11", "vessel": "Sea Star 7", "note": "fire", "received": dash.clock.now()},
    )
    desk_elsewhere = _read_stream(dash.url, desk.cookies, 0, 1.0, page="fleet")
    assert any(m["type"] == "crew" for m in desk_elsewhere)
    assert all("secret crew words" not in json.dumps(m) for m in desk_elsewhere)
    live_views = [a for a in dash.data.audit_log(100, "view") if a["target"].startswith("crew-live")]
    assert not live_views, "no crew content left for a page other than the desk"
    desk_saw = _read_stream(dash.url, desk.cookies, 0, 1.0, page="hotline")
    assert any(m.get("text") == "secret crew words" for m in desk_saw)
    owner_saw = _read_stream(dash.url, owner.cookies, 0, 1.0)
    assert {m["type"] for m in desk_saw} >= {"crew", "alert", "vessel"}
    assert "catch" not in {m["type"] for m in desk_saw}
    assert {m["type"] for m in owner_saw} >= {"alert", "vessel", "catch"}
    assert "crew" not in {m["type"] for m in owner_saw}
    assert all("secret crew words" not in json.dumps(m) for m in owner_saw)
    safety = [m for m in desk_saw if m["type"] == "alert" and m["kind"] == "sos"]
    assert safety and safety[0]["vessel"] == "Sea Star 7"
    assert any(a["target"] == "crew-live:sea-star-7:3" for a in dash.data.audit_log(100, "view"))


def test_sos_acknowledgement_is_recorded_once_and_published_as_state(dash: Dashboard) -> None:
    dash.event(
        "seabridge/v1/north/sea-star-7/up/sos",
        {"msg_id": "sea-star-7:11", "vessel": "Sea Star 7", "note": "fire", "received": dash.clock.now()},
    )
    watcher, csrf = dash.login("watcher")
    assert [a["ref"] for a in watcher.get("/alerts").json()] == ["sea-star-7:11"]
    form = {"kind": "sos", "ref": "sea-star-7:11", "vessel": "sea-star-7", "csrf": csrf}
    assert watcher.post("/alerts/ack", data=form).status_code == 403  # viewers see, cannot acknowledge
    owner, csrf = dash.login("northowner")
    r = owner.post("/alerts/ack", data={**form, "csrf": csrf})
    assert r.status_code == 200 and r.json()["first"] is True
    assert owner.get("/alerts").json() == []
    state = dash.archive.query(
        "SELECT payload, retain FROM events WHERE topic = 'seabridge/v1/north/sea-star-7/state/sos'"
    )
    assert json.loads(state[-1][0])["state"] == "acknowledged" and state[-1][1] == 1
    assert dash.data.audit_log(10, "ack-sos")[0]["name"] == "northowner"


def _sos(dash: Dashboard, rid: int, **extra: Any) -> None:
    now = dash.clock.now()
    body = {"msg_id": f"sea-star-7:{rid}", "vessel": "Sea Star 7", "created": now - 60, "received": now}
    dash.event("seabridge/v1/north/sea-star-7/up/sos", {**body, **extra})


def test_an_owner_of_another_fleet_cannot_clear_an_alert_nor_clear_one_before_it_arrives(
    dash: Dashboard,
) -> None:
    _sos(dash, 11, note="fire")
    south, south_csrf = dash.login("moonowner")
    north, north_csrf = dash.login("northowner")
    # Fleet B's owner names one of their own vessels but fleet A's alert: refused, and it stays open.
    form = {"kind": "sos", "ref": "sea-star-7:11", "vessel": "moon-ray", "csrf": south_csrf}
    assert south.post("/alerts/ack", data=form).status_code == 404
    form = {"kind": "safety", "ref": "sea-star-7:5", "vessel": "moon-ray", "csrf": south_csrf}
    assert south.post("/alerts/ack", data=form).status_code == 403  # owners never clear safety alerts
    assert south.post(
        "/alerts/false-alarm", data={"kind": "sos", "ref": "sea-star-7:11", "csrf": south_csrf}
    ).status_code == 404
    assert [a["ref"] for a in north.get("/alerts").json()] == ["sea-star-7:11"]
    # Nobody can acknowledge an alert that has not arrived, not even on their own vessels.
    for ref in ("sea-star-7:12", "sea-star-7:40", "moon-ray:9"):
        for web, csrf in ((north, north_csrf), (south, south_csrf)):
            form = {"kind": "sos", "ref": ref, "vessel": "moon-ray", "csrf": csrf}
            assert web.post("/alerts/ack", data=form).status_code == 404
    dash.clock.advance(10)
    _sos(dash, 12, note="taking water")
    assert [a["ref"] for a in north.get("/alerts").json()] == ["sea-star-7:12", "sea-star-7:11"]
    assert south.get("/alerts").json() == []
    assert dash.data.audit_log(20, "ack-sos") == []


def test_sos_updates_attach_to_their_alert_and_a_false_alarm_shows_then_clears(dash: Dashboard) -> None:
    raised = dash.clock.now() - 60
    _sos(dash, 11, note="fire", latitude=9.5, longitude=97.8)
    dash.clock.advance(30)
    _sos(dash, 14, update_of="sea-star-7:11", devices=3)
    desk, _ = dash.login("desk")
    (alert,) = desk.get("/alerts").json()
    assert alert["ref"] == "sea-star-7:11" and alert["devices"] == 3 and alert["note"] == "fire"
    assert alert["raised"] == raised and alert["arrived"] == raised + 60 and not alert["false_alarm"]
    dash.clock.advance(30)
    _sos(dash, 15, update_of="sea-star-7:11", devices=3, false_alarm=True)
    (alert,) = desk.get("/alerts").json()
    assert alert["false_alarm"] == "the vessel"  # shown until someone ashore acknowledges it
    owner, csrf = dash.login("northowner")
    r = owner.post("/alerts/false-alarm", data={"kind": "sos", "ref": "sea-star-7:11", "csrf": csrf})
    assert r.status_code == 200 and r.json()["first"] is True
    assert owner.get("/alerts").json() == []
    state = dash.archive.query(
        "SELECT payload FROM events WHERE topic = 'seabridge/v1/north/sea-star-7/state/sos' ORDER BY id"
    )
    assert json.loads(state[-1][0])["state"] == "false-alarm" and json.loads(state[-1][0])["by"] == "northowner"
    assert dash.data.audit_log(10, "false-alarm-sos")[0]["name"] == "northowner"


def test_two_personal_safety_alerts_are_told_apart_by_member_and_time(dash: Dashboard) -> None:
    now = dash.clock.now()
    for rid, handle, member, made in ((20, "cook", 4, now - 600), (21, "netman", 6, now - 30)):
        dash.event(
            "seabridge/v1/north/sea-star-7/up/crew",
            {
                "msg_id": f"sea-star-7:{rid}", "vessel": "Sea Star 7", "member": member, "handle": handle,
                "to": "hotline", "text": PERSONAL_ALERT_TEXT, "created": made, "received": now,
            },
        )  # fmt: skip
    desk, _ = dash.login("desk")
    found = [(a["kind"], a["handle"], a["raised"]) for a in desk.get("/alerts").json()]
    assert found == [("safety", "netman", now - 30), ("safety", "cook", now - 600)]
    owner, _ = dash.login("northowner")
    assert owner.get("/alerts").json() == []  # personal safety is the hotline's


@pytest.mark.parametrize(
    ("path", "form"),
    [
        ("/hotline/reply", {"vessel": "sea-star-7", "member": "²", "text": "hello"}),
        ("/hotline/reply", {"vessel": "sea-star-7", "member": "⓽", "text": "hello"}),
        ("/hotline/read", {"key": "sea-star-7:3", "last_id": "²"}),
    ],
)
def test_unicode_digits_in_hotline_forms_are_a_clear_400(dash: Dashboard, path: str, form: dict[str, str]) -> None:
    desk, csrf = dash.login("desk")
    r = desk.post(path, data={**form, "csrf": csrf}, headers={"Accept": "application/json"})
    assert r.status_code == 400, r.text
    assert dash.published == []


def _request(content_length: bytes, body: bytes = b"a=1") -> Request:
    """A request as the ASGI server hands it over (uvicorn's parser refuses some of these values
    itself; other servers, or a proxy, may pass them through)."""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    headers = [(b"content-type", b"application/x-www-form-urlencoded"), (b"content-length", content_length)]
    return Request({"type": "http", "method": "POST", "path": "/login", "headers": headers}, receive)


@pytest.mark.parametrize("length", [b"abc", "²".encode(), "⓽".encode(), b"-1", b"1e3", b""])
def test_a_form_with_a_non_numeric_content_length_is_a_400_at_every_form_reader(length: bytes) -> None:
    with pytest.raises(HTTPException) as refused:
        asyncio.run(form_of(_request(length)))
    assert refused.value.status_code == 400
    with pytest.raises(FormRefused) as bad:
        asyncio.run(read_form(_request(length), 4, max_bytes=MAX_FORM_BYTES))
    assert bad.value.problem == BAD_ENCODING
    assert asyncio.run(form_of(_request(b"3"))) == {"a": "1"}


def test_trip_exports_as_epcis_json_ld_and_csv(dash: Dashboard) -> None:
    web, _ = dash.login("northowner")
    doc = web.get("/catch/sea-star-7/T-0425.jsonld").json()
    assert doc["type"] == "EPCISDocument" and doc["schemaVersion"] == "2.0"
    (event,) = doc["epcisBody"]["eventList"]
    assert event["type"] == "ObjectEvent" and event["action"] == "ADD"
    assert event["bizStep"] == "urn:gdst:bizStep:fishingEvent"
    assert event["readPoint"]["id"] == "geo:8.50000,97.90000"
    assert {q["uom"] for q in event["quantityList"]} == {"KGM"}
    assert sum(q["quantity"] for q in event["quantityList"]) == pytest.approx(160.5)
    info = event["ilmd"]["cbvmda:vesselCatchInformationList"]["cbvmda:vesselCatchInformation"][0]
    assert (
        info["cbvmda:catchArea"] == "urn:gdst:fao:57"
        and info["cbvmda:fishingGearTypeCode"] == "urn:gdst:gear:3.12"
    )
    assert event["seabridge:etpInteractions"][0]["seabridge:species"] == "TTH"
    rows = list(csv.DictReader(io.StringIO(web.get("/catch/sea-star-7/T-0425.csv").text)))
    assert [(r["species"], r["etp"]) for r in rows] == [("SKJ", ""), ("YFT", ""), ("TTH", "yes")]
    page = web.get("/catch").text
    assert "ETP interactions" in page and "released alive" in page
    assert {a["action"] for a in dash.data.audit_log(10)} >= {"export-jsonld", "export-csv"}


def test_pages_load_nothing_from_the_internet_and_send_a_strict_policy(dash: Dashboard) -> None:
    web, _ = dash.login("admin")
    for path in ("/fleet", "/catch", "/admin", "/login"):
        r = web.get(path)
        assert "default-src 'self'" in r.headers["content-security-policy"]
        assert not re.search(r'(src|href)="(https?:)?//', r.text), path
    assert web.get("/static/dashboard.js").status_code == 200
    assert web.get("/static/../dashboard.py").status_code == 404


def test_users_cli_adds_a_user_who_can_log_in(dash: Dashboard, tmp_path: Path) -> None:
    pw_file = tmp_path / "pw"
    pw_file.write_text("another good password\n")
    path = dash.archive.path
    r = subprocess.run(
        [sys.executable, "-m", "seabridge.cli", "users", "add", "--archive", str(path), "--name", "southowner",
         "--role", "owner", "--fleet", "south", "--password-file", str(pw_file)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    web, _ = dash.login("southowner", "another good password")
    fleet = web.get("/fleet").text
    assert "Moon Ray" in fleet and "Sea Star 7" not in fleet
    r = subprocess.run(
        [sys.executable, "-m", "seabridge.cli", "users", "add", "--archive", str(path), "--name", "x",
         "--role", "captain", "--password-file", str(pw_file)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert r.returncode == 2 and "unknown role" in r.stderr


def test_malformed_events_in_the_outbox_never_break_a_page(dash: Dashboard) -> None:
    base = "seabridge/v1/north/sea-star-7"
    with dash.archive.tx() as db:
        for topic, payload in (
            (f"{base}/up/crew", b"\xff not json"),
            (f"{base}/up/crew", b'{"member": "x", "received": "yesterday", "text": 5}'),
            (f"{base}/up/sos", b"[1, 2, 3]"),
            (f"{base}/up/telemetry", b'{"body": {"5": [[1, "a", null]], "8": "x", "1": 1e99, "2": 5}}'),
            (f"{base}/state/link", b'{"network": {"deep": 1}}'),
            (f"{base}/up/catch", b'{"body": {"catch": true, "etp": 5, "at": 1e300}}'),
            (f"{base}/evt/delivery", b'{"msg_id": null, "at": "now"}'),
            ("not/a/seabridge/topic", b"{}"),
        ):
            db.execute(
                "INSERT INTO events (topic, payload, retain, created) VALUES (?, ?, 0, ?)",
                (topic, payload, dash.clock.now()),
            )
    for name, paths in (
        ("admin", ["/fleet", "/fleet/panel", "/catch", "/catch/panel", "/admin", "/alerts"]),
        ("desk", ["/hotline", "/hotline?c=sea-star-7:3", "/hotline?c=sea-star-7:0", "/hotline/list"]),
    ):
        web, _ = dash.login(name)
        for path in paths:
            assert web.get(path).status_code == 200, (name, path)
    desk, _ = dash.login("desk")
    assert _read_stream(dash.url, desk.cookies, 0, 1.0, page="hotline")


def test_login_only_redirects_within_the_dashboard(dash: Dashboard) -> None:
    for target, expected in (("/catch", "/catch"), ("//evil.example/", "/"), ("/\\evil.example", "/")):
        web = dash.client()
        token = re.search(r'name="csrf" value="([^"]+)"', web.get("/login").text).group(1)  # type: ignore[union-attr]
        r = web.post(
            "/login", data={"csrf": token, "username": "admin", "password": PASSWORD, "next": target}
        )
        assert r.headers["location"] == expected
