"""Per-frame and per-record overhead of wire formats v1 and v2, and seal/open speed against a baseline.

Overhead is counted, not timed: bytes a frame spends beyond its items (header, counter, tag) at several
counter values, and bytes an item spends beyond the record body. Speed is shown as a ratio to a plain
PyNaCl ``SecretBox`` round trip of the same payload measured in the same run.
"""

from __future__ import annotations

import time

from nacl.public import PrivateKey
from nacl.secret import SecretBox

from firmware_profiles import load_profile
from wire.crypto import link_key
from wire.frame import Direction, frame_overhead, open_frame, seal_frame
from wire.items import dumps, encode_record_item
from wire.units import cut_record, pack_units
from wire.versions import wire_format


def _rate(fn, seconds: float = 0.5) -> float:
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - start)


def main() -> None:
    v2 = wire_format(2)
    for counter in (0, 127, 128, 16_383, 16_384, 2_097_151, 2**35 - 1):
        print(
            f"frame overhead at counter {counter:>12}: v1 {frame_overhead(counter)} bytes, "
            f"v2 {v2.overhead(counter)} bytes"
        )
    body = {0: 3, 1: 1, 2: bytes(60), 3: 86_400_000}
    item = encode_record_item(1234, 2, body)
    print(f"record item overhead (rid 1234, 60-byte sealed body): {len(item) - len(dumps(body))} bytes")

    profile = load_profile("iridium-9603")
    key = link_key(PrivateKey.generate(), PrivateKey.generate().public_key)
    units = [u for rid in range(100) for u in cut_record(rid, 2, {0: rid, 1: bytes(40)}, 300)]
    chosen = pack_units(units, profile.mo_max_bytes - frame_overhead(5000))
    frame = seal_frame(key, Direction.MO, 5000, [u.item for u in chosen], profile.mo_max_bytes)
    payload_bytes = sum(len(u.item) for u in chosen)
    print(
        f"full 9603 frame: {len(frame)} of {profile.mo_max_bytes} bytes, {len(chosen)} records, "
        f"fill {len(frame) / profile.mo_max_bytes:.1%}, overhead {len(frame) - payload_bytes} bytes"
    )

    box = SecretBox(bytes(32))
    plain = b"".join(u.item for u in chosen)
    baseline = _rate(lambda: box.decrypt(box.encrypt(plain)))
    ours = _rate(
        lambda: open_frame(
            key,
            seal_frame(key, Direction.MO, 5000, [u.item for u in chosen], profile.mo_max_bytes),
            Direction.MO,
        )
    )
    print(
        f"seal+open+parse a full frame: {ours:,.0f}/s; SecretBox round trip baseline {baseline:,.0f}/s; "
        f"ratio {ours / baseline:.2f}"
    )


if __name__ == "__main__":
    main()
