"""Seedable model of the Iridium radio link seen by one modem: signal bars and session outcomes.

This module owns the statistics of the sky: how the signal level (0..5 bars, as ``AT+CSQ`` reports
it) wanders and drops out over time, and what an ``AT+SBDIX`` session started at a given moment
returns (an Iridium MO status code and how long the session took). It is pure: no I/O, no clock
and no global randomness. Time is always passed in, randomness comes from the ``random.Random``
given to the constructor, so the same seed and the same calls give the same answers.

It must not know about AT commands, buffers or the network side; the modem emulator asks it.

Profiles (``LINK_PROFILES``):

- ``perfect``: always 5 bars, every session succeeds after a short fixed time (unit tests).
- ``open-sea``: good sky view, rare short dropouts, a few percent of sessions fail.
- ``port``: cranes, buildings and hills mask part of the sky; frequent partial blockage.
- ``storm``: deck spray, heavy rolling and wet antenna: long dropouts, many failed sessions.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, replace

#: Iridium MO status codes a session can end with (see ``AT+SBDIX``); 0 is success.
MO_SUCCESS = 0
MO_GATEWAY_TIMEOUT = 10
MO_GATEWAY_SESSION_INCOMPLETE = 13
MO_ACCESS_DENIED = 15
MO_LOCAL_SESSION_TIMEOUT = 17
MO_CONNECTION_LOST = 18
MO_LINK_FAILURE = 19
MO_NO_NETWORK_SERVICE = 32
MO_RADIO_DISABLED = 34
MO_BUSY = 35

#: Over the air an MO is cut into segments: the first carries 70 bytes, each further one 135 (SBDG §11.2).
FIRST_SEGMENT_BYTES = 70
SEGMENT_BYTES = 135
#: Each further segment carries this fraction of a one-segment session's failure risk.
SEGMENT_RISK = 0.25


@dataclass(frozen=True)
class LinkProfile:
    """Parameters of one link condition.

    ``signal_mean`` and ``signal_sd`` describe the signal level without dropouts (bars, clipped to
    0..5); the level is re-drawn, correlated with the previous value by ``signal_persistence``,
    every ``signal_step_s`` seconds. Dropouts (signal 0) start at ``dropouts_per_hour`` on average
    and last an exponentially distributed time of mean ``dropout_mean_s``.

    ``failure_probability[bars]`` is the chance a session started with ``bars`` signal fails (bars 0
    always fails with MO status 32); failures are drawn from ``failure_codes`` by weight.
    Successful sessions take a uniform time in ``success_duration_s``; failed ones in
    ``failure_duration_s``.
    """

    name: str
    signal_mean: float
    signal_sd: float
    signal_persistence: float
    signal_step_s: float
    dropouts_per_hour: float
    dropout_mean_s: float
    failure_probability: tuple[float, float, float, float, float, float]
    failure_codes: dict[int, float] = field(default_factory=dict)
    success_duration_s: tuple[float, float] = (8.0, 25.0)
    failure_duration_s: tuple[float, float] = (5.0, 40.0)
    no_service_duration_s: tuple[float, float] = (0.5, 3.0)
    segment_s: float = 1.5  # session time each further MO segment adds


LINK_PROFILES: dict[str, LinkProfile] = {
    "perfect": LinkProfile(
        name="perfect",
        signal_mean=5.0,
        signal_sd=0.0,
        signal_persistence=1.0,
        signal_step_s=60.0,
        dropouts_per_hour=0.0,
        dropout_mean_s=1.0,
        failure_probability=(1.0, 0.0, 0.0, 0.0, 0.0, 0.0),
        failure_codes={MO_NO_NETWORK_SERVICE: 1.0},
        success_duration_s=(0.5, 0.5),
        failure_duration_s=(0.5, 0.5),
        no_service_duration_s=(0.5, 0.5),
    ),
    "open-sea": LinkProfile(
        name="open-sea",
        signal_mean=4.2,
        signal_sd=0.8,
        signal_persistence=0.85,
        signal_step_s=10.0,
        dropouts_per_hour=2.0,
        dropout_mean_s=20.0,
        failure_probability=(1.0, 0.45, 0.15, 0.06, 0.03, 0.02),
        failure_codes={
            MO_CONNECTION_LOST: 0.35,
            MO_GATEWAY_SESSION_INCOMPLETE: 0.2,
            MO_GATEWAY_TIMEOUT: 0.15,
            MO_LINK_FAILURE: 0.1,
            MO_NO_NETWORK_SERVICE: 0.1,
            MO_BUSY: 0.1,
        },
    ),
    "port": LinkProfile(
        name="port",
        signal_mean=2.8,
        signal_sd=1.3,
        signal_persistence=0.7,
        signal_step_s=10.0,
        dropouts_per_hour=12.0,
        dropout_mean_s=45.0,
        failure_probability=(1.0, 0.6, 0.3, 0.15, 0.08, 0.05),
        failure_codes={
            MO_CONNECTION_LOST: 0.4,
            MO_NO_NETWORK_SERVICE: 0.25,
            MO_GATEWAY_SESSION_INCOMPLETE: 0.15,
            MO_GATEWAY_TIMEOUT: 0.1,
            MO_BUSY: 0.1,
        },
        success_duration_s=(10.0, 35.0),
    ),
    "storm": LinkProfile(
        name="storm",
        signal_mean=2.3,
        signal_sd=1.5,
        signal_persistence=0.6,
        signal_step_s=5.0,
        dropouts_per_hour=20.0,
        dropout_mean_s=60.0,
        failure_probability=(1.0, 0.75, 0.5, 0.3, 0.2, 0.15),
        failure_codes={
            MO_CONNECTION_LOST: 0.45,
            MO_NO_NETWORK_SERVICE: 0.2,
            MO_LINK_FAILURE: 0.1,
            MO_GATEWAY_SESSION_INCOMPLETE: 0.1,
            MO_GATEWAY_TIMEOUT: 0.1,
            MO_BUSY: 0.05,
        },
        success_duration_s=(12.0, 45.0),
        failure_duration_s=(5.0, 60.0),
    ),
}

# Beyond this many steps without a query the signal is re-drawn from its long-run distribution
# instead of being walked step by step (the correlation has long decayed by then).
_MAX_STEPS_WALKED = 1000
_TWOPI = 2.0 * math.pi  # as random.gauss has it
_sqrt, _log, _cos, _sin = math.sqrt, math.log, math.cos, math.sin


class LinkModel:
    """Time-varying signal and session outcomes for one modem under one link profile.

    ``duration_scale`` multiplies every session duration (``0.01`` turns a 20 s session into
    0.2 s for fast tests). ``time_scale`` compresses the weather itself: the signal step and the
    dropout durations are multiplied by it (and dropouts come ``1/time_scale`` times as often), so
    a storm keeps its statistics while its hours pass in seconds. Queries should come with
    non-decreasing ``now``; an earlier ``now`` is answered with the current state.
    """

    def __init__(
        self,
        rng: random.Random,
        profile: str | LinkProfile = "open-sea",
        *,
        duration_scale: float = 1.0,
        time_scale: float = 1.0,
    ) -> None:
        if isinstance(profile, str):
            try:
                profile = LINK_PROFILES[profile]
            except KeyError:
                known = ", ".join(sorted(LINK_PROFILES))
                raise ValueError(f"unknown link profile {profile!r}; known: {known}") from None
        if duration_scale < 0:
            raise ValueError("duration_scale must not be negative")
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        if time_scale != 1.0:
            profile = replace(
                profile,
                signal_step_s=profile.signal_step_s * time_scale,
                dropouts_per_hour=profile.dropouts_per_hour / time_scale,
                dropout_mean_s=profile.dropout_mean_s * time_scale,
            )
        self.profile = profile
        self.duration_scale = duration_scale
        self._rng = rng
        self._t: float | None = None  # time of the last signal step
        self._level = self._draw_level()
        self._dropout_until = -math.inf
        self.forced_signal: int | None = None  # tests may pin the signal level

    # -- signal ------------------------------------------------------------------------------

    def signal(self, now: float) -> int:
        """Signal bars (0..5) at ``now``; 0 during a dropout."""
        if self.forced_signal is not None:
            return self.forced_signal
        self._advance(now)
        if now < self._dropout_until:
            return 0
        return max(0, min(5, round(self._level)))

    def next_change(self, now: float) -> float:
        """Earliest time after ``now`` at which ``signal`` may change (for polling callers)."""
        self._advance(now)
        assert self._t is not None
        step_end = self._t + self.profile.signal_step_s
        if now < self._dropout_until:
            return min(self._dropout_until, step_end)
        return step_end

    def _draw_level(self) -> float:
        p = self.profile
        return self._rng.gauss(p.signal_mean, p.signal_sd) if p.signal_sd > 0 else p.signal_mean

    def _advance(self, now: float) -> None:
        p = self.profile
        if self._t is None:
            self._t = now
            return
        steps = int((now - self._t) // p.signal_step_s)
        if steps <= 0:
            return
        if steps > _MAX_STEPS_WALKED:
            self._t += (steps - 1) * p.signal_step_s
            self._level = self._draw_level()
            steps = 1
        if type(self._rng) is random.Random and p.signal_sd > 0:
            self._walk_fast(steps)
            return
        for _ in range(steps):
            self._t += p.signal_step_s
            a = p.signal_persistence
            # AR(1) around the mean whose long-run spread is signal_sd (the old mix of the previous level
            # with a fresh draw shrank the spread to sd*sqrt((1-a)/(1+a)): 4-5 bars almost always).
            innovation = self._rng.gauss(0.0, p.signal_sd * math.sqrt(1 - a * a)) if p.signal_sd > 0 else 0.0
            self._level = p.signal_mean + a * (self._level - p.signal_mean) + innovation
            if self._t >= self._dropout_until and p.dropouts_per_hour > 0:
                chance = 1 - math.exp(-p.dropouts_per_hour * p.signal_step_s / 3600.0)
                if self._rng.random() < chance:
                    self._dropout_until = self._t + self._rng.expovariate(1.0 / p.dropout_mean_s)

    def _walk_fast(self, steps: int) -> None:
        """The loop of ``_advance`` with ``random.Random.gauss`` written out (the same draws and the
        same arithmetic, so the same walk to the last bit; a fleet simulation spends a tenth of its
        time here). Only for a plain ``random.Random``, whose ``gauss`` this must match."""
        p = self.profile
        rng = self._rng
        draw = rng.random
        step, a, mean = p.signal_step_s, p.signal_persistence, p.signal_mean
        sd = p.signal_sd * math.sqrt(1 - a * a)
        dropouts = p.dropouts_per_hour > 0
        chance = 1 - math.exp(-p.dropouts_per_hour * step / 3600.0)
        t, level, until = self._t, self._level, self._dropout_until
        assert t is not None
        z_next = rng.gauss_next  # type: ignore[attr-defined]
        for _ in range(steps):
            t += step
            if z_next is None:  # random.Random.gauss: two normal deviates per two uniform draws
                x2pi = draw() * _TWOPI
                g2rad = _sqrt(-2.0 * _log(1.0 - draw()))
                z = _cos(x2pi) * g2rad
                z_next = _sin(x2pi) * g2rad
            else:
                z, z_next = z_next, None
            level = mean + a * (level - mean) + (0.0 + z * sd)
            if t >= until and dropouts and draw() < chance:
                until = t + rng.expovariate(1.0 / p.dropout_mean_s)
        rng.gauss_next = z_next  # type: ignore[attr-defined]
        self._t, self._level, self._dropout_until = t, level, until

    # -- sessions ----------------------------------------------------------------------------

    def session_outcome(self, now: float, mo_bytes: int = 0, *, blocked: bool = False) -> tuple[int, float]:
        """MO status and duration (seconds) of a session started at ``now`` carrying ``mo_bytes``.

        A larger MO takes more segments over the air (the first 70 B, then 135 B each; SBDG §11.2): each
        adds ``segment_s`` to the session and a further chance to lose the link. A session that loses the
        link (status 18) ends partway through, at a uniform point of the time it would have taken.
        """
        p = self.profile
        bars = 0 if blocked else self.signal(now)
        if bars == 0:
            return MO_NO_NETWORK_SERVICE, self._duration(p.no_service_duration_s)
        segments = 1 + math.ceil(max(0, mo_bytes - FIRST_SEGMENT_BYTES) / SEGMENT_BYTES)
        extra = (segments - 1) * p.segment_s * self.duration_scale
        full = self._duration(p.success_duration_s) + extra
        fail = 1 - (1 - p.failure_probability[bars]) ** (1 + (segments - 1) * SEGMENT_RISK)
        if self._rng.random() >= fail:
            return MO_SUCCESS, full
        codes = list(p.failure_codes)
        weights = [p.failure_codes[c] for c in codes]
        code = self._rng.choices(codes, weights)[0]
        if code == MO_CONNECTION_LOST:
            return code, self._rng.uniform(0.1, 1.0) * full
        bounds = p.no_service_duration_s if code == MO_NO_NETWORK_SERVICE else p.failure_duration_s
        return code, self._duration(bounds)

    def _duration(self, bounds: tuple[float, float]) -> float:
        low, high = bounds
        return self._rng.uniform(low, high) * self.duration_scale
