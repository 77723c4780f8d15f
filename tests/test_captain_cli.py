"""``seabridge captain``: a captain account is created from the command line, with a generated PIN it
prints, and that login signs in to the catch log's API on the vessel."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
from captive_support import Gateway, page

from gateway.catchlog import CatchLog


def seabridge(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "seabridge.cli", *args], capture_output=True, text=True, timeout=60
    )


def login_of(out: str) -> tuple[str, str]:
    line = next(x for x in out.splitlines() if x.startswith("captain-login: "))
    name, _, pin = line.removeprefix("captain-login: ").partition(":")
    return name, pin


def test_captain_add_prints_a_login_that_signs_in_to_the_catch_log(tmp_path: Path) -> None:
    done = seabridge("captain", "add", "--data", str(tmp_path), "--name", "somchai")
    assert done.returncode == 0, done.stderr
    name, pin = login_of(done.stdout)
    assert name == "somchai" and pin.isdigit() and 6 <= len(pin) <= 12
    with page(tmp_path) as (_gw, url), httpx.Client(base_url=url) as web:
        wrong = web.post("/api/catch/login", json={"handle": "somchai", "pin": "000000"})
        assert wrong.status_code in (401, 422) and "token" not in wrong.json()
        r = web.post("/api/catch/login", json={"handle": name, "pin": pin})
        assert r.status_code == 200, r.text
        token = r.json()["token"]
        trips = web.get("/api/catch/trips", headers={"Authorization": f"Bearer {token}"})
        assert trips.status_code == 200


def test_captain_add_refuses_a_second_captain_of_the_same_name(tmp_path: Path) -> None:
    assert seabridge("captain", "add", "--data", str(tmp_path), "--name", "somchai").returncode == 0
    again = seabridge("captain", "add", "--data", str(tmp_path), "--name", "somchai")
    assert again.returncode == 1 and "already exists" in again.stderr
    listed = seabridge("captain", "list", "--data", str(tmp_path))
    assert listed.stdout.split() == ["somchai"]


def test_captain_pin_replaces_the_pin_and_ends_sessions(tmp_path: Path) -> None:
    _name, old = login_of(seabridge("captain", "add", "--data", str(tmp_path), "--name", "nok").stdout)
    gw = Gateway(tmp_path)
    try:
        session = CatchLog(gw.store, gw.clock).login("nok", old)
        assert session is not None
        done = seabridge("captain", "pin", "--data", str(tmp_path), "--name", "nok")
        assert done.returncode == 0, done.stderr
        _name, new = login_of(done.stdout)
        log = CatchLog(gw.store, gw.clock)
        assert log.captain(session.token) is None
        assert log.login("nok", old) is None
        assert log.login("nok", new) is not None
    finally:
        gw.store.close()


def test_captain_add_takes_a_chosen_pin_from_a_file_and_checks_it(tmp_path: Path) -> None:
    (tmp_path / "pin").write_text("12\n")
    short = seabridge("captain", "add", "--data", str(tmp_path), "--name", "a", "--pin-file", str(tmp_path / "pin"))
    assert short.returncode == 1 and "6 to 12 digits" in short.stderr
    (tmp_path / "pin").write_text("24681357\n")
    done = seabridge("captain", "add", "--data", str(tmp_path), "--name", "a", "--pin-file", str(tmp_path / "pin"))
    assert login_of(done.stdout) == ("a", "24681357")
