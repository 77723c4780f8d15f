"""What a hotline reply will cost on the air: bytes in the frame(s) and billing units.

It owns the figures the reply composer shows while staff type, from ``common.estimate`` (the one
estimator the captive page and ``seabridge estimate`` use too), priced with the vessel's firmware
profile. It does no I/O besides loading the profile.
"""

from __future__ import annotations

import logging
from typing import Any

from common.estimate import estimate, wording
from firmware_profiles import ProfileError, load_profile
from wire.errors import LocalWireError

log = logging.getLogger("shore.dashboard")

MAX_REPLY_CHARS = 1000


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
        "source": "common.estimate",
    }
    try:
        got = estimate(
            text, lang, profile=profile_name, direction="mt", **({"member": member} if member else {})
        )
    except (LocalWireError, ProfileError, ValueError) as exc:
        out.update(record_bytes=0, frame_bytes=0, frames=0, credits=0, cost=0.0, ok=False, error=str(exc))
        out.update(size="", label=label(out))
        return out
    credits = int(got["credits"])
    out.update(
        record_bytes=int(got["record_bytes"]),
        frame_bytes=int(got["frame_bytes"]),
        frames=int(got.get("frames", 1)),
        credits=credits,
        cost=round(credits * billing.cost_per_unit, 4),
    )
    out["size"] = wording(out["frame_bytes"], credits, billing.unit_name)
    out["label"] = label(out)
    return out


def label(found: dict[str, Any]) -> str:
    """What the composer shows: characters, then (for a reply that can be sent) the size in the one
    wording the crew page uses too, and the cost."""
    chars = f"{found['chars']} character{'' if found['chars'] == 1 else 's'}"
    if not found.get("ok") or not found.get("frame_bytes"):
        return chars
    return f"{chars} · {found['size']} · {found['cost']:.2f} {found['currency']}"
