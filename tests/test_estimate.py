"""The cost estimate equals what the real sealing, cutting and framing produce."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.public import PrivateKey

from common.estimate import (
    TYPICAL_AGE_S,
    TYPICAL_COUNTER,
    TYPICAL_CREATED,
    TYPICAL_EPOCH,
    TYPICAL_HANDLE,
    TYPICAL_MEMBER,
    TYPICAL_RECORDS_SINCE_START,
    TYPICAL_RID,
    _epoch,
    estimate,
    estimate_stored,
    wording,
)
from firmware_profiles import load_profile
from seabridge import cli
from wire.codec import CODEC_DEFLATE, CODEC_RAW, decode_text, encode_text
from wire.crypto import CrewEpoch, crew_epoch_key, open_crew
from wire.frame import Direction, frame_capacity, open_frame, seal_frame
from wire.items import RecordItem, dumps
from wire.records import HOTLINE, TIME_EPOCH, CrewContent, CrewMessage, CrewReply, Kind, pad_content
from wire.textcodec.script import detect_language
from wire.units import cut_record
from wire.v2.crew import FrameEpoch, seal_crew
from wire.v2.crew import open_crew as open_crew_v2
from wire.versions import open_any, wire_format

MESSAGES = [
    "ကျွန်တော် နေကောင်းပါတယ်။ ဒီနေ့ ပင်လယ် ငြိမ်ပါတယ်။",
    "ខ្ញុំសុខសប្បាយ ថ្ងៃនេះសមុទ្រស្ងប់។",
    "ไต๋ก๋งไม่จ่ายค่าแรงมา 4 เดือนแล้ว",
    "They keep our passports and we cannot go home.",
    "x",
]


@pytest.mark.parametrize("text", MESSAGES)
def test_estimate_matches_a_real_sealed_frame(text: str) -> None:
    profile = load_profile("iridium-9603")
    crew = PrivateKey.generate()
    epoch = CrewEpoch.start(3, crew.public_key)
    content = CrewContent(HOTLINE, text, TYPICAL_HANDLE)
    sealed = epoch.seal(TYPICAL_RID, pad_content(content.encode()))  # the gateway pads v1 content
    body = CrewMessage(TYPICAL_MEMBER, 3, sealed, TYPICAL_CREATED).body()
    capacity = frame_capacity(profile.mo_max_bytes, TYPICAL_COUNTER)
    units = cut_record(TYPICAL_RID, int(Kind.CREW_MESSAGE), body, capacity)
    assert len(units) == 1
    link_key = bytes(range(32))
    frame = seal_frame(link_key, Direction.MO, TYPICAL_COUNTER, [units[0].item], profile.mo_max_bytes)

    got = estimate(text, version=1)
    assert got["record_bytes"] == len(units[0].item)
    assert got["frame_bytes"] == len(frame)
    assert got["credits"] == profile.billing.units(len(frame))

    _, items = open_frame(link_key, frame, Direction.MO)
    record = items[0]
    assert isinstance(record, RecordItem)
    opened = open_crew(crew, 3, epoch.public_bytes, TYPICAL_RID, CrewMessage.from_body(record.body).sealed)
    assert CrewContent.decode(opened).text == text


@pytest.mark.parametrize("text", MESSAGES)
def test_v2_estimate_matches_a_real_crew_sealed_frame_and_costs_at_most_16_bytes_of_overhead(
    text: str,
) -> None:
    profile = load_profile("iridium-9603")
    crew = PrivateKey.generate()
    epoch = CrewEpoch.start(TYPICAL_EPOCH, crew.public_key)
    fmt = wire_format(2)
    created = TIME_EPOCH + TYPICAL_CREATED
    coded = encode_text(text, lang=detect_language(text))
    body = seal_crew(epoch.number, epoch.key, TYPICAL_RID, TYPICAL_MEMBER, created, HOTLINE, coded)
    frame_epoch = FrameEpoch(epoch.number, epoch.key, TYPICAL_RID - TYPICAL_RECORDS_SINCE_START, True)
    units = fmt.cut_record(
        TYPICAL_RID, int(Kind.CREW_MESSAGE), body, fmt.min_capacity(profile.mo_frame_limit)
    )
    assert len(units) == 1
    item = fmt.prepare(units[0].item, frame_epoch, created + TYPICAL_AGE_S)
    link_key = bytes(range(32))
    frame = fmt.seal(link_key, Direction.MO, TYPICAL_COUNTER, [item], profile.mo_frame_limit, frame_epoch)

    got = estimate(text, version=2)
    assert got["frame_bytes"] == len(frame)
    assert got["credits"] == profile.billing.units(len(frame))
    assert got["overhead"] == len(frame) - len(coded) <= 16
    assert got["credits"] <= estimate(text, version=1)["credits"]

    shore_epoch = FrameEpoch(epoch.number, crew_epoch_key(crew, epoch.public_bytes), frame_epoch.base_rid)
    _, items = open_any(
        link_key, frame, Direction.MO, TYPICAL_COUNTER - 1, lambda _p: shore_epoch, created + 700
    )
    to, text_coded, _ = open_crew_v2(shore_epoch.key, TYPICAL_RID, items[0].body)
    assert (to, decode_text(text_coded)) == (HOTLINE, text)


def test_trained_codec_makes_burmese_cheaper_than_raw_utf8() -> None:
    text = MESSAGES[0]
    assert estimate(text)["record_bytes"] < estimate(text, allowed=[CODEC_RAW])["record_bytes"] - 40


def test_reply_estimate_uses_the_mt_limit_and_only_announced_codecs() -> None:
    profile = load_profile("iridium-9603")
    text = "ดีใจที่ได้ข่าว " * 30
    got = estimate(text, direction="mt", allowed=[CODEC_RAW, CODEC_DEFLATE])
    assert got["codec"] in (CODEC_RAW, CODEC_DEFLATE)
    reply = CrewReply(TYPICAL_MEMBER, text, HOTLINE, TYPICAL_CREATED).body()
    assert reply  # the reply body is what the shore queues
    assert got["frame_bytes"] <= got["frames"] * profile.mt_max_bytes


def test_long_message_spreads_over_several_frames_and_credits_add_up() -> None:
    profile = load_profile("iridium-9603")
    text = "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(900))  # incompressible CJK
    got = estimate(text)
    assert got["frames"] > 1
    assert got["credits"] >= got["frames"] * profile.billing.units(1)
    assert got["frame_bytes"] > got["record_bytes"]


def test_cli_prints_one_json_object_per_input_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(MESSAGES) + "\n"))
    assert cli.main(["estimate", "--lang", "my"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(MESSAGES)
    for line, text in zip(lines, MESSAGES, strict=True):
        obj = json.loads(line)
        assert obj["record_bytes"] == estimate(text, "my")["record_bytes"]
        assert {"record_bytes", "frame_bytes", "credits"} <= obj.keys()


@settings(max_examples=40, deadline=None)
@given(text=st.text(max_size=600), handle=st.text(min_size=1, max_size=32), member=st.integers(1, 5000))
def test_a_queued_message_priced_by_its_stored_size_costs_what_the_live_estimate_said(
    text: str, handle: str, member: int
) -> None:
    """The crew page's list prices a sealed message from its record size alone; the figure must be
    the one the member saw while typing (one estimator, one figure)."""
    # wire format 1: the sealed content map in a CrewMessage body
    live = estimate(text, None, "iridium-9603", handle=handle, member=member, version=1)
    sealed = _epoch().seal(TYPICAL_RID, pad_content(CrewContent(to=HOTLINE, text=text, handle=handle).encode()))
    body = CrewMessage(member, TYPICAL_EPOCH, sealed, TYPICAL_CREATED).body()
    stored = estimate_stored(len(dumps(body)), "iridium-9603", version=1, member=member)
    assert (stored["frame_bytes"], stored["credits"]) == (live["frame_bytes"], live["credits"])
    # wire format 2: the body the gateway stores (seal_crew of the coded text)
    live = estimate(text, None, "iridium-9603", handle=handle, member=member, version=2)
    created = float(TIME_EPOCH + TYPICAL_CREATED)
    body2 = seal_crew(TYPICAL_EPOCH, _epoch().key, TYPICAL_RID, member, created, HOTLINE, encode_text(text))
    stored = estimate_stored(len(dumps(body2)), "iridium-9603", version=2, member=member)
    assert (stored["frame_bytes"], stored["credits"]) == (live["frame_bytes"], live["credits"])


def test_the_size_wording_counts_one_credit_as_one() -> None:
    assert wording(83, 2, "credit") == "83 bytes on the air, 2 credits"
    assert wording(40, 1, "credit") == "40 bytes on the air, 1 credit"
