"""The one-command demo: shore relay + embedded broker + emulated Iridium network and 9603 modem on a
pseudo-terminal + one vessel gateway with its captive page, all on this machine.

``Demo.run`` prints every endpoint as ``name: address``. With ``smoke=True`` it also sends a handful of
crew messages (through the captive page over HTTP) and replies (published on MQTT), waits until each
has arrived, prints a one-line summary and returns 0 only if every message arrived exactly once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import secrets
import socket
import tempfile
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx

from common.clock import SystemClock
from firmware_profiles import load_profile
from gateway.accounts import Accounts, Members
from gateway.config import GatewayConfig
from gateway.daemon import GatewayDaemon
from gateway.modem.serial_link import IridiumModem
from shore.config import ShoreConfig
from shore.dashboard.auth import Role
from shore.dashboard.users import ensure_users
from shore.mqtt import MqttClient
from shore.registry import create_shore_keys, create_vessel_key, register_vessel
from shore.service import ShoreService
from shore.topics import TOPIC_ROOT, slug

from .iridium_modem import IridiumModemEmulator
from .iridium_network import IridiumNetwork
from .link_model import LinkModel
from .pty_modem import PtyModem

log = logging.getLogger(__name__)

DEMO_IMEI = "300234010753370"
DEMO_VESSEL = "Sea Star 7"
DEMO_FLEET = "demo"
PROFILE = "iridium-9603"


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
    ) -> None:
        self.data_dir = data_dir
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
        self.network: IridiumNetwork | None = None
        self.emulator: IridiumModemEmulator | None = None
        self.link_model: LinkModel | None = None
        self.shore: ShoreService | None = None
        self.gateway: GatewayDaemon | None = None
        self.dashboard_logins: dict[str, str] = {}

    def stop(self) -> None:
        self._stop.set()

    def _prepare(self) -> Path:
        data = self.data_dir or Path(tempfile.mkdtemp(prefix="seabridge-demo-"))
        keys = data / "keys"
        if not (keys / "shore.key").exists():
            create_shore_keys(keys)
        if not (keys / "vessel.key").exists():
            create_vessel_key(keys, "vessel")
        register_vessel(
            data / "shore" / "archive.sqlite3",
            DEMO_IMEI,
            DEMO_VESSEL,
            keys / "vessel.pub",
            DEMO_FLEET,
            PROFILE,
        )
        # Dashboard logins: fresh passwords at every start, printed with the endpoints.
        self.dashboard_logins = dict(
            ensure_users(
                data / "shore" / "archive.sqlite3", [("admin", Role.ADMINISTRATOR), ("hotline", Role.HOTLINE)]
            )
        )
        return data

    async def run(self, print_line: Callable[[str], None] = print) -> int:
        data = self._prepare()
        clock = SystemClock()
        rng = random.Random(self.seed)
        profile = load_profile(PROFILE)
        # Realistic session times and network latency for people; fast ones for the headless self-test.
        scale, latency = (0.05, 0.2) if self.fast else (1.0, 2.0)
        # The shore binds its DirectIP MO port itself (port 0) and reports it; the network is told once it is up.
        network = IridiumNetwork(clock=clock, latency_s=latency, retry_scale=scale)
        await network.start()
        self.network = network
        self.link_model = LinkModel(random.Random(rng.random()), self.link, duration_scale=scale)
        emulator = IridiumModemEmulator(profile, self.link_model, network, imei=DEMO_IMEI)
        self.emulator = emulator
        network.attach(emulator)
        pty = PtyModem(emulator, clock)
        await pty.start()

        shore_cfg = ShoreConfig()
        shore_cfg.keys.shore_secret = Path("keys/shore.key")
        shore_cfg.keys.crew_secret = Path("keys/crew.key")
        shore_cfg.archive.path = Path("shore/archive.sqlite3")
        shore_cfg.broker.embedded_listen = "127.0.0.1:0"
        shore_cfg.broker.url = self.broker_url
        shore_cfg.directip.mo_listen = "127.0.0.1:0"
        shore_cfg.directip.mt_host, shore_cfg.directip.mt_port = network.mt_address
        shore_cfg.dashboard.listen = f"127.0.0.1:{0 if self.fast else free_port(8090)}"
        shore_cfg.webhook.listen = "127.0.0.1:0"
        shore_cfg.metrics.listen = "127.0.0.1:0"
        shore_cfg.link.mt_poll_s = 2.0
        shore_cfg.link.resend_after_s = 20.0 if self.fast else 300.0
        # Acks wait a little to share a frame; a person watching the demo still sees "delivered" soon.
        shore_cfg.link.ack_delay_s = 0.0 if self.fast else 20.0
        self.shore = ShoreService(shore_cfg, clock, base_dir=data)

        gw_cfg = GatewayConfig()
        gw_cfg.vessel.name = DEMO_VESSEL
        gw_cfg.vessel.data_dir = Path("gateway")
        gw_cfg.keys.vessel_secret = Path("keys/vessel.key")
        gw_cfg.keys.shore_public = "keys/shore.pub"
        gw_cfg.keys.crew_public = "keys/crew.pub"
        gw_cfg.modem.port = pty.path
        gw_cfg.modem.profile = PROFILE
        gw_cfg.captive.listen = f"127.0.0.1:{0 if self.fast else free_port(8080)}"
        gw_cfg.link.resend_after_s = 20.0 if self.fast else 300.0
        gw_cfg.link.mailbox_check_s = 10.0 if self.fast else 120.0
        gw_cfg.link.idle_poll_s = 0.2
        gw_cfg.latency.crew_s = 0.0 if self.fast else 30.0  # a demo shows messages crossing at once
        gw_cfg.metrics.listen = "127.0.0.1:0"
        self.gateway = GatewayDaemon(
            gw_cfg,
            clock,
            random.Random(rng.random()),
            modem=IridiumModem(pty.path, profile, clock),
            base_dir=data,
        )

        endpoints: dict[str, str] = {}
        shore_ready, gateway_ready = asyncio.Event(), asyncio.Event()

        def ready(event: asyncio.Event) -> Callable[[dict[str, str]], None]:
            def done(found: dict[str, str]) -> None:
                endpoints.update(found)
                event.set()

            return done

        code = 0
        try:
            async with asyncio.TaskGroup() as tg:
                shore_task = tg.create_task(self.shore.run(on_ready=ready(shore_ready)))
                await _first(shore_ready.wait(), shore_task)
                shore_endpoints = dict(endpoints)
                mo_host, _, mo_port = shore_endpoints["directip-mo"].rpartition(":")
                network.add_destination(mo_host.strip("[]"), int(mo_port))
                gateway_task = tg.create_task(self.gateway.run(on_ready=ready(gateway_ready)))
                await _first(gateway_ready.wait(), gateway_task)
                mt_host, mt_port = network.mt_address
                lines = {
                    "dashboard": endpoints["dashboard"],
                    "captive-page": endpoints["captive-page"],
                    "captive-api": endpoints["captive-api"],
                    "broker": endpoints["broker"],
                    "directip-mo": endpoints["directip-mo"],
                    "webhook": shore_endpoints["webhook"],
                    "metrics": shore_endpoints["metrics"],
                    "health": shore_endpoints["health"],
                    "directip-mt": f"{mt_host}:{mt_port}",
                    "pty": pty.path,
                    "data": str(data),
                }
                self.endpoints.update(lines)
                for name, address in lines.items():
                    print_line(f"{name}: {address}")
                for user, password in self.dashboard_logins.items():
                    print_line(f"dashboard-login: {user}:{password}")
                self.ready.set()
                if self.smoke:
                    code = await self._smoke(endpoints, print_line)
                else:
                    print_line(
                        f"vessel: {DEMO_VESSEL} (IMEI {DEMO_IMEI}), link model {self.link}, seed {self.seed}"
                    )
                    print_line("Open the captive page, pick a handle and PIN, and write to the hotline;")
                    print_line(
                        "the message appears on the dashboard after the satellite session. Ctrl-C stops."
                    )
                    await self._stop.wait()
                self.gateway.stop()
                self.shore.stop()
        finally:
            await pty.stop()
            await network.stop()
        return code

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
        if not await asyncio.to_thread(watcher.wait_connected, 10.0):
            print_line("smoke: could not connect to the broker")
            return 1
        tag = secrets.token_hex(3)
        crew_texts = [f"smoke {tag} crew message {i}: ကျွန်ုပ် ខ្ញុំ ฉัน" for i in range(self.messages)]
        reply_texts = [f"smoke {tag} reply {i}: we hear you" for i in range(self.messages)]
        base = endpoints["captive-page"].rstrip("/")
        async with httpx.AsyncClient(base_url=base, timeout=10.0) as web:
            r = await web.post("/login", data={"handle": f"smoke-{tag}", "pin": "4321"})
            if r.status_code != 303:
                print_line(f"smoke: login failed with HTTP {r.status_code}")
                return 1
            token = r.cookies.get("sb_session") or web.cookies["sb_session"]
            r = await web.post("/consent", data={"s": token, "agree": "1"})
            if r.status_code != 303:
                print_line(f"smoke: consent failed with HTTP {r.status_code}")
                return 1
            member = Members(self.gateway.store).session_member(token.split(".")[0])
            assert member is not None
            accounts = Accounts(self.gateway.store, SystemClock())
            session = accounts.session(token)
            assert session is not None
            for text in crew_texts:
                r = await web.post("/send", data={"to": "hotline", "text": text})
                if r.status_code != 303:
                    print_line(f"smoke: send failed with HTTP {r.status_code}")
                    return 1
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
        watcher.stop()
        with lock:
            arrived = [seen[t] for t in crew_texts] + [inbox[t] for t in reply_texts]
        sent = len(arrived)
        delivered = sum(1 for n in arrived if n >= 1)
        duplicates = sum(n - 1 for n in arrived if n > 1)
        lost = sent - delivered
        print_line(f"smoke: sent {sent}, delivered {delivered}, duplicates {duplicates}, lost {lost}")
        return 0 if delivered == sent and duplicates == 0 else 1


async def _first(waiter: object, task: asyncio.Task[None]) -> None:
    """Wait for ``waiter`` unless ``task`` ends first (then re-raise its failure)."""
    wait_task = asyncio.ensure_future(waiter)  # type: ignore[arg-type]
    done, _ = await asyncio.wait({wait_task, task}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        wait_task.cancel()
        task.result()
        raise RuntimeError("component stopped before it was ready")
