"""Relay pipeline throughput, per-frame transactions against group commit, measured in one run.

Records a set of sealed MO frames from many vessels once (each with a trip start and a haul), then:

* PostgreSQL, scale-out: for each setting a fresh PostgreSQL schema, the real Mosquitto, N
  ``seabridge shore run`` processes in the ``worker`` role on the MQTT 5 shared subscription, and the
  recorded frames published on ``seabridge/v1/_relay/frames/...`` exactly as the ingest role publishes
  them. First one worker with one frame per transaction (``scale.batch_frames = 1``), then group commit
  with 1, 2 and 4 workers. The clock runs from the first publish until every frame is accepted in the
  archive (decrypted, replay-checked, records stored, outbox events written).
* SQLite, one process: the relay's own batcher, relay and a SQLite archive file (WAL,
  ``synchronous=FULL``) in this process, fed as fast as the network endpoints would hand frames over;
  one frame per transaction, then group commit.

Prints frames/s for each and the ratio against one frame per transaction. Needs /usr/sbin/mosquitto
and PostgreSQL (env SEABRIDGE_BENCH_PG, default postgresql://postgres@127.0.0.1:5432/test); env
SEABRIDGE_BENCH_FRAMES sets the number of frames (default 2000). ``python -m bench relay``.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho
import psycopg
from nacl.public import PrivateKey
from paho.mqtt.enums import CallbackAPIVersion

from common.keyfiles import read_secret, write_keypair
from firmware_profiles import load_profile
from shore.archive import Archive
from shore.config import ScaleSection
from shore.frame_batcher import BatchLimits, FrameBatcher
from shore.relay import Delivery, Relay
from shore.topics import FRAMES_TOPIC
from wire import catch
from wire.crypto import link_key
from wire.frame import Direction, seal_frame
from wire.items import encode_record_item
from wire.records import Kind

VESSELS = 64
FRAMES = int(os.environ.get("SEABRIDGE_BENCH_FRAMES", "2000"))
WORKER_COUNTS = (1, 2, 4)
BATCH = ScaleSection().batch_frames  # the relay's default group commit size
PG_URL = os.environ.get("SEABRIDGE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
NETWORK = "iridium-directip"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _mosquitto(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    conf = workdir / "mosquitto.conf"
    lines = ["user root"] if os.geteuid() == 0 else []
    lines += [f"listener {port} 127.0.0.1", "allow_anonymous true", "max_queued_messages 100000"]
    conf.write_text("\n".join(lines) + "\n")
    proc = subprocess.Popen(
        ["/usr/sbin/mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"mqtt://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("mosquitto did not start")


def record_frames(shore_public: object) -> tuple[list[tuple[str, str, bytes]], list[dict]]:
    """Vessel registrations and ``FRAMES`` sealed frames (each with a trip start and a haul), round-robin
    over ``VESSELS`` vessels: what the networks would deliver."""
    limit = load_profile("iridium-9603").mo_frame_limit
    vessels = []
    for i in range(VESSELS):
        secret = PrivateKey.generate()
        vessels.append((f"30023402{i:07d}", f"bench-{i}", secret, link_key(secret, shore_public)))  # type: ignore[arg-type]
    frames = []
    for n in range(FRAMES):
        imei, _name, _secret, key = vessels[n % VESSELS]
        counter = n // VESSELS
        start = catch.TripStart(counter, 1.75e9 + n * 3600, "THSGK", "PS", "71", 9.5, 99.0)
        haul = catch.Haul(
            counter,
            1,
            start.departed + 7200,
            120,
            9.6,
            99.1,
            (catch.CatchLine("SKJ", 100 + n % 50), catch.CatchLine("YFT", 40 + n % 30)),
        )
        items = [
            encode_record_item(2 * counter + 1, int(Kind.CATCH), catch.encode_catch(start)),
            encode_record_item(2 * counter + 2, int(Kind.CATCH), catch.encode_catch(haul, start)),
        ]
        data = seal_frame(key, Direction.MO, counter, items, limit)
        frames.append(
            {"imei": imei, "momsn": counter + 1, "network": NETWORK, "received": 0.0, "data": data.hex()}
        )
    return [(imei, name, bytes(secret.public_key)) for imei, name, secret, _k in vessels], frames


def _worker(
    conf_dir: Path, keys: Path, pg_url: str, broker: str, n: int, batch: int, role: str = "worker"
) -> subprocess.Popen[str]:
    conf = conf_dir / f"{role}{n}.toml"
    conf.write_text(
        f'[keys]\nshore_secret = "{keys / "shore.key"}"\ncrew_secret = "{keys / "crew.key"}"\n'
        f'[archive]\nurl = "{pg_url}"\n[broker]\nurl = "{broker}"\n[metrics]\nlisten = ""\n'
        f'[scale]\nrole = "{role}"\nworker_id = "bench-{role}{n}"\nbatch_frames = {batch}\n'
        f"[alerts]\nsilent_after_s = 0.0\n"
    )
    return subprocess.Popen(
        [sys.executable, "-m", "seabridge.cli", "shore", "run", "--config", str(conf)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _leading(archive: Archive, timeout: float = 20.0) -> None:
    """Wait until some process holds the lead of the singleton duties (its advisory lock)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if archive.query("SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted")[0][0]:
            return
        time.sleep(0.05)
    raise RuntimeError("no process took the lead")


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (Linux /proc); 0.0 where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _feeder(broker: str, name: str) -> paho.Client:
    """A plain paho publisher with a wide in-flight window, so feeding is not what is measured."""
    port = int(broker.rsplit(":", 1)[1])
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=name, protocol=paho.MQTTv5)
    client.max_inflight_messages_set(1000)
    connected = threading.Event()
    client.on_connect = lambda *_a: connected.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    if not connected.wait(10):
        raise RuntimeError("feeder did not connect")
    return client


