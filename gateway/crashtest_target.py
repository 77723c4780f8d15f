"""A small gateway process for crash testing: accept, pack, send and take acks against a real store.

``python -m gateway.crashtest_target DIR RUN [--drain]`` opens ``DIR/gateway.sqlite3`` with
the keys in ``DIR`` and loops over the same code paths the daemon uses (``GatewayStore.accept``,
``Packer.select``, ``VesselLink.plan``/``seal``/``frame_sent``/``receive``), talking line by line:

- it prints ``A <rid> <tag>`` only after a record is durably accepted (the HTTP 2xx moment),
- it prints ``F <hex>`` when it hands a frame to "the network", then records the frame as sent,
- it prints ``READY`` once the store is open,
- it reads ``M <hex>`` lines (frames from the shore: acknowledgements) from standard input.

A test kills it with SIGKILL at random instants and restarts it; with ``--drain`` it accepts nothing
and exits after printing ``DONE`` once every record is delivered. It is a test harness, not a product
entry point, and holds no state outside the store.
"""

from __future__ import annotations

import argparse
import os
import random
import selectors
import sys
import time
from pathlib import Path

from common.keyfiles import read_public, read_secret
from firmware_profiles import load_profile
from wire.crypto import link_key
from wire.records import Kind

from .budget import BudgetState
from .link import VesselLink
from .scheduler import Packer
from .store import open_store

RESEND_S = 0.3
NO_BUDGET = BudgetState(0.0, 0.0, 0.0, 0.0, "bytes")
MAX_LINE = 64 * 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dir", type=Path)
    parser.add_argument("run", type=int)
    parser.add_argument("--drain", action="store_true")
    parser.add_argument("--profile", default="iridium-9603")
    args = parser.parse_args(argv)
    profile = load_profile(args.profile)
    store = open_store(args.dir, profile.mo_frame_limit)
    key = link_key(read_secret(args.dir / "vessel.key"), read_public(args.dir / "shore.pub"))
    link = VesselLink(store, key, profile.mo_frame_limit, RESEND_S)
    packer = Packer()
    rng = random.Random(args.run)
    out = sys.stdout
    sel = selectors.DefaultSelector()
    os.set_blocking(sys.stdin.fileno(), False)
    sel.register(sys.stdin, selectors.EVENT_READ)
    buffered = b""
    n = 0
    out.write("READY\n")
    out.flush()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = time.time()
        # Frames from the shore.
        for _ in sel.select(timeout=0):
            chunk = os.read(sys.stdin.fileno(), MAX_LINE)
            if not chunk:
                sel.unregister(sys.stdin)
                break
            buffered += chunk
        while b"\n" in buffered:
            line, buffered = buffered.split(b"\n", 1)
            if line.startswith(b"M "):
                link.receive(bytes.fromhex(line[2:].decode("ascii")), now)
        if args.drain:
            if set(store.record_states()) <= {"delivered"}:
                out.write("DONE\n")
                out.flush()
                return 0
        elif rng.random() < 0.6:
            n += 1
            tag = f"{args.run}-{n}"
            kind = Kind.TELEMETRY if rng.random() < 0.2 else Kind.CATCH
            size = rng.choice((5, 40, 120, 700))
            rid = store.accept(kind, lambda _rid, t=tag, s=size: {0: t, 1: bytes(s)}, now)
            out.write(f"A {rid} {tag}\n")
            out.flush()
        pending = store.pending_units(now, RESEND_S)
        plan = link.plan(packer.select(pending, NO_BUDGET, {}).units, now)
        if not plan.empty:
            frame = link.seal(plan)
            out.write(f"F {frame.data.hex()}\n")
            out.flush()
            link.frame_sent(frame, now)
            packer.fair.charge(frame.queued)
        else:
            time.sleep(0.005)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
