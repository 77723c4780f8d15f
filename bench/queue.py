"""The gateway queue under a backlog: accept rate, pack rate and frame fill ratio.

- **Accept rate**: records a second through ``GatewayStore.accept`` (one durable SQLite transaction
  each, WAL, ``synchronous=FULL``), against a bare ``INSERT`` + ``COMMIT`` loop on a file with the same
  settings, measured in the same run.
- **Pack rate**: frames a second through the daemon's path (``Packer.select`` with byte-fair crew
  shares, ``VesselLink.plan``/``seal``/``frame_sent``) draining the backlog, against the plain path
  (store order, no fairness) on an identical copy of the backlog.
- **Fill ratio**: mean sealed frame size over the profile's MO limit while a backlog exists, and the
  share of billed bytes (whole billing units) that carry frame bytes.

``python -m bench queue``; ``BENCH_RECORDS`` sets the backlog size (default 2000).
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

from nacl.public import PrivateKey

from firmware_profiles import load_profile
from gateway.budget import Budget, BudgetState
from gateway.link import VesselLink
from gateway.scheduler import Packer
from gateway.store import GatewayStore
from wire.crypto import link_key
from wire.frame import frame_capacity
from wire.records import CrewMessage, Kind, to_wire_time

NO_BUDGET = BudgetState(0.0, 0.0, 0.0, 0.0, "bytes")
T0 = 1_735_689_600.0


def _fill_store(store: GatewayStore, n: int, rng: random.Random) -> float:
    started = time.perf_counter()
    for i in range(n):
        r = rng.random()
        now = T0 + i * 0.01
        if r < 0.6:
            member = rng.randint(1, 8)
            body = CrewMessage(member, 1, rng.randbytes(rng.randint(40, 220)), to_wire_time(now)).body()
            store.accept(Kind.CREW_MESSAGE, lambda _rid, b=body: b, now, member=member)
        elif r < 0.85:
            store.accept(Kind.CATCH, lambda rid: {0: rid, 1: rng.randbytes(rng.randint(20, 400))}, now)
        else:
            store.accept(Kind.TELEMETRY, lambda rid: {0: rid, 6: 10, 7: 3}, now)
    return n / (time.perf_counter() - started)


def _bare_sqlite_rate(path: Path, n: int) -> float:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)")
    started = time.perf_counter()
    for _ in range(n):
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t (body) VALUES (?)", (bytes(120),))
        db.execute("COMMIT")
    rate = n / (time.perf_counter() - started)
    db.close()
    return rate


def _drain(store: GatewayStore, link: VesselLink, fair: bool, budget: Budget) -> tuple[float, list[int]]:
    packer = Packer()
    sizes: list[int] = []
    now = T0 + 86_400
    started = time.perf_counter()
    while True:
        pending = store.pending_units(now, 1e12, max(64, link.mo_limit // 4))
        units = packer.select(pending, NO_BUDGET, {}).units if fair else pending
        plan = link.plan(units, now)
        if plan.empty:
            break
        frame = link.seal(plan)
        link.frame_sent(frame, now, ("d:bench", "m:bench"), budget.cost(len(frame.data)).units)
        if fair:
            packer.fair.charge(frame.queued)
        sizes.append(len(frame.data))
    return len(sizes) / (time.perf_counter() - started), sizes


def main() -> None:
    n = int(os.environ.get("BENCH_RECORDS", "2000"))
    profile = load_profile("iridium-9603")
    budget = Budget(profile.billing, "bytes", 0, 0)
    key = link_key(PrivateKey.generate(), PrivateKey.generate().public_key)
    folder = Path(tempfile.mkdtemp(prefix="seabridge-bench-queue-"))
    try:
        capacity = frame_capacity(profile.mo_max_bytes, 2**35 - 1)
        store = GatewayStore(folder / "gateway.sqlite3", capacity)
        accept_rate = _fill_store(store, n, random.Random(1))
        bare_rate = _bare_sqlite_rate(folder / "bare.sqlite3", n)
        store.close()
        shutil.copy(folder / "gateway.sqlite3", folder / "plain.sqlite3")
        for suffix in ("-wal", "-shm"):
            if (folder / f"gateway.sqlite3{suffix}").exists():
                shutil.copy(folder / f"gateway.sqlite3{suffix}", folder / f"plain.sqlite3{suffix}")

        store = GatewayStore(folder / "gateway.sqlite3", capacity)
        fair_rate, sizes = _drain(store, VesselLink(store, key, profile.mo_max_bytes, 1e12), True, budget)
        store.close()
        plain = GatewayStore(folder / "plain.sqlite3", capacity)
        plain_rate, plain_sizes = _drain(
            plain, VesselLink(plain, key, profile.mo_max_bytes, 1e12), False, budget
        )
        plain.close()

        backlog = sizes[:-1] or sizes  # the last frame carries the tail of the queue
        fill = sum(backlog) / (len(backlog) * profile.mo_max_bytes)
        billed = sum(budget.cost(s).billed_bytes for s in backlog)
        plain_fill = sum(plain_sizes[:-1] or plain_sizes) / (
            len(plain_sizes[:-1] or plain_sizes) * profile.mo_max_bytes
        )
        print(
            f"backlog: {n} records (60 % crew from 8 members, 25 % catch, 15 % telemetry), profile {profile.name}"
        )
        print(
            f"accept rate: {accept_rate:8.0f} records/s   bare SQLite insert+commit (WAL, FULL): "
            f"{bare_rate:8.0f} rows/s   ratio {accept_rate / bare_rate:.2f}"
        )
        print(
            f"pack rate:   {fair_rate:8.0f} frames/s    plain store-order packing:            "
            f"{plain_rate:8.0f} frames/s ratio {fair_rate / plain_rate:.2f}"
        )
        print(
            f"frame fill:  {fill:8.3f} of {profile.mo_max_bytes} B   plain packing: {plain_fill:.3f}   "
            f"ratio {fill / plain_fill:.2f}   frames {len(sizes)} vs {len(plain_sizes)}"
        )
        print(
            f"billed-byte use: {sum(backlog) / billed:.3f} (frame bytes / whole {profile.billing.unit_name}s "
            f"of {profile.billing.unit_bytes} B)"
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
