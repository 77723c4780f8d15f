"""What the hotline desk says about a reply, from the relay's MT queue in a real SQLite archive: it
leaves "sent to relay" as soon as the relay queues it, says "sent via satellite" with the hand-over time
as soon as the frame goes to the network (the vessel takes it at its next session), and "delivered"
when the acknowledgement arrives; the shore-to-vessel latency ends at the hand-over, not at the
acknowledgement that rides on a later vessel frame."""

from __future__ import annotations

from pathlib import Path

from nacl.public import PrivateKey

from shore.archive import Archive
from shore.dashboard.data import DashboardData
from wire.records import Kind
from wire.units import Unit

IMEI = "300234010000001"


def _archive(tmp_path: Path) -> tuple[Archive, DashboardData]:
    archive = Archive(tmp_path / "archive.sqlite3")
    archive.register_vessel(IMEI, "Sea Star 7", bytes(PrivateKey.generate().public_key), "north")
    return archive, DashboardData(archive)


def _queue(archive: Archive, msg_id: str, now: float) -> Unit:
    units: list[Unit] = []

    def make(rid: int) -> list[Unit]:
        units.append(Unit(rid, 0, 1, b"reply"))
        return units

    archive.mt_accept(IMEI, msg_id, int(Kind.CREW_REPLY), 2, now, make)
    return units[0]


def test_a_reply_goes_from_relay_to_satellite_to_delivered_with_the_times_the_shore_knows(
    tmp_path: Path,
) -> None:
    archive, data = _archive(tmp_path)
    vessel = data.vessels()[0]
    assert data.receipts(vessel, ["desk-1"])["desk-1"].state == "sent to relay"
    unit = _queue(archive, "desk-1", 1000.0)
    assert data.receipts(vessel, ["desk-1"])["desk-1"].state == "queued ashore"
    archive.mt_frame_sent(IMEI, 7, [unit], [], 1030.0)
    sent = data.receipts(vessel, ["desk-1"])["desk-1"]
    assert (sent.state, sent.sent, sent.acked) == ("sent via satellite", 1030.0, None)
    with archive.tx() as db:
        Archive.mt_frames_acked(db, IMEI, frozenset({7}), 1180.0)  # 2.5 minutes later
    done = data.receipts(vessel, ["desk-1"])["desk-1"]
    assert (done.state, done.sent, done.acked) == ("delivered", 1030.0, 1180.0)
    assert data.mt_latencies([vessel], 0.0) == [30.0]  # not 180 s: the acknowledgement's lag is not delivery
    archive.close()


def test_a_reply_still_ashore_has_no_latency_yet(tmp_path: Path) -> None:
    archive, data = _archive(tmp_path)
    _queue(archive, "desk-2", 1000.0)
    assert data.mt_latencies(data.vessels(), 0.0) == []
    archive.close()
