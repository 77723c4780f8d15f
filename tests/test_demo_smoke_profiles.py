"""``seabridge demo --smoke --profile P --link storm`` exits 0 with every message delivered once, for an
Iridium and for the Inmarsat IDP profile (issue 16: the storm link with real failure codes on both families)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from firmware_profiles import profile_names

pytestmark = pytest.mark.timeout(400)

SEABRIDGE = Path(sys.executable).with_name("seabridge")


@pytest.mark.parametrize("profile", ["iridium-9603", "inmarsat-idp"])
def test_demo_smoke_under_storm_delivers_every_message_once(profile: str, tmp_path: Path) -> None:
    assert profile in profile_names()
    done = subprocess.run(
        [str(SEABRIDGE), "demo", "--smoke", "--profile", profile, "--link", "storm", "--data", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=360,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        check=False,
    )
    summary = re.search(r"smoke: sent (\d+), delivered (\d+), duplicates (\d+), lost (\d+)", done.stdout)
    assert summary is not None, done.stdout[-2000:] + done.stderr[-2000:]
    sent, delivered, duplicates, lost = map(int, summary.groups())
    assert (sent, delivered, duplicates, lost) == (10, 10, 0, 0)
    assert done.returncode == 0


def test_demo_refuses_an_unknown_profile() -> None:
    done = subprocess.run(
        [str(SEABRIDGE), "demo", "--smoke", "--profile", "no-such-modem"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0 and "no-such-modem" in done.stderr