@dataclass(frozen=True)
class PgRun:
    frames_per_s: float  # first publish to the last frame accepted in the archive
    per_worker_cpu_s: float  # frames per CPU second of the worker processes
    events_per_s: float  # outbox events published to the broker, first publish to the last one


def run_once(
    workers: int,
    batch: int,
    vessels: list,
    frames: list[dict],
    keys: Path,
    broker: str,
    tmp: Path,
    duties: bool = True,
) -> PgRun:
    """One setting. With ``duties`` a process of role ``duties`` takes the lead first (publishing the
    outbox, as in a scaled deployment); without, the first worker leads and publishes too."""
    admin = psycopg.connect(PG_URL, autocommit=True)
    schema = f"bench_{secrets.token_hex(4)}"
    admin.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in PG_URL else "?"
    url = f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    archive = Archive(url)
    for imei, name, public in vessels:
        archive.register_vessel(imei, name, public)
    leader = [_worker(tmp, keys, url, broker, 0, batch, role="duties")] if duties else []
    if duties:
        _leading(archive)
    procs = [_worker(tmp, keys, url, broker, n, batch) for n in range(workers)]
    try:
        for p in procs:  # ready once it printed its endpoints
            assert p.stdout is not None
            p.stdout.readline()
        if not duties:
            _leading(archive)
        time.sleep(1.0)  # shared subscriptions in place
        client = _feeder(broker, f"bench-feed-{workers}-{batch}")
        messages = [json.dumps(frame).encode() for frame in frames]
        cpu_before = sum(_cpu_seconds(p.pid) for p in procs)
        started = time.perf_counter()
        for message in messages:
            client.publish(f"{FRAMES_TOPIC}/{NETWORK}", message, qos=1)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            done = archive.query("SELECT COUNT(*) FROM frames_in WHERE outcome = 'accepted'")[0][0]
            if done >= len(frames):
                break
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        cpu = sum(_cpu_seconds(p.pid) for p in procs) - cpu_before
        while time.monotonic() < deadline:
            if not archive.query("SELECT COUNT(*) FROM events WHERE published IS NULL")[0][0]:
                break
            time.sleep(0.05)
        published = time.perf_counter() - started
        events = archive.query("SELECT COUNT(*) FROM events")[0][0]
        client.loop_stop()
        client.disconnect()
        records = archive.query("SELECT COUNT(*) FROM records")[0][0]
        if records != 2 * len(frames):
            raise RuntimeError(f"{records} records stored, expected {2 * len(frames)}")
        return PgRun(len(frames) / elapsed, len(frames) / cpu if cpu > 0 else 0.0, events / published)
    finally:
        for p in procs + leader:
            p.terminate()
        for p in procs + leader:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        archive.close()
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


