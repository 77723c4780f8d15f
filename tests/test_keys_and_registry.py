"""`seabridge keys`: key files, the shore's vessel registry, and what happens to unknown vessels."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from nacl.public import PrivateKey

from common.keyfiles import KeyFileError, read_public, read_secret
from shore.archive import Archive
from shore.relay import Relay
from wire.crypto import link_key
from wire.frame import Direction, seal_frame
from wire.items import encode_record_item
from wire.records import Kind, Sos

IMEI = "300234010753370"


def seabridge(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "seabridge.cli", *args], capture_output=True, text=True, timeout=60
    )


def test_keys_commands_create_private_secrets_and_register_a_vessel(tmp_path: Path) -> None:
    assert seabridge("keys", "shore", "--dir", str(tmp_path / "shore")).returncode == 0
    assert seabridge("keys", "vessel", "--dir", str(tmp_path / "v"), "--name", "sea-star").returncode == 0
    for secret in (tmp_path / "shore/shore.key", tmp_path / "shore/crew.key", tmp_path / "v/sea-star.key"):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        read_secret(secret)
    # Creating again never overwrites a secret.
    again = seabridge("keys", "vessel", "--dir", str(tmp_path / "v"), "--name", "sea-star")
    assert again.returncode != 0
    archive = tmp_path / "archive.sqlite3"
    reg = seabridge(
        "keys",
        "register",
        "--archive",
        str(archive),
        "--modem-id",
        IMEI,
        "--name",
        "Sea Star",
        "--public",
        str(tmp_path / "v/sea-star.pub"),
        "--fleet",
        "andaman",
    )
    assert reg.returncode == 0, reg.stderr
    vessel = Archive(archive).vessel(IMEI)
    assert vessel is not None and vessel.fleet == "andaman" and not vessel.revoked
    assert vessel.public_key == bytes(read_public(tmp_path / "v/sea-star.pub"))
    bad = seabridge(
        "keys",
        "register",
        "--archive",
        str(archive),
        "--modem-id",
        "12345",
        "--name",
        "X",
        "--public",
        str(tmp_path / "v/sea-star.pub"),
    )
    assert bad.returncode != 0


def test_a_secret_readable_by_others_is_refused(tmp_path: Path) -> None:
    assert seabridge("keys", "vessel", "--dir", str(tmp_path)).returncode == 0
    os.chmod(tmp_path / "vessel.key", 0o644)
    with pytest.raises(KeyFileError):
        read_secret(tmp_path / "vessel.key")


def _frame(vessel: PrivateKey, shore: PrivateKey, counter: int = 1) -> bytes:
    item = encode_record_item(1, int(Kind.SOS), Sos(created=100).body())
    return seal_frame(link_key(vessel, shore.public_key), Direction.MO, counter, [item], 340)


def test_frames_from_unknown_and_revoked_vessels_are_refused_with_a_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shore, vessel = PrivateKey.generate(), PrivateKey.generate()
    archive = Archive(tmp_path / "a.sqlite3")
    relay = Relay(archive, shore, PrivateKey.generate())
    with caplog.at_level(logging.WARNING):
        assert relay.handle_mo(IMEI, 1, _frame(vessel, shore), "test", 1000.0) == "unknown-vessel"
    assert IMEI in caplog.text and "not registered" in caplog.text
    archive.register_vessel(IMEI, "Sea Star", bytes(vessel.public_key))
    assert relay.handle_mo(IMEI, 2, _frame(vessel, shore, 2), "test", 1001.0) == "accepted"
    # A vessel whose key does not match the registry is refused as a forgery.
    assert relay.handle_mo(IMEI, 3, _frame(PrivateKey.generate(), shore, 3), "test", 1002.0) == "bad-mac"
    # The same delivery again (the network retrying) is not processed twice.
    assert relay.handle_mo(IMEI, 2, _frame(vessel, shore, 2), "test", 1003.0) == "duplicate"
    # A replayed frame under a new MOMSN is refused by the replay window.
    assert relay.handle_mo(IMEI, 4, _frame(vessel, shore, 2), "test", 1004.0) == "replay"
    archive.revoke_vessel(IMEI)
    assert relay.handle_mo(IMEI, 5, _frame(vessel, shore, 5), "test", 1005.0) == "revoked-vessel"
    assert relay.rejections == {
        "unknown-vessel": 1,
        "bad-mac": 1,
        "duplicate-delivery": 1,
        "replay": 1,
        "revoked-vessel": 1,
    }
    sos_events = archive.query("SELECT COUNT(*) FROM events WHERE topic LIKE '%/up/sos'")
    assert sos_events == [(1,)]
