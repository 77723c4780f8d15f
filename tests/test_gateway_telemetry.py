"""Position from NMEA 0183 and modem fallbacks, compact telemetry records ashore, and the daemon's
Prometheus metrics and health endpoint over real HTTP."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from gateway_world import make_daemon
from hypothesis import given
from hypothesis import strategies as st

from common.clock import ManualClock, SystemClock
from gateway.position import NmeaGps, PositionChain, ReportedPosition
from wire.records import POSITION_SOURCES, Kind, Telemetry

GGA = "$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47"
RMC = "$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A"


def test_an_nmea_gps_fix_is_read_from_gga_and_rmc_sentences() -> None:
    gps = NmeaGps()
    fix = gps.feed_line(GGA + "\r\n", 100.0)
    assert fix is not None and abs(fix.latitude - 48.1173) < 1e-4 and abs(fix.longitude - 11.516667) < 1e-4
    assert gps.feed_line(RMC.encode(), 101.0) is not None
    assert gps.latest() is not None and gps.latest().at == 101.0  # type: ignore[union-attr]


def test_bad_or_fixless_sentences_are_counted_not_raised() -> None:
    gps = NmeaGps()
    assert gps.feed_line(GGA[:-2] + "48", 1.0) is None  # wrong checksum
    assert gps.feed_line("$GPGGA,,,,,,0,00,,,M,,M,,*66", 1.0) is None  # no fix
    assert gps.feed_line("garbage", 1.0) is None
    assert gps.feed_line("$" + "A" * 500, 1.0) is None
    assert gps.latest() is None and gps.rejected >= 3


@given(st.one_of(st.text(max_size=200), st.binary(max_size=200)))
def test_any_line_from_the_serial_port_never_crashes_the_parser(line: str | bytes) -> None:
    gps = NmeaGps()
    fix = gps.feed_line(line, 0.0)
    if fix is None:
        assert gps.latest() is None and gps.rejected <= 1
    else:
        assert gps.latest() == fix and gps.rejected == 0
        assert -90 <= fix.latitude <= 90 and -180 <= fix.longitude <= 180


def test_position_prefers_gps_then_idp_then_iridium_and_skips_stale_fixes() -> None:
    gps, idp, iridium = NmeaGps(), ReportedPosition("idp-gnss"), ReportedPosition("iridium")
    chain = PositionChain([gps, idp, iridium], max_age_s=600)
    assert chain.best(1000.0) is None
    iridium.update(10.0, 100.0, 900.0)
    assert chain.best(1000.0).source == "iridium"  # type: ignore[union-attr]
    idp.update(10.5, 100.5, 950.0)
    assert chain.best(1000.0).source == "idp-gnss"  # type: ignore[union-attr]
    gps.feed_line(GGA, 300.0)
    assert chain.best(1000.0).source == "idp-gnss", "a GPS fix older than the bound is skipped"  # type: ignore[union-attr]
    gps.feed_line(GGA, 990.0)
    assert chain.best(1000.0).source == "gps"  # type: ignore[union-attr]


def test_telemetry_with_position_queue_and_budget_reaches_the_shore(tmp_path: Path) -> None:
    clock = ManualClock()
    daemon, _modem, shore = make_daemon(
        tmp_path,
        clock,
        **{
            "telemetry.interval_s": 3600.0,
            "telemetry.solo_interval_s": 3600.0,
            "latency.telemetry_s": 0.0,
            "budget.day_limit": 10.0,
        },
    )
    daemon.gps.feed_line(GGA, clock.now())

    def steps() -> None:
        for _ in range(5):
            turn = daemon.turn(clock.now())
            if turn.decision.open:
                asyncio.run(daemon._run_session(turn))

    daemon.desk.sos("test")
    steps()  # the SOS goes and costs money
    daemon.store.accept(Kind.CATCH, lambda rid: {0: rid}, clock.now())  # waits for a fuller frame
    clock.advance(3600)
    daemon.housekeeping(clock.now())
    steps()
    bodies = [body for _rid, kind, body in shore.records() if kind == Kind.TELEMETRY]
    assert len(bodies) == 1
    t = Telemetry.from_body(bodies[0])
    assert t.latitude_e5 == 4811730 and POSITION_SOURCES[t.fix_source] == "gps"  # type: ignore[index]
    assert t.fix_age_s == 3600
    assert t.queue and t.queue[0][:2] == (3, 1), "the waiting catch log shows in the queue depth"
    assert t.budget_day_permille > 0
    assert t.link[:3] == (1, 0, 1), "one session, no failures, one frame"
    with daemon.store.transaction() as db:
        items = db.execute("SELECT item FROM units u JOIN records r USING (rid) WHERE r.kind = 5").fetchall()
    sizes = [len(i) for (i,) in items]
    assert sizes and max(sizes) < 60, "telemetry is compact"


def test_metrics_and_health_are_served_over_http(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = SystemClock()
        daemon, modem, _shore = make_daemon(
            tmp_path, clock, **{"metrics.stale_after_s": 0.3, "link.idle_poll_s": 0.05}
        )
        ready = asyncio.Event()
        task = asyncio.create_task(daemon.run(on_ready=lambda _e: ready.set()))
        await asyncio.wait_for(ready.wait(), 10)
        url = daemon.endpoints["metrics"]
        async with httpx.AsyncClient(timeout=5) as web:
            daemon.desk.sos("fire")
            r = await web.get(url)
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
            assert 'seabridge_queue_records{class="distress"}' in r.text
            assert "seabridge_budget_used_ratio" in r.text
            health = await web.get(url.replace("/metrics", "/health"))
            assert health.status_code == 200 and health.json()["status"] == "ok"
            # The modem goes dark: after stale_after_s the daemon says so.
            modem.up = False
            await asyncio.sleep(0.6)
            health = await web.get(url.replace("/metrics", "/health"))
            assert health.status_code == 503 and health.json()["problems"]
            r = await web.get(url)
            assert "seabridge_session_failures_total" in r.text
        daemon.stop()
        await asyncio.wait_for(task, 10)

    asyncio.run(scenario())
