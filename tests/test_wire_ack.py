"""Acknowledgement ranges: compact runs, and no amplification from a tiny item."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wire.ack import MAX_ACKED_PER_ITEM, decode_ranges, encode_ranges
from wire.errors import OversizeError
from wire.items import dumps


@given(st.sets(st.integers(0, 2**32), max_size=200))
def test_ranges_round_trip(counters: set[int]) -> None:
    assert decode_ranges(encode_ranges(counters)) == counters


def test_a_ten_byte_item_cannot_make_the_receiver_hold_millions_of_counters() -> None:
    runs = [1, MAX_ACKED_PER_ITEM + 1]
    assert len(dumps(runs)) <= 10
    with pytest.raises(OversizeError):
        decode_ranges(runs)
    assert len(decode_ranges([1, MAX_ACKED_PER_ITEM])) == MAX_ACKED_PER_ITEM == 1 << 16


def test_an_item_whose_type_is_not_a_number_is_a_typed_error() -> None:
    from wire.errors import MalformedError
    from wire.items import decode_items

    with pytest.raises(MalformedError):
        decode_items(dumps([{0: 0}, 2]))  # a map where the item type belongs (found by the fuzzer)
