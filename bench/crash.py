"""Power cuts: the real ``seabridge gateway run`` process SIGKILLed at random instants, counted ashore.

``python -m bench crash [--kills N] [--seed S]`` (default 1000 kills) builds one vessel's whole path on
this machine: the shore relay (``ShoreService``, embedded broker, DirectIP MO server, SQLite archive),
the emulated Iridium network (DirectIP MO pushes and MT server) and 9603 modem on a pseudo-terminal,
and the gateway as its own process, ``seabridge gateway run`` with a TOML config: captive page over
HTTP, its SQLite store, the driver on the pty. A crew member signs in on the captive page once; then,
for every run of the gateway, messages are POSTed to ``/send`` without pause while the gateway packs
them, opens sessions and takes the shore's acknowledgements, and after a random delay the process is
SIGKILLed (a tenth of the kills land during start-up, a tenth before the page answered its first
request; the others once it has, so that every run accepts messages however slow the machine). The gateway is started again on the same files.
At the end one more run drains the queue with no new traffic.

Counted: a message is *promised* when ``/send`` answered 303 (the HTTP moment of acceptance); one
whose request was cut by the kill is *uncertain* (it may or may not have been accepted). Ashore, every
crew message the relay publishes is read from the archive's outbox by its text. *Lost* = promised and
never published; *duplicated* = published more than once. The phase each kill hit is sampled from the
emulated modem (session, frame write, MT read for acknowledgements) and the load generator (a
request in flight): ``kills_by_phase``. Results: docs/fuzzing.md ("Power cuts").

Each gateway run is forked from ``bench.crash_zygote``, a process that imported the gateway once, so
a run does not pay for interpreter start-up; the child executes ``seabridge.cli.main`` as the console
command does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from common.clock import SystemClock
from firmware_profiles import load_profile
from shore.config import ShoreConfig
from shore.registry import create_shore_keys, create_vessel_key, register_vessel
from shore.service import ShoreService
from simulators.iridium_modem import IridiumModemEmulator, Mode
from simulators.iridium_network import IridiumNetwork
from simulators.link_model import LinkModel
from simulators.pty_modem import PtyModem

IMEI = "300234010000777"
PROFILE = "iridium-9603"
DEFAULT_KILLS = 1000
STARTUP_KILL_SHARE = 0.1
MAX_RUN_S = 0.8  # a run is killed after a uniform delay up to this long once the captive page answers
RECENT_S = 0.3  # a modem command this recent names the phase of a kill
T = TypeVar("T")

GATEWAY_TOML = """\
[vessel]
name = "Crash Test"
data_dir = "gateway"
[keys]
vessel_secret = "keys/vessel.key"
shore_public = "keys/shore.pub"
crew_public = "keys/crew.pub"
[modem]
port = "{pty}"
profile = "{profile}"
[captive]
listen = "127.0.0.1:0"
[link]
resend_after_s = 1.0
mailbox_check_s = 2.0
idle_poll_s = 0.05
[latency]
crew_s = 0.0
[telemetry]
interval_s = 0.0
[metrics]
listen = ""
"""


@dataclass
class Report:
    kills: int = 0
    kills_by_phase: Counter[str] = field(default_factory=Counter)
    kills_mid_request: int = 0
    promised: int = 0
    uncertain: int = 0
    uncertain_arrived: int = 0
    arrived: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: dict[str, int] = field(default_factory=dict)
    drained: bool = False
    seconds: float = 0.0
    store_states: dict[str, int] = field(default_factory=dict)
    rids_match: bool = False  # the shore holds exactly the record ids the gateway's store holds

    def as_json(self) -> dict[str, Any]:
        return {
            "kills": self.kills,
            "kills_by_phase": dict(self.kills_by_phase.most_common()),
            "kills_mid_request": self.kills_mid_request,
            "promised": self.promised,
            "uncertain": self.uncertain,
            "uncertain_arrived": self.uncertain_arrived,
            "arrived": self.arrived,
            "lost": len(self.lost),
            "duplicated": len(self.duplicated),
            "drained": self.drained,
            "store_states": self.store_states,
            "rids_match": self.rids_match,
            "seconds": round(self.seconds, 1),
        }


class ShoreSide:
    """Relay, emulated network and modem on one event loop in a background thread."""

    def __init__(self, workdir: Path, seed: int) -> None:
        self.workdir = workdir
        self.seed = seed
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="crash-shore", daemon=True)
        self.service: ShoreService | None = None
        self.emulator: IridiumModemEmulator | None = None
        self.pty_path = ""
        self._last: dict[str, float] = {}
        self._closers: list[Any] = []

    def call(self, coro: Coroutine[Any, Any, T], timeout_s: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def start(self) -> None:
        keys = self.workdir / "keys"
        create_shore_keys(keys)
        create_vessel_key(keys, "vessel")
        register_vessel(self.workdir / "shore" / "archive.sqlite3", IMEI, "Crash Test", keys / "vessel.pub", "crash", PROFILE)
        self._thread.start()
        self.call(self._start())

    async def _start(self) -> None:
        clock = SystemClock()
        cfg = ShoreConfig()
        cfg.archive.path = Path("shore/archive.sqlite3")
        cfg.broker.embedded_listen = "127.0.0.1:0"
        cfg.directip.mo_listen = "127.0.0.1:0"
        cfg.webhook.listen = cfg.metrics.listen = cfg.dashboard.listen = ""
        cfg.link.mt_poll_s = 0.1
        cfg.link.resend_after_s = 1.0
        cfg.link.cumulative_ack_s = 0.3  # acknowledgements ride along or wait, as in service
        self.service = ShoreService(cfg, clock, base_dir=self.workdir)
        ready = asyncio.Event()
        endpoints: dict[str, str] = {}

        def on_ready(found: dict[str, str]) -> None:
            endpoints.update(found)
            ready.set()

        task = asyncio.create_task(self.service.run(on_ready=on_ready))
        async with asyncio.timeout(30):
            while not ready.is_set():
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        host, _, port = endpoints["directip-mo"].rpartition(":")
        network = IridiumNetwork(clock=clock, shore=[(host, int(port))], retry_scale=0.01, latency_s=0.01)
        await network.start()
        cfg.directip.mt_host, cfg.directip.mt_port = network.mt_address  # read at each MT delivery
        link = LinkModel(random.Random(self.seed), "perfect", duration_scale=0.02)
        self.emulator = IridiumModemEmulator(load_profile(PROFILE), link, network, imei=IMEI)
        network.attach(self.emulator)
        feed = self.emulator.feed

        def watched(data: bytes, now: float) -> None:
            for name in (b"SBDWB", b"SBDIX", b"SBDRB"):
                if name in data:
                    self._last[name.decode()] = time.monotonic()
            feed(data, now)

        self.emulator.feed = watched  # type: ignore[method-assign]
        pty = PtyModem(self.emulator, clock)
        await pty.start()
        self.pty_path = pty.path
        self._closers = [pty.stop, network.stop]
        self._service_task = task

    def phase(self, in_flight: bool) -> str:
        """What the vessel was doing at this instant, as the modem and the load generator saw it."""
        now = time.monotonic()
        assert self.emulator is not None
        if self.emulator.mode is Mode.SESSION:
            return "session"
        if self.emulator.mode is Mode.BINARY or now - self._last.get("SBDWB", -1e9) < RECENT_S:
            return "frame-write"
        if now - self._last.get("SBDRB", -1e9) < RECENT_S:
            return "ack-read"
        if now - self._last.get("SBDIX", -1e9) < RECENT_S:
            return "session-end"
        return "accept" if in_flight else "idle"

    # ``accept`` is named only when the modem is quiet; ``Report.kills_mid_request`` counts every kill
    # that cut a /send request, whatever the modem was doing.

    def published_texts(self) -> Counter[str]:
        """Crew messages the relay has put in its outbox (each record is published from there once)."""
        assert self.service is not None
        rows = self.service.archive.query("SELECT topic, payload FROM events")
        texts: Counter[str] = Counter()
        for topic, payload in rows:
            if str(topic).endswith("/up/crew"):
                texts[json.loads(bytes(payload))["text"]] += 1
        return texts

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()
            with contextlib.suppress(Exception):
                self.call(asyncio.wait_for(asyncio.shield(self._service_task), 20))
        for close in self._closers:
            with contextlib.suppress(Exception):
                self.call(close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


class Crew:
    """The load generator: one signed-in crew member POSTing messages to whichever gateway runs."""

    def __init__(self, shore: ShoreSide, tag: str) -> None:
        self.shore = shore
        self.tag = tag
        self.base = ""
        self.client: httpx.AsyncClient | None = None
        self.promised: set[str] = set()
        self.uncertain: set[str] = set()
        self._in_flight = 0
        self.answered = 0  # /send answers in the current run
        self._n = 0
        self._task: asyncio.Future[Any] | None = None

    async def _sign_in(self) -> None:
        assert self.client is not None
        r = await self.client.post(f"{self.base}/login", data={"handle": f"crash-{self.tag}", "pin": "4321"})
        if r.status_code != 303:
            raise RuntimeError(f"login failed: HTTP {r.status_code}")
        token = self.client.cookies.get("sb_session")
        r = await self.client.post(f"{self.base}/consent", data={"s": token, "agree": "1"})
        if r.status_code != 303:
            raise RuntimeError(f"consent failed: HTTP {r.status_code}")

    @property
    def in_flight(self) -> bool:
        return self._in_flight > 0

    async def _send_forever(self) -> None:
        assert self.client is not None
        while True:
            self._n += 1
            text = f"crash {self.tag} message {self._n}"
            self._in_flight += 1
            try:
                r = await self.client.post(f"{self.base}/send", data={"to": "hotline", "text": text})
            except httpx.HTTPError:
                self.uncertain.add(text)
                return  # the gateway is gone: wait for the next run
            finally:
                self._in_flight -= 1
            self.answered += 1
            if r.status_code == 303:
                self.promised.add(text)
            elif r.status_code == 429:
                return  # this run's request budget is spent; the next run has a fresh one
            else:
                raise RuntimeError(f"/send answered HTTP {r.status_code}")

    async def _begin(self, base: str) -> None:
        if self.client is None:
            self.client = httpx.AsyncClient(timeout=5.0)
            self.base = base
            await self._sign_in()
        self.base = base
        self.answered = 0
        # Two requests at a time, as two phones would: more accepts per run, and kills mid-request.
        self._task = asyncio.gather(self._send_forever(), self._send_forever(), return_exceptions=True)

    def begin(self, base: str) -> None:
        self.shore.call(self._begin(base))

    def end(self) -> None:
        async def stop() -> None:
            if self._task is not None:
                for outcome in await asyncio.wait_for(self._task, 5):
                    if isinstance(outcome, Exception):
                        raise outcome

        self.shore.call(stop())

    def close(self) -> None:
        if self.client is not None:
            self.shore.call(self.client.aclose())


class Gateways:
    """Starts ``seabridge gateway run`` children through the zygote, waits for them, kills them."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
        self.zygote = subprocess.Popen(
            [sys.executable, "-m", "bench.crash_zygote"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
            env=env,
        )
        self.runs = 0

    def _ask(self, line: str) -> str:
        assert self.zygote.stdin is not None and self.zygote.stdout is not None
        self.zygote.stdin.write(line + "\n")
        self.zygote.stdin.flush()
        return self.zygote.stdout.readline().strip()

    def start(self) -> tuple[int, Path]:
        self.runs += 1
        output = self.workdir / "runs" / f"{self.runs}.log"
        output.parent.mkdir(exist_ok=True)
        answer = self._ask(f"run {self.workdir / 'gateway.toml'} {output}")
        if not answer.startswith("pid "):
            raise RuntimeError(f"zygote: {answer}")
        return int(answer.split()[1]), output

    def wait(self, pid: int) -> int:
        answer = self._ask(f"wait {pid}")
        return int(answer.split()[2])

    @staticmethod
    def captive_url(output: Path, pid: int, timeout_s: float = 30.0) -> str | None:
        """The captive page's address once the run prints it; None if the run ended first."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(FileNotFoundError):
                for line in output.read_text(errors="replace").splitlines():
                    if line.startswith("captive-page: "):
                        return line.split(": ", 1)[1].rstrip("/")
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return None
            time.sleep(0.005)
        raise RuntimeError(f"gateway run did not print its captive page in {timeout_s} s: {output}")

    def close(self) -> None:
        assert self.zygote.stdin is not None
        self.zygote.stdin.close()
        self.zygote.wait(10)


def _gateway_sql(workdir: Path, sql: str) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(workdir / "gateway" / "gateway.sqlite3", timeout=10)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def _store_backlog(workdir: Path) -> int:
    return int(_gateway_sql(workdir, "SELECT COUNT(*) FROM records WHERE state NOT IN ('delivered', 'expired')")[0][0])


def run_crashes(
    kills: int, seed: int = 1, workdir: Path | None = None, drain_s: float = 120.0, max_run_s: float = MAX_RUN_S
) -> Report:
    """Kill the gateway ``kills`` times while it works, drain, and count what reached the shore."""
    work = workdir or Path(tempfile.mkdtemp(prefix="seabridge-crash-"))
    rng = random.Random(seed)
    report = Report()
    started = time.monotonic()
    shore = ShoreSide(work, seed)
    shore.start()
    (work / "gateway.toml").write_text(GATEWAY_TOML.format(pty=shore.pty_path, profile=PROFILE), encoding="utf-8")
    gateways = Gateways(work)
    crew = Crew(shore, f"{seed}")
    try:
        while report.kills < kills:
            pid, output = gateways.start()
            if rng.random() < STARTUP_KILL_SHARE:
                time.sleep(rng.uniform(0.0, 0.3))
                report.kills_by_phase["start-up"] += 1
            else:
                url = gateways.captive_url(output, pid)
                if url is None:
                    raise RuntimeError(f"gateway run ended on its own: {output.read_text(errors='replace')[-3000:]}")
                crew.begin(url)
                if rng.random() >= STARTUP_KILL_SHARE:  # most kills: once the page has answered a /send
                    deadline = time.monotonic() + 10.0
                    while crew.answered == 0 and time.monotonic() < deadline:
                        time.sleep(0.005)
                time.sleep(rng.uniform(0.0, max_run_s))
                report.kills_by_phase[shore.phase(crew.in_flight)] += 1
                report.kills_mid_request += crew.in_flight
            os.kill(pid, signal.SIGKILL)
            if gateways.wait(pid) != -signal.SIGKILL:
                raise RuntimeError(f"gateway run {pid} was not ended by SIGKILL: {output}")
            report.kills += 1
            crew.end()
        pid, output = gateways.start()  # the drain: no new traffic, wait until everything arrived
        if gateways.captive_url(output, pid) is None:
            raise RuntimeError(f"drain run ended on its own: {output.read_text(errors='replace')[-3000:]}")
        deadline = time.monotonic() + drain_s
        while time.monotonic() < deadline:
            if crew.promised <= set(shore.published_texts()) and _store_backlog(work) == 0:
                report.drained = True
                break
            time.sleep(0.1)
        os.kill(pid, signal.SIGTERM)
        gateways.wait(pid)
        time.sleep(0.5)  # a duplicate would come from a frame already on its way: give it a moment
    finally:
        crew.close()
        gateways.close()
        published = shore.published_texts()
        assert shore.service is not None
        shore_rids = {int(r) for (r,) in shore.service.archive.query("SELECT rid FROM records WHERE imei = ?", (IMEI,))}
        shore.stop()
    report.store_states = {str(state): int(n) for state, n in _gateway_sql(work, "SELECT state, COUNT(*) FROM records GROUP BY state")}
    report.rids_match = shore_rids == {int(r) for (r,) in _gateway_sql(work, "SELECT rid FROM records")}
    report.promised = len(crew.promised)
    report.uncertain = len(crew.uncertain - crew.promised)
    report.uncertain_arrived = sum(1 for t in crew.uncertain - crew.promised if published[t])
    report.arrived = sum(1 for t in crew.promised if published[t])
    report.lost = sorted(t for t in crew.promised if not published[t])
    report.duplicated = {t: n for t, n in published.items() if n > 1}
    report.seconds = time.monotonic() - started
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench crash", description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=DEFAULT_KILLS)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv or [])
    report = run_crashes(args.kills, args.seed)
    data = report.as_json()
    print(json.dumps(data))
    print(
        f"{report.kills} SIGKILLs of seabridge gateway run in {report.seconds:.0f} s: "
        f"{report.promised} messages promised (303), {report.arrived} arrived, lost {len(report.lost)}, "
        f"duplicated {len(report.duplicated)}; {report.uncertain} cut mid-request, "
        f"{report.uncertain_arrived} of them arrived; kills by phase {data['kills_by_phase']}"
    )
    return 0 if report.drained and report.rids_match and not report.lost and not report.duplicated else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
