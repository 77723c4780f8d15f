"""What each link profile does to sessions: time at each signal level and the share of failed sessions
for a 100-byte MO, against the ``open-sea`` profile measured in the same run (``python -m bench link_profiles``)."""

from __future__ import annotations

import random

from simulators.link_model import LINK_PROFILES, LinkModel

SESSIONS = 20_000
SPACING_S = 37.0  # sessions far enough apart that the sky has moved on
T0 = 1_767_225_600.0


def measure(name: str, seed: int = 1) -> tuple[float, list[float]]:
    link = LinkModel(random.Random(seed), name)
    bars = [0] * 6
    failed = 0
    for i in range(SESSIONS):
        now = T0 + i * SPACING_S
        bars[link.signal(now)] += 1
        status, _ = link.session_outcome(now, 100)
        failed += status != 0
    return failed / SESSIONS, [b / SESSIONS for b in bars]


def main() -> None:
    baseline, _ = measure("open-sea")
    print(f"{'profile':10} {'failed':>7} {'vs open-sea':>11}  time at 0..5 bars")
    for name in LINK_PROFILES:
        failed, bars = measure(name)
        ratio = failed / baseline if baseline else float("inf")
        print(f"{name:10} {failed:7.1%} {ratio:10.1f}x  " + " ".join(f"{b:4.0%}" for b in bars))
