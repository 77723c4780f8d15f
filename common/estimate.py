"""What one crew message costs on the air: record bytes, frame bytes and billing credits.

Owns the one cost function the captive page's live estimate, the dashboard's reply cost and
``seabridge estimate`` share. It builds the real thing: the text codec's choice, the crew content,
the sealing tag (a real ``CrewEpoch`` seal), the record body, the units cut for the profile's frame
size, and each frame's header, counter and tag, in either wire format version (``wire.versions``).
Billing comes from the modem profile (``load_profile(name).billing``), never from literals.

Version 2 prices a crew message in the steady state: its epoch already announced, so it travels in a
frame sealed under the epoch with its record id as a delta from the epoch's base and its time as an
age. The member's handle is not in the message in v2: it travels once per member and epoch.

Identifiers that vary in size are set to typical values: record id and frame counter below 2**32 but
above 65535 (a vessel some months into service), member number below 256, a current timestamp. The
real cost differs from the estimate by at most a couple of bytes for a very young or very old vessel.
In v2 the typical gateway has accepted 1000 records since it started (a two-byte delta) and a message
leaves within ten minutes of being written (a one-byte age).

Must not do: clocks, I/O, randomness that changes sizes (the sealing key is fixed and never leaves
this module; sealing length does not depend on the key).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any, Literal

from nacl.public import PrivateKey

from firmware_profiles import ModemProfile, load_profile
from wire import codec
from wire.crypto import CrewEpoch
from wire.items import dumps
from wire.records import (
    HOTLINE,
    TIME_EPOCH,
    CrewContent,
    CrewMessage,
    CrewReply,
    Kind,
    pad_content,
    to_wire_time,
)
from wire.textcodec.script import detect_language
from wire.v2.crew import FrameEpoch, seal_crew
from wire.versions import DEFAULT_VERSION, wire_format

DEFAULT_PROFILE = "iridium-9603"
TYPICAL_RID = 100_000  # five CBOR bytes, as for any record id from 65536 to 2**32 - 1
TYPICAL_COUNTER = 100_000  # three varint bytes
TYPICAL_MEMBER = 42
TYPICAL_EPOCH = 3
TYPICAL_CREATED = to_wire_time(TIME_EPOCH + 2**26)  # five CBOR bytes (2026 .. 2160)
TYPICAL_HANDLE = "blue-fish"
TYPICAL_RECORDS_SINCE_START = 1000  # v2: the record id travels as a delta from the epoch's base
TYPICAL_AGE_S = 600  # v2: minutes between writing a message and the frame that carries it


@lru_cache(maxsize=1)
def _epoch() -> CrewEpoch:
    secret = PrivateKey(bytes(range(32)))
    return CrewEpoch(TYPICAL_EPOCH, secret, bytes(32))


@lru_cache(maxsize=8)
def _profile(name: str) -> ModemProfile:
    return load_profile(name)


def estimate(
    text: str,
    lang: str | None = None,
    profile: str | ModemProfile = DEFAULT_PROFILE,
    *,
    direction: Literal["mo", "mt"] = "mo",
    to: str = HOTLINE,
    handle: str = TYPICAL_HANDLE,
    allowed: Iterable[int] | None = None,
    member: int = TYPICAL_MEMBER,
    version: int = DEFAULT_VERSION,
) -> dict[str, Any]:
    """Cost of one crew message (``mo``, vessel to shore) or crew reply (``mt``, shore to vessel).

    Returns ``record_bytes`` (what the message adds to a frame: its item, or all its fragment items),
    ``frame_bytes`` (the frame(s) carrying it alone, header, counter and tag included), ``credits``
    (billing units for those frames), ``frames``, ``codec`` (the codec byte chosen for the text) and
    ``lang`` (the language hint used), ``coded_bytes`` (the codec output: codec byte and body),
    ``overhead`` (frame bytes beyond the codec output) and ``version`` (wire format version priced).
    ``allowed`` restricts the codecs as the receiver announced. ``handle`` and ``member`` are the
    writer's, when known (the crew page passes the signed-in member's, so the figure is the one the
    queued message will show).
    """
    prof = _profile(profile) if isinstance(profile, str) else profile
    allowed_list = None if allowed is None else list(allowed)
    hint = lang or detect_language(text)
    coded = codec.encode_text(text, allowed=allowed_list, lang=hint)
    epoch: FrameEpoch | None = None
    if direction == "mo" and version >= 2:
        epoch = _steady_epoch()
        created = float(TIME_EPOCH + TYPICAL_CREATED)
        body: Any = seal_crew(TYPICAL_EPOCH, epoch.key, TYPICAL_RID, member, created, to, coded)
        kind = Kind.CREW_MESSAGE
        limit = prof.mo_frame_limit
    elif direction == "mo":
        plain = CrewContent(to=to, text=text, handle=handle).encode()
        if allowed_list is not None:
            # The same content map, with the text coded only with codecs the receiver has.
            plain = dumps({0: to, 1: coded, 2: handle})
        plain = pad_content(plain)  # the gateway pads v1 content to a size class
        sealed = _epoch().seal(TYPICAL_RID, plain)
        body = CrewMessage(member, TYPICAL_EPOCH, sealed, TYPICAL_CREATED).body()
        kind = Kind.CREW_MESSAGE
        limit = prof.mo_frame_limit
    else:
        body = CrewReply(member, text, to, TYPICAL_CREATED).body()
        body[1] = coded
        kind = Kind.CREW_REPLY
        limit = prof.mt_frame_limit
    priced = _priced(kind, body, limit, prof, version, epoch)
    return {
        **priced,
        "codec": coded[0],
        "lang": hint,
        "coded_bytes": len(coded),
        "overhead": priced["frame_bytes"] - len(coded),
        "version": version,
    }


def _steady_epoch() -> FrameEpoch:
    """The epoch a v2 crew message is priced under: announced, the record a typical delta from its base."""
    return FrameEpoch(TYPICAL_EPOCH, _epoch().key, TYPICAL_RID - TYPICAL_RECORDS_SINCE_START, True)


def _priced(
    kind: Kind, body: Any, limit: int, prof: ModemProfile, version: int, epoch: FrameEpoch | None
) -> dict[str, int]:
    """Record bytes, frame bytes, credits and frames of one record ``body`` sent alone."""
    fmt = wire_format(version)
    overhead = fmt.overhead(TYPICAL_COUNTER)
    units = fmt.cut_record(TYPICAL_RID, int(kind), body, fmt.capacity(limit, TYPICAL_COUNTER))
    now = float(TIME_EPOCH + TYPICAL_CREATED + TYPICAL_AGE_S)
    items = [fmt.prepare(u.item, epoch, now) for u in units]
    frame_sizes = [len(i) + overhead for i in items]  # alone in its frame: no length prefix in v2
    return {
        "record_bytes": sum(len(i) for i in items),
        "frame_bytes": sum(frame_sizes),
        "credits": sum(prof.billing.units(n) for n in frame_sizes),
        "frames": len(units),
    }


def estimate_stored(
    body_bytes: int,
    profile: str | ModemProfile = DEFAULT_PROFILE,
    kind: Kind = Kind.CREW_MESSAGE,
    version: int = DEFAULT_VERSION,
    member: int = TYPICAL_MEMBER,
) -> dict[str, int]:
    """The same figures as ``estimate`` for a record already built, known only by the size of its
    encoded body (a sealed crew message in the gateway's queue, whose text nobody on board can read):
    a stand-in body of exactly that encoded size is priced the same way, in the same wire format
    (``member``: the writer's number, which a v2 message carries beside its sealed text)."""
    prof = _profile(profile) if isinstance(profile, str) else profile
    limit = prof.mt_frame_limit if kind == Kind.CREW_REPLY else prof.mo_frame_limit
    if version >= 2 and kind == Kind.CREW_MESSAGE:
        created = float(TIME_EPOCH + TYPICAL_CREATED)
        body: Any = None
        for coded_len in range(max(1, body_bytes), 0, -1):  # a fixed-size envelope around the text
            body = seal_crew(TYPICAL_EPOCH, _epoch().key, TYPICAL_RID, member, created, HOTLINE, bytes(coded_len))
            if len(dumps(body)) <= body_bytes:
                break
        return _priced(kind, body, limit, prof, version, _steady_epoch())
    length = max(0, body_bytes - 1)
    while length and len(dumps(bytes(length))) > body_bytes:  # at most four steps (CBOR length head)
        length -= 1
    return _priced(kind, bytes(length), limit, prof, version, None)


def wording(frame_bytes: int, credits: int, unit_name: str) -> str:
    """The one English wording of a size figure, on the desk as on the crew page's English catalogue
    (``estimate_value``): "83 bytes on the air, 2 credits"."""
    unit = unit_name if credits == 1 else f"{unit_name}s"
    return f"{frame_bytes} bytes on the air, {credits} {unit}"
