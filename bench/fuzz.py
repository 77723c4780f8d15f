"""Fuzzing every parser for a fixed number of inputs: ``python -m bench fuzz [--count N] [--target NAME]``.

Each target (``bench.fuzz_targets``) pairs a generator of hostile inputs with the parser's promise,
asserted for every input: a typed error *and* nothing changed, or a result that says what the input
said (a round trip, a consistent re-parse, a driver that still answers the next good exchange). A
broken promise is a finding: the run stops, prints the target, seed, input index and the input, and
exits 1; ``--replay SEED:INDEX`` regenerates that one input.

Inputs come from a seeded ``random.Random`` (one per input: ``seed * 2**32 + index``), so every input
is reproducible on its own and a run of N inputs is the same run on any machine. Generators are
structure-aware (valid messages, frames sealed with a real key around random plaintext, catch bodies)
and then mutated byte- or tree-wise, which reaches the code behind length checks and the frame MAC that
random bytes never pass.

Without ``--target`` every target runs in its own child process, so the peak memory reported (the
child's maximum resident set size) is that target's own. Figures: ``docs/fuzzing.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import resource
import subprocess
import sys
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bench.fuzz_targets import TARGETS, Target

DEFAULT_COUNT = 20_000
_SEED_STRIDE = 2**32


@dataclass
class RunResult:
    target: str
    inputs: int = 0
    seconds: float = 0.0
    peak_rss_kib: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    finding: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "inputs": self.inputs,
            "seconds": round(self.seconds, 1),
            "peak_rss_kib": self.peak_rss_kib,
            "outcomes": dict(self.outcomes.most_common()),
            "finding": self.finding,
        }


def input_for(target: Target, seed: int, index: int) -> Any:
    return target.generate(random.Random(seed * _SEED_STRIDE + index))


def run_target(target: Target, count: int, seed: int = 0, *, progress_every: int = 0) -> RunResult:
    """Feed ``count`` generated inputs to ``target``; stop at the first broken promise."""
    result = RunResult(target.name)
    logging.disable(logging.CRITICAL)  # parsers log every refusal; a million of them say nothing
    started = time.perf_counter()
    for index in range(count):
        data = input_for(target, seed, index)
        try:
            result.outcomes[target.check(data)] += 1
        except Exception:
            result.finding = (
                f"{target.name} seed {seed} input {index}: {data!r}\n{traceback.format_exc(limit=8)}"
            )
            break
        result.inputs += 1
        if progress_every and result.inputs % progress_every == 0:
            rate = result.inputs / (time.perf_counter() - started)
            print(f"  {target.name}: {result.inputs} inputs ({rate:.0f}/s)", file=sys.stderr, flush=True)
    result.seconds = time.perf_counter() - started
    logging.disable(logging.NOTSET)
    result.peak_rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return result


def _in_child(name: str, count: int, seed: int) -> RunResult:
    cmd = [sys.executable, "-m", "bench.fuzz", "--target", name, "--count", str(count), "--seed", str(seed), "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    try:
        data = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return RunResult(name, finding=f"{name}: the run died (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return RunResult(
        name, data["inputs"], data["seconds"], data["peak_rss_kib"], Counter(data["outcomes"]), data["finding"]
    )


def _print(result: RunResult) -> None:
    rate = result.inputs / result.seconds if result.seconds else 0.0
    top = ", ".join(f"{k} {v}" for k, v in result.outcomes.most_common(4))
    print(
        f"{result.target:<22} {result.inputs:>10} inputs  {rate:>8.0f}/s  peak {result.peak_rss_kib / 1024:6.1f} MiB"
        f"  ({top})",
        flush=True,
    )
    if result.finding:
        print(f"FINDING {result.finding}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT, help=f"inputs per target (default {DEFAULT_COUNT})")
    parser.add_argument("--target", action="append", choices=sorted(TARGETS), help="only this target (repeatable)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--replay", metavar="SEED:INDEX", help="print one input of --target and check it")
    parser.add_argument("--json", action="store_true", help="one JSON line per target (used by the parent run)")
    parser.add_argument("--progress", type=int, default=0, metavar="N", help="report every N inputs")
    args = parser.parse_args(argv if argv is not None else [])
    if args.replay:
        seed, index = (int(x) for x in args.replay.split(":"))
        target = TARGETS[(args.target or [""])[0]]
        data = input_for(target, seed, index)
        print(repr(data))
        print(target.check(data))
        return 0
    names = args.target or sorted(TARGETS)
    failed = False
    if args.target and len(names) == 1:
        result = run_target(TARGETS[names[0]], args.count, args.seed, progress_every=args.progress)
        if args.json:
            print(json.dumps(result.as_json()))
        else:
            _print(result)
        return 1 if result.finding else 0
    print(f"{args.count} inputs per target, seed {args.seed}, each target in its own process")
    for name in names:
        result = _in_child(name, args.count, args.seed)
        _print(result)
        failed = failed or result.finding is not None
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
