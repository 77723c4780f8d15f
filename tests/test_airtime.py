"""The fleet view's all-in cost of a crew message: every billed message the relay saw for a vessel in
the last week (MO frames, empty mailbox sessions, MT frames) divided by the crew messages that arrived."""

from __future__ import annotations

from pathlib import Path

from relay_kit import ShoreKeys, VesselSender, make_relay

from firmware_profiles import load_profile
from shore.dashboard.data import DashboardData
from shore.dashboard.records import VesselRow

NET = "iridium-directip"
NOW = 1_735_689_600.0 + 12 * 3600


def test_the_fleet_view_shows_credits_per_crew_message_all_in(tmp_path: Path) -> None:
    keys = ShoreKeys(tmp_path / "keys")
    archive, relay = make_relay(tmp_path, keys)
    v = VesselSender(keys, "300234010000001", "Sea Star")
    v.register(archive)
    try:
        billing = load_profile("iridium-9603").billing
        frames = [v.frame([v.epoch_item(), v.crew_item("hello")]), v.frame([v.crew_item("pay is late " * 6)])]
        for i, frame in enumerate(frames):
            assert relay.handle_mo(v.imei, i + 1, frame, NET, NOW + i) == "accepted"
        assert relay.handle_mo(v.imei, 3, None, NET, NOW + 10) == "empty"  # a mailbox check
        relay.accept_reply(archive.vessel(v.imei), 1, "we will call you", "hotline", "r1", NOW + 20)
        mt = relay.build_mt(v.imei, NOW + 20)
        assert mt is not None
        relay.mt_sent(mt, NOW + 20)
        spent = sum(billing.units(len(f)) for f in frames) + billing.units(0) + billing.units(len(mt.data))
        row = next(r for r in DashboardData(archive).vessels() if r.imei == v.imei)
        assert isinstance(row, VesselRow)
        status = DashboardData(archive).vessel_status(row, NOW + 30, 3600.0, [])
        assert status["units_per_crew_message"] == round(spent / 2, 2)
        # A week later the figure speaks for the new week only.
        later = DashboardData(archive).vessel_status(row, NOW + 8 * 86400, 3600.0, [])
        assert later["units_per_crew_message"] is None
    finally:
        archive.close()
