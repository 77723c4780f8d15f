"""Frames from a known IMEI that fail authentication (or replay a captured frame under new MOMSNs) are
kept for inspection only up to a per-vessel cap in rows and bytes; beyond it they are counted and
logged, and the archive stops growing. Good frames keep flowing."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import pytest
from relay_kit import ShoreKeys, VesselSender

from shore.archive import Archive
from shore.relay import Relay

NET = "iridium-directip"


def _archive_size(archive: Archive) -> tuple[int, int]:
    rows, size = archive.query("SELECT COUNT(*), COALESCE(SUM(LENGTH(raw)), 0) FROM frames_in")[0]
    return int(rows), int(size)


@pytest.mark.parametrize("cap", ["rows", "bytes"])
def test_forged_frames_from_a_known_imei_stop_growing_the_archive_at_the_cap(
    tmp_path: Path, cap: str, caplog: pytest.LogCaptureFixture
) -> None:
    keys = ShoreKeys(tmp_path / "keys")
    limits = {"rejected_max_rows": 20} if cap == "rows" else {"rejected_max_bytes": 4000}
    archive = Archive(tmp_path / "archive.sqlite3", **limits)
    relay = Relay(archive, keys.link, keys.crew)
    vessel = VesselSender(keys, "300234010000001", "Sea Star")
    vessel.register(archive)
    rng = random.Random(13).randbytes
    with caplog.at_level(logging.WARNING, logger="shore.archive"):
        for momsn in range(1, 301):  # 300 forgeries of 200 B: 60 kB if all were kept
            assert relay.handle_mo(vessel.imei, momsn, rng(200), NET, float(momsn)) != "accepted"
    rows, size = _archive_size(archive)
    assert rows <= 20 and size <= 4000
    assert relay.rejections["rejected-not-archived"] == 300 - rows
    assert "not archived" in caplog.text
    kept = archive.query("SELECT DISTINCT outcome FROM frames_in")
    assert kept and all(o != "accepted" for (o,) in kept)
    # A real frame still goes through, and its row does not count against the cap.
    frame = vessel.frame([vessel.epoch_item(), vessel.crew_item("still here")])
    assert relay.handle_mo(vessel.imei, 1000, frame, NET, 1000.0) == "accepted"
    assert archive.query("SELECT COUNT(*) FROM frames_in WHERE outcome = 'accepted'") == [(1,)]
    archive.close()


def test_a_captured_frame_replayed_under_new_momsns_is_capped_too(tmp_path: Path) -> None:
    keys = ShoreKeys(tmp_path / "keys")
    archive = Archive(tmp_path / "archive.sqlite3", rejected_max_rows=5)
    relay = Relay(archive, keys.link, keys.crew)
    vessel = VesselSender(keys, "300234010000001", "Sea Star")
    vessel.register(archive)
    frame = vessel.frame([vessel.epoch_item(), vessel.catch_item(1)])
    assert relay.handle_mo(vessel.imei, 1, frame, NET, 1.0) == "accepted"
    for momsn in range(2, 52):
        assert relay.handle_mo(vessel.imei, momsn, frame, NET, float(momsn)) == "replay"
    assert archive.query("SELECT COUNT(*) FROM frames_in WHERE outcome = 'replay'") == [(5,)]
    assert relay.rejections["rejected-not-archived"] == 45
    assert relay.rejections["replay"] == 50
    archive.close()


def test_the_same_rejected_delivery_retried_by_the_network_is_a_duplicate(tmp_path: Path) -> None:
    keys = ShoreKeys(tmp_path / "keys")
    archive = Archive(tmp_path / "archive.sqlite3")
    relay = Relay(archive, keys.link, keys.crew)
    vessel = VesselSender(keys, "300234010000001", "Sea Star")
    vessel.register(archive)
    forged = random.Random(7).randbytes(60)
    assert relay.handle_mo(vessel.imei, 7, forged, NET, 1.0) != "duplicate"
    assert relay.handle_mo(vessel.imei, 7, forged, NET, 2.0) == "duplicate"
    assert _archive_size(archive)[0] == 1
    archive.close()
