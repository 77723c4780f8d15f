"""Hostile input against the captive page over real HTTP: oversized bodies, invalid UTF-8, script
injection, PIN brute force, stolen or forged sessions. A refused request changes nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest
from captive_support import page, sign_in, token_of

from common.clock import ManualClock
from common.web import FormRefused, parse_form
from gateway.accounts import Members
from gateway.captive import MAX_FORM_BYTES, CaptiveLimits
from gateway.pins import LOCK_AFTER_FAILURES
from gateway.store import GatewayStore

GENEROUS = CaptiveLimits(post_burst=1000, login_burst=1000, api_burst=1000)


def _records(gw) -> int:
    return sum(gw.store.record_states().values())


def test_oversized_body_is_refused_and_queues_nothing(tmp_path: Path) -> None:
    with page(tmp_path, GENEROUS) as (gw, url), httpx.Client(base_url=url) as web:
        token = sign_in(web, "deckhand")
        before = _records(gw)
        r = web.post("/send", data={"s": token, "to": "hotline", "text": "x" * (MAX_FORM_BYTES + 1)})
        assert r.status_code == 413
        assert _records(gw) == before


def test_body_without_a_declared_length_is_refused(tmp_path: Path) -> None:
    with page(tmp_path, GENEROUS) as (gw, url), httpx.Client(base_url=url) as web:
        token = sign_in(web, "deckhand")

        def chunks():
            yield f"s={token}&to=hotline&text=".encode()
            yield b"a" * 100

        r = web.post("/send", content=chunks(), headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert r.status_code == 413
        assert _records(gw) == 0


@pytest.mark.parametrize(
    "body", [b"handle=%FF%FE&pin=1234", b"handle=caf\xc3&pin=1234", b"handle=a%00b&pin=1234"]
)
def test_invalid_utf8_or_nul_in_a_form_is_a_typed_refusal(tmp_path: Path, body: bytes) -> None:
    with page(tmp_path, GENEROUS) as (gw, url), httpx.Client(base_url=url) as web:
        r = web.post("/login", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert r.status_code == 400
        assert 'role="alert"' in r.text
        assert Members(gw.store).handle(1) is None


def test_parse_form_refuses_garbage_with_a_typed_error() -> None:
    for body in (b"a=%C3%28", b"\xff\xfe", b"a=" + b"b" * (MAX_FORM_BYTES + 1)):
        with pytest.raises(FormRefused):
            parse_form(body, MAX_FORM_BYTES, 4)
    assert parse_form(b"a=1&a=2&b=%E1%80%80", MAX_FORM_BYTES, 4) == {"a": "1", "b": "\u1000"}


def test_a_form_with_too_many_fields_is_refused_for_that_reason_not_as_bad_text() -> None:
    with pytest.raises(FormRefused) as refused:
        parse_form(b"&".join(b"f%d=1" % i for i in range(5)), MAX_FORM_BYTES, 4)
    assert refused.value.problem == "problem_fields"
    assert "5 fields" in str(refused.value) and "UTF-8" not in str(refused.value)


def test_multipart_forms_are_refused(tmp_path: Path) -> None:
    with page(tmp_path, GENEROUS) as (_gw, url), httpx.Client(base_url=url) as web:
        r = web.post("/login", files={"handle": ("h.txt", b"x")})
        assert r.status_code == 400


def test_script_in_a_handle_a_message_and_a_reply_is_shown_as_text(tmp_path: Path) -> None:
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    with page(tmp_path, GENEROUS) as (gw, url), httpx.Client(base_url=url) as web:
        token = sign_in(web, evil[:32])
        member = Members(gw.store).session_member(token.split(".")[0])
        r = web.post("/send", data={"s": token, "to": "family", "contact": evil[:60], "text": evil})
        assert r.status_code == 303
        with gw.store.transaction() as db:
            GatewayStore.inbox_add(db, member, evil, evil, 1.0, 2.0, shore_rid=1)
        html = web.get("/", params={"s": token}).text
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "&lt;script&gt;" in html
        csp = web.get("/").headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'nonce-" in csp


def test_pin_brute_force_locks_the_handle_even_against_the_right_pin(tmp_path: Path) -> None:
    clock = ManualClock()
    with page(tmp_path, GENEROUS, clock=clock) as (_gw, url), httpx.Client(base_url=url) as web:
        sign_in(web, "cook", pin="8642")
        attacker = httpx.Client(base_url=url)
        statuses = [
            attacker.post("/login", data={"handle": "cook", "pin": f"{n:04d}"}).status_code
            for n in range(LOCK_AFTER_FAILURES + 3)
        ]
        assert statuses[:LOCK_AFTER_FAILURES] == [403] * LOCK_AFTER_FAILURES
        assert set(statuses[LOCK_AFTER_FAILURES:]) == {429}
        locked = attacker.post("/login", data={"handle": "cook", "pin": "8642"})
        assert locked.status_code == 429 and "cook" in locked.text
        clock.advance(3600)
        assert attacker.post("/login", data={"handle": "cook", "pin": "8642"}).status_code == 303
        attacker.close()


def test_one_phone_cannot_hammer_the_login_form(tmp_path: Path) -> None:
    limits = CaptiveLimits(post_burst=1000, login_burst=3, login_per_s=0.001)
    with page(tmp_path, limits) as (_gw, url), httpx.Client(base_url=url) as web:
        codes = [web.post("/login", data={"handle": f"h{i}", "pin": "1234"}).status_code for i in range(5)]
        assert codes[:3] == [303, 303, 303] and codes[3:] == [429, 429]


def test_post_rate_limit_answers_429(tmp_path: Path) -> None:
    limits = CaptiveLimits(post_burst=4, post_per_s=0.001, login_burst=100)
    with page(tmp_path, limits) as (_gw, url), httpx.Client(base_url=url) as web:
        codes = [web.post("/logout", data={}).status_code for _ in range(6)]
        assert codes[:4] == [303] * 4 and codes[4:] == [429, 429]


def test_another_member_cannot_read_the_inbox_or_borrow_a_session(tmp_path: Path) -> None:
    with page(tmp_path, GENEROUS) as (gw, url):
        alice_web, bob_web = httpx.Client(base_url=url), httpx.Client(base_url=url)
        alice = sign_in(alice_web, "alice")
        bob = sign_in(bob_web, "bob")
        alice_member = Members(gw.store).session_member(alice.split(".")[0])
        with gw.store.transaction() as db:
            GatewayStore.inbox_add(db, alice_member, "hotline", "for alice only", 1.0, 2.0, shore_rid=9)
        assert "for alice only" in alice_web.get("/", params={"s": alice}).text
        assert "for alice only" not in bob_web.get("/", params={"s": bob}).text
        # Bob's key half with Alice's session id, or a guessed key half: no session at all.
        forged = alice.split(".")[0] + "." + bob.split(".")[1]
        for token in (forged, alice.split(".")[0] + ".AAAA", "x" * 500):
            r = httpx.get(f"{url}/", params={"s": token})
            assert 'action="/login"' in r.text and "for alice only" not in r.text
        alice_web.close()
        bob_web.close()


def test_replies_are_never_committed_to_disk_in_the_clear(tmp_path: Path) -> None:
    with page(tmp_path, GENEROUS) as (gw, url), httpx.Client(base_url=url) as web:
        token = sign_in(web, "alice")
        member = Members(gw.store).session_member(token.split(".")[0])
        secret = "the quick reply 7391"
        with gw.store.transaction() as db:
            GatewayStore.inbox_add(db, member, "hotline", secret, 1.0, 2.0, shore_rid=5)
        raw = b"".join(p.read_bytes() for p in tmp_path.glob("gateway.sqlite3*"))
        assert secret.encode() not in raw
        assert secret in web.get("/", params={"s": token}).text
        # A second connection (someone with the file) sees only the sealed copy.
        other = sqlite3.connect(tmp_path / "gateway.sqlite3")
        assert other.execute("SELECT text FROM inbox").fetchall() == [("",)]
        other.close()


def test_the_page_works_when_cookies_are_dropped(tmp_path: Path) -> None:
    with page(tmp_path, GENEROUS) as (_gw, url):

        def fresh() -> httpx.Client:
            return httpx.Client(base_url=url)  # a new client each time: no cookie survives

        r = fresh().post("/login", data={"handle": "nocookie", "pin": "1357"})
        token = token_of(r)
        assert "consent" in fresh().get("/", params={"s": token}).text
        assert fresh().post("/consent", data={"s": token, "agree": "1"}).status_code == 303
        r = fresh().post("/send", data={"s": token, "to": "hotline", "text": "hello without cookies"})
        assert r.status_code == 303
        home = fresh().get(r.headers["location"])
        assert 'id="sent"' in home.text and 'data-state="queued"' in home.text


def test_sending_before_consent_is_refused(tmp_path: Path) -> None:
    with page(tmp_path, GENEROUS) as (gw, url), httpx.Client(base_url=url) as web:
        token = sign_in(web, "newcomer", consent=False)
        r = web.post("/send", data={"s": token, "to": "hotline", "text": "hi"})
        assert r.status_code == 403 and 'id="consent"' in r.text
        assert _records(gw) == 0
