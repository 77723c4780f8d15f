"""Power cuts: the real ``seabridge gateway run`` process (captive page over HTTP, SQLite store, the
driver on a pty against the modem emulator, a real shore relay) is SIGKILLed at over 200 random
instants while a crew member keeps sending messages through the captive page and the gateway packs
them, opens sessions and takes acknowledgements; it is restarted on the same files each time. Every
message the page accepted (HTTP 303) reaches the shore exactly once, and nothing reaches it twice.
The harness is ``bench.crash`` (``python -m bench crash`` runs 1000 kills; docs/fuzzing.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.crash import run_crashes

KILLS = 200

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def test_nothing_accepted_is_lost_or_duplicated_across_hundreds_of_sigkills_of_the_gateway(tmp_path: Path) -> None:
    report = run_crashes(KILLS, seed=20261207, workdir=tmp_path, max_run_s=0.4)
    assert report.kills >= 200
    assert report.drained, "the gateway could not drain its queue after the crashes"
    assert not report.lost, f"accepted but lost: {report.lost[:10]}"
    assert not report.duplicated, f"reached the shore twice: {list(report.duplicated)[:10]}"
    assert report.promised > 150, "the crash points must cover plenty of accepts"
    # The kills land in every phase of the work, not only between messages. With acknowledgement by
    # exception the vessel learns a frame went from the session's own +SBDIX answer (phase "session");
    # MT frames are read only when replies or cumulative acknowledgements wait, so "ack-read" is not
    # reached in every run and is not required here.
    for phase in ("start-up", "frame-write", "session"):
        assert report.kills_by_phase[phase] > 0, dict(report.kills_by_phase)
    assert report.kills_mid_request > 0 and report.uncertain > 0
    # Every record the gateway ever stored is delivered and is one the shore holds (no id reused).
    assert set(report.store_states) == {"delivered"}, report.store_states
    assert report.rids_match
