"""Cutting records into transmission units that each fit one frame.

A unit is what the sender queues, packs, resends and gets acknowledged: a whole record item, or one
fragment item of a record too large for a frame. Cutting happens once, when a record is accepted, using
the smallest frame capacity the link may offer, so a resent fragment is identical to the lost one and
the receiver can fill its gaps from any mix of frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import LocalWireError
from .items import (
    MAX_FRAGMENTS,
    MAX_RECORD_BYTES,
    encode_fragment_item,
    encode_record_item,
    encode_record_payload,
)


@dataclass(frozen=True)
class Unit:
    rid: int
    index: int  # 0 for a whole record
    count: int  # 1 for a whole record
    item: bytes  # encoded item, ready to go into a frame


def cut_record(rid: int, kind: int, body: Any, capacity: int) -> list[Unit]:
    """Units for one record, each at most ``capacity`` bytes (the frame's item capacity)."""
    whole = encode_record_item(rid, kind, body)
    if len(whole) <= capacity:
        return [Unit(rid, 0, 1, whole)]
    payload = encode_record_payload(kind, body)
    if len(payload) > MAX_RECORD_BYTES:
        raise LocalWireError(f"record of {len(payload)} bytes exceeds {MAX_RECORD_BYTES}")
    # Worst-case item overhead for this rid: array head, type, rid, index, count, chunk length head.
    overhead = len(encode_fragment_item(rid, MAX_FRAGMENTS - 1, MAX_FRAGMENTS, bytes(capacity))) - capacity
    chunk_size = capacity - overhead
    if chunk_size <= 0:
        raise LocalWireError("frame capacity too small to carry fragments")
    count = -(-len(payload) // chunk_size)
    if count > MAX_FRAGMENTS:
        raise LocalWireError("record needs too many fragments")
    units = []
    for i in range(count):
        chunk = payload[i * chunk_size : (i + 1) * chunk_size]
        units.append(Unit(rid, i, count, encode_fragment_item(rid, i, count, chunk)))
    return units


def pack_units(candidates: list[Unit], capacity: int) -> list[Unit]:
    """Fill one frame: take candidates in the given (priority) order while they fit."""
    chosen: list[Unit] = []
    room = capacity
    for unit in candidates:
        if len(unit.item) <= room:
            chosen.append(unit)
            room -= len(unit.item)
            if room <= 0:
                break
    return chosen
