"""Dashboard users, passwords, lock-out, sessions and roles against a real SQLite archive."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shore.archive import Archive
from shore.dashboard.auth import (
    CREW,
    PERMISSIONS,
    AuthError,
    LockoutPolicy,
    Role,
    hash_password,
    parse_role,
    verify_password,
)
from shore.dashboard.data import DashboardData
from shore.dashboard.records import is_safety_text
from shore.dashboard.users import ensure_users

PASSWORD = "correct horse battery"


@pytest.fixture
def data(tmp_path: Path) -> DashboardData:
    archive = Archive(tmp_path / "archive.sqlite3")
    yield DashboardData(archive, LockoutPolicy(max_failures=3, lock_s=60.0))
    archive.close()


def test_a_password_verifies_only_against_its_own_hash() -> None:
    stored = hash_password(PASSWORD)
    assert stored.startswith("scrypt$") and PASSWORD not in stored
    assert verify_password(PASSWORD, stored)
    assert not verify_password(PASSWORD + "x", stored)
    assert hash_password(PASSWORD) != stored  # salted


@settings(max_examples=30, deadline=None)
@given(st.text(max_size=40))
def test_garbage_stored_hashes_never_verify_and_never_raise(stored: str) -> None:
    assert verify_password(PASSWORD, stored) is False


def test_crew_content_belongs_to_the_hotline_role_alone() -> None:
    assert [r for r in Role if CREW in PERMISSIONS[r]] == [Role.HOTLINE]
    assert parse_role("fleet-owner") is Role.OWNER and parse_role("admin") is Role.ADMINISTRATOR
    with pytest.raises(AuthError):
        parse_role("captain")


def test_users_are_stored_with_hashed_passwords_and_checked(data: DashboardData) -> None:
    data.add_user("desk", Role.HOTLINE, PASSWORD, None, 1000.0)
    stored = data.archive.query("SELECT pw FROM dash_users WHERE name = 'desk'")[0][0]
    assert PASSWORD not in stored
    user, outcome = data.authenticate("desk", PASSWORD, 1001.0)
    assert outcome == "ok" and user is not None and user.role is Role.HOTLINE
    assert data.authenticate("desk", "wrong password!", 1002.0) == (None, "bad")
    assert data.authenticate("nobody", PASSWORD, 1003.0) == (None, "bad")


def test_bad_names_short_passwords_and_owners_without_fleet_are_refused(data: DashboardData) -> None:
    with pytest.raises(AuthError):
        data.add_user("Bad Name!", Role.VIEWER, PASSWORD, None, 0.0)
    with pytest.raises(AuthError):
        data.add_user("viewer", Role.VIEWER, "short", None, 0.0)
    with pytest.raises(AuthError):
        data.add_user("owner", Role.OWNER, PASSWORD, None, 0.0)
    data.add_user("owner", Role.OWNER, PASSWORD, "north", 0.0)
    with pytest.raises(AuthError):
        data.add_user("owner", Role.OWNER, PASSWORD, "north", 0.0)


def test_repeated_failures_lock_the_account_even_for_the_right_password(data: DashboardData) -> None:
    data.add_user("desk", Role.HOTLINE, PASSWORD, None, 0.0)
    assert data.authenticate("desk", "wrong password 1", 10.0)[1] == "bad"
    assert data.authenticate("desk", "wrong password 2", 11.0)[1] == "bad"
    assert data.authenticate("desk", "wrong password 3", 12.0)[1] == "locked"
    assert data.authenticate("desk", PASSWORD, 13.0) == (None, "locked")
    assert data.authenticate("desk", PASSWORD, 12.0 + 61.0)[1] == "ok"  # the lock expires
    for i in range(3):
        data.authenticate("desk", f"wrong password {i}", 100.0)
    data.unlock("desk")
    assert data.authenticate("desk", PASSWORD, 101.0)[1] == "ok"


def test_sessions_expire_when_idle_and_close_on_password_change(data: DashboardData) -> None:
    user = data.add_user("desk", Role.HOTLINE, PASSWORD, None, 0.0)
    token, csrf = data.open_session(user, 100.0)
    assert token not in str(data.archive.query("SELECT digest FROM dash_sessions"))
    session = data.session(token, 200.0, idle_s=600, max_age_s=3600)
    assert session is not None and session.csrf == csrf and session.user.name == "desk"
    assert data.session(token, 200.0 + 601, idle_s=600, max_age_s=3600) is None
    token, _ = data.open_session(user, 1000.0)
    data.set_password("desk", "another long password")
    assert data.session(token, 1001.0, idle_s=600, max_age_s=3600) is None
    assert data.session("forged-token", 1001.0, idle_s=600, max_age_s=3600) is None


def test_ensure_users_creates_then_resets_passwords(tmp_path: Path) -> None:
    path = tmp_path / "archive.sqlite3"
    first = dict(ensure_users(path, [("admin", Role.ADMINISTRATOR, None), ("hotline", Role.HOTLINE, None)]))
    second = dict(ensure_users(path, [("admin", Role.ADMINISTRATOR, None)]))
    archive = Archive(path)
    data = DashboardData(archive)
    assert data.authenticate("admin", second["admin"], 0.0)[1] == "ok"
    assert data.authenticate("hotline", first["hotline"], 0.0)[1] == "ok"
    assert data.authenticate("admin", first["admin"], 0.0)[1] == "bad"
    archive.close()


def test_personal_safety_words_are_recognised_in_four_languages() -> None:
    assert is_safety_text("please HELP me")
    assert is_safety_text("ช่วยด้วย")
    assert is_safety_text("ជួយខ្ញុំផង")
    assert is_safety_text("ကူညီပါ")
    assert not is_safety_text("when is payday")
    assert not is_safety_text("helpful weather today")


def test_the_dashboard_tables_and_queries_work_on_a_postgresql_archive(pg_url: str) -> None:
    import json

    archive = Archive(pg_url)
    try:
        archive.register_vessel("300234010753370", "Sea Star 7", bytes(32), "north", "iridium-9603")
        data = DashboardData(archive)
        DashboardData(archive)  # creating the tables twice is harmless
        user = data.add_user("desk", Role.HOTLINE, PASSWORD, None, 0.0)
        assert data.authenticate("desk", PASSWORD, 1.0)[1] == "ok"
        token, _ = data.open_session(user, 1.0)
        assert data.session(token, 2.0, 600, 3600) is not None
        with archive.tx() as db:
            for topic, payload in (
                (
                    "up/crew",
                    {"msg_id": "s:1", "member": 2, "handle": "cook", "to": "hotline", "text": "help"},
                ),
                (
                    "up/sos",
                    {
                        "msg_id": "s:2",
                        "vessel": "Sea Star 7",
                        "note": "fire",
                        "latitude": 9.0,
                        "longitude": 98.0,
                    },
                ),
            ):
                db.execute(
                    "INSERT INTO events (topic, payload, retain, created) VALUES (?, ?, 0, ?)",
                    (f"seabridge/v1/north/sea-star-7/{topic}", json.dumps(payload).encode(), 5.0),
                )
        (vessel,) = data.vessels()
        assert [c.key for c in data.conversations(user, [vessel])] == ["sea-star-7:2"]
        assert [m.text for m in data.thread(vessel, 2)] == ["help"]
        assert {a["kind"] for a in data.open_alerts([vessel], crew=True)} == {"sos", "safety"}
        found = data.alert("sos", "s:2", [vessel])
        assert found is not None and found[1] == vessel
        assert data.acknowledge(found[0], vessel, user, 6.0)
        assert not data.acknowledge(found[0], vessel, user, 7.0)
        status = data.vessel_status(vessel, 10.0, 3600.0)
        assert status["alerts"] == [] or all(a["kind"] != "sos" for a in status["alerts"])
        assert data.tracks([vessel], 0.0)["sea-star-7"] == [(5.0, 9.0, 98.0)]
        data.audit(user, "view", "conversation:sea-star-7:2", 8.0)
        assert data.audit_log(5)[0]["action"] == "view"
        assert data.messages_per_class([vessel], 0.0)["crew"] == 0
        assert data.bytes_per_day([vessel], 86400.0 * 3, 2)[-1][1] == 0
    finally:
        archive.close()
