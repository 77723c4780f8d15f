"""The message an ingest endpoint publishes for the relay workers (scale-out): one MO delivery as
JSON on ``FRAMES_TOPIC/<network>`` — IMEI, MOMSN, network, time received, the raw frame in hex and,
when the network reported one, the position it placed the terminal at.

It owns that message's form, both ways; it does no I/O (the service publishes and subscribes).
"""

from __future__ import annotations

import json
from typing import Any

from .network_position import NetworkPosition
from .relay import Delivery

MAX_FRAME_MESSAGE = 16 * 1024


def encode(delivery: Delivery) -> bytes:
    assert delivery.payload is not None
    message: dict[str, Any] = {
        "imei": delivery.imei,
        "momsn": delivery.momsn,
        "network": delivery.network,
        "received": delivery.now,
        "data": delivery.payload.hex(),
    }
    if delivery.position is not None:
        message["position"] = delivery.position.as_list()
    return json.dumps(message).encode()


def decode(payload: bytes, now: float) -> Delivery:
    """The delivery a frame message carries, taken at ``now``. Raises ValueError, KeyError or TypeError
    on a malformed message."""
    if len(payload) > MAX_FRAME_MESSAGE:
        raise ValueError("frame message too large")
    data = json.loads(payload)
    where = data.get("position")
    position = None if where is None else NetworkPosition.from_list(where)
    return Delivery(
        str(data["imei"]), int(data["momsn"]), bytes.fromhex(data["data"]), str(data["network"])[:32], now, position
    )
