"""Fleet simulation: real gateways and relay in simulated time, reproducible from a seed."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from shore.archive import Archive
from shore.archive_schema import MT_UNACKED_INDEX
from simulators.fleet import FleetConfig, ProgressLine, run_fleet


def _run(tmp_path: Path, name: str, **kw) -> dict:
    cfg = FleetConfig(vessels=3, crew=4, days=1.0, seed=5, link="open-sea", **kw)
    return run_fleet(cfg, tmp_path / name, workdir=tmp_path / f"{name}-work", show_progress=False)


def test_a_simulated_day_loses_nothing_delivers_95_percent_in_the_day_and_writes_the_report(
    tmp_path: Path,
) -> None:
    """Messages accepted late in the day may still be queued when it ends (so the ratio is not 1),
    but none expired and none was acknowledged on board without reaching the shore."""
    report = _run(tmp_path, "a", daily_budget_bytes=20_000)
    crew = report["classes"]["crew"]
    assert crew["accepted"] > 0
    assert crew["delivery_ratio"] >= 0.95
    assert report["expired"] == 0
    for name, cls in report["classes"].items():
        assert cls["acknowledged_on_board"] <= cls["delivered_ashore"] <= cls["accepted"], name
    assert crew["latency_s"]["p50"] is not None and crew["latency_s"]["p50"] > 0
    assert report["relay_rejections"].get("replay", 0) == 0
    assert 0 < report["mo_frame_fill"] <= 1
    assert report["bytes_per_vessel_day"] > 0
    folder = tmp_path / "a"
    assert json.loads((folder / "report.json").read_text())["classes"]["crew"]["accepted"] == crew["accepted"]
    for plot in ("latency.svg", "bytes-per-vessel-day.svg"):
        svg = (folder / plot).read_text()
        assert svg.startswith("<svg") and "</svg>" in svg


def test_the_same_seed_gives_the_same_run(tmp_path: Path) -> None:
    first, second = _run(tmp_path, "x"), _run(tmp_path, "y")
    first.pop("wall_seconds")
    second.pop("wall_seconds")
    assert first == second


def test_the_run_does_not_depend_on_the_number_of_worker_processes(tmp_path: Path) -> None:
    alone, split = _run(tmp_path, "one", workers=1), _run(tmp_path, "three", workers=3)
    alone.pop("wall_seconds")
    split.pop("wall_seconds")
    assert alone["sessions"] > 0
    assert alone == split


def test_a_long_run_shows_vessel_days_done_and_time_left(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    cfg = FleetConfig(vessels=2, crew=2, days=0.5, seed=2, workers=1)
    run_fleet(cfg, tmp_path / "p", workdir=tmp_path / "p-work", show_progress=True)
    err = capfd.readouterr().err
    assert "of 1 vessel-days" in err and "to go" in err
    assert err.rstrip().split("\r")[-1].strip().startswith("1 of 1 vessel-days (100.0%)")


def test_the_progress_line_shows_the_drain_once_and_ends_with_one_closing_line() -> None:
    """After the last traffic the line says how much of the drain is done (not 100 % again and
    again); the closing line ends the output with a newline and nothing is left of longer lines."""
    cfg = FleetConfig(vessels=10, crew=2, days=2.0, drain_s=3 * 3600.0)
    out = io.StringIO()
    line = ProgressLine(cfg, out)
    for simulated_h, wall_s in ((12, 1.0), (24, 2.0), (47, 3.0), (48, 4.0), (49.5, 5.0), (49.6, 5.5), (51, 6.0)):
        line(simulated_h * 3600.0, wall_s)
    line.finish(6.4)
    shown = out.getvalue().split("\r")[1:]
    assert shown[0].rstrip() == "5 of 20 vessel-days ( 25.0%) in 1 s, time to go not known yet"
    assert shown[1].rstrip() == "10 of 20 vessel-days ( 50.0%) in 2 s, about 2 s to go"  # 12 h a second
    assert shown[2].startswith("20 of 20 vessel-days ( 97.9%)")
    assert [s.split(":")[1].split(" in ")[0].strip() for s in shown[3:6]] == ["0.0 of 3 h", "1.5 of 3 h", "3.0 of 3 h"]
    assert sum("100.0%" in s for s in shown) == 1 and len(shown) == 7  # 49.6 h came within a second
    assert shown[-1].rstrip(" \n") == "20 of 20 vessel-days (100.0%) and 3 h without new traffic, simulated in 6 s"
    assert shown[-1].endswith("\n") and len(shown[-1]) - 1 >= len(shown[-2])


def test_the_simulated_archive_finds_vessels_with_mt_units_by_index(tmp_path: Path) -> None:
    """The relay's MT loop asks every simulated minute which vessels have MT units unacknowledged:
    in the archive that is an index search, not a read of every reply ever sent."""
    _run(tmp_path, "mt")
    archive = Archive(tmp_path / "mt-work" / "shore.sqlite3")
    statements: list[str] = []
    archive._db.set_trace_callback(statements.append)
    archive.vessels_with_mt(2e9, 3600.0)
    archive._db.set_trace_callback(None)
    [query] = [s for s in statements if "mt_units" in s]
    plan = [row[3] for row in archive._db.execute("EXPLAIN QUERY PLAN " + query)]
    archive.close()
    assert any(MT_UNACKED_INDEX in step for step in plan) and not any(s == "SCAN mt_units" for s in plan), plan
