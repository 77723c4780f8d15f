"""What a hotline reply will cost on the air: bytes in the frame(s) and billing units.

It owns the estimate the reply composer shows while staff type. When ``seabridge.estimate`` exists it
is used (one estimator for the whole project); otherwise the reply is encoded the way the relay will
encode it (``CrewReply`` body with the text codec, cut into units for the vessel's MT frame limit, plus
the frame overhead) and billed with the vessel's firmware profile. Sizes and prices come only from the
profile. It does no I/O besides loading the profile.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from seabridge.firmware_profiles import ProfileError, load_profile
from seabridge.wire.errors import LocalWireError
from seabridge.wire.frame import frame_capacity, frame_overhead
from seabridge.wire.records import CrewReply, Kind, to_wire_time
from seabridge.wire.units import cut_record, pack_units

log = logging.getLogger("seabridge.shore.dashboard")

TYPICAL_COUNTER = 5000  # frame counter used for the header size (varint: 2 bytes)
TYPICAL_RID = 5000
MAX_REPLY_CHARS = 1000


def _project_estimator() -> Any:
    try:
        module = importlib.import_module("seabridge.estimate")
    except ImportError:
        return None
    return getattr(module, "estimate", None)


def estimate_reply(
    text: str, profile_name: str, now: float, member: int = 0, lang: str | None = None
) -> dict[str, Any]:
    """``{text_bytes, record_bytes, frame_bytes, frames, credits, cost, currency, unit_name, ok}``."""
    profile = load_profile(profile_name)
    billing = profile.billing
    out: dict[str, Any] = {
        "chars": len(text),
        "text_bytes": len(text.encode("utf-8")),
        "unit_name": billing.unit_name,
        "currency": billing.currency,
        "ok": len(text.strip()) > 0 and len(text) <= MAX_REPLY_CHARS,
    }
    estimator = _project_estimator()
    if estimator is not None:
        try:
            try:
                got = estimator(text, lang, profile=profile_name, direction="mt")
            except TypeError:  # an estimator without directions: vessel-to-shore sizes, close enough
                got = estimator(text, lang, profile=profile_name)
            frame_bytes = int(got["frame_bytes"])
            credits = int(got["credits"])
            out.update(
                record_bytes=int(got["record_bytes"]),
                frame_bytes=frame_bytes,
                frames=int(got.get("frames", 1)),
                credits=credits,
                cost=round(credits * billing.cost_per_unit, 4),
                source="seabridge.estimate",
            )
            return out
        except (KeyError, TypeError, ValueError, ProfileError) as exc:
            log.warning("project estimator failed (%s); using the wire encoder", exc)
    body = CrewReply(member, text, "hotline", to_wire_time(now)).body()
    try:
        capacity = frame_capacity(profile.mt_max_bytes, TYPICAL_COUNTER)
        units = cut_record(TYPICAL_RID, int(Kind.CREW_REPLY), body, capacity)
    except LocalWireError as exc:
        out.update(record_bytes=0, frame_bytes=0, frames=0, credits=0, cost=0.0, ok=False, error=str(exc))
        out["source"] = "wire"
        return out
    frames: list[int] = []
    pending = list(units)
    while pending:
        chosen = pack_units(pending, capacity)
        if not chosen:  # cannot happen: every unit fits a frame by construction
            break
        frames.append(sum(len(u.item) for u in chosen) + frame_overhead(TYPICAL_COUNTER))
        pending = [u for u in pending if u not in chosen]
    credits = sum(billing.units(n) for n in frames)
    out.update(
        record_bytes=sum(len(u.item) for u in units),
        frame_bytes=sum(frames),
        frames=len(frames),
        credits=credits,
        cost=round(credits * billing.cost_per_unit, 4),
        source="wire",
    )
    return out
