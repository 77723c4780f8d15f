"""A vessel's alerts from the gateway's own records through the relay to the dashboard's alert list
(real gateway store and crew desk, real frames, real relay and archive): repeated SOS confirmations are
one alert counting its devices, a false alarm from the vessel follows it, and the covert Clear-screen
alert is a personal-safety alert with the time it was raised on board."""

from __future__ import annotations

from pathlib import Path

from relay_kit import ShoreKeys, VesselSender, make_relay

from common.clock import ManualClock
from gateway.accounts import Members
from gateway.crew import CrewDesk
from gateway.store import GatewayStore
from shore.dashboard.data import DashboardData
from wire.frame import frame_capacity

NET = "iridium-directip"


class Vessel:
    """A gateway's store and crew desk whose queued units go to the relay as real frames."""

    def __init__(self, tmp: Path, keys: ShoreKeys, clock: ManualClock) -> None:
        self.sender = VesselSender(keys, "300234010753370", "Sea Star 7")
        limit = self.sender.limit
        self.store = GatewayStore(tmp / "gateway.sqlite3", frame_capacity(limit, 2**35 - 1))
        self.desk = CrewDesk(self.store, keys.crew.public_key, clock)
        self.clock = clock

    def send_queued(self, relay, now: float) -> int:  # type: ignore[no-untyped-def]
        """Every unit waiting goes ashore, one frame per unit; then they count as sent."""
        units = self.store.pending_units(now, 1e9)
        for unit in units:
            frame = self.sender.frame([unit.unit.item])
            assert relay.handle_mo(self.sender.imei, self.sender.next_momsn(), frame, NET, now) == "accepted"
        with self.store.transaction() as db:
            db.executemany("UPDATE records SET state = 'sent' WHERE rid = ?", [(u.unit.rid,) for u in units])
            db.executemany("UPDATE units SET acked = 1 WHERE rid = ?", [(u.unit.rid,) for u in units])
        return len(units)


def test_sos_confirmations_and_a_false_alarm_reach_the_dashboard_as_one_alert(tmp_path: Path) -> None:
    keys = ShoreKeys(tmp_path)
    archive, relay = make_relay(tmp_path, keys)
    clock = ManualClock(1_790_000_000.0)
    vessel = Vessel(tmp_path, keys, clock)
    vessel.sender.register(archive)
    data = DashboardData(archive)
    distress = vessel.desk.distress
    first = distress.raise_alert("phone-a", "fire in the engine room", 9.5, 97.8)
    for device in ("phone-b", "phone-c", "phone-a"):
        clock.advance(5)
        assert distress.raise_alert(device).rid == first.rid
    assert vessel.send_queued(relay, clock.now() + 60) == 2  # the alert and the last update, no more
    (alert,) = data.open_alerts(data.vessels(), crew=False)
    assert alert["devices"] == 3 and alert["note"] == "fire in the engine room"
    assert alert["raised"] == clock.now() - 15  # when the first phone raised it, not when it arrived
    assert alert["arrived"] == clock.now() + 60 and alert["latitude"] == 9.5
    assert distress.false_alarm(first.rid) == "cancel-sent"
    assert vessel.send_queued(relay, clock.now() + 120) == 1
    (alert,) = data.open_alerts(data.vessels(), crew=False)
    assert alert["false_alarm"] == "the vessel" and alert["devices"] == 3


def test_the_clear_screen_alert_is_a_personal_safety_alert_ashore(tmp_path: Path) -> None:
    keys = ShoreKeys(tmp_path)
    archive, relay = make_relay(tmp_path, keys)
    clock = ManualClock(1_790_000_000.0)
    vessel = Vessel(tmp_path, keys, clock)
    vessel.sender.register(archive)
    members = Members(vessel.store)
    alerts = {}
    for handle in ("cook", "netman"):
        member = members.claim_or_login(handle, "2468", clock.now())
        assert member is not None
        vessel.desk.personal_alert(member)
        alerts[handle] = clock.now()
        clock.advance(90)
    vessel.send_queued(relay, clock.now() + 300)
    data = DashboardData(archive)
    found = {a["handle"]: a for a in data.open_alerts(data.vessels(), crew=True)}
    assert set(found) == {"cook", "netman"} and {a["kind"] for a in found.values()} == {"safety"}
    for handle, made in alerts.items():
        assert abs(found[handle]["raised"] - made) < 1 and found[handle]["arrived"] == clock.now() + 300
    assert data.open_alerts(data.vessels(), crew=False) == []
