"""Where a satellite network placed a vessel's terminal for one delivery (the DirectIP MO location
element, RockBLOCK's ``iridium_latitude``/``iridium_longitude``/``iridium_cep``): the value, its form
in the workers' frame messages, and the retained ``state/position`` event the relay publishes for it.

It owns no I/O and decides nothing about trust: the relay publishes a position only with a frame the
vessel's key authenticated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .archive import Vessel
from .topics import slug


@dataclass(frozen=True)
class NetworkPosition:
    """Where the satellite network placed the terminal for one delivery: not the vessel's own GPS, and
    only as good as ``accuracy_m`` (the network's CEP radius)."""

    latitude: float
    longitude: float
    accuracy_m: float
    source: str = "iridium-network"

    def as_list(self) -> list[float | str]:
        return [self.latitude, self.longitude, self.accuracy_m, self.source]

    @classmethod
    def from_list(cls, value: Any) -> NetworkPosition:
        """From ``as_list``'s form (raises ValueError or TypeError on anything else)."""
        lat, lon, accuracy, source = value
        return cls(float(lat), float(lon), float(accuracy), str(source)[:32])

    def __post_init__(self) -> None:
        # Comparisons are False for NaN, so it is refused too.
        if not (-90 <= self.latitude <= 90 and -180 <= self.longitude <= 180 and 0 <= self.accuracy_m <= 1e7):
            raise ValueError(f"position {self.latitude}, {self.longitude} ±{self.accuracy_m} m is not on Earth")

    @classmethod
    def reported(cls, latitude: float | None, longitude: float | None, cep_km: float | None) -> NetworkPosition | None:
        """From a network's latitude, longitude and CEP radius in km (None unless it gave all three)."""
        if latitude is None or longitude is None or cep_km is None:
            return None
        return cls(latitude, longitude, cep_km * 1000.0)


def position_event(vessel: Vessel, position: NetworkPosition, counter: int, now: float) -> dict[str, Any]:
    return {
        "msg_id": f"{slug(vessel.name)}:position:{counter}",
        "vessel": vessel.name,
        "latitude": round(position.latitude, 5),
        "longitude": round(position.longitude, 5),
        "accuracy_m": round(position.accuracy_m),
        "source": position.source,
        "at": now,
        "received": now,
    }
