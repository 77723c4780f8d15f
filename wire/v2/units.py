"""Cutting records into v2 transmission units (whole items, or fragments of a large record).

A format-2 crew or member body becomes its compact sealed item; any other body a record item with
its CBOR body. A record too large for one frame is cut from the CBOR of ``[kind, body]`` exactly as
in v1, so the receiver reassembles fragments of either version with ``wire.items.join_fragments``.
"""

from __future__ import annotations

from typing import Any

from ..errors import LocalWireError
from ..items import MAX_FRAGMENTS, MAX_RECORD_BYTES, encode_record_payload
from ..units import Unit
from .crew import sealed_item
from .items import encode_fragment_item, encode_record_item, item_cost


def encode_whole(rid: int, kind: int, body: Any) -> bytes:
    return sealed_item(rid, kind, body) or encode_record_item(rid, kind, body)


def cut_record(rid: int, kind: int, body: Any, capacity: int) -> list[Unit]:
    """Units for one record, each fitting a frame with ``capacity`` bytes for items."""
    whole = encode_whole(rid, kind, body)
    if item_cost(whole) <= capacity:  # fits whatever follows it in a frame
        return [Unit(rid, 0, 1, whole)]
    payload = encode_record_payload(kind, body)
    if len(payload) > MAX_RECORD_BYTES:
        raise LocalWireError(f"record of {len(payload)} bytes exceeds {MAX_RECORD_BYTES}")
    worst = encode_fragment_item(rid, MAX_FRAGMENTS - 1, MAX_FRAGMENTS, bytes(capacity))
    chunk_size = capacity - (item_cost(worst) - capacity)
    if chunk_size <= 0:
        raise LocalWireError("frame capacity too small to carry fragments")
    count = -(-len(payload) // chunk_size)
    if count > MAX_FRAGMENTS:
        raise LocalWireError("record needs too many fragments")
    return [
        Unit(
            rid, i, count, encode_fragment_item(rid, i, count, payload[i * chunk_size : (i + 1) * chunk_size])
        )
        for i in range(count)
    ]
