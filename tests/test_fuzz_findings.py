"""What the long fuzz runs found, replayed exactly: each input broke its parser's promise before the
fix (docs/fuzzing.md, "Findings")."""

from __future__ import annotations

from typing import Any

import pytest

from bench.fuzz_targets import TARGETS
from wire.items import encode_record_item
from wire.records import Kind

FOUND: list[tuple[str, Any, str]] = [
    # The IDP driver raised ValueError (not a typed error) on a %UTC answer with month 21.
    (
        "at-idp",
        (2, [(b"AT%UTC*$\xd81\xf6397D\r\r\n%UTC: 2025-21-01 00:00:00\r\n\r\nOK\r\n*\xf6397979E\r\n?", 0.0)], False),
        "driver",
    ),
    # Telemetry decoded a fix source and age without a position, which the encoder never writes.
    (
        "record-bodies",
        (Kind.TELEMETRY, {0: 5, 3: 0, 4: 30, 5: [[2, 3, 400]], 6: 500, 7: 120, 8: [4, 1, 8, 2000, 3]}),
        "telemetry",
    ),
    # An acknowledgement item with no counters decoded, though the encoder refuses to write one.
    ("frame-after-mac", (5, bytes.fromhex("820280")), "refused-malformed"),
]


@pytest.mark.parametrize(("target", "data", "expected"), FOUND, ids=[f[0] for f in FOUND])
def test_a_fuzz_finding_stays_fixed(target: str, data: Any, expected: str) -> None:
    outcome = TARGETS[target].check(data)
    if expected == "driver":  # the operation ends in a typed outcome, and the driver works afterwards
        assert outcome in ("RemoteProtocolError", "Timeout", "NetworkTime")
    else:
        assert outcome == expected


def test_a_telemetry_body_round_trips_after_the_fix() -> None:
    from wire.records import Telemetry

    record = Telemetry.from_body({0: 5, 3: 0, 4: 30})
    assert (record.fix_source, record.fix_age_s) == (None, None)
    assert Telemetry.from_body(record.body()) == record
    assert encode_record_item(1, int(Kind.TELEMETRY), record.body())