def run_sqlite(batch: int, vessels: list, frames: list[dict], keys: Path, tmp: Path) -> tuple[float, float]:
    """One process: batcher, relay and a SQLite archive (WAL, synchronous=FULL), fed from a thread."""
    archive = Archive(tmp / f"archive-{batch}-{secrets.token_hex(4)}.sqlite3")
    for imei, name, public in vessels:
        archive.register_vessel(imei, name, public)
    relay = Relay(archive, read_secret(keys / "shore.key"), read_secret(keys / "crew.key"))
    batcher = FrameBatcher(relay.handle_batch, BatchLimits(batch, ScaleSection().batch_wait_s))
    deliveries = [Delivery(f["imei"], f["momsn"], bytes.fromhex(f["data"]), NETWORK, 0.0) for f in frames]
    left = [len(deliveries)]
    finished = threading.Event()
    outcomes: list[str] = []

    def done(outcome: str) -> None:
        outcomes.append(outcome)
        left[0] -= 1
        if left[0] == 0:
            finished.set()

    batcher.start()
    try:
        cpu_before = time.process_time()
        started = time.perf_counter()
        for d in deliveries:
            batcher.submit(d, done)
        if not finished.wait(600):
            raise RuntimeError("SQLite run did not finish")
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_before
    finally:
        batcher.stop()
        archive.close()
    if outcomes.count("accepted") != len(frames):
        raise RuntimeError(f"not every frame was accepted: {set(outcomes)}")
    return len(frames) / elapsed, len(frames) / cpu


def _pg_line(run: PgRun, base: PgRun) -> str:
    return (
        f"{run.frames_per_s:7.1f} frames/s ({run.frames_per_s / base.frames_per_s:4.1f}x one frame per"
        f" transaction; {run.per_worker_cpu_s:5.0f} frames per worker CPU second;"
        f" outbox {run.events_per_s:6.1f} events/s)"
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        keys = tmp / "keys"
        shore = write_keypair(keys / "shore.key")
        write_keypair(keys / "crew.key")
        vessels, frames = record_frames(shore.public_key)
        print(f"{len(frames)} frames from {VESSELS} vessels, two catch records each; {os.cpu_count()} CPUs")
        broker_proc, broker = _mosquitto(tmp)
        try:
            print(
                "PostgreSQL, worker processes on a Mosquitto shared subscription, the outbox published"
                " by a process of role duties:"
            )
            base = run_once(1, 1, vessels, frames, keys, broker, tmp)
            print(f"  one frame per transaction, 1 worker:  {_pg_line(base, base)}")
            for workers in WORKER_COUNTS:
                run = run_once(workers, BATCH, vessels, frames, keys, broker, tmp)
                print(f"  group commit (batches of up to {BATCH}), {workers} worker(s): {_pg_line(run, base)}")
            run = run_once(1, BATCH, vessels, frames, keys, broker, tmp, duties=False)
            print(f"  group commit, 1 worker that also publishes the outbox: {_pg_line(run, base)}")
        finally:
            broker_proc.terminate()
            broker_proc.wait(10)
        print("SQLite, one process (batcher, relay, archive file with WAL and synchronous=FULL):")
        single, single_cpu = run_sqlite(1, vessels, frames, keys, tmp)
        print(
            f"  one frame per transaction: {single:8.1f} frames/s ({single_cpu:6.0f} frames per CPU second)"
        )
        rate, per_cpu = run_sqlite(BATCH, vessels, frames, keys, tmp)
        print(
            f"  group commit (batches of up to {BATCH}): {rate:8.1f} frames/s ({rate / single:.1f}x;"
            f" {per_cpu:6.0f} frames per CPU second)"
        )
        print("(PostgreSQL, Mosquitto, the workers and this process share the CPUs)")


if __name__ == "__main__":
    main()
