"""An NMEA 0183 GPS receiver for the demo: a fix from a ``VesselTrack`` once a second, as ``$GPRMC``
and ``$GPGGA`` sentences, behind a ``PtyModem`` so the gateway reads it on a serial port like a real
receiver.

It owns formatting the sentences (with their checksums) and their timing; where the vessel is belongs
to the track. It ignores what is written to it, reads time only from the ``now`` it is given and never
touches a port (``PtyModem`` does).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from functools import reduce

from .vessel_track import TrackPoint, VesselTrack

INTERVAL_S = 1.0  # one fix a second, as most receivers send by default


def _checksum(body: str) -> str:
    return f"{reduce(lambda acc, ch: acc ^ ord(ch), body, 0):02X}"


def _sentence(body: str) -> bytes:
    return f"${body}*{_checksum(body)}\r\n".encode("ascii")


def _degrees(value: float, width: int, hemispheres: str) -> tuple[str, str]:
    """``ddmm.mmmm`` (latitude, width 2) or ``dddmm.mmmm`` (longitude, width 3) and N/S or E/W."""
    hemisphere = hemispheres[0] if value >= 0 else hemispheres[1]
    value = abs(value)
    whole = math.floor(value)
    minutes = round((value - whole) * 60, 4)
    if minutes >= 60:
        whole, minutes = whole + 1, 0.0
    return f"{whole:0{width}d}{minutes:07.4f}", hemisphere


def sentences(point: TrackPoint, now: float) -> bytes:
    """The RMC and GGA sentences of one fix taken at ``now`` (Unix seconds, UTC)."""
    when = datetime.fromtimestamp(now, UTC)
    hms = when.strftime("%H%M%S") + f".{when.microsecond // 10000:02d}"
    lat, ns = _degrees(point.latitude, 2, "NS")
    lon, ew = _degrees(point.longitude, 3, "EW")
    rmc = f"GPRMC,{hms},A,{lat},{ns},{lon},{ew},{point.speed_kn:.1f},{point.course_deg:.1f},{when:%d%m%y},,,A"
    gga = f"GPGGA,{hms},{lat},{ns},{lon},{ew},1,09,0.9,4.0,M,-18.0,M,,"
    return _sentence(rmc) + _sentence(gga)


class NmeaGpsEmulator:
    """A GPS receiver on a ``PtyModem``: ``tick`` queues a fix each ``INTERVAL_S``."""

    def __init__(self, track: VesselTrack) -> None:
        self.track = track
        self.on_output: Callable[[], None] | None = None
        self._out = bytearray()
        self._next: float | None = None

    def feed(self, data: bytes, now: float) -> None:
        """A receiver ignores what a reader writes to it."""

    def tick(self, now: float) -> None:
        if self._next is not None and now < self._next:
            return
        self._out += sentences(self.track.at(now), now)
        self._next = now + INTERVAL_S
        if self.on_output is not None:
            self.on_output()

    def read_output(self) -> bytes:
        out, self._out = bytes(self._out), bytearray()
        return out

    def next_wakeup(self) -> float | None:
        return self._next
