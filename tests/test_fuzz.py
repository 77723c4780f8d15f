"""Every parser's fuzz target for a CI-sized count (``FUZZ_COUNT``, default 3000 inputs each): the
same targets and promises as ``python -m bench fuzz`` (typed error and nothing changed, or a result
that says what the input said). Long runs and their figures: docs/fuzzing.md."""

from __future__ import annotations

import os

import pytest

from bench.fuzz import run_target
from bench.fuzz_targets import TARGETS

COUNT = int(os.environ.get("FUZZ_COUNT", "3000"))


@pytest.mark.fuzz
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_the_parser_keeps_its_promise_for_every_fuzzed_input(name: str) -> None:
    result = run_target(TARGETS[name], COUNT, seed=int(os.environ.get("FUZZ_SEED", "0")))
    assert result.finding is None, result.finding
    assert result.inputs == COUNT
    # The generators must reach both sides of each parser: refusals and accepted inputs.
    refused = sum(n for label, n in result.outcomes.items() if label.startswith(("refused", "error", "Timeout")))
    assert 0 < refused < COUNT, dict(result.outcomes)


def test_a_broken_promise_is_reported_with_its_seed_and_input() -> None:
    from bench.fuzz_kit import Target

    def check(data: bytes) -> str:
        assert b"\x00" not in data, "NUL"
        return "ok"

    result = run_target(Target("nul", lambda rng: rng.randbytes(8), check), 1000, seed=3)
    assert result.finding is not None and "seed 3 input" in result.finding and "NUL" in result.finding
    assert result.inputs < 1000
