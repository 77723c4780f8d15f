"""Power cuts: a gateway process is killed with SIGKILL at hundreds of random instants while it
accepts, packs, sends and takes acknowledgements, then restarted on the same SQLite file. Nothing it
promised (accepted) is lost, and nothing reaches the shore twice."""

from __future__ import annotations

import contextlib
import os
import random
import selectors
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from gateway_world import IMEI, ShoreRecords, make_keys, open_shore

from gateway.store import GatewayStore

KILLS = 220


def _run(folder: Path, run: int, relay, momsn: list[int], promised: dict[str, int], kill_after: float | None):  # type: ignore[no-untyped-def]
    cmd = [sys.executable, "-m", "gateway.crashtest_target", str(folder), str(run)]
    if kill_after is None:
        cmd.append("--drain")
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    assert proc.stdout is not None and proc.stdin is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    buffered = b""
    done = False
    # The kill clock starts when the process has opened its store (a few kills land during start-up).
    early = kill_after is not None and kill_after < 0
    deadline = time.monotonic() + (-kill_after * 20 if early else 30.0)  # type: ignore[operator]

    def handle(line: bytes) -> None:
        nonlocal done, deadline
        if line.startswith(b"A "):
            _, rid, tag = line.decode().split()
            promised[tag] = int(rid)
        elif line.startswith(b"F "):
            now = time.time()
            momsn[0] += 1
            relay.handle_mo(IMEI, momsn[0], bytes.fromhex(line[2:].decode()), "test", now)
            mt = relay.build_mt(IMEI, now)
            if mt is not None:
                relay.mt_sent(mt, now)
                # If it died, the shore resends what was not acknowledged.
                with contextlib.suppress(BrokenPipeError, OSError):
                    proc.stdin.write(b"M " + mt.data.hex().encode() + b"\n")  # type: ignore[union-attr]
        elif line == b"DONE":
            done = True
        elif line == b"READY" and kill_after is not None and not early:
            deadline = time.monotonic() + kill_after

    while time.monotonic() < deadline and not done:
        for _ in sel.select(timeout=max(0.0, deadline - time.monotonic())):
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                deadline = 0.0
                break
            buffered += chunk
            while b"\n" in buffered:
                line, buffered = buffered.split(b"\n", 1)
                handle(line)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    # Whatever it printed in full before dying still counts (a promise made is a promise kept).
    buffered += proc.stdout.read()
    while b"\n" in buffered:
        line, buffered = buffered.split(b"\n", 1)
        if not line.startswith(b"F "):  # the shore no longer listens to a dead process's frames
            handle(line)
    proc.stdin.close()
    proc.stdout.close()
    return proc.returncode, done


def test_nothing_accepted_is_lost_or_duplicated_across_hundreds_of_sigkills(tmp_path: Path) -> None:
    make_keys(tmp_path)
    archive, relay = open_shore(tmp_path, resend_after_s=0.3)
    shore = ShoreRecords(archive)
    rng = random.Random(20261125)
    promised: dict[str, int] = {}
    momsn = [0]
    killed = 0
    for run in range(KILLS):
        code, _ = _run(tmp_path, run, relay, momsn, promised, rng.uniform(-0.01, 0.15))
        killed += code == -signal.SIGKILL
    code, done = _run(tmp_path, KILLS, relay, momsn, promised, None)
    assert done, "the gateway could not drain its queue after the crashes"
    assert killed >= 200

    records = shore.records()
    tags = Counter(body[0] for _rid, _kind, body in records)  # type: ignore[index]
    assert all(n == 1 for n in tags.values()), "a record reached the shore twice"
    missing = set(promised) - set(tags)
    assert not missing, f"accepted but lost: {sorted(missing)[:10]}"
    assert all(n == 1 for n in shore.published().values())
    assert len(promised) > 300, "the crash points must cover plenty of accepts"

    store = GatewayStore(tmp_path / "gateway.sqlite3", 300)
    try:
        assert set(store.record_states()) == {"delivered"}
        with store.transaction() as db:
            rows = db.execute("SELECT rid FROM records").fetchall()
        assert {rid for rid, _kind, _ in records} == {r[0] for r in rows}
        assert len(set(promised.values())) == len(promised), "a record id was handed out twice"
    finally:
        store.close()
    archive.close()
