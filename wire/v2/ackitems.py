"""Wire format v2's acknowledgement-by-exception items: resend request, cumulative ack, void declaration.

The same three items as v1's (``wire.ackpolicy``: meaning, limits, the receipt ledger), in v2's compact
form: a head byte (types 7–9), then varints only — counters as runs (``wire.ranges``), a cumulative
ack's bounds before its missing runs. Decoding reuses v1's checks, so both versions accept the same
items. It owns no state and knows nothing of frames beyond the item body.
"""

from __future__ import annotations

from ..ack import encode_ranges
from ..ackpolicy import (
    ITEM_CUMACK,
    ITEM_RESEND,
    ITEM_VOID,
    PolicyItem,
    ResendItem,
    VoidItem,
    decode_policy_item,
)
from ..errors import LocalWireError, MalformedError
from .items import Reader, make_item

ITEM_RESEND_V2 = 7
ITEM_CUMACK_V2 = 8
ITEM_VOID_V2 = 9
POLICY_ITEMS_V2 = frozenset({ITEM_RESEND_V2, ITEM_CUMACK_V2, ITEM_VOID_V2})


def _runs(counters: set[int] | frozenset[int] | list[int], what: str) -> list[int]:
    if not counters:
        raise LocalWireError(f"a {what} needs at least one counter")
    return encode_ranges(counters)


def encode_resend_item(counters: set[int] | frozenset[int] | list[int]) -> bytes:
    return make_item(ITEM_RESEND_V2, *_runs(counters, "resend request"))


def encode_void_item(counters: set[int] | frozenset[int] | list[int]) -> bytes:
    return make_item(ITEM_VOID_V2, *_runs(counters, "void declaration"))


def encode_cumack_item(
    upto: int, missing: set[int] | frozenset[int] | list[int] = (), start: int = 0  # type: ignore[assignment]
) -> bytes:
    if not 0 <= start <= upto or any(c > upto or c < start for c in missing):
        raise LocalWireError("missing counters must lie in start..upto")
    return make_item(ITEM_CUMACK_V2, upto, start, *(encode_ranges(missing) if missing else []))


def encode_policy(item: PolicyItem) -> bytes:
    if isinstance(item, ResendItem):
        return encode_resend_item(item.counters)
    if isinstance(item, VoidItem):
        return encode_void_item(item.counters)
    return encode_cumack_item(item.upto, item.missing, item.start)


def decode_policy_item_v2(item_type: int, body: bytes) -> PolicyItem:
    """Decode a type 7–9 item body; the same typed errors as v1 on anything invalid."""
    r = Reader(body)
    fields: list[int] = []
    while r.pos < len(body):
        fields.append(r.uint())
    if item_type == ITEM_CUMACK_V2:
        if len(fields) < 2:
            raise MalformedError("cumulative ack needs its bounds")
        upto, start, runs = fields[0], fields[1], fields[2:]
        return decode_policy_item([ITEM_CUMACK, upto, runs, *([start] if start else [])])
    tag = ITEM_RESEND if item_type == ITEM_RESEND_V2 else ITEM_VOID
    return decode_policy_item([tag, fields])
