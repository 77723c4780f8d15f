"""What one crew message costs on the air: record bytes, frame bytes and billing credits.

Owns the one cost function the captive page's live estimate, the dashboard's reply cost and
``seabridge estimate`` share. It builds the real thing: the text codec's choice, the crew content,
the sealing tag (a real ``CrewEpoch`` seal), the record body, the units cut for the profile's frame
size, and each frame's header, counter and AEAD tag (``frame.frame_overhead``). Billing comes from the
modem profile (``load_profile(name).billing``), never from literals.

Identifiers that vary in size are set to typical values: record id and frame counter below 2**32 but
above 65535 (a vessel some months into service), member number below 256, a current timestamp. The
real cost differs from the estimate by at most a couple of bytes for a very young or very old vessel.

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
from wire.frame import frame_capacity, frame_overhead
from wire.items import dumps
from wire.records import HOTLINE, TIME_EPOCH, CrewContent, CrewMessage, CrewReply, Kind, to_wire_time
from wire.textcodec.script import detect_language
from wire.units import cut_record

DEFAULT_PROFILE = "iridium-9603"
TYPICAL_RID = 100_000  # five CBOR bytes, as for any record id from 65536 to 2**32 - 1
TYPICAL_COUNTER = 100_000  # three varint bytes
TYPICAL_MEMBER = 42
TYPICAL_EPOCH = 3
TYPICAL_CREATED = to_wire_time(TIME_EPOCH + 2**26)  # five CBOR bytes (2026 .. 2160)
TYPICAL_HANDLE = "blue-fish"


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
) -> dict[str, Any]:
    """Cost of one crew message (``mo``, vessel to shore) or crew reply (``mt``, shore to vessel).

    Returns ``record_bytes`` (what the message adds to a frame: its item, or all its fragment items),
    ``frame_bytes`` (the frame(s) carrying it alone, header, counter and tag included), ``credits``
    (billing units for those frames), ``frames``, ``codec`` (the codec byte chosen for the text) and
    ``lang`` (the language hint used). ``allowed`` restricts the codecs as the receiver announced.
    ``handle`` and ``member`` are the writer's, when known (the crew page passes the signed-in
    member's, so the figure is the one the queued message will show).
    """
    prof = _profile(profile) if isinstance(profile, str) else profile
    allowed_list = None if allowed is None else list(allowed)
    hint = lang or detect_language(text)
    coded = codec.encode_text(text, allowed=allowed_list, lang=hint)
    if direction == "mo":
        plain = CrewContent(to=to, text=text, handle=handle).encode()
        if allowed_list is not None:
            # The same content map, with the text coded only with codecs the receiver has.
            plain = dumps({0: to, 1: coded, 2: handle})
        sealed = _epoch().seal(TYPICAL_RID, plain)
        body = CrewMessage(member, TYPICAL_EPOCH, sealed, TYPICAL_CREATED).body()
        kind = Kind.CREW_MESSAGE
        limit = prof.mo_frame_limit
    else:
        body = CrewReply(member, text, to, TYPICAL_CREATED).body()
        body[1] = coded
        kind = Kind.CREW_REPLY
        limit = prof.mt_frame_limit
    return {**_priced(kind, body, limit, prof), "codec": coded[0], "lang": hint}


def _priced(kind: Kind, body: Any, limit: int, prof: ModemProfile) -> dict[str, int]:
    """Record bytes, frame bytes, credits and frames of one record ``body`` sent alone."""
    overhead = frame_overhead(TYPICAL_COUNTER)
    units = cut_record(TYPICAL_RID, int(kind), body, frame_capacity(limit, TYPICAL_COUNTER))
    frame_sizes = [len(u.item) + overhead for u in units]
    return {
        "record_bytes": sum(len(u.item) for u in units),
        "frame_bytes": sum(frame_sizes),
        "credits": sum(prof.billing.units(n) for n in frame_sizes),
        "frames": len(units),
    }


def estimate_stored(
    body_bytes: int, profile: str | ModemProfile = DEFAULT_PROFILE, kind: Kind = Kind.CREW_MESSAGE
) -> dict[str, int]:
    """The same figures as ``estimate`` for a record already built, known only by the size of its
    encoded body (a sealed crew message in the gateway's queue, whose text nobody on board can read):
    a stand-in body of exactly that encoded size is priced the same way."""
    prof = _profile(profile) if isinstance(profile, str) else profile
    length = max(0, body_bytes - 1)
    while length and len(dumps(bytes(length))) > body_bytes:  # at most four steps (CBOR length head)
        length -= 1
    stand_in = bytes(length)
    limit = prof.mt_frame_limit if kind == Kind.CREW_REPLY else prof.mo_frame_limit
    return _priced(kind, stand_in, limit, prof)


def wording(frame_bytes: int, credits: int, unit_name: str) -> str:
    """The one English wording of a size figure, on the desk as on the crew page's English catalogue
    (``estimate_value``): "83 bytes on the air, 2 credits"."""
    unit = unit_name if credits == 1 else f"{unit_name}s"
    return f"{frame_bytes} bytes on the air, {credits} {unit}"
