"""Write the frame test vectors of one wire format version: ``python tests/vectors/frames/generate.py 2``.

Run once, when a format version is released; released vectors are never regenerated. CI opens every
vector (tests/test_wire_vectors.py) and seals its stored items again bit for bit, so every version
stays decodable at the shore forever. Keys are fixed test keys, never used anywhere else.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from nacl.public import PrivateKey

from wire.crypto import CrewEpoch, crew_epoch_key, link_key
from wire.frame import Direction
from wire.items import dumps
from wire.records import Capabilities, CrewMessage, CrewReply, Epoch, Kind, Telemetry
from wire.v2.crew import FrameEpoch, seal_crew, seal_member
from wire.versions import wire_format

VESSEL = PrivateKey(bytes(range(32)))
SHORE = PrivateKey(bytes(range(32, 64)))
CREW = PrivateKey(bytes(range(64, 96)))
EPOCH_SECRET = PrivateKey(bytes(range(96, 128)))
EPOCH_NUMBER = 3
EPOCH_RID = 5000
NOW = 1_790_000_000.0
KEY = link_key(VESSEL, SHORE.public_key)
EPOCH = CrewEpoch(EPOCH_NUMBER, EPOCH_SECRET, crew_epoch_key(CREW, bytes(EPOCH_SECRET.public_key)))


def keys() -> dict[str, str]:
    return {
        "vessel_secret": bytes(VESSEL).hex(),
        "shore_secret": bytes(SHORE).hex(),
        "crew_secret": bytes(CREW).hex(),
        "epoch_secret": bytes(EPOCH_SECRET).hex(),
        "epoch_number": EPOCH_NUMBER,
        "epoch_rid": EPOCH_RID,
    }


def _records(version: int) -> list[tuple[int, int, Any, dict[str, Any]]]:
    """(rid, kind, body, what the receiver must find) for the records in the vectors."""
    from wire.codec import encode_text

    telemetry = Telemetry(int(NOW) - 1_704_067_200, 1_234_567, 10_123_456, 0, 30, (), 120, 40).body()
    epoch = Epoch(EPOCH_NUMBER, EPOCH.public_bytes).body()
    caps = Capabilities(0b1111, "seabridge test", 0b110).body()
    out: list[tuple[int, int, Any, dict[str, Any]]] = [
        (EPOCH_RID, Kind.EPOCH, epoch, {"body": dumps(epoch).hex()}),
        (EPOCH_RID + 1, Kind.TELEMETRY, telemetry, {"body": dumps(telemetry).hex()}),
        (EPOCH_RID + 2, Kind.CAPABILITIES, caps, {"body": dumps(caps).hex()}),
    ]
    texts = [("hotline", "ကျွန်တော် နေကောင်းပါတယ်။"), ("+66 81 234 5678", "พี่สบายดี วันนี้ทะเลสงบ")]
    for i, (to, text) in enumerate(texts, start=EPOCH_RID + 4):
        coded = encode_text(text, allowed=[0, 1, 2])
        if version == 1:
            body = CrewMessage(
                7, EPOCH_NUMBER, EPOCH.seal(i, dumps({0: to, 1: coded, 2: "blue-fish"})), 3000
            ).body()
        else:
            body = seal_crew(EPOCH_NUMBER, EPOCH.key, i, 7, NOW - 600, to, coded)
        out.append((i, Kind.CREW_MESSAGE, body, {"to": to, "text": text, "coded": coded.hex()}))
    if version == 2:
        member = seal_member(EPOCH_NUMBER, EPOCH.key, EPOCH_RID + 3, 7, "blue-fish")
        out.append((EPOCH_RID + 3, Kind.MEMBER, member, {"member": 7, "handle": "blue-fish"}))
    return out


def build(version: int) -> dict[str, Any]:
    fmt = wire_format(version)
    limit = 340
    records = _records(version)
    frames = []
    plan = [
        ("acks, control, telemetry and a crew message (link key)", records[:4], None, 100),
        ("a crew message to family", records[4:5], None, 70_001),
    ]
    if version == 2:
        plan.append(
            ("crew-sealed: member handle and crew message", [records[5], records[3]], "epoch", 70_002)
        )
    for name, recs, sealing, counter in plan:
        epoch = FrameEpoch(EPOCH_NUMBER, EPOCH.key, EPOCH_RID, True) if sealing else None
        stored = [
            fmt.cut_record(rid, kind, body, fmt.min_capacity(limit))[0].item for rid, kind, body, _ in recs
        ]
        items = [fmt.encode_ack({1, 2, 3, 9})] + [fmt.prepare(i, epoch, NOW) for i in stored]
        frame = fmt.seal(KEY, Direction.MO, counter, items, limit, epoch)
        frames.append(
            {
                "name": name,
                "direction": "mo",
                "counter": counter,
                "highest": counter - 1,
                "now": NOW,
                "crew_sealed": bool(sealing),
                "items": [i.hex() for i in items],
                "frame": frame.hex(),
                "acked": [1, 2, 3, 9],
                "records": [{"rid": rid, "kind": int(kind), **want} for rid, kind, _, want in recs],
            }
        )
    reply = CrewReply(7, "Call us any time.", "hotline", 3000)
    item = fmt.cut_record(77, Kind.CREW_REPLY, reply.body(allowed=[0, 1]), fmt.min_capacity(270))[0].item
    frames.append(
        {
            "name": "reply to a crew member",
            "direction": "mt",
            "counter": 5,
            "highest": 4,
            "now": NOW,
            "crew_sealed": False,
            "items": [item.hex()],
            "frame": fmt.seal(KEY, Direction.MT, 5, [item], 270).hex(),
            "acked": [],
            "records": [
                {"rid": 77, "kind": int(Kind.CREW_REPLY), "body": dumps(reply.body(allowed=[0, 1])).hex()}
            ],
        }
    )
    return {"version": version, "keys": keys(), "frames": frames}


if __name__ == "__main__":
    version = int(sys.argv[1])
    path = Path(__file__).resolve().parent / f"v{version}.json"
    path.write_text(json.dumps(build(version), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {path}")
