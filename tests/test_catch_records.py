"""Compact catch records: round trips, byte budget per species line, code tables, hostile input."""

from __future__ import annotations

import contextlib
import hashlib
from importlib import resources

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.fuzz_targets import check_catch
from wire.catch import (
    TABLE_ROWS,
    CatchLine,
    EtpInteraction,
    Haul,
    TripEnd,
    TripStart,
    TripUnknownError,
    decode_catch,
    encode_catch,
    table,
)
from wire.errors import LocalWireError, MalformedError, RemoteWireError
from wire.items import dumps, encode_record_item
from wire.records import Kind

DEPARTED = 1_780_000_020  # whole minute offsets below are exact
START = TripStart(7, DEPARTED, "THSGK", "OTB", "71", 7.2061, 100.5953)
TRIPS = {7: START}

species = st.sampled_from(table("species").codes[1 : TABLE_ROWS[1]["species"]])
lines = st.builds(
    CatchLine,
    species=species,
    kg=st.integers(0, 65_535),
    catch_type=st.sampled_from(table("catch_types").codes),
    presentation=st.sampled_from(table("presentations").codes),
)


@settings(max_examples=200, deadline=None)
@given(
    minutes=st.integers(0, 60 * 24 * 60),
    duration=st.integers(0, 24 * 60),
    dlat=st.integers(-5000, 5000),
    dlon=st.integers(-5000, 5000),
    haul_lines=st.lists(lines, max_size=20),
)
def test_any_haul_round_trips(minutes: int, duration: int, dlat: int, dlon: int, haul_lines: list) -> None:
    lat = round(START.latitude * 1e3 + dlat) / 1e3
    lon = round(START.longitude * 1e3 + dlon) / 1e3
    haul = Haul(7, 3, DEPARTED + minutes * 60, duration, lat, lon, tuple(haul_lines), "OTB", "71")
    body = cbor2.loads(dumps(encode_catch(haul, START)))
    assert decode_catch(body, TRIPS) == haul


def test_trip_start_etp_and_trip_end_round_trip() -> None:
    assert decode_catch(cbor2.loads(dumps(encode_catch(START)))) == START
    etp = EtpInteraction(7, 4, DEPARTED + 600, 7.5, 100.9, "TUG", 1, "A1", "RELEASED_ALIVE")
    assert decode_catch(encode_catch(etp, START), TRIPS) == etp
    end = TripEnd(7, 12, DEPARTED + 14 * 86400, "THPTN")
    assert decode_catch(encode_catch(end, START), TRIPS) == end


def test_a_species_line_costs_at_most_eight_bytes_inside_a_haul_record() -> None:
    base = Haul(7, 1, DEPARTED + 3600, 180, 7.9, 101.2, ())
    worst = [
        CatchLine("DUG", 65_535, "ALLOCATED_TO_QUOTA", "FIL"),
        CatchLine("RAG", 1250),
        CatchLine("PEZ", 12, "DISCARDED"),
        CatchLine("SKH", 300, "BY_CATCH", "GUT"),
    ]
    previous = len(encode_record_item(100_000, int(Kind.CATCH), encode_catch(base, START)))
    for n in range(1, 41):
        haul = Haul(7, 1, DEPARTED + 3600, 180, 7.9, 101.2, tuple(worst[i % 4] for i in range(n)))
        size = len(encode_record_item(100_000, int(Kind.CATCH), encode_catch(haul, START)))
        assert size - previous <= 8
        previous = size


def test_a_typical_haul_record_is_small() -> None:
    caught = [("RAG", 1250), ("THB", 340), ("SQC", 85), ("IAX", 40), ("MZZ", 2200)]
    lines = (*(CatchLine(s, kg) for s, kg in caught), CatchLine("PEZ", 12, "DISCARDED"))
    haul = Haul(7, 1, DEPARTED + 30 * 3600, 180, 7.9, 101.2, lines)
    assert len(encode_record_item(100_000, int(Kind.CATCH), encode_catch(haul, START))) <= 64


def test_events_of_an_unknown_trip_are_held_not_guessed() -> None:
    end = encode_catch(TripEnd(7, 1, DEPARTED + 60, "THSGK"), START)
    with pytest.raises(TripUnknownError):
        decode_catch(end, {})


def test_codes_outside_the_released_table_are_refused() -> None:
    with pytest.raises(LocalWireError):
        encode_catch(Haul(7, 1, DEPARTED, 1, 7.0, 100.0, (CatchLine("XYZ", 1),)), START)
    body = encode_catch(Haul(7, 1, DEPARTED, 1, 7.0, 100.0, (CatchLine("RAG", 1),)), START)
    body[7][0][0] = TABLE_ROWS[1]["species"]
    with pytest.raises(MalformedError):
        decode_catch(body, TRIPS)


hostile = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=5) | st.binary(max_size=5),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.integers(0, 14), inner, max_size=10),
    max_leaves=15,
)


@settings(max_examples=200, deadline=None)
@given(hostile)
def test_hostile_bodies_give_a_typed_error(body: object) -> None:
    with contextlib.suppress(RemoteWireError):
        decode_catch(body, TRIPS)
    assert TRIPS == {7: START}
    # The promise in full (typed error and nothing changed, or an event that round-trips).
    assert check_catch(body)


# Released rows never change: a table only grows, and an index means the same code forever.
RELEASED = {
    "species": "1b3134d2eb999297",
    "gear": "24671baaf23a1450",
    "fao_areas": "807e7b3cf8053b2f",
    "ports": "4648554014c55da3",
    "catch_types": "12597f81015306cb",
    "presentations": "98974fac8d45c6b2",
    "etp_conditions": "7d40d805ec93a16b",
    "etp_fates": "2bbba6cce3b28821",
}


@pytest.mark.parametrize("name", sorted(RELEASED))
def test_released_code_table_rows_never_change_and_name_their_source(name: str) -> None:
    rows = TABLE_ROWS[1][name]
    assert hashlib.sha256("\n".join(table(name).codes[:rows]).encode()).hexdigest()[:16] == RELEASED[name]
    head = (resources.files("wire.codes") / f"{name}.csv").read_text(encoding="utf-8")
    comments = "\n".join(line for line in head.splitlines() if line.startswith("#")).lower()
    assert "source" in comments and "licence" in comments
