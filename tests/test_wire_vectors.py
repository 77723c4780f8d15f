"""Every released wire format version still opens its committed frame vectors at the shore, and the
stored items of each vector seal again into the same bytes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from nacl.public import PrivateKey

from wire.codec import decode_text
from wire.crypto import crew_epoch_key, link_key, open_crew
from wire.frame import Direction
from wire.items import AckItem, RecordItem, dumps, loads_one
from wire.records import CrewContent, Kind
from wire.v2 import crew as v2crew
from wire.v2.crew import FrameEpoch
from wire.versions import SUPPORTED_VERSIONS, open_any, wire_format

VECTORS = Path(__file__).resolve().parent / "vectors" / "frames"
FILES = sorted(VECTORS.glob("v*.json"))


def test_every_supported_version_has_vectors() -> None:
    assert {json.loads(p.read_text(encoding="utf-8"))["version"] for p in FILES} == set(SUPPORTED_VERSIONS)


def _crew(version: int, crew_secret: PrivateKey, epoch_public: bytes, record: RecordItem) -> tuple[str, str]:
    if version == 1:
        content = CrewContent.decode(open_crew(crew_secret, 3, epoch_public, record.rid, record.body[2]))
        return content.to, content.text
    to, coded, _ = v2crew.open_crew(crew_epoch_key(crew_secret, epoch_public), record.rid, record.body)
    return to, decode_text(coded)


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_frame_vectors_open_and_seal_again_bit_for_bit(path: Path) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    k = data["keys"]
    vessel, shore = (
        PrivateKey(bytes.fromhex(k["vessel_secret"])),
        PrivateKey(bytes.fromhex(k["shore_secret"])),
    )
    crew = PrivateKey(bytes.fromhex(k["crew_secret"]))
    epoch_public = bytes(PrivateKey(bytes.fromhex(k["epoch_secret"])).public_key)
    shore_key = link_key(shore, vessel.public_key)
    epoch = FrameEpoch(k["epoch_number"], crew_epoch_key(crew, epoch_public), k["epoch_rid"], True)
    fmt = wire_format(data["version"])
    for vector in data["frames"]:
        direction = Direction.MO if vector["direction"] == "mo" else Direction.MT
        frame = bytes.fromhex(vector["frame"])
        head, items = open_any(
            shore_key, frame, direction, vector["highest"], lambda parity: epoch, vector["now"]
        )
        assert head.counter == vector["counter"]
        acks = [i for i in items if isinstance(i, AckItem)]
        assert sorted(c for a in acks for c in a.counters) == vector["acked"]
        records = {i.rid: i for i in items if isinstance(i, RecordItem)}
        assert sorted(records) == sorted(r["rid"] for r in vector["records"])
        for want in vector["records"]:
            got = records[want["rid"]]
            assert got.kind == want["kind"]
            if got.kind == Kind.CREW_MESSAGE:
                assert _crew(data["version"], crew, epoch_public, got) == (want["to"], want["text"])
                assert decode_text(bytes.fromhex(want["coded"])) == want["text"]
            elif got.kind == Kind.MEMBER:
                assert v2crew.open_member(epoch.key, got.rid, got.body)[::2] == (
                    want["member"],
                    want["handle"],
                )
            else:
                assert got.body == loads_one(bytes.fromhex(want["body"]))
                assert dumps(got.body).hex() == want["body"]
        stored = [bytes.fromhex(i) for i in vector["items"]]
        sealing = epoch if vector["crew_sealed"] else None
        assert (
            fmt.seal(link_key(vessel, shore.public_key), direction, vector["counter"], stored, 340, sealing)
            == frame
        )
