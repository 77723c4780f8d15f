"""The gateway's link policy in the daemon: latency bounds, packing, budget, SOS exemption, windows,
retries, ring alerts, mailbox checks, fairness, allowances and expiry — against a real shore relay."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from gateway_world import IMEI, make_daemon

from common.clock import ManualClock
from gateway.budget import periods
from wire.records import Alert, CrewMessage, Kind, PriorityClass, to_wire_time
from wire.versions import decode_stored

DAY = 86400.0


def _crew(daemon, member: int, nbytes: int = 40) -> int:  # type: ignore[no-untyped-def]
    now = daemon.clock.now()
    body = CrewMessage(member, 1, bytes(nbytes), to_wire_time(now)).body()
    return daemon.store.accept(Kind.CREW_MESSAGE, lambda _rid: body, now, member=member, lifetime_s=30 * DAY)


def _catch(daemon, nbytes: int = 30) -> int:  # type: ignore[no-untyped-def]
    now = daemon.clock.now()
    return daemon.store.accept(Kind.CATCH, lambda rid: {0: rid, 1: bytes(nbytes)}, now)


def _step(daemon, ring: bool = False):  # type: ignore[no-untyped-def]
    """One turn of the session loop; runs the session if the scheduler opens one."""
    now = daemon.clock.now()
    daemon.housekeeping(now)
    turn = daemon.turn(now, ring)
    if turn.decision.open:
        asyncio.run(daemon._run_session(turn))
    return turn.decision


def test_a_nearly_empty_crew_frame_waits_for_the_latency_bound_then_goes(tmp_path: Path) -> None:
    clock = ManualClock()
    daemon, _modem, shore = make_daemon(
        tmp_path, clock, **{"latency.crew_s": 300.0, "link.mailbox_check_s": 0}
    )
    _crew(daemon, 1)
    d = _step(daemon)
    assert not d.open
    assert d.reason.startswith("deferred: frame ") and "% full, budget 0 %" in d.reason
    assert 0 < d.wait_s <= 300
    clock.advance(299)
    assert not _step(daemon).open
    clock.advance(1)
    d = _step(daemon)
    assert d.open and d.reason.startswith("session opened: crew message waiting 5 min (bound 5 min)")
    assert len(shore.records()) == 1


def test_a_full_frame_opens_a_session_at_once(tmp_path: Path) -> None:
    clock = ManualClock()
    daemon, modem, _shore = make_daemon(tmp_path, clock, **{"link.mailbox_check_s": 0})
    for _ in range(12):
        _catch(daemon, 20)
    d = _step(daemon)
    assert d.open and "% full" in d.reason
    assert daemon.last_turn is not None and daemon.last_turn.view.fill >= 0.9
    assert len(modem.sent[0] or b"") <= daemon.profile.mo_max_bytes


def test_sos_goes_out_with_the_budget_spent_and_ordinary_traffic_waits(tmp_path: Path) -> None:
    clock = ManualClock()
    daemon, _modem, shore = make_daemon(
        tmp_path,
        clock,
        **{
            "budget.unit": "units",
            "budget.day_limit": 8.0,
            "latency.catch_s": 0.0,
            "link.mailbox_check_s": 0,
        },
    )
    # Spend the day's budget on catch logs (each frame of this size costs several 50-byte credits).
    for _ in range(30):
        _catch(daemon, 60)
    while _step(daemon).open:
        clock.advance(1)
    state = daemon.budget_state()
    assert state.exhausted
    d = _step(daemon)
    assert not d.open and "held: budget spent" in d.reason
    clock.advance(daemon.config.latency.control_s)  # the 100 % alert goes at its class's bound
    assert _step(daemon).reason.startswith("session opened: control waiting")
    d = _step(daemon)
    assert not d.open and d.reason.startswith("deferred: ") and "unit(s) held: budget spent" in d.reason
    waiting = daemon.store.record_states().get("queued", 0)
    assert waiting > 0, "ordinary traffic must still be waiting"

    rid = daemon.desk.sos("engine fire", 9.5, 98.2)
    d = _step(daemon)
    assert d.open and d.reason == "session opened: SOS waiting"
    published = shore.published()
    assert f"test-vessel:{rid}" in published
    assert daemon.store.record_states().get("queued", 0) == waiting, "only the SOS went"

    # The 80 % and 100 % alerts were queued as control records and went out despite the budget.
    alerts = [Alert.from_body(body) for _, kind, body in shore.records() if kind == Kind.ALERT]
    assert {(a.period, a.level_permille) for a in alerts} == {("day", 800), ("day", 1000)}
    assert all(a.unit == "units" and a.limit == 8.0 for a in alerts)

    # The next UTC day has a fresh budget: ordinary traffic moves again.
    clock.advance(DAY)
    assert _step(daemon).open


def test_guaranteed_minimum_lets_a_member_through_a_spent_budget(tmp_path: Path) -> None:
    clock = ManualClock()
    daemon, _modem, _shore = make_daemon(
        tmp_path,
        clock,
        **{
            "budget.unit": "bytes",
            "budget.day_limit": 100.0,
            "allowance.guaranteed_day_bytes": 120,
            "latency.crew_s": 0.0,
            "latency.catch_s": 0.0,
            "link.mailbox_check_s": 0,
        },
    )
    for _ in range(6):
        _catch(daemon, 60)
    while _step(daemon).open:
        clock.advance(1)
    assert daemon.budget_state().exhausted
    first = _crew(daemon, 5, 60)
    second = _crew(daemon, 5, 60)
    d = _step(daemon)
    assert d.open
    sent = {q.unit.rid for q in daemon.last_turn.plan.queued}  # type: ignore[union-attr]
    assert first in sent and second not in sent, "only the guaranteed bytes bypass the budget"
    assert daemon.allowance(5).guaranteed_left < 60


def test_a_busy_member_cannot_starve_another(tmp_path: Path) -> None:
    clock = ManualClock()
    daemon, _modem, _shore = make_daemon(
        tmp_path, clock, **{"latency.crew_s": 0.0, "link.mailbox_check_s": 0}
    )
    busy = [_crew(daemon, 1, 60) for _ in range(20)]
    clock.advance(10)
    quiet = [_crew(daemon, 2, 60) for _ in range(2)]
    _step(daemon)
    first_frame = {q.unit.rid for q in daemon.last_turn.plan.queued}  # type: ignore[union-attr]
    assert set(quiet) & first_frame, "the second member shares the very first frame"
    assert set(busy) & first_frame
    served = daemon.packer.fair.served
    assert abs(served.get(1, 0) - served.get(2, 0)) <= 80


def test_a_member_past_the_allowance_waits_and_sees_what_is_left(tmp_path: Path) -> None:
    clock = ManualClock()
    daemon, _modem, _shore = make_daemon(
        tmp_path, clock, **{"allowance.day_bytes": 150, "latency.crew_s": 0.0, "link.mailbox_check_s": 0}
    )
    for _ in range(4):
        _crew(daemon, 3, 60)
    while _step(daemon).open:
        clock.advance(1)
    left = daemon.allowance(3)
    assert daemon.desk.allowance(3) == left, "the captive page asks the crew desk"
    size = left.day_used  # one message went; the next one no longer fits today's allowance
    assert left.day_left == 150 - size < size
    states = [m.state for m in daemon.store.member_messages(3)]
    assert "queued" in states
    d = _step(daemon)
    assert "held: allowance used" in d.reason
    clock.advance(DAY)
    assert daemon.allowance(3).day_left == 150
    assert _step(daemon).open


def test_quiet_window_holds_everything_but_sos(tmp_path: Path) -> None:
    from gateway.config import WindowSpec

    clock = ManualClock(1_735_689_600.0 + 23 * 3600)  # 23:00 UTC
    daemon, _modem, _shore = make_daemon(
        tmp_path,
        clock,
        **{"latency.crew_s": 0.0, "windows.quiet": [WindowSpec("0 22 * * *", 8 * 3600.0)]},
    )
    daemon.scheduler.policy = __import__("gateway.daemon", fromlist=["x"]).policy_from_config(
        daemon.config
    )
    _crew(daemon, 1)
    d = _step(daemon)
    assert not d.open and d.reason == "deferred: quiet window until 06:00 UTC"
    daemon.desk.sos("man overboard")
    assert _step(daemon).reason == "session opened: SOS waiting"
    clock.advance(7 * 3600)  # 06:00
    _crew(daemon, 2)
    assert _step(daemon).open


def test_cheap_window_sends_a_partial_frame(tmp_path: Path) -> None:
    from gateway.config import WindowSpec

    clock = ManualClock(1_735_689_600.0 + 2 * 3600)  # 02:00 UTC
    daemon, _modem, _shore = make_daemon(
        tmp_path, clock, **{"windows.cheap": [WindowSpec("0 1 * * *", 3 * 3600.0)], "link.mailbox_check_s": 0}
    )
    _catch(daemon)
    d = _step(daemon)
    assert d.open and d.reason.startswith("session opened: cheap window, frame ")


def test_failed_sessions_back_off_along_the_profile_schedule_and_sos_caps_it(tmp_path: Path) -> None:
    clock = ManualClock()
    daemon, modem, _shore = make_daemon(
        tmp_path, clock, **{"latency.catch_s": 0.0, "link.mailbox_check_s": 0}
    )
    daemon.retry.retry = type(daemon.retry.retry)((5.0, 30.0, 300.0), False, ())
    modem.up = False
    _catch(daemon)
    delays = []
    for _ in range(4):
        d = _step(daemon)
        assert d.open
        delays.append(daemon.retry.next_try - clock.now())
        d = _step(daemon)
        assert not d.open and "after a failed session" in d.reason
        clock.advance(daemon.retry.next_try - clock.now())
    assert delays == [5.0, 30.0, 300.0, 300.0]
    # A waiting SOS does not sit out a long back-off.
    _step(daemon)  # fails again; next try in 300 s
    daemon.desk.sos()
    clock.advance(daemon.config.link.sos_retry_max_s)
    modem.up = True
    assert _step(daemon).reason == "session opened: SOS waiting"


def test_a_ring_alert_waits_for_a_session_going_anyway_then_opens_one_of_its_own(tmp_path: Path) -> None:
    clock = ManualClock()
    daemon, modem, _shore = make_daemon(
        tmp_path, clock, **{"link.mailbox_check_s": 0, "link.ring_hold_s": 900.0}
    )
    assert not _step(daemon).open
    d = _step(daemon, ring=True)
    assert not d.open and 0 < d.wait_s <= 900, "a ring alone waits for a session going anyway"
    clock.advance(899)
    assert not _step(daemon, ring=True).open
    clock.advance(1)
    d = _step(daemon, ring=True)
    assert d.open and d.reason == "session opened: ring alert" and d.answer_ring
    assert modem.sent == [None] and modem.mailbox_checks == 1


def test_a_ring_is_answered_at_once_by_a_frame_that_is_ready(tmp_path: Path) -> None:
    clock = ManualClock()
    daemon, modem, shore = make_daemon(
        tmp_path, clock, **{"link.mailbox_check_s": 0, "latency.crew_s": 300.0}
    )
    _crew(daemon, 1)
    assert not _step(daemon).open  # the crew message waits for a fuller frame ...
    d = _step(daemon, ring=True)  # ... until a ring: the frame goes now and fetches what waits ashore
    assert d.open and d.answer_ring and d.send_frame
    assert modem.mailbox_checks == 0 and len(shore.records()) == 1


def test_acknowledgements_ride_along_and_open_a_session_alone_only_after_the_cumulative_interval(
    tmp_path: Path,
) -> None:
    clock = ManualClock()
    daemon, modem, _shore = make_daemon(
        tmp_path,
        clock,
        **{
            "link.mailbox_check_s": 0,
            "latency.crew_s": 0.0,
            "link.cumulative_ack_s": DAY,
            "link.ring_hold_s": 0.0,
        },
    )
    relay = modem.relay
    vessel = relay.archive.vessel(IMEI)
    relay.accept_reply(vessel, 1, "hello ship", "hotline", "r1", clock.now())
    assert _step(daemon, ring=True).open  # a reply reaches the vessel; the vessel owes an ack now
    assert daemon.store.inbox(1)
    clock.advance(DAY - 1)
    assert not _step(daemon).open, "an acknowledgement alone does not open a session"
    _crew(daemon, 1)
    assert _step(daemon).open  # a crew message goes and the acknowledgement rides on it
    plan = daemon.session_plan
    assert plan is not None and plan.cumulative is not None and plan.queued
    assert relay.archive.query("SELECT state FROM mt_records") == [("delivered",)]
    relay.accept_reply(vessel, 1, "second", "hotline", "r2", clock.now())
    assert _step(daemon, ring=True).open
    clock.advance(DAY - 1)
    assert not _step(daemon).open
    clock.advance(1)
    d = _step(daemon)
    assert d.open and d.reason.startswith("session opened: control waiting")
    assert daemon.session_plan is not None and not daemon.session_plan.queued
    assert relay.archive.query("SELECT state FROM mt_records ORDER BY id") == [("delivered",), ("delivered",)]


def test_a_position_report_rides_in_the_paid_unit_and_opens_a_session_only_at_its_interval(
    tmp_path: Path,
) -> None:
    clock = ManualClock()
    daemon, modem, shore = make_daemon(
        tmp_path,
        clock,
        **{
            "link.mailbox_check_s": 0,
            "latency.crew_s": 0.0,
            "telemetry.interval_s": 3600.0,
            "telemetry.solo_interval_s": 6 * 3600.0,
            "latency.telemetry_s": 3600.0,
            "link.ring_hold_s": 0.0,
        },
    )
    clock.advance(3600)
    # A session answering a ring pays one unit whatever it carries: the position report rides in it.
    assert _step(daemon, ring=True).open
    sent = modem.sent[-1]
    assert sent is not None and daemon.budget.cost(len(sent)).units == daemon.budget.cost(0).units
    assert [k for _, k, _ in shore.records()] == [Kind.TELEMETRY]
    _crew(daemon, 1, nbytes=150)  # no room in the paid unit, and the last report is recent anyway
    assert _step(daemon).open
    assert [k for _, k, _ in shore.records()] == [Kind.TELEMETRY, Kind.CREW_MESSAGE]
    clock.advance(6 * 3600 - 1)
    assert not _step(daemon).open
    clock.advance(1)
    assert not _step(daemon).open, "a solo report waits for a frame going anyway, up to its bound"
    clock.advance(3600)
    d = _step(daemon)
    assert d.open and d.reason.startswith("session opened: telemetry waiting")
    assert [k for _, k, _ in shore.records()].count(Kind.TELEMETRY) == 2


def test_mailbox_checks_are_scheduled_and_charged(tmp_path: Path) -> None:
    clock = ManualClock()
    daemon, modem, _shore = make_daemon(
        tmp_path, clock, **{"link.mailbox_check_s": 600.0, "budget.unit": "units", "budget.day_limit": 2.5}
    )
    assert _step(daemon).reason == "idle: nothing due"
    clock.advance(600)
    assert _step(daemon).reason == "session opened: mailbox check due"
    assert daemon.budget_state().day_used == daemon.profile.billing.mailbox_check_units
    clock.advance(600)
    assert _step(daemon).open, "budget at 40 %: every 600 s"
    clock.advance(600)
    d = _step(daemon)  # budget at 80 %: checks twice as far apart; the 80 % alert waits its bound
    assert not d.open and d.reason.startswith("deferred: frame") and d.reason.endswith("budget 80 %")
    clock.advance(600)
    assert _step(daemon).reason.startswith("session opened: control waiting 10 min")
    assert modem.mailbox_checks == 2
    clock.advance(1200)
    assert _step(daemon).open, "the 100 % alert rides a mailbox session: control traffic is exempt"
    clock.advance(2400)
    d = _step(daemon)
    assert not d.open and re.fullmatch(r"deferred: mailbox check due, budget \d{3} %", d.reason)
    assert d.wait_s > 0


def test_a_record_past_its_lifetime_expires_with_a_reason(tmp_path: Path) -> None:
    clock = ManualClock()
    daemon, modem, _shore = make_daemon(tmp_path, clock)
    modem.up = False
    rid = _crew(daemon, 4)
    clock.advance(31 * DAY)
    _step(daemon)
    [status] = daemon.store.member_messages(4)
    assert status.rid == rid and status.state == "expired"
    assert status.reason == "lifetime ended before delivery"


def test_expiry_reads_the_records_still_to_send_by_index_not_every_delivered_record(tmp_path: Path) -> None:
    """Delivered records stay in the store, and every turn looks for expired ones: the look must not
    read them all (a month at sea is thousands). Expired ones still come back in record order."""
    clock = ManualClock()
    daemon, modem, _shore = make_daemon(tmp_path, clock)
    modem.up = False
    store = daemon.store
    rids = [_crew(daemon, 4) for _ in range(6)]
    with store.transaction() as db:
        db.execute("UPDATE records SET state = 'delivered' WHERE rid IN (?, ?)", (rids[1], rids[4]))
        db.execute("UPDATE records SET state = 'sent' WHERE rid = ?", (rids[3],))
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    expired = store.expire(clock.now() + 31 * DAY)
    store._db.set_trace_callback(None)
    assert expired == [rids[0], rids[2], rids[3], rids[5]]
    [select] = [s for s in statements if s.lstrip().upper().startswith("SELECT RID FROM RECORDS")]
    plan = [row[3] for row in store._db.execute("EXPLAIN QUERY PLAN " + select)]
    assert not any(step.startswith("SCAN r") for step in plan), plan
    assert any("records_expiring" in step for step in plan), plan


def test_priority_classes_fill_a_frame_highest_first(tmp_path: Path) -> None:
    clock = ManualClock()
    daemon, _modem, _shore = make_daemon(tmp_path, clock)
    for _ in range(8):
        _catch(daemon, 40)
    crew = [_crew(daemon, 1, 40) for _ in range(3)]
    daemon.desk.sos()
    _step(daemon)
    queued = daemon.last_turn.plan.queued  # type: ignore[union-attr]
    classes = [q.cls for q in queued]
    assert classes == sorted(classes) and classes[0] == PriorityClass.DISTRESS
    assert set(crew) <= {q.unit.rid for q in queued}
    kinds = [decode_stored(q.unit.item).kind for q in queued]  # type: ignore[union-attr]
    assert kinds[0] == Kind.SOS


def test_the_expected_send_time_follows_the_crew_latency_bound_and_the_budget(tmp_path: Path) -> None:
    clock = ManualClock()
    daemon, _modem, _shore = make_daemon(
        tmp_path, clock, **{"latency.crew_s": 300.0, "link.mailbox_check_s": 0, "budget.day_limit": 100.0}
    )
    _crew(daemon, 1)
    _step(daemon)
    created = clock.now()
    assert daemon.expected_send(created) == created + 300
    clock.advance(400)  # past the bound: it goes as soon as possible
    assert daemon.expected_send(created) == clock.now()
    daemon.store.charge_session(periods(clock.now()), 5000, 10_000)
    _step(daemon)
    assert daemon.expected_send(created) is None  # the day's budget is spent


def test_the_covert_alert_goes_as_the_members_but_shows_in_no_list_and_no_allowance(tmp_path: Path) -> None:
    clock = ManualClock()
    daemon, _modem, shore = make_daemon(
        tmp_path, clock, **{"allowance.day_bytes": 2000, "latency.crew_s": 0.0, "link.mailbox_check_s": 0}
    )
    member = daemon.desk.login("cook", "2468")
    assert member is not None
    alert = daemon.desk.personal_alert(member)
    while _step(daemon).open:
        clock.advance(1)
    assert alert in {r[0] for r in shore.records()}  # it went ashore
    assert daemon.store.member_messages(member) == []
    assert daemon.allowance(member).day_used == 0  # the remaining allowance on the phone does not move
    written = daemon.desk.send(member, "hotline", "all fine")
    while _step(daemon).open:
        clock.advance(1)
    assert [m.rid for m in daemon.store.member_messages(member)] == [written]
    assert daemon.allowance(member).day_used > 0  # an ordinary message counts, as before


def test_the_covert_alert_goes_even_when_the_members_allowance_is_used_up(tmp_path: Path) -> None:
    """A member who has spent the day's allowance can still raise the covert alert: it is not held
    back like their ordinary messages, which wait for the next day."""
    clock = ManualClock()
    daemon, _modem, shore = make_daemon(
        tmp_path, clock, **{"allowance.day_bytes": 40, "latency.crew_s": 0.0, "link.mailbox_check_s": 0}
    )
    member = daemon.desk.login("cook", "2468")
    assert member is not None
    first = daemon.desk.send(member, "hotline", "the first message of the day uses the allowance up")
    while _step(daemon).open:
        clock.advance(1)
    assert first in {r[0] for r in shore.records()}
    held = daemon.desk.send(member, "hotline", "this one waits for tomorrow's allowance")
    alert = daemon.desk.personal_alert(member)
    for _ in range(5):
        _step(daemon)
        clock.advance(1)
    arrived = {r[0] for r in shore.records()}
    assert alert in arrived, "the covert alert waited behind the allowance"
    assert held not in arrived, "an ordinary message went past the allowance"
