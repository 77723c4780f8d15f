"""The one-command demo: shore relay + embedded broker + emulated Iridium network and 9603 modem on a
pseudo-terminal + a GPS on its own pseudo-terminal + one vessel gateway with its captive page and catch
log, all on this machine.

``Demo.run`` prints every endpoint as ``name: address`` and every login it creates (``broker-login:``,
``dashboard-login:`` for an administrator, the hotline and the fleet's owner, ``captain-login:``), says
why an address differs from the usual one, and removes its temporary data folder when it stops (a
folder given as ``data_dir`` is kept). The vessel steams along a ``VesselTrack`` in the Gulf of
Thailand: the GPS reports it in NMEA, and the emulated network reports it, coarser, in each session's
DirectIP location element. With ``smoke=True`` it also sends a handful of crew messages (through the
captive page over HTTP) and replies (published on MQTT), waits until each has arrived and the vessel's
position has reached the shore, prints a one-line summary and returns 0 only if every message arrived
exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
import secrets
import shutil
import socket
import tempfile
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import httpx

from common.clock import Clock, SystemClock
from firmware_profiles import load_profile
from gateway.accounts import Accounts, Members
from gateway.captains import CaptainExists, add_captain, set_pin
from gateway.config import GatewayConfig
from gateway.daemon import GatewayDaemon
from gateway.modem import IdpModem, open_modem
from gateway.store import open_store
from shore.config import ShoreConfig
from shore.dashboard.auth import Role
from shore.dashboard.users import ensure_users
from shore.directip import MoLocation
from shore.idp_poller import NETWORK as IDP_NETWORK
from shore.mqtt import MqttClient
from shore.registry import create_shore_keys, create_vessel_key, register_vessel
from shore.service import ShoreService
from shore.topics import TOPIC_ROOT, slug

from .idp_modem import DEFAULT_MOBILE_ID, IdpModemEmulator
from .idp_network import IdpNetwork
from .iridium_modem import IridiumModemEmulator
from .iridium_network import IridiumNetwork
from .link_model import LinkModel
from .nmea_gps import NmeaGpsEmulator
from .pty_modem import PtyModem
from .vessel_track import VesselTrack

log = logging.getLogger(__name__)

DEMO_IMEI = "300234010753370"
DEMO_VESSEL = "Sea Star 7"
DEMO_FLEET = "demo"
PROFILE = "iridium-9603"
CAPTAIN = "captain"
# The addresses the README shows; another free port is taken (and the reason printed) when one is busy.
USUAL_PORTS = {"dashboard": 8090, "captive-page": 8080, "broker": 1883}
NETWORK_CEP_KM = 5  # how far off Iridium's location estimate may be, the radius it reports
LOCATION_EVERY_S = 30.0  # how often the emulated network's idea of the vessel's position moves


def network_location(track: VesselTrack, seed: int, now: float) -> MoLocation:
    """The vessel's position as the Iridium network estimates it: within ``NETWORK_CEP_KM`` of the
    truth, the error fixed for a minute (deterministic from the seed and the time)."""
    point = track.at(now)
    rng = random.Random(seed * 1_000_003 + int(now // 60))
    distance_km, bearing = rng.uniform(0, NETWORK_CEP_KM), rng.uniform(0, 2 * math.pi)
    dlat = distance_km * math.cos(bearing) / 111.32
    dlon = distance_km * math.sin(bearing) / (111.32 * math.cos(math.radians(point.latitude)))
    return MoLocation(round(point.latitude + dlat, 5), round(point.longitude + dlon, 5), NETWORK_CEP_KM)


def free_port(preferred: int = 0) -> int:
    """``preferred`` if it is free on 127.0.0.1, else any free port."""
    for port in (preferred, 0) if preferred else (0,):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise OSError("no free port")


class Demo:
    def __init__(
        self,
        data_dir: Path | None,
        link: str = "open-sea",
        smoke: bool = False,
        messages: int = 5,
        seed: int | None = None,
        timeout_s: float = 240.0,
        broker_url: str = "",
        fast: bool | None = None,
        profile: str = PROFILE,
    ) -> None:
        self.data_dir = data_dir
        self.profile = load_profile(profile)  # any profile in firmware_profiles/, Iridium or IDP
        self.idp = self.profile.family == "inmarsat-idp"
        self.modem_id = DEFAULT_MOBILE_ID if self.idp else DEMO_IMEI
        self.link = link
        self.smoke = smoke
        self.messages = messages
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**32)
        self.timeout_s = timeout_s
        self.broker_url = broker_url
        self.fast = smoke if fast is None else fast
        self._stop = asyncio.Event()
        self.ready = asyncio.Event()
        self.endpoints: dict[str, str] = {}
        self.network: IridiumNetwork | IdpNetwork | None = None
        self.emulator: IridiumModemEmulator | IdpModemEmulator | None = None
        self.link_model: LinkModel | None = None
        self.shore: ShoreService | None = None
        self.gateway: GatewayDaemon | None = None
        self.track: VesselTrack | None = None
        self.dashboard_logins: dict[str, str] = {}
        self.captain_pin = ""
        self.notes: list[str] = []  # why an address is not the usual one

    def stop(self) -> None:
        self._stop.set()

    def _prepare(self, data: Path) -> None:
        keys = data / "keys"
        if not (keys / "shore.key").exists():
            create_shore_keys(keys)
        if not (keys / "vessel.key").exists():
            create_vessel_key(keys, "vessel")
        archive = data / "shore" / "archive.sqlite3"
        network = {"network": IDP_NETWORK} if self.idp else {}
        register_vessel(
            archive, self.modem_id, DEMO_VESSEL, keys / "vessel.pub", DEMO_FLEET, self.profile.name, **network
        )
        # Fresh passwords and PIN at every start, printed with the endpoints.
        users = [
            ("admin", Role.ADMINISTRATOR, None),
            ("hotline", Role.HOTLINE, None),
            ("owner", Role.OWNER, DEMO_FLEET),
        ]
        self.dashboard_logins = dict(ensure_users(archive, users))
        store = open_store(data / "gateway", self.profile.mo_frame_limit)
        try:
            try:
                self.captain_pin = add_captain(store, SystemClock(), CAPTAIN)
            except CaptainExists:
                self.captain_pin = set_pin(store, SystemClock(), CAPTAIN)
        finally:
            store.close()

    def _port(self, name: str) -> int:
        """The README's port for ``name`` if it is free (any free port in fast mode), else another one
        and a note saying why."""
        if self.fast:
            return 0
        usual = USUAL_PORTS[name]
        port = free_port(usual)
        if port != usual:
            self.notes.append(
                f"note: port {usual} is in use by another program, so the demo's {name} listens on port "
                f"{port} instead of the README's {usual}."
            )
        return port

    async def run(self, print_line: Callable[[str], None] = print) -> int:
        data = self.data_dir or Path(tempfile.mkdtemp(prefix="seabridge-demo-"))
        try:
            self._prepare(data)
            return await self._run(data, print_line)
        finally:
            if self.data_dir is None:  # keys and databases of a throw-away demo go with it
                shutil.rmtree(data, ignore_errors=True)

    def _shore_config(self, network: IridiumNetwork | IdpNetwork) -> ShoreConfig:
        cfg = ShoreConfig()
        cfg.keys.shore_secret = Path("keys/shore.key")
        cfg.keys.crew_secret = Path("keys/crew.key")
        cfg.archive.path = Path("shore/archive.sqlite3")
        cfg.broker.url = self.broker_url
        if not self.broker_url:
            cfg.broker.embedded_listen = f"127.0.0.1:{self._port('broker')}"
        cfg.directip.mo_listen = "127.0.0.1:0"
        if isinstance(network, IdpNetwork):
            cfg.idp.base_url, cfg.idp.access_id, cfg.idp.password = (
                network.url,
                network.access_id,
                network.password,
            )
            cfg.idp.poll_s = 1.0 if self.fast else 20.0
        else:
            cfg.directip.mt_host, cfg.directip.mt_port = network.mt_address
        cfg.dashboard.listen = f"127.0.0.1:{self._port('dashboard')}"
        cfg.webhook.listen = "127.0.0.1:0"
        cfg.webhook.shared_secret = secrets.token_urlsafe(16)  # printed in the webhook's address
        cfg.metrics.listen = "127.0.0.1:0"
        cfg.link.mt_poll_s = 2.0
        cfg.link.resend_after_s = 20.0 if self.fast else 300.0
        # A person watching the demo sees "delivered" within a minute, not the next day.
        cfg.link.cumulative_ack_s = 5.0 if self.fast else 60.0
        return cfg

    def _gateway_config(self, modem_path: str, gps_path: str) -> GatewayConfig:
        cfg = GatewayConfig()
        cfg.vessel.name = DEMO_VESSEL
        cfg.vessel.data_dir = Path("gateway")
        cfg.keys.vessel_secret = Path("keys/vessel.key")
        cfg.keys.shore_public = "keys/shore.pub"
        cfg.keys.crew_public = "keys/crew.pub"
        cfg.modem.port = modem_path
        cfg.modem.profile = self.profile.name
        cfg.captive.listen = f"127.0.0.1:{self._port('captive-page')}"
        cfg.link.resend_after_s = 20.0 if self.fast else 300.0
        cfg.link.mailbox_check_s = 10.0 if self.fast else 120.0
        cfg.link.ring_hold_s = 0.0  # a demo answers a ring at once
        cfg.link.cumulative_ack_s = 5.0 if self.fast else 60.0
        cfg.link.idle_poll_s = 0.2
        cfg.latency.crew_s = 0.0 if self.fast else 30.0  # a demo shows messages crossing at once
        # The map, link health and queue show within a minute of the start and follow the vessel every
        # 10 minutes.
        cfg.telemetry.gps_port = gps_path
        cfg.telemetry.interval_s = 10.0 if self.fast else 600.0
        cfg.latency.telemetry_s = 0.0 if self.fast else 15.0
        cfg.metrics.listen = "127.0.0.1:0"
        return cfg

    async def _run(self, data: Path, print_line: Callable[[str], None]) -> int:
        clock = SystemClock()
        rng = random.Random(self.seed)
        profile = self.profile
        # Realistic session times and network latency for people; fast ones for the headless self-test.
        scale, latency = (0.05, 0.2) if self.fast else (1.0, 2.0)
        # The headless self-test compresses the weather too: a storm keeps its statistics, its hours pass in minutes.
        self.link_model = LinkModel(
            random.Random(rng.random()),
            self.link,
            duration_scale=scale,
            time_scale=scale if self.fast else 1.0,
        )
        emulator: IridiumModemEmulator | IdpModemEmulator
        if self.idp:
            network: IridiumNetwork | IdpNetwork = IdpNetwork(clock=clock)
            await network.start()
            emulator = IdpModemEmulator(profile, self.link_model, network, mobile_id=self.modem_id)
        else:
            # The shore binds its DirectIP MO port itself (port 0) and reports it; the network is told once it is up.
            network = IridiumNetwork(clock=clock, latency_s=latency, retry_scale=scale)
            await network.start()
            emulator = IridiumModemEmulator(profile, self.link_model, network, imei=self.modem_id)
        self.network = network
        self.emulator = emulator
        network.attach(emulator)  # type: ignore[arg-type]
        self.track = VesselTrack(self.seed, clock.now())
        pty, gps = PtyModem(emulator, clock), PtyModem(NmeaGpsEmulator(self.track), clock)
        await pty.start()
        await gps.start()
        self.shore = ShoreService(self._shore_config(network), clock, base_dir=data)
        modem = open_modem(pty.path, profile, clock)
        if self.fast and isinstance(modem, IdpModem):  # the IDP modem's polling runs on compressed time too
            modem.poll_interval_s *= scale
        self.gateway = GatewayDaemon(
            self._gateway_config(pty.path, gps.path),
            clock,
            random.Random(rng.random()),
            modem=modem,
            base_dir=data,
        )
        if self.fast:  # the retry schedule runs on the same compressed time as the weather
            retry = profile.retry
            self.gateway.retry.retry = replace(
                retry,
                schedule_s=tuple(s * scale for s in retry.schedule_s),
                status_wait_s={k: v * scale for k, v in retry.status_wait_s.items()},
                fatal_hold_s=retry.fatal_hold_s * scale,
            )
        try:
            return await self._serve(data, clock, {"pty": pty.path, "gps-pty": gps.path}, print_line)
        finally:
            await gps.stop()
            await pty.stop()
            await network.stop()

    async def _serve(
        self, data: Path, clock: Clock, ptys: dict[str, str], print_line: Callable[[str], None]
    ) -> int:
        assert self.shore is not None and self.gateway is not None and self.network is not None
        endpoints: dict[str, str] = {}
        shore_ready, gateway_ready = asyncio.Event(), asyncio.Event()

        def ready(event: asyncio.Event) -> Callable[[dict[str, str]], None]:
            def done(found: dict[str, str]) -> None:
                endpoints.update(found)
                event.set()

            return done

        code = 0
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._follow_track(clock))
            shore_task = tg.create_task(self.shore.run(on_ready=ready(shore_ready)))
            await _first(shore_ready.wait(), shore_task)
            shore_endpoints = dict(endpoints)
            if isinstance(self.network, IridiumNetwork):
                mo_host, _, mo_port = shore_endpoints["directip-mo"].rpartition(":")
                self.network.add_destination(mo_host.strip("[]"), int(mo_port))
            gateway_task = tg.create_task(self.gateway.run(on_ready=ready(gateway_ready)))
            await _first(gateway_ready.wait(), gateway_task)
            tg.create_task(self._first_telemetry(clock))
            self._print_endpoints(endpoints, shore_endpoints, ptys, data, print_line)
            self.ready.set()
            if self.smoke:
                code = await self._smoke(endpoints, print_line)
            else:
                ident = f"{'mobile ID' if self.idp else 'IMEI'} {self.modem_id}"
                print_line(
                    f"vessel: {DEMO_VESSEL} ({self.profile.name}, {ident}), link model {self.link}, seed {self.seed}"
                )
                print_line("Open the captive page, pick a handle and PIN, and write to the hotline;")
                print_line("the message appears on the dashboard after the satellite session.")
                print_line(
                    "Ctrl-C stops"
                    + (f" and keeps {data}." if self.data_dir else " and removes the data folder.")
                )
                await self._stop.wait()
            self._stop.set()
            self.gateway.stop()
            self.shore.stop()
        return code

    def _print_endpoints(
        self,
        endpoints: dict[str, str],
        shore_endpoints: dict[str, str],
        ptys: dict[str, str],
        data: Path,
        print_line: Callable[[str], None],
    ) -> None:
        assert self.shore is not None and self.network is not None
        network_line = (
            {"idp-api": self.network.url}
            if isinstance(self.network, IdpNetwork)
            else {"directip-mt": "{}:{}".format(*self.network.mt_address)}
        )
        token = self.shore.config.webhook.shared_secret
        lines = {
            "dashboard": endpoints["dashboard"],
            "captive-page": endpoints["captive-page"],
            "catch-log": endpoints["captive-page"] + "catch",
            "captive-api": endpoints["captive-api"],
            "broker": endpoints["broker"],
            "directip-mo": endpoints["directip-mo"],
            "webhook": f"{shore_endpoints['webhook']}?token={token}",
            "metrics": shore_endpoints["metrics"],
            "health": shore_endpoints["health"],
            **network_line,
            **ptys,
            "data": str(data),
        }
        self.endpoints.update(lines)
        for name, address in lines.items():
            print_line(f"{name}: {address}")
        broker = self.shore.broker
        if broker is not None:  # the embedded broker refuses anonymous clients
            print_line(f"broker-login: {broker.username}:{broker.password}")
        for user, password in self.dashboard_logins.items():
            print_line(f"dashboard-login: {user}:{password}")
        print_line(f"captain-login: {CAPTAIN}:{self.captain_pin}")
        for note in self.notes:
            print_line(note)

    async def _follow_track(self, clock: Clock) -> None:
        """Move the emulated network's location estimate of the vessel along its track."""
        assert self.network is not None and self.track is not None
        while not self._stop.is_set():
            if isinstance(self.network, IridiumNetwork):
                self.network.set_location(DEMO_IMEI, network_location(self.track, self.seed, clock.now()))
            elif isinstance(self.emulator, IdpModemEmulator):  # the terminal's own GNSS fix
                point = self.track.at(clock.now())
                self.emulator.gnss_position = (point.latitude, point.longitude)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), LOCATION_EVERY_S)

    async def _first_telemetry(self, clock: Clock) -> None:
        """Queue a telemetry record as soon as the GPS has a fix, so the map shows the vessel at once
        rather than after the first telemetry interval."""
        assert self.gateway is not None
        deadline = clock.now() + 30.0
        while not self._stop.is_set() and clock.now() < deadline:
            if self.gateway.positions.best(clock.now()) is not None:
                self.gateway.queue_telemetry(clock.now())
                self.gateway.wake()
                return
            await asyncio.sleep(0.2)

    async def _smoke(self, endpoints: dict[str, str], print_line: Callable[[str], None]) -> int:
        assert self.shore is not None and self.gateway is not None
        seen: Counter[str] = Counter()
        lock = threading.Lock()

        def on_crew(_topic: str, payload: bytes) -> None:
            try:
                text = json.loads(payload)["text"]
            except (ValueError, KeyError, TypeError):
                return
            with lock:
                seen[text] += 1

        watcher = MqttClient(
            self.shore.broker_url,
            f"smoke-{secrets.token_hex(4)}",
            protocol="3.1.1" if self.shore.broker else "auto",
        )
        watcher.subscribe(f"{TOPIC_ROOT}/+/+/up/crew", on_crew)
        watcher.start()
        try:
            if not await asyncio.to_thread(watcher.wait_connected, 10.0):
                print_line("smoke: could not connect to the broker")
                return 1
            arrived = await self._smoke_messages(endpoints, watcher, seen, lock, print_line)
        finally:
            watcher.stop()  # before the broker goes
        if arrived is None:
            return 1
        sent = len(arrived)
        delivered = sum(1 for n in arrived if n >= 1)
        duplicates = sum(n - 1 for n in arrived if n > 1)
        lost = sent - delivered
        print_line(f"smoke: sent {sent}, delivered {delivered}, duplicates {duplicates}, lost {lost}")
        placed = await self._smoke_position(print_line)
        return 0 if delivered == sent and duplicates == 0 and placed else 1

    async def _smoke_messages(
        self,
        endpoints: dict[str, str],
        watcher: MqttClient,
        seen: Counter[str],
        lock: threading.Lock,
        print_line: Callable[[str], None],
    ) -> list[int] | None:
        """Send crew messages through the captive page and replies over MQTT; how often each arrived
        (None if the page refused something)."""
        assert self.gateway is not None
        tag = secrets.token_hex(3)
        crew_texts = [f"smoke {tag} crew message {i}: ကျွန်ုပ် ខ្ញុំ ฉัน" for i in range(self.messages)]
        reply_texts = [f"smoke {tag} reply {i}: we hear you" for i in range(self.messages)]
        base = endpoints["captive-page"].rstrip("/")
        async with httpx.AsyncClient(base_url=base, timeout=10.0) as web:
            r = await web.post("/login", data={"handle": f"smoke-{tag}", "pin": "4321"})
            if r.status_code != 303:
                print_line(f"smoke: login failed with HTTP {r.status_code}")
                return None
            token = r.cookies.get("sb_session") or web.cookies["sb_session"]
            r = await web.post("/consent", data={"s": token, "agree": "1"})
            if r.status_code != 303:
                print_line(f"smoke: consent failed with HTTP {r.status_code}")
                return None
            member = Members(self.gateway.store).session_member(token.split(".")[0])
            assert member is not None
            accounts = Accounts(self.gateway.store, SystemClock())
            session = accounts.session(token)
            assert session is not None
            for text in crew_texts:
                r = await web.post("/send", data={"to": "hotline", "text": text})
                if r.status_code != 303:
                    print_line(f"smoke: send failed with HTTP {r.status_code}")
                    return None
        topic = f"{TOPIC_ROOT}/{slug(DEMO_FLEET)}/{slug(DEMO_VESSEL)}/down/crew"
        for i, text in enumerate(reply_texts):
            payload = json.dumps({"msg_id": f"smoke-{tag}-{i}", "member": member, "text": text}).encode()
            await watcher.publish_and_wait(topic, payload)

        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        while loop.time() < deadline and not self._stop.is_set():
            inbox = Counter(e.text for e in accounts.inbox(session))
            with lock:
                crew_done = all(seen[t] >= 1 for t in crew_texts)
            states = [m.state for m in self.gateway.store.member_messages(member)]
            if (
                crew_done
                and all(inbox[t] >= 1 for t in reply_texts)
                and states.count("delivered") == len(crew_texts)
            ):
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(1.0)  # let late duplicates, if any, show up
        inbox = Counter(e.text for e in accounts.inbox(session))
        with lock:
            return [seen[t] for t in crew_texts] + [inbox[t] for t in reply_texts]

    async def _smoke_position(self, print_line: Callable[[str], None]) -> bool:
        """Wait until the shore has the vessel's GPS position (telemetry) and the network's estimate
        (``state/position``); print both."""
        assert self.shore is not None
        topic = f"{TOPIC_ROOT}/{slug(DEMO_FLEET)}/{slug(DEMO_VESSEL)}"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        gps = network = None
        while loop.time() < deadline and not self._stop.is_set():
            gps = next(
                (b for b in self._latest_bodies(f"{topic}/up/telemetry") if "1" in b.get("body", {})), None
            )
            network = next(iter(self._latest_bodies(f"{topic}/state/position")), None)
            if gps is not None and self.idp:  # the IDP network reports no position of its own
                print_line(f"smoke: position {gps['body']['1'] / 1e5:.5f},{gps['body']['2'] / 1e5:.5f} (gps)")
                return True
            if gps is not None and network is not None:
                lat, lon = gps["body"]["1"] / 1e5, gps["body"]["2"] / 1e5
                print_line(
                    f"smoke: position {lat:.5f},{lon:.5f} (gps), network {network['latitude']:.5f},"
                    f"{network['longitude']:.5f} ±{network['accuracy_m']} m"
                )
                return True
            await asyncio.sleep(0.5)
        print_line(
            f"smoke: no position ashore (gps {'yes' if gps else 'no'}, network {'yes' if network else 'no'})"
        )
        return False

    def _latest_bodies(self, topic: str) -> list[dict]:
        """The latest events on ``topic`` of this run (a reused ``--data`` folder holds older ones)."""
        assert self.shore is not None and self.track is not None
        rows = self.shore.archive.query(
            "SELECT payload FROM events WHERE topic = ? AND created >= ? ORDER BY id DESC LIMIT 20",
            (topic, self.track.started),
        )
        return [json.loads(bytes(r[0]) if not isinstance(r[0], str) else r[0]) for r in rows]


async def _first(waiter: object, task: asyncio.Task[None]) -> None:
    """Wait for ``waiter`` unless ``task`` ends first (then re-raise its failure)."""
    wait_task = asyncio.ensure_future(waiter)  # type: ignore[arg-type]
    done, _ = await asyncio.wait({wait_task, task}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        wait_task.cancel()
        task.result()
        raise RuntimeError("component stopped before it was ready")
