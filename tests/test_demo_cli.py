"""``seabridge demo`` as a person runs it, in a subprocess: it prints every login it creates and no
WARNING or ERROR line; the printed broker login works with the README's ``mosquitto_sub`` /
``mosquitto_pub`` pair; the captain login signs in to the catch log; a port other than the README's
is explained; Ctrl-C removes the temporary data folder. ``--smoke`` also sees the vessel's position
reach the shore."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

LOG_PROBLEM = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b|Traceback")
REPLY_TOPIC = "seabridge/v1/demo/sea-star-7/down/crew"


def _fields(lines: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in lines:
        name, sep, value = line.partition(": ")
        if sep and " " not in name:
            out.setdefault(name, []).append(value)
    return out


def _logins(values: list[str]) -> dict[str, str]:
    return dict(v.split(":", 1) for v in values)


def test_smoke_prints_every_login_the_position_and_no_warning_or_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "seabridge.cli", "demo", "--smoke", "--messages", "2"],
        capture_output=True,
        text=True,
        timeout=280,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert not LOG_PROBLEM.search(output), output
    fields = _fields(done.stdout.splitlines())
    assert set(_logins(fields["dashboard-login"])) == {"admin", "hotline", "owner"}
    assert all(len(pw) >= 10 for pw in _logins(fields["dashboard-login"]).values())
    ((captain, pin),) = _logins(fields["captain-login"]).items()
    assert captain == "captain" and pin.isdigit()
    ((broker_user, broker_password),) = _logins(fields["broker-login"]).items()
    assert broker_user and broker_password
    assert "?token=" in fields["webhook"][0]
    assert any(line.startswith("smoke: position ") and "(gps)" in line for line in done.stdout.splitlines())
    assert not Path(fields["data"][0]).exists(), "the temporary data folder is removed"


@contextlib.contextmanager
def _busy(port: int) -> Iterator[None]:
    """Hold ``port`` on 127.0.0.1 (if nobody else does already)."""
    sock = socket.socket()
    try:
        with contextlib.suppress(OSError):
            sock.bind(("127.0.0.1", port))
            sock.listen()
        yield
    finally:
        sock.close()


@contextlib.contextmanager
def _demo(*args: str) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "seabridge.cli", "demo", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, "demo ended early:\n" + "".join(lines)
            lines.append(line.rstrip("\n"))
            if line.startswith("Ctrl-C stops"):
                break
        yield proc, lines
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _mqtt_pair(host: str, port: int, user: str, password: str) -> str:
    """The README's mosquitto_sub / mosquitto_pub pair: what the subscriber received."""
    login = ["-h", host, "-p", str(port), "-u", user, "-P", password]
    sub = subprocess.Popen(
        ["mosquitto_sub", *login, "-t", "seabridge/#", "-v", "-C", "1", "-W", "30"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.0)  # mosquitto_sub has no "subscribed" signal; its SUBACK takes milliseconds
    reply = json.dumps({"msg_id": "readme-1", "member": 1, "text": "hello from shore"})
    pub = subprocess.run(["mosquitto_pub", *login, "-t", REPLY_TOPIC, "-m", reply], capture_output=True, text=True)
    assert pub.returncode == 0, pub.stderr
    out, err = sub.communicate(timeout=40)
    assert sub.returncode == 0, err
    return out


@pytest.mark.skipif(shutil.which("mosquitto_sub") is None, reason="Debian's mosquitto-clients not installed")
def test_a_person_running_the_demo_gets_working_logins_and_a_clean_exit() -> None:
    with _busy(8090), _demo("--link", "perfect") as (proc, lines):
        fields = _fields(lines)
        assert any(line.startswith("note: port 8090 is in use") for line in lines), lines
        # The README's pair against the demo's broker, with the printed login.
        host, port = fields["broker"][0].removeprefix("mqtt://").rsplit(":", 1)
        ((user, password),) = _logins(fields["broker-login"]).items()
        received = _mqtt_pair(host, int(port), user, password)
        assert received.startswith(REPLY_TOPIC + " ") and "hello from shore" in received
        # The captain's login opens the catch log.
        ((captain, pin),) = _logins(fields["captain-login"]).items()
        api = fields["catch-log"][0].removesuffix("catch") + "api/catch/login"
        r = httpx.post(api, json={"handle": captain, "pin": pin}, timeout=10)
        assert r.status_code == 200 and r.json()["token"]
        data = Path(fields["data"][0])
        assert data.is_dir()
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
    output = "\n".join(lines) + rest
    assert not LOG_PROBLEM.search(output), output
    assert not data.exists(), "Ctrl-C removes the temporary data folder"


def test_a_data_folder_given_on_the_command_line_is_kept(tmp_path: Path) -> None:
    with _demo("--link", "perfect", "--data", str(tmp_path / "demo")) as (proc, lines):
        assert _fields(lines)["data"] == [str(tmp_path / "demo")]
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
        assert proc.returncode == 0
    assert (tmp_path / "demo" / "gateway" / "gateway.sqlite3").exists()
