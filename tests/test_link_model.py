"""The link model: seeded, pure, per-profile signal and session statistics with real MO codes."""

from __future__ import annotations

import random

import pytest

from simulators.link_model import LINK_PROFILES, MO_NO_NETWORK_SERVICE, LinkModel

REAL_FAILURE_CODES = {10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 32, 33, 34, 35, 36, 37, 38}
T0 = 1_735_689_600.0


def outcomes(profile: str, n: int, seed: int = 7, step: float = 60.0) -> list[tuple[int, float, int]]:
    link = LinkModel(random.Random(seed), profile)
    result = []
    for i in range(n):
        now = T0 + i * step
        bars = link.signal(now)
        status, duration = link.session_outcome(now)
        result.append((status, duration, bars))
    return result


def test_perfect_link_always_succeeds_with_full_signal() -> None:
    for status, duration, bars in outcomes("perfect", 500):
        assert status == 0
        assert bars == 5
        assert duration > 0


def test_same_seed_gives_the_same_sky() -> None:
    assert outcomes("storm", 300, seed=3) == outcomes("storm", 300, seed=3)
    assert outcomes("storm", 300, seed=3) != outcomes("storm", 300, seed=4)


@pytest.mark.parametrize("profile", sorted(LINK_PROFILES))
def test_signal_stays_in_range_and_failures_use_real_mo_codes(profile: str) -> None:
    for status, duration, bars in outcomes(profile, 2000, step=7.0):
        assert 0 <= bars <= 5
        assert duration >= 0
        assert status == 0 or status in REAL_FAILURE_CODES
        if bars == 0:
            assert status == MO_NO_NETWORK_SERVICE


def test_storm_is_worse_than_open_sea() -> None:
    def failure_rate(profile: str) -> float:
        results = outcomes(profile, 3000, step=13.0)
        return sum(1 for s, _, _ in results if s != 0) / len(results)

    def dropout_share(profile: str) -> float:
        results = outcomes(profile, 3000, step=13.0)
        return sum(1 for _, _, b in results if b == 0) / len(results)

    assert failure_rate("storm") > failure_rate("port") > failure_rate("open-sea") > 0
    assert dropout_share("storm") > dropout_share("open-sea")


def test_storm_signal_drops_out_and_comes_back() -> None:
    bars = [b for _, _, b in outcomes("storm", 3000, step=5.0)]
    assert 0 in bars
    assert max(bars) >= 3


def test_duration_scale_shortens_sessions() -> None:
    slow = LinkModel(random.Random(1), "open-sea")
    fast = LinkModel(random.Random(1), "open-sea", duration_scale=0.01)
    _, d_slow = slow.session_outcome(T0)
    _, d_fast = fast.session_outcome(T0)
    assert d_fast == pytest.approx(d_slow * 0.01)


def test_a_month_between_queries_does_not_walk_every_step() -> None:
    link = LinkModel(random.Random(1), "storm")
    link.signal(T0)
    assert 0 <= link.signal(T0 + 30 * 86400) <= 5


def test_unknown_profile_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown link profile"):
        LinkModel(random.Random(1), "calm-lake")


class _SubclassedRandom(random.Random):
    """Not exactly ``random.Random``: the model walks the signal with ``gauss`` itself."""


@pytest.mark.parametrize("profile", ["open-sea", "port", "storm"])
def test_the_fast_signal_walk_is_the_walk_with_random_gauss_to_the_last_bit(profile: str) -> None:
    """A plain ``random.Random`` takes the written-out walk; a subclass the plain loop over ``gauss``.
    Same seed, same queries: the same level, dropouts and session outcomes, float for float."""
    for seed in range(12):
        fast, plain = LinkModel(random.Random(seed), profile), LinkModel(_SubclassedRandom(seed), profile)
        gaps = random.Random(seed + 1000)
        now = T0
        for _ in range(200):
            now += gaps.expovariate(1 / 400)
            assert fast.signal(now) == plain.signal(now)
            assert (fast._level, fast._t, fast._dropout_until) == (plain._level, plain._t, plain._dropout_until)
            assert fast.session_outcome(now) == plain.session_outcome(now)
