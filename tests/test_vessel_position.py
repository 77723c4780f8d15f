"""Where the vessel is, on the vessel: the demo's track stays at sea in the Gulf of Thailand and moves
like a trawler, the demo's GPS on a real pty gives the gateway a fix where the track says, and an SOS
raised from the crew page carries the vessel's position to the shore."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

from gateway_world import make_daemon
from hypothesis import given
from hypothesis import strategies as st

from common.clock import ManualClock, SystemClock
from gateway.position import NmeaGps
from simulators.nmea_gps import NmeaGpsEmulator, sentences
from simulators.pty_modem import PtyModem
from simulators.vessel_track import GROUNDS, HOME, NM_M, VesselTrack
from wire.records import Kind, Sos


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    dy = (b[0] - a[0]) * 111_320
    dx = (b[1] - a[1]) * 111_320 * math.cos(math.radians(a[0]))
    return math.hypot(dx, dy)


@given(st.integers(0, 2**32 - 1), st.floats(0, 30 * 86400))
def test_the_track_stays_in_the_gulf_of_thailand_and_moves_at_trawler_speed(seed: int, after: float) -> None:
    track = VesselTrack(seed, 1_790_000_000.0)
    p, q = track.at(1_790_000_000.0 + after), track.at(1_790_000_000.0 + after + 60)
    (lat_lo, lat_hi), (lon_lo, lon_hi) = GROUNDS
    assert min(HOME[0], lat_lo) <= p.latitude <= lat_hi and min(HOME[1], lon_lo) <= p.longitude <= lon_hi
    # One minute at 7 knots is 216 m (less only where the loop turns at a waypoint).
    assert _metres((p.latitude, p.longitude), (q.latitude, q.longitude)) <= 7 * NM_M / 60 + 1
    assert track.at(1_790_000_000.0 + after) == VesselTrack(seed, 1_790_000_000.0).at(1_790_000_000.0 + after)


def test_the_nmea_sentences_read_back_as_the_track_position() -> None:
    point = VesselTrack(42, 0.0).at(5000.0)
    gps = NmeaGps()
    fixes = [gps.feed_line(line, 1.0) for line in sentences(point, 1_790_000_000.0).splitlines()]
    assert len(fixes) == 2 and gps.rejected == 0
    for fix in fixes:
        assert fix is not None and _metres((fix.latitude, fix.longitude), (point.latitude, point.longitude)) < 1


def test_the_demo_gps_on_a_pty_gives_the_gateway_its_position(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = SystemClock()
        track = VesselTrack(7, clock.now())
        async with PtyModem(NmeaGpsEmulator(track), clock) as gps:
            daemon, _modem, _shore = make_daemon(tmp_path, clock, **{"telemetry.gps_port": gps.path})
            ready = asyncio.Event()
            task = asyncio.create_task(daemon.run(on_ready=lambda _e: ready.set()))
            await asyncio.wait_for(ready.wait(), 10)
            fix = None
            for _ in range(100):  # a fix a second; give it ten
                fix = daemon.positions.best(clock.now())
                if fix is not None:
                    break
                await asyncio.sleep(0.1)
            daemon.stop()
            await asyncio.wait_for(task, 10)
        assert fix is not None and fix.source == "gps"
        truth = track.at(clock.now())
        assert _metres((fix.latitude, fix.longitude), (truth.latitude, truth.longitude)) < 100

    asyncio.run(scenario())


def test_an_sos_from_the_crew_page_carries_the_vessels_position(tmp_path: Path) -> None:
    clock = ManualClock()
    daemon, _modem, shore = make_daemon(tmp_path, clock)
    daemon.gps.feed_line("$GPGGA,123519,0719.422,N,10049.097,E,1,08,0.9,4.0,M,-18.0,M,,*67", clock.now())
    daemon.desk.sos("engine fire")
    for _ in range(3):
        turn = daemon.turn(clock.now())
        if turn.decision.open:
            asyncio.run(daemon._run_session(turn))
    (body,) = [body for _rid, kind, body in shore.records() if kind == Kind.SOS]
    sos = Sos.from_body(body)
    assert sos.note == "engine fire"
    assert (sos.latitude_e5, sos.longitude_e5) == (732370, 10081828)
