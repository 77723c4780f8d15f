"""The fuzz targets: one per parser, each a generator of hostile inputs and the parser's promise.

``Target.generate(rng)`` builds one input from a seeded ``random.Random``; ``Target.check(input)``
feeds it to the parser and *asserts* what the parser promises, returning a short outcome label
(counted by the runner). A promise is always two-sided: a typed error with nothing changed, or a
result that says what the input said (a round trip, a re-parse that agrees, a driver that still
completes the next good exchange). Any other exception, or a failed assertion, is a finding.

This module owns the targets and their input generators only; running them is ``bench.fuzz``'s job,
and the pytest marker ``fuzz`` (``tests/test_fuzz.py``) runs every target for a CI-sized count.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import random
from collections.abc import Callable
from typing import Any

import cbor2

from bench.fuzz_at import AT_TARGETS
from bench.fuzz_forms import FORM_TARGETS
from bench.fuzz_kit import Target, mutate_bytes, mutate_tree
from shore.directip import (
    BadField,
    DirectIpError,
    MoHeader,
    MoLocation,
    MoMessage,
    MtConfirmation,
    MtFlags,
    MtMessage,
    decode_mo,
    decode_mo_confirmation,
    decode_mt,
    decode_mt_confirmation,
    encode_mo,
    encode_mo_confirmation,
    encode_mt,
    encode_mt_confirmation,
)
from shore.directip_framing import MessageReader
from shore.webhook import WebhookError, WebhookMo, _fields, parse_mo
from wire.catch import (
    CatchLine,
    Deletion,
    Discard,
    EtpInteraction,
    Haul,
    RestDay,
    TripEnd,
    TripStart,
    decode_catch,
    encode_catch,
)
from wire.errors import LocalWireError, RemoteWireError
from wire.frame import MAX_FRAME_BYTES, Direction, open_frame, seal_frame
from wire.items import (
    AckItem,
    FragmentItem,
    RecordItem,
    decode_items,
    dumps,
    encode_ack_item,
    encode_fragment_item,
    encode_record_item,
)
from wire.records import (
    Alert,
    Capabilities,
    CrewContent,
    CrewMessage,
    CrewReply,
    Epoch,
    Kind,
    Sos,
    Telemetry,
)


def _same(a: Any, b: Any) -> bool:
    """Equality that treats NaN as equal to itself (a float field may carry NaN)."""
    return a == b or repr(a) == repr(b)


# -- DirectIP: every element, and the streaming reader ------------------------------------------------

IMEI = "300234063904190"
_DIRECTIP_SEEDS: list[bytes] = [
    encode_mo(MoMessage(MoHeader(1894516585, IMEI, 0, 75, 0, 1436465708), b"test message from pete")),
    encode_mo(MoMessage(MoHeader(7, IMEI, 13, 0, 3, 1), None, MoLocation(-43.52117, 172.60487, 2))),
    encode_mo(MoMessage(MoHeader(0, IMEI, 0, 65535, 65535, 2**32 - 1), b"\x00" * 340, MoLocation(89.9, -179.9, 2000))),
    encode_mt(MtMessage(b"Msg1", IMEI, MtFlags(0), b"\x01" * 70, None)),
    encode_mt(MtMessage(b"\x00\x00\x00\x01", IMEI, MtFlags(0x0021), b"x", 1)),
    encode_mt_confirmation(MtConfirmation(b"Msg1", IMEI, 0x457, -2)),
    encode_mo_confirmation(True),
    encode_mo_confirmation(False),
]
_DECODERS: list[tuple[str, Callable[[bytes], Any], Callable[[Any], bytes] | None]] = [
    ("mo", decode_mo, encode_mo),
    ("mt", decode_mt, encode_mt),
    ("mo-confirmation", decode_mo_confirmation, encode_mo_confirmation),
    ("mt-confirmation", decode_mt_confirmation, encode_mt_confirmation),
]


def _directip_input(rng: random.Random) -> bytes:
    if rng.random() < 0.2:  # an element soup: known and unknown IEIs, some lengths lying
        parts = []
        for _ in range(rng.randint(0, 5)):
            iei = rng.choice([0x01, 0x02, 0x03, 0x05, 0x41, 0x42, 0x44, 0x46, rng.randrange(256)])
            size = rng.choice([0, 1, 2, 4, 11, 15, 21, 25, 28, rng.randrange(64)])
            body = rng.randbytes(size)
            length = size if rng.random() < 0.8 else rng.randrange(0x10000)
            parts.append(bytes([iei]) + length.to_bytes(2, "big") + body)
        body = b"".join(parts)
        overall = len(body) if rng.random() < 0.8 else rng.randrange(0x10000)
        return b"\x01" + overall.to_bytes(2, "big") + body
    return mutate_bytes(rng, rng.choice(_DIRECTIP_SEEDS), _DIRECTIP_SEEDS)


def check_directip(raw: bytes) -> str:
    decoded = 0
    for name, decode, encode in _DECODERS:
        try:
            value = decode(raw)
        except DirectIpError:
            continue
        decoded += 1
        assert encode is not None
        try:
            again = decode(encode(value))
        except BadField:
            # Only the MT header keeps a non-digit IMEI as sent (to answer "invalid IMEI"), and an
            # encoder refuses to write one; anything else a decoder accepts must encode.
            ascii_digits = value.imei.isascii() and value.imei.isdigit()
            assert name == "mt" and not ascii_digits, f"{name}: decoded {value!r} does not encode"
            continue
        assert _same(again, value), f"{name}: {value!r} re-decodes as {again!r}"
    return f"decoded-{decoded}" if decoded else "refused"


def _stream_input(rng: random.Random) -> tuple[bytes, list[int], int]:
    pieces = [rng.choice(_DIRECTIP_SEEDS) for _ in range(rng.randint(0, 4))]
    if rng.random() < 0.5 and pieces:
        i = rng.randrange(len(pieces))
        pieces[i] = mutate_bytes(rng, pieces[i], _DIRECTIP_SEEDS)
    stream = b"".join(pieces)
    cuts = sorted(rng.randrange(len(stream) + 1) for _ in range(rng.randint(0, 6)))
    cap = rng.choice([0xFFFF, 4096, 200, 40, 28, rng.randint(1, 0xFFFF)])
    return stream, cuts, cap


def _reference_messages(stream: bytes, cap: int) -> tuple[list[bytes], bool]:
    """What a correct framer yields: whole messages up to the first bad preamble; True if one is bad."""
    out, pos = [], 0
    while len(stream) - pos >= 1:
        if stream[pos] != 1:
            return out, True
        if len(stream) - pos < 3:
            return out, False
        overall = int.from_bytes(stream[pos + 1 : pos + 3], "big")
        if overall > cap:
            return out, True
        if len(stream) - pos - 3 < overall:
            return out, False
        out.append(stream[pos : pos + 3 + overall])
        pos += 3 + overall
    return out, False


def check_stream(case: tuple[bytes, list[int], int]) -> str:
    stream, cuts, cap = case
    reader = MessageReader(cap)
    got: list[bytes] = []
    failed: DirectIpError | None = None
    bounds = [0, *cuts, len(stream)]
    at_end = False
    try:
        for a, b in itertools.pairwise(bounds):
            reader.feed(stream[a:b])
            while (message := reader.next_message()) is not None:
                got.append(message)
        at_end = True
        reader.end_of_stream()
    except DirectIpError as exc:
        failed = exc
    expected, bad = _reference_messages(stream, cap)
    assert got == expected, f"framer yielded {got!r}, expected {expected!r}"
    if bad:
        assert failed is not None, "a bad preamble went unnoticed"
    elif sum(map(len, expected)) == len(stream):
        assert failed is None, f"a clean stream failed: {failed!r}"
    if at_end and failed is not None:
        assert type(failed).__name__ == "TruncatedMessage" and reader.buffered == len(stream) - sum(map(len, got))
        return "error-TruncatedMessage"
    if failed is not None:
        try:
            reader.feed(b"\x01\x00\x00")
        except DirectIpError as again:
            assert type(again) is type(failed), "a failed reader must stay failed with the same error"
        else:
            raise AssertionError("a failed reader took more bytes")
        return f"error-{type(failed).__name__}"
    return f"messages-{len(got)}"


# -- frames and items after a valid MAC ------------------------------------------------------------

_KEY = bytes(range(32))
_CREW = CrewContent("hotline", "help, no pay for 3 months", "m7")


def _sample_bodies() -> dict[int, Any]:
    return {
        Kind.SOS: Sos(1_000_000, 700_000, 10_050_000, "man overboard").body(),
        Kind.EPOCH: Epoch(3, bytes(32)).body(),
        Kind.CREW_MESSAGE: CrewMessage(4, 3, b"\x00" * 40, 123456).body(),
        Kind.CREW_REPLY: CrewReply(4, "we hear you", "hotline", 123460).body(),
        Kind.TELEMETRY: Telemetry(5, 700_000, 10_050_000, 0, 30, ((2, 3, 400),), 500, 120, (4, 1, 9, 2000, 3)).body(),
        Kind.ALERT: Alert(6, "budget", "day", 800, 16000.0, 20000.0, "bytes").body(),
        Kind.CAPABILITIES: Capabilities(0b111, "seabridge 0.1").body(),
        Kind.CATCH: encode_catch(_TRIP),
    }


_TRIP = TripStart(7, 1_780_000_020, "THSGK", "OTB", "71", 7.2061, 100.5953)
_BODIES = None


def _bodies() -> dict[int, Any]:
    global _BODIES
    if _BODIES is None:
        _BODIES = _sample_bodies()
    return _BODIES


def _item_seeds() -> list[bytes]:
    items = [encode_record_item(rid, kind, body) for rid, (kind, body) in enumerate(_bodies().items())]
    items.append(encode_fragment_item(40, 0, 3, b"\x82\x04\xa1"))
    items.append(encode_fragment_item(40, 2, 3, b"\x01\x02"))
    items.append(encode_ack_item(frozenset({1, 2, 3, 9, 10, 200})))
    return items


def _plaintext(rng: random.Random) -> bytes:
    roll = rng.random()
    if roll < 0.1:
        return rng.randbytes(rng.randrange(300))
    seeds = _item_seeds()
    chosen = [rng.choice(seeds) for _ in range(rng.randint(1, 5))]
    if roll < 0.55:
        i = rng.randrange(len(chosen))
        chosen[i] = mutate_bytes(rng, chosen[i], seeds)
        return b"".join(chosen)
    values = [cbor2.loads(c) for c in chosen]
    return b"".join(dumps(mutate_tree(rng, v)) for v in values)


def _frame_input(rng: random.Random) -> tuple[int, bytes]:
    counter = rng.choice([0, 1, 127, 128, 2**21, 2**35 - 1, rng.randrange(2**40)])
    return counter, _plaintext(rng)


def check_frame(case: tuple[int, bytes]) -> str:
    counter, plaintext = case
    frame = seal_frame(_KEY, Direction.MO, counter, [plaintext], MAX_FRAME_BYTES + 64)
    try:
        head, items = open_frame(_KEY, frame, Direction.MO)
    except RemoteWireError as exc:
        with_items = None
        with contextlib.suppress(RemoteWireError):
            with_items = decode_items(plaintext)
        # The MAC was valid: a refusal must come from the items (or the size), never the crypto.
        assert with_items is None or len(frame) > MAX_FRAME_BYTES, f"open_frame refused what decodes: {exc!r}"
        return f"refused-{exc.reason}"
    assert head.counter == counter and head.direction == Direction.MO
    for item in items:
        again = decode_items(_encode_item(item))
        # Compared as canonical CBOR: a body may hold NaN map keys, which never compare equal.
        assert len(again) == 1 and _encode_item(again[0]) == _encode_item(item), f"{item!r} re-decodes as {again!r}"
    return f"items-{min(len(items), 5)}"


def _encode_item(item: Any) -> bytes:
    if isinstance(item, RecordItem):
        return encode_record_item(item.rid, item.kind, item.body)
    if isinstance(item, FragmentItem):
        return encode_fragment_item(item.rid, item.index, item.count, item.chunk)
    assert isinstance(item, AckItem), f"unexpected item {item!r}"
    return encode_ack_item(item.counters)


# -- record bodies and the catch schema ----------------------------------------------------------------

_RECORD_TYPES: dict[int, Any] = {
    Kind.SOS: Sos,
    Kind.EPOCH: Epoch,
    Kind.CREW_MESSAGE: CrewMessage,
    Kind.CREW_REPLY: CrewReply,
    Kind.TELEMETRY: Telemetry,
    Kind.ALERT: Alert,
    Kind.CAPABILITIES: Capabilities,
}


def _record_input(rng: random.Random) -> tuple[int, Any]:
    if rng.random() < 0.15:
        return -1, mutate_bytes(rng, _CREW.encode(), [])  # the crew content inside the seal
    kind = rng.choice(list(_RECORD_TYPES))
    return kind, mutate_tree(rng, _bodies()[kind])


def check_record(case: tuple[int, Any]) -> str:
    kind, body = case
    if kind == -1:
        try:
            content = CrewContent.decode(body)
        except RemoteWireError as exc:
            return f"refused-{exc.reason}"
        assert _same(CrewContent.decode(content.encode()), content)
        return "crew-content"
    cls = _RECORD_TYPES[kind]
    before = repr(body)
    try:
        record = cls.from_body(body)
    except RemoteWireError as exc:
        assert repr(body) == before, "a refused body was changed"
        return f"refused-{exc.reason}"
    try:
        again = cls.from_body(record.body())
    except LocalWireError:
        return f"{Kind(kind).name.lower()}-not-re-encodable"
    assert _same(again, record), f"{record!r} re-decodes as {again!r}"
    return Kind(kind).name.lower()


def _catch_seeds() -> list[dict[int, Any]]:
    t = _TRIP
    line = CatchLine("SKJ", 120)
    events = [
        t,
        Haul(7, 1, t.departed + 3600, 90, 7.3, 100.6, (line, CatchLine("*", 3, local_name="pla thu"))),
        EtpInteraction(7, 2, t.departed + 7200, 7.31, 100.61, "TTX", 1, "A", "R"),
        Discard(7, 3, t.departed + 7300, "SKJ", 12, "SIZE"),
        RestDay(7, 4, 1, ((1, 10.0), (2, 9.5))),
        TripEnd(7, 5, t.departed + 86400, "THSGK"),
        Deletion(7, 2, 1),
    ]
    out = []
    for e in events:
        try:
            out.append(encode_catch(e, t))
        except LocalWireError:
            continue  # a sample the code tables do not list: the others cover the schema
    return out


_CATCH = None


def _catch_input(rng: random.Random) -> Any:
    global _CATCH
    if _CATCH is None:
        _CATCH = _catch_seeds()
    return mutate_tree(rng, rng.choice(_CATCH))


def check_catch(body: Any) -> str:
    trips = {_TRIP.trip: _TRIP}
    before = repr(body)
    try:
        event = decode_catch(body, trips)
    except RemoteWireError as exc:
        assert trips == {_TRIP.trip: _TRIP} and repr(body) == before, "a refused body changed state"
        return f"refused-{exc.reason}"
    assert trips == {_TRIP.trip: _TRIP}
    trip = event if isinstance(event, TripStart) else _TRIP
    try:
        again = decode_catch(encode_catch(event, trip), {_TRIP.trip: _TRIP, trip.trip: trip})
    except LocalWireError:
        return f"{type(event).__name__.lower()}-not-re-encodable"
    assert _same(again, event), f"{event!r} re-decodes as {again!r}"
    return type(event).__name__.lower()


# -- webhook bodies ------------------------------------------------------------------------------------

_HOSTILE_TEXT = ["²", "⓽", "١٢", "𝟗", "7²", "-1", "1e5", "nan", "inf", "", " ", "\n", "0x10", "99999999", "%00"]
_WEBHOOK = {
    "imei": IMEI,
    "serial": "12345",
    "momsn": "75",
    "transmit_time": "21-10-31 10:41:50",
    "iridium_latitude": "52.1234",
    "iridium_longitude": "-1.25",
    "iridium_cep": "3.0",
    "data": "68656c6c6f",
    "device_type": "ROCKBLOCK",
}


def _webhook_input(rng: random.Random) -> tuple[bytes, str]:
    fields: dict[str, Any] = dict(_WEBHOOK)
    for _ in range(rng.randint(1, 3)):
        name = rng.choice([*fields, "JWT", "x"])
        roll = rng.random()
        if roll < 0.4:
            fields[name] = rng.choice(_HOSTILE_TEXT)
        elif roll < 0.6:
            fields.pop(name, None)
        elif roll < 0.8:
            fields[name] = str(fields.get(name, "")) + rng.choice(_HOSTILE_TEXT)
        else:
            fields[name] = rng.choice([None, 1, -1, 2**70, 1.5, math.inf, [], {}, True])
    if rng.random() < 0.5:
        import json

        body = json.dumps(fields, ensure_ascii=rng.random() < 0.5).encode()
        if rng.random() < 0.3:
            body = mutate_bytes(rng, body, [])
        return body, "application/json"
    from urllib.parse import urlencode

    body = urlencode({k: "" if v is None else str(v) for k, v in fields.items()}).encode()
    if rng.random() < 0.3:
        body = mutate_bytes(rng, body, [])
    return body, "application/x-www-form-urlencoded"


def check_webhook(case: tuple[bytes, str]) -> str:
    body, ctype = case
    try:
        fields = _fields(body, ctype)
        mo = parse_mo(fields)
    except WebhookError as exc:
        assert exc.status in (400, 413), f"status {exc.status} for {exc.reason}"
        return f"refused-{exc.reason}"
    assert isinstance(mo, WebhookMo)
    assert mo.imei == fields["imei"] and len(mo.imei) == 15 and mo.imei.isascii() and mo.imei.isdigit()
    assert fields["momsn"].isascii() and mo.momsn == int(fields["momsn"]) <= 65535
    assert mo.data == bytes.fromhex(fields.get("data", ""))
    for value, name in ((mo.latitude, "iridium_latitude"), (mo.longitude, "iridium_longitude")):
        assert value is None or (fields[name].isascii() and math.isfinite(value))
    return "accepted"


TARGETS: dict[str, Target] = {
    t.name: t
    for t in [
        Target("directip-elements", _directip_input, check_directip),
        Target("directip-stream", _stream_input, check_stream),
        Target("frame-after-mac", _frame_input, check_frame),
        Target("record-bodies", _record_input, check_record),
        Target("catch-schema", _catch_input, check_catch),
        Target("webhook-body", _webhook_input, check_webhook),
        *AT_TARGETS,
        *FORM_TARGETS,
    ]
}
