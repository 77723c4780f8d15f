"""The vessel's distress alert from the captive page over real HTTP with a real gateway store: repeats
become one alert (further devices attach as small updates), anonymous confirmations are rate-limited
per phone and in total, the alert shows in the member's own list with its state and no record number,
a false alarm withdraws or follows it, and numbers in forms are ASCII digits or a clear 400."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from captive_support import page, sign_in
from hypothesis import given
from hypothesis import strategies as st

from common.clock import ManualClock
from gateway.captive import CaptiveLimits
from gateway.i18n import LANGUAGES, catalogue
from wire.errors import RemoteWireError
from wire.items import dumps, loads_one
from wire.records import Kind, Sos

SECOND_PHONE = "127.0.0.2"  # another address on the loopback network


def _sos_records(gw) -> list[tuple[int, str, Sos]]:  # type: ignore[no-untyped-def]
    """(rid, state, record) of every distress record the gateway holds."""
    with gw.store.transaction() as db:
        rows = db.execute(
            "SELECT r.rid, r.state, u.item FROM records r JOIN units u ON u.rid = r.rid "
            "WHERE r.kind = ? AND u.idx = 0 ORDER BY r.rid",
            (int(Kind.SOS),),
        ).fetchall()
    out = []
    for rid, state, item in rows:
        body = loads_one(bytes(item))
        out.append((int(rid), str(state), Sos.from_body(body[-1] if isinstance(body, list) else body)))
    return out


def _queued(gw) -> list[tuple[int, str, Sos]]:  # type: ignore[no-untyped-def]
    return [r for r in _sos_records(gw) if r[1] == "queued"]


def test_an_anonymous_flood_from_two_phones_is_one_alert_confirmed_by_two_devices(tmp_path: Path) -> None:
    with page(tmp_path) as (gw, url):
        first = httpx.Client(base_url=url, timeout=10)
        second = httpx.Client(
            base_url=url, timeout=10, transport=httpx.HTTPTransport(local_address=SECOND_PHONE)
        )
        answers = [
            (first if i % 2 else second).post("/sos/confirm", data={"note": f"flood {i}"}).status_code
            for i in range(70)
        ]
        assert answers.count(200) <= 2 * CaptiveLimits().sos_burst
        assert set(answers) == {200, 429}
        queued = _queued(gw)
        alerts = [r for r in queued if r[2].update_of is None]
        updates = [r for r in queued if r[2].update_of is not None]
        assert len(alerts) == 1 and len(updates) <= 1, queued
        assert updates and updates[0][2].devices == 2 and updates[0][2].update_of == alerts[0][0]
        # The update says only what changed: a few bytes, not a second distress record.
        assert len(dumps(updates[0][2].body())) < len(dumps(alerts[0][2].body()))
        status = gw.desk.distress.confirmed_by("nobody")
        assert status == []


def test_anonymous_confirmations_are_limited_in_total_across_phones(tmp_path: Path) -> None:
    limits = CaptiveLimits(sos_burst=5, sos_total_burst=3, post_burst=100)
    with page(tmp_path, limits=limits) as (gw, url):
        phones = [
            httpx.Client(base_url=url, timeout=10, transport=httpx.HTTPTransport(local_address=f"127.0.0.{n}"))
            for n in range(1, 6)
        ]
        answers = [phone.post("/sos/confirm", data={}).status_code for phone in phones]
        assert answers == [200, 200, 200, 429, 429]
        # A signed-in crew member is never refused: their confirmation counts as one more device.
        member = httpx.Client(base_url=url, timeout=10)
        token = sign_in(member, "deckhand")
        r = member.post("/sos/confirm", data={"s": token})
        assert r.status_code == 200
        assert max(rec[2].devices for rec in _sos_records(gw)) == 4


def test_repeats_from_one_member_are_one_alert_shown_in_their_list_with_its_state(tmp_path: Path) -> None:
    with page(tmp_path) as (gw, url):
        web = httpx.Client(base_url=url, timeout=10)
        token = sign_in(web, "deckhand")
        for _ in range(5):
            r = web.post("/sos/confirm", data={"s": token, "note": "fire", "l": "en"})
            assert r.status_code == 200
        assert len(_sos_records(gw)) == 1
        t = catalogue("en")
        assert t("sos_sent") not in r.text and t("sos_joined") in r.text
        home = web.get("/", params={"s": token, "l": "en"}).text
        assert 'class="sos-item"' in home and t("sos_item") in home and t("state_queued") in home
        assert t("sos_devices", n=1) in home
        other = httpx.Client(base_url=url, timeout=10)
        other_token = sign_in(other, "cook")
        assert 'class="sos-item"' not in other.get("/", params={"s": other_token}).text


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_confirmation_names_no_record_number(tmp_path: Path, lang: str) -> None:
    with page(tmp_path) as (gw, url):
        for _ in range(3):  # records before it, so its id is not 1
            gw.desk.send(gw.desk.login("cook", "1357"), "hotline", "hello")
        r = httpx.post(f"{url}/sos/confirm", data={"l": lang}, timeout=10)
        assert r.status_code == 200
        rid = _sos_records(gw)[0][0]
        sent = r.text.split('id="sos-sent">')[1].split("</p>")[0]
        assert catalogue(lang)("sos_sent") in sent and str(rid) not in sent
        assert "{" not in sent


def test_a_false_alarm_is_withdrawn_while_queued_and_follows_the_alert_once_sent(tmp_path: Path) -> None:
    clock = ManualClock()
    with page(tmp_path, clock=clock) as (gw, url):
        web = httpx.Client(base_url=url, timeout=10)
        token = sign_in(web, "deckhand")
        r = web.post("/sos/confirm", data={"s": token})
        rid, code = _field(r.text, "rid"), _field(r.text, "code")
        r = web.post("/sos/cancel", data={"s": token, "rid": rid, "code": code})
        assert r.status_code == 200 and 'id="sos-cancelled"' in r.text
        assert [(s, rec.false_alarm) for _r, s, rec in _sos_records(gw)] == [("expired", False)]
        home = web.get("/", params={"s": token, "l": "en"}).text
        assert catalogue("en")("sos_false_alarm") in home and "sos-false-alarm" not in home
        # Raised again and sent: the false alarm is a small update after it.
        r = web.post("/sos/confirm", data={"s": token})
        rid, code = _field(r.text, "rid"), _field(r.text, "code")
        with gw.store.transaction() as db:
            db.execute("UPDATE records SET state = 'sent' WHERE rid = ?", (int(rid),))
        r = web.post("/sos/cancel", data={"s": token, "rid": rid, "code": code})
        assert r.status_code == 200
        last = _sos_records(gw)[-1][2]
        assert last.false_alarm and last.update_of == int(rid)


def _field(html: str, name: str) -> str:
    return html.split(f'name="{name}" value="')[1].split('"')[0]


@pytest.mark.parametrize("rid", ["²", "⓽", "١٢", "1" * 13, "-1", ""])
def test_a_cancel_with_a_strange_number_is_a_400_without_signing_in(tmp_path: Path, rid: str) -> None:
    with page(tmp_path) as (gw, url):
        r = httpx.post(f"{url}/sos/cancel", data={"rid": rid, "code": "x"}, timeout=10)
        assert r.status_code == 400
        assert _sos_records(gw) == []


@pytest.mark.parametrize("preset", ["²", "⓽"])
def test_a_quick_message_with_unicode_digits_is_not_a_server_error(tmp_path: Path, preset: str) -> None:
    with page(tmp_path) as (_gw, url):
        web = httpx.Client(base_url=url, timeout=10)
        token = sign_in(web, "deckhand")
        r = web.post("/send", data={"s": token, "preset": preset, "to": "hotline", "text": ""})
        assert r.status_code < 500


def test_session_cookies_are_secure_when_the_page_is_served_over_tls(tmp_path: Path) -> None:
    for secure in (False, True):
        with page(tmp_path / str(secure), secure_cookies=secure) as (_gw, url):
            r = httpx.post(f"{url}/login", data={"handle": "deckhand", "pin": "2468"}, timeout=10)
            cookie = next(v for k, v in r.headers.multi_items() if k == "set-cookie" and "sb_session" in v)
            assert ("; secure" in cookie.lower()) is secure


def test_unicode_digits_at_the_catch_log_doors_are_clear_refusals(tmp_path: Path) -> None:
    from gateway.catchlog import CatchLog

    limits = CaptiveLimits(post_burst=1000, login_burst=1000, api_burst=1000)
    with page(tmp_path, limits) as (gw, url), httpx.Client(base_url=url, timeout=10) as web:
        CatchLog(gw.store, gw.clock).add_captain("somchai", "135791")
        r = web.post("/api/catch/login", json={"handle": "somchai", "pin": "135791"})
        assert r.status_code == 200, r.text
        bearer = {"Authorization": f"Bearer {r.json()['token']}"}
        for path in ("/api/catch/trips/²", "/api/catch/trips/⓽"):
            assert 400 <= web.get(path, headers=bearer).status_code < 500
        assert 400 <= web.put("/api/catch/trips/1/events/²", headers=bearer, json={}).status_code < 500
        r = web.post("/catch/login", data={"handle": "somchai", "pin": "135791"})
        token = r.headers["location"].split("t=")[1].split("&")[0]
        assert web.get("/catch", params={"t": token, "edit": "²"}).status_code == 200
        for form in ({"trip": "²", "seq": "1"}, {"trip": "1", "seq": "⓽"}):
            r = web.post("/catch/event", data={"t": token, "type": "haul", **form})
            assert 400 <= r.status_code < 500 or r.status_code == 303, r.status_code
            r = web.post("/catch/delete", data={"t": token, **form})
            assert 400 <= r.status_code < 500 or r.status_code == 303, r.status_code


_positions = st.one_of(
    st.tuples(st.none(), st.none()),
    st.tuples(st.integers(-9_000_000, 9_000_000), st.integers(-18_000_000, 18_000_000)),
)


@given(
    st.integers(0, 2**32),
    _positions,
    st.text(max_size=50),
    st.one_of(st.none(), st.integers(0, 2**40)),
    st.integers(1, 10_000),
    st.booleans(),
)
def test_a_distress_record_or_update_round_trips(
    created: int, position: tuple[int | None, int | None], note: str, update_of: int | None, devices: int,
    false_alarm: bool,
) -> None:  # fmt: skip
    record = Sos(created, *position, note, update_of, devices, false_alarm)
    assert Sos.from_body(loads_one(dumps(record.body()))) == record


@given(st.dictionaries(st.integers(0, 8), st.one_of(st.integers(-5, 5), st.binary(max_size=4), st.text(max_size=4))))
def test_a_malformed_distress_body_is_a_typed_error(body: dict[int, object]) -> None:
    try:
        record = Sos.from_body(body)
    except RemoteWireError:
        return
    assert record.created >= 0 and record.devices >= 0
