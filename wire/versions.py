"""Both wire format versions behind one interface, so the gateway and the shore switch by a number.

A vessel announces the versions it decodes in its CAPABILITIES record; the shore decodes MO frames of
either version whatever was announced, and seals MT frames in the highest version the vessel announced
(version 1 before any announcement). ``open_any`` dispatches on the header's version bits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import ackpolicy as v1policy
from . import frame as v1frame
from . import items as v1items
from . import units as v1units
from .errors import LocalWireError, MalformedError, TruncatedError, UnsupportedVersionError
from .frame import Direction, FrameHeader
from .items import AckItem, FragmentItem, Item, RecordItem
from .units import Unit
from .v2 import ackitems as v2policy
from .v2 import crew as v2crew
from .v2 import frame as v2frame
from .v2 import items as v2items
from .v2 import units as v2units
from .v2.crew import FrameEpoch

SUPPORTED_VERSIONS = (1, 2)
DEFAULT_VERSION = 2


class WireFormat:
    """What a sender needs from a format version: sizes, unit cutting, ack items and sealing."""

    version = 1

    def overhead(self, counter: int) -> int:
        return v1frame.frame_overhead(counter)

    def capacity(self, limit: int, counter: int) -> int:
        return v1frame.frame_capacity(limit, counter)

    def min_capacity(self, limit: int) -> int:
        """Item room in the smallest frame the counter will ever allow (units are cut for it)."""
        return v1frame.frame_capacity(limit, 2**35 - 1)

    def cost(self, item: bytes) -> int:
        return len(item)

    def encode_ack(self, counters: set[int] | frozenset[int]) -> bytes:
        return v1items.encode_ack_item(counters)

    def encode_policy(self, item: v1policy.PolicyItem) -> bytes:
        """A resend request, cumulative ack or void declaration (``wire.ackpolicy``) in this version."""
        if isinstance(item, v1policy.ResendItem):
            return v1policy.encode_resend_item(item.counters)
        if isinstance(item, v1policy.VoidItem):
            return v1policy.encode_void_item(item.counters)
        return v1policy.encode_cumack_item(item.upto, item.missing, item.start)

    def cut_record(self, rid: int, kind: int, body: Any, capacity: int) -> list[Unit]:
        return v1units.cut_record(rid, kind, body, capacity)

    def prepare(self, item: bytes, epoch: FrameEpoch | None, now: float) -> bytes:
        """The form a stored item takes in the next frame: items stored in the other version are
        re-encoded (a queue written before a version switch still goes out)."""
        return item if is_v1_item(item) else encode_v1(decode_v2_item(item))

    def plaintext_size(self, items: Sequence[bytes]) -> int:
        """Bytes of items a frame's plaintext takes for ``items`` in this order."""
        return sum(len(i) for i in items)

    def seal(
        self,
        key: bytes,
        direction: Direction,
        counter: int,
        items: Sequence[bytes],
        limit: int,
        epoch: FrameEpoch | None = None,
    ) -> bytes:
        return v1frame.seal_frame(key, direction, counter, list(items), limit)


class WireFormatV2(WireFormat):
    version = 2

    def overhead(self, counter: int) -> int:
        return v2frame.frame_overhead(counter)

    def capacity(self, limit: int, counter: int) -> int:
        return v2frame.frame_capacity(limit, counter)

    def min_capacity(self, limit: int) -> int:
        return v2frame.frame_capacity(limit)

    def cost(self, item: bytes) -> int:
        return v2items.item_cost(item)

    def encode_ack(self, counters: set[int] | frozenset[int]) -> bytes:
        return v2items.encode_ack_item(counters)

    def encode_policy(self, item: v1policy.PolicyItem) -> bytes:
        return v2policy.encode_policy(item)

    def cut_record(self, rid: int, kind: int, body: Any, capacity: int) -> list[Unit]:
        return v2units.cut_record(rid, kind, body, capacity)

    def prepare(self, item: bytes, epoch: FrameEpoch | None, now: float) -> bytes:
        if is_v1_item(item):
            item = encode_v2(v1items.decode_items(item)[0])
        return v2crew.attach(item, epoch, now)

    def plaintext_size(self, items: Sequence[bytes]) -> int:
        return len(v2items.join_items(items)) if items else 0

    def seal(
        self,
        key: bytes,
        direction: Direction,
        counter: int,
        items: Sequence[bytes],
        limit: int,
        epoch: FrameEpoch | None = None,
    ) -> bytes:
        attached = epoch is not None and any(
            i[:1] and i[0] in (v2items.ITEM_CREW, v2items.ITEM_MEMBER) for i in items
        )
        return v2frame.seal_frame(key, direction, counter, items, limit, epoch if attached else None)


