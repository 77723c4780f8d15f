"""Where the vessel is: NMEA 0183 GPS first, then the IDP modem's GNSS, then Iridium's location estimate.

It owns parsing NMEA sentences (with ``pynmeagps``) into fixes, and choosing the best fix among the
sources in order of preference, skipping fixes older than a bound. Sources are fed by their adapters
(``feed_line`` for a GPS on a serial port, ``update`` for modem-reported positions); nothing here
opens a port or reads a clock. A bad sentence is counted and logged, never raised.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from pynmeagps import NMEAMessage, NMEAReader
from pynmeagps.exceptions import NMEAMessageError, NMEAParseError, NMEAStreamError, NMEATypeError

from wire.records import POSITION_SOURCES

log = logging.getLogger("gateway.position")

MAX_SENTENCE_CHARS = 120  # NMEA 0183 allows 82; leave room for proprietary talkers


@dataclass(frozen=True)
class Fix:
    latitude: float
    longitude: float
    at: float  # clock time the fix was taken (or received)
    source: str  # one of POSITION_SOURCES

    @property
    def source_index(self) -> int:
        return POSITION_SOURCES.index(self.source)


class PositionSource(Protocol):
    name: str

    def latest(self) -> Fix | None: ...


class NmeaGps:
    """Fixes from NMEA 0183 GGA/RMC/GLL sentences (any talker: GP, GN, GL...)."""

    name = "gps"

    def __init__(self) -> None:
        self._fix: Fix | None = None
        self.rejected = 0

    def feed_line(self, line: str | bytes, now: float) -> Fix | None:
        """Take one sentence; return the new fix if it carried a valid one."""
        if isinstance(line, bytes):
            line = line.decode("ascii", errors="replace")
        line = line.strip()
        if not line.startswith("$") or len(line) > MAX_SENTENCE_CHARS:
            self.rejected += 1
            return None
        try:
            msg = NMEAReader.parse(line, validate=1)
        except (NMEAParseError, NMEAStreamError, NMEATypeError, NMEAMessageError, ValueError) as exc:
            self.rejected += 1
            log.debug("NMEA sentence rejected: %s", exc)
            return None
        fix = self._fix_from(msg, now)
        if fix is not None:
            self._fix = fix
        return fix

    @staticmethod
    def _fix_from(msg: NMEAMessage, now: float) -> Fix | None:
        kind = getattr(msg, "msgID", "")
        if kind == "GGA" and not getattr(msg, "quality", 0):
            return None
        if kind in ("RMC", "GLL") and getattr(msg, "status", "V") != "A":
            return None
        if kind not in ("GGA", "RMC", "GLL"):
            return None
        lat, lon = getattr(msg, "lat", ""), getattr(msg, "lon", "")
        if not isinstance(lat, float | int) or not isinstance(lon, float | int):
            return None
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            return None
        return Fix(float(lat), float(lon), now, "gps")

    def latest(self) -> Fix | None:
        return self._fix


class ReportedPosition:
    """A position a modem reports (IDP GNSS, Iridium location estimate); the driver calls ``update``."""

    def __init__(self, name: str) -> None:
        if name not in POSITION_SOURCES:
            raise ValueError(f"unknown position source {name!r}")
        self.name = name
        self._fix: Fix | None = None

    def update(self, latitude: float, longitude: float, at: float) -> None:
        if -90 <= latitude <= 90 and -180 <= longitude <= 180:
            self._fix = Fix(latitude, longitude, at, self.name)

    def latest(self) -> Fix | None:
        return self._fix


class PositionChain:
    """The freshest acceptable fix, by source preference (GPS, IDP GNSS, Iridium)."""

    def __init__(self, sources: list[PositionSource], max_age_s: float) -> None:
        self.sources = sources
        self.max_age_s = max_age_s

    def best(self, now: float) -> Fix | None:
        for source in self.sources:
            fix = source.latest()
            if fix is not None and now - fix.at <= self.max_age_s:
                return fix
        return None
