"""Catch records ashore: the compact wire schema (``wire.catch``) turned into named JSON.

The relay publishes every catch event on ``.../up/catch/<type>`` with a ``body`` in this named form, the
one the dashboard's catch view and owners' systems read. Events are decoded against their trip's start
record; an event whose trip start has not arrived yet waits (the relay publishes it when the start
arrives). Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from wire import catch as wire

TYPE_NAMES = {
    wire.EventType.TRIP_START: "trip-start",
    wire.EventType.HAUL: "haul",
    wire.EventType.ETP: "etp",
    wire.EventType.TRIP_END: "trip-end",
    wire.EventType.DISCARD: "discard",
    wire.EventType.REST: "rest",
}
PURPOSE_NAMES = {
    wire.Purpose.ORIGINAL: "original",
    wire.Purpose.REPLACE: "replace",
    wire.Purpose.DELETE: "delete",
}


def trip_start_of(body: Any) -> wire.TripStart | None:
    """The trip start a record carries, if it is one (else None); raises on a malformed start."""
    if isinstance(body, dict) and body.get(0) == int(wire.EventType.TRIP_START) and 17 not in body:
        event = wire.decode_catch(body)
        assert isinstance(event, wire.TripStart)
        return event
    return None


def needs_trip(body: Any) -> int | None:
    """The trip id whose start is needed to decode ``body`` (None when it decodes on its own)."""
    if not isinstance(body, dict) or body.get(0) == int(wire.EventType.TRIP_START):
        return None
    if wire.catch_purpose(body) == wire.Purpose.DELETE:
        return None
    trip = body.get(1)
    return trip if type(trip) is int else None


def named(
    body: Any, trips: dict[int, wire.TripStart], trip_label: str, decoded: wire.CatchEvent | None = None
) -> tuple[str, dict[str, Any]]:
    """``(type name, named map)`` for one catch record (``decoded``: the record already decoded).
    Raises ``RemoteWireError`` subclasses (``TripUnknownError`` when its trip start is missing)."""
    purpose = wire.catch_purpose(body)
    event = decoded if decoded is not None else wire.decode_catch(body, trips)
    out: dict[str, Any] = {"trip": trip_label, "purpose": PURPOSE_NAMES[purpose]}
    if isinstance(event, wire.Deletion):
        name = TYPE_NAMES.get(wire.EventType(event.event_type), "event")
        out.update(type=name, haul=str(event.seq))
        return name, out
    if isinstance(event, wire.TripStart):
        out.update(
            type="trip-start",
            at=event.departed,
            port=event.port,
            gear=event.gear,
            area=event.area,
            lat=event.latitude,
            lon=event.longitude,
            codelist_version=event.codelist_version,
        )
        return "trip-start", out
    out["haul"] = str(event.seq)
    if isinstance(event, wire.Haul):
        out.update(
            type="haul",
            at=event.start,
            duration_min=event.duration_min,
            lat=event.latitude,
            lon=event.longitude,
            gear=event.gear,
            area=event.area,
            catch=[
                {
                    "species": line.species,
                    "kg": line.kg,
                    "catch_type": line.catch_type,
                    "presentation": line.presentation,
                    "local_name": line.local_name,
                }
                for line in event.lines
            ],
        )
        return "haul", out
    if isinstance(event, wire.EtpInteraction):
        out.update(
            type="etp",
            at=event.time,
            lat=event.latitude,
            lon=event.longitude,
            etp=[
                {
                    "species": event.species,
                    "count": event.count,
                    "condition": event.condition,
                    "fate": event.fate,
                }
            ],
        )
        return "etp", out
    if isinstance(event, wire.Discard):
        out.update(
            type="discard",
            at=event.time,
            discards=[{"species": event.species, "kg": event.kg, "reason": event.reason}],
        )
        return "discard", out
    if isinstance(event, wire.RestDay):
        start = trips[event.trip].departed
        out.update(
            type="rest",
            at=(start // 86400 + event.day) * 86400,
            day=event.day,
            rest=[{"crew": crew, "hours": hours} for crew, hours in event.rest_hours],
        )
        return "rest", out
    assert isinstance(event, wire.TripEnd)
    out.update(type="trip-end", at=event.arrived, port=event.port)
    return "trip-end", out