def is_v1_item(item: bytes) -> bool:
    """v1 items are CBOR arrays (first byte 0x80..0x9F); v2 items start with a head byte below 0x80."""
    return bool(item) and item[0] >= 0x80


def decode_v2_item(item: bytes) -> Item:
    """One stored v2 item (sealed crew forms included) as a v1-style item."""
    parts = v2items.split_items(item)
    if len(parts) != 1:
        raise MalformedError("a stored item is exactly one item")
    item_type, body = parts[0]
    if item_type <= v2items.ITEM_ACK:
        return v2items.decode_basic_item(item_type, body)
    if item_type in (v2items.ITEM_CREW_SEALED, v2items.ITEM_MEMBER_SEALED):
        return RecordItem(*v2crew.decode_crew_item(item_type, body, None, 0.0))
    raise MalformedError(f"item type {item_type} is never stored")


def decode_stored(item: bytes) -> Item:
    """A stored unit's item, whichever version it was cut in."""
    return v1items.decode_items(item)[0] if is_v1_item(item) else decode_v2_item(item)


def encode_v1(item: Item) -> bytes:
    if isinstance(item, RecordItem):
        return v1items.encode_record_item(item.rid, item.kind, item.body)
    if isinstance(item, FragmentItem):
        return v1items.encode_fragment_item(item.rid, item.index, item.count, item.chunk)
    return v1items.encode_ack_item(item.counters)


def encode_v2(item: Item) -> bytes:
    if isinstance(item, RecordItem):
        return v2units.encode_whole(item.rid, item.kind, item.body)
    if isinstance(item, FragmentItem):
        return v2items.encode_fragment_item(item.rid, item.index, item.count, item.chunk)
    assert isinstance(item, AckItem)
    return v2items.encode_ack_item(item.counters)


FORMATS: dict[int, WireFormat] = {1: WireFormat(), 2: WireFormatV2()}


def wire_format(version: int) -> WireFormat:
    try:
        return FORMATS[version]
    except KeyError:
        raise LocalWireError(f"wire format version {version} is not built in") from None


def frame_version(frame: bytes) -> int:
    if not frame:
        raise TruncatedError("empty frame")
    return frame[0] >> 5


def open_any(
    key: bytes,
    frame: bytes,
    expect: Direction,
    highest: int = -1,
    epochs: v2frame.EpochLookup | None = None,
    now: float = 0.0,
) -> tuple[FrameHeader, list[Item]]:
    """Open a frame of any supported version (see ``v2.frame.open_frame`` for the v2 arguments)."""
    version = frame_version(frame)
    if version == 1:
        return v1frame.open_frame(key, frame, expect)
    if version == 2:
        return v2frame.open_frame(key, frame, expect, highest, epochs, now)
    raise UnsupportedVersionError(f"frame format version {version} is not supported")


def versions_mask(versions: Sequence[int] = SUPPORTED_VERSIONS) -> int:
    return sum(1 << v for v in versions)


def versions_from_mask(mask: int) -> frozenset[int]:
    """Versions in an announced mask that this build speaks (version 1 always)."""
    return frozenset(v for v in SUPPORTED_VERSIONS if mask >> v & 1) | {1}
