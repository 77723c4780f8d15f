"""Where a simulated fishing vessel is: a plausible trawler track in the Gulf of Thailand, as a pure
function of a seed and the time.

``VesselTrack`` draws a closed loop from Songkhla out to four fishing grounds in open water east of
the Thai coast (FAO area 71) from its seed, and places the vessel on it at a seed-chosen point at
``started``, steaming at ``speed_kn``. ``at(now)`` gives latitude, longitude, course and speed. The
same seed and times give the same positions. It reads no clock and does no I/O: the demo's GPS
emulator and network location ask it.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

# Off Songkhla (THSGK), just clear of the breakwater.
HOME = (7.25, 100.65)
# Open water of the Gulf of Thailand, clear of the Thai, Malaysian and island coasts.
GROUNDS = ((7.6, 9.6), (101.0, 102.6))
NM_M = 1852.0
EARTH_M = 6_371_000.0


@dataclass(frozen=True)
class TrackPoint:
    latitude: float
    longitude: float
    course_deg: float  # true, 0 = north
    speed_kn: float


def _distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Equirectangular distance: exact enough over tens of nautical miles."""
    mean_lat = math.radians((a[0] + b[0]) / 2)
    dy = math.radians(b[0] - a[0])
    dx = math.radians(b[1] - a[1]) * math.cos(mean_lat)
    return EARTH_M * math.hypot(dx, dy)


def _course(a: tuple[float, float], b: tuple[float, float]) -> float:
    mean_lat = math.radians((a[0] + b[0]) / 2)
    dy = b[0] - a[0]
    dx = (b[1] - a[1]) * math.cos(mean_lat)
    return math.degrees(math.atan2(dx, dy)) % 360.0


class VesselTrack:
    def __init__(self, seed: int, started: float, speed_kn: float = 7.0, grounds: int = 4) -> None:
        rng = random.Random(seed)
        (lat_lo, lat_hi), (lon_lo, lon_hi) = GROUNDS
        points = [(rng.uniform(lat_lo, lat_hi), rng.uniform(lon_lo, lon_hi)) for _ in range(grounds)]
        # Visit the grounds in order of bearing from home, so the loop does not cross itself.
        points.sort(key=lambda p: _course(HOME, p))
        self.waypoints = [HOME, *points, HOME]
        self.legs = [_distance_m(a, b) for a, b in zip(self.waypoints, self.waypoints[1:], strict=False)]
        self.loop_m = sum(self.legs)
        self.offset_m = rng.uniform(0.0, self.loop_m)
        self.started = started
        self.speed_kn = speed_kn

    def at(self, now: float) -> TrackPoint:
        travelled = (self.offset_m + max(0.0, now - self.started) * self.speed_kn * NM_M / 3600.0) % self.loop_m
        for i, leg in enumerate(self.legs):
            if travelled <= leg or i == len(self.legs) - 1:
                a, b = self.waypoints[i], self.waypoints[i + 1]
                f = min(1.0, travelled / leg) if leg else 0.0
                return TrackPoint(a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, _course(a, b), self.speed_kn)
            travelled -= leg
        raise AssertionError("unreachable: the loop has legs")
