"""The shore relay process: ingest, pipeline, MQTT in and out, MT delivery, metrics and the dashboard.

One asyncio TaskGroup owns every long-running task. What runs depends on ``scale.role``:

* ``all`` (default, one process): DirectIP MO server, RockBLOCK webhook, IDP poller (when
  configured), the pipeline, the event publisher (archive outbox to MQTT), the MT loop (per-vessel
  frames to DirectIP MT, the RockBLOCK MT API or IDP ``submit_messages``), alerts, retention, the
  metrics/health endpoint and the dashboard. When no broker URL is configured it starts the
  embedded broker first.
* ``ingest``: the network endpoints only validate a delivery, store the raw frame in PostgreSQL
  (state ``queued``) and publish it on ``seabridge/v1/_relay/frames/<network>``.
* ``worker``: consumes those frames through an MQTT 5 shared subscription (clean session) and runs
  the pipeline in batches (one transaction each, acknowledged after commit); all state is in
  PostgreSQL, so any worker can process any frame. The singleton duties (publisher, MT loop, alerts,
  retention, re-processing frames no worker took) run in whichever worker holds a PostgreSQL
  advisory lock; when it dies another takes over.

It must not parse frames (the relay does) or hold state that another process would need.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import socket
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from common.clock import Clock
from common.config import resolve
from common.keyfiles import read_secret

from . import frame_messages
from .acks import AckPolicy
from .archive import Archive
from .broker import EmbeddedBroker
from .config import ShoreConfig
from .dashboard import create_app
from .directip import MoMessage
from .directip_server import DirectIpMoServer, directip_rejections
from .frame_batcher import BatchLimits, FrameBatcher
from .idp_poller import IdpClient, IdpPoller
from .leadership import Leadership, LostLead
from .metrics import Metrics, create_ops_app
from .mqtt import MqttClient, Protocol
from .mt_delivery import MtDelivery, idp_sin
from .network_position import NetworkPosition
from .relay import NOT_STORED, Delivery, Relay
from .serving import serve_http, show_host, split_listen, wait_any
from .topics import FRAMES_TOPIC, TOPIC_ROOT, slug
from .webhook import Authenticator, RateLimiter, WebhookMo, create_webhook_app

log = logging.getLogger("shore")

MAX_REPLY_PAYLOAD = 8 * 1024
PUBLISH_WINDOW = 100  # outbox events read per round and in flight to the broker at most
ROLES = ("all", "ingest", "worker", "duties")


class ShoreService:
    def __init__(self, config: ShoreConfig, clock: Clock, base_dir: Path = Path(".")) -> None:
        self.config = config
        self.clock = clock
        self.base_dir = base_dir
        role = config.scale.role
        if role not in ROLES:
            raise ValueError(f"scale.role must be one of {', '.join(ROLES)}, got {role!r}")
        self.role = role
        location: str | Path = config.archive.url or resolve(base_dir, config.archive.path)
        self.archive = Archive(
            location,
            rejected_max_bytes=config.retention.rejected_max_bytes,
            rejected_max_rows=config.retention.rejected_max_rows,
        )
        if role != "all" and (self.archive.dialect != "postgresql" or not config.broker.url):
            self.archive.close()
            raise ValueError(f"scale.role {role!r} needs archive.url (PostgreSQL) and broker.url")
        self.worker_id = config.scale.worker_id or f"{socket.gethostname()}-{os.getpid()}"
        self.relay = Relay(
            self.archive,
            read_secret(resolve(base_dir, config.keys.shore_secret)),
            read_secret(resolve(base_dir, config.keys.crew_secret)),
            config.link.resend_after_s,
            max_fragment_bytes=config.link.fragment_max_bytes,
            ack_policy=AckPolicy(config.link.cumulative_ack_s, config.link.resend_request_s),
        )
        self.batcher = FrameBatcher(
            self.relay.handle_batch,
            BatchLimits(config.scale.batch_frames, config.scale.batch_wait_s),
            after_batch=self._after_batch,
        )
        self.endpoints: dict[str, str] = {}
        self.mqtt: MqttClient | None = None
        self.mo_server: DirectIpMoServer | None = None
        self.broker: EmbeddedBroker | None = None
        self.leader = Leadership(self.archive)
        self.ingest_rejections: Counter[str] = Counter()
        self.frames_out: Counter[str] = Counter()
        self.metrics = Metrics()
        self.metrics.frames_in.append(lambda: self.relay.frames_in)
        self.metrics.frames_out.append(lambda: self.frames_out)
        self.metrics.rejections += [lambda: self.relay.rejections, lambda: self.ingest_rejections]
        self.metrics.delivered.append(lambda: self.relay.accepted)
        self.metrics.depths = self.archive.depths
        self.idp: IdpPoller | None = None
        self._idp_client: IdpClient | None = None
        self._http: httpx.AsyncClient | None = None
        self._stopping = asyncio.Event()
        self._mt_wake = asyncio.Event()
        self._events_wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inflight: set[int] = set()
        self._done: set[int] = set()  # acknowledged by the broker (their marks may not be written yet)
        self._marked: set[int] = set()  # acknowledged and marked published in the archive
        self._to_mark: list[tuple[int, float]] = []  # acknowledged, mark not yet written
        self._inflight_lock = threading.Lock()
        self.mt_failures = 0

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        else:
            self._stopping.set()

    def _wake(self, event: asyncio.Event) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(event.set)

    # --- lifecycle --------------------------------------------------------------------------------

    def _checks(self) -> dict[str, Callable[[], bool]]:
        checks: dict[str, Callable[[], bool]] = {
            "archive": self.archive.ping,
            "broker": lambda: self.mqtt is not None and self.mqtt.connected,
        }
        if self.idp is not None:
            poll_s = self.config.idp.poll_s
            checks["idp"] = lambda: (
                self.idp is not None
                and self.idp.last_poll_ok is not None
                and self.clock.now() - self.idp.last_poll_ok < 3 * poll_s + 30
            )
        return checks

    async def run(self, on_ready: Callable[[dict[str, str]], None] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await self._connect_broker()
        assert self.mqtt is not None
        self._http = httpx.AsyncClient(timeout=self.config.rockblock.timeout_s)
        servers: list[uvicorn.Server] = []
        try:
            async with asyncio.TaskGroup() as tg:
                await self._start_endpoints(tg, servers)
                if self.role in ("all", "worker", "duties"):
                    tg.create_task(self._duties())
                if on_ready is not None:
                    on_ready(dict(self.endpoints))
                await self._stopping.wait()
                for server in servers:
                    server.should_exit = True
                self._events_wake.set()
                self._mt_wake.set()
        finally:
            if self.mo_server is not None:
                await self.mo_server.stop()
            self.mqtt.stop()
            self.batcher.stop()
            if self._idp_client is not None:
                await self._idp_client.close()
            await self._http.aclose()
            if self.broker is not None:
                await self.broker.stop()
            self.leader.close()
            self.archive.close()

    async def _connect_broker(self) -> None:
        """Start the embedded broker when no broker URL is configured, then the MQTT client with the
        subscriptions this role needs."""
        cfg = self.config
        url = cfg.broker.url
        if not url:
            host, port = split_listen(cfg.broker.embedded_listen)
            self.broker = EmbeddedBroker(
                host,
                port,
                data_dir=resolve(self.base_dir, cfg.archive.path).parent / "broker",
                username="seabridge",
                password=secrets.token_urlsafe(16),
            )
            await self.broker.start()
            url = self.broker.url
            self.endpoints["broker"] = f"mqtt://{show_host(host)}:{self.broker.port}"
        else:
            self.endpoints["broker"] = url.split("@")[-1] if "@" in url else url
        self.broker_url = url
        client_id = cfg.broker.client_id if self.role == "all" else f"{cfg.broker.client_id}-{self.worker_id}"
        window = min(65535, 2 * cfg.scale.batch_frames)  # MQTT 5 receive window: a batch in hand, one filling
        protocol: Protocol = "3.1.1" if self.broker else "auto"
        self.mqtt = MqttClient(url, client_id, log=log, protocol=protocol, receive_maximum=window)
        if self.role == "all":
            self.mqtt.subscribe(f"{TOPIC_ROOT}/+/+/down/crew", self._on_reply)
        elif self.role == "worker":
            group = cfg.scale.share_group
            self.mqtt.subscribe(f"$share/{group}-mt/{TOPIC_ROOT}/+/+/down/crew", self._on_reply)
            self.mqtt.subscribe(f"$share/{group}/{FRAMES_TOPIC}/#", self._on_frame, deferred_ack=True)
        if self.role in ("all", "worker"):
            self.batcher.start()
        self.mqtt.start()

    async def _start_endpoints(self, tg: asyncio.TaskGroup, servers: list[uvicorn.Server]) -> None:
        """The network endpoints this role serves: DirectIP MO, webhook, metrics, dashboard, IDP poller."""
        cfg = self.config
        if self.role in ("all", "ingest") and cfg.directip.mo_listen:
            mo_host, mo_port = split_listen(cfg.directip.mo_listen)
            self.mo_server = mo_server = DirectIpMoServer(
                mo_host,
                mo_port,
                self._on_mo,
                read_timeout_s=cfg.directip.read_timeout_s,
                idle_timeout_s=cfg.directip.mo_idle_timeout_s,
                max_connections=cfg.directip.mo_max_connections,
                max_per_peer=cfg.directip.mo_max_per_peer,
                accept_from=cfg.directip.mo_accept_from,
                clock=self.clock,
                log=log,
            )
            await mo_server.start()
            self.metrics.rejections.append(lambda: directip_rejections(mo_server))
            self.endpoints["directip-mo"] = f"{show_host(mo_host)}:{mo_server.port}"
        if self.role in ("all", "ingest") and cfg.webhook.listen:
            server, host, port = await serve_http(tg, self._webhook_app(), cfg.webhook.listen)
            servers.append(server)
            self.endpoints["webhook"] = f"http://{host}:{port}{cfg.webhook.path}"
        if cfg.metrics.listen:
            server, host, port = await serve_http(
                tg, create_ops_app(self.metrics, self._checks()), cfg.metrics.listen
            )
            servers.append(server)
            self.endpoints["metrics"] = f"http://{host}:{port}/metrics"
            self.endpoints["health"] = f"http://{host}:{port}/health"
        if self.role == "all" and cfg.dashboard.listen:
            app = create_app(
                self.archive,
                self._publish_reply,
                cfg.dashboard.username,
                cfg.dashboard.password,
                secure_cookies=cfg.dashboard.secure_cookies,
            )
            server, host, port = await serve_http(tg, app, cfg.dashboard.listen)
            servers.append(server)
            self.endpoints["dashboard"] = f"http://{host}:{port}/"
        if cfg.idp.base_url:
            self._idp_client = IdpClient(
                cfg.idp.base_url,
                cfg.idp.access_id,
                cfg.idp.password,
                timeout_s=cfg.idp.timeout_s,
                max_bytes=cfg.idp.max_response_bytes,
            )
            if self.role in ("all", "ingest"):
                self.idp = IdpPoller(
                    self._idp_client,
                    self.archive,
                    self._on_idp,
                    self.clock,
                    sin=idp_sin(),
                    poll_s=cfg.idp.poll_s,
                    start_utc=cfg.idp.start_utc,
                    rejections=self.ingest_rejections,
                )
                tg.create_task(self.idp.run(self._stopping))

    async def _duties(self) -> None:
        """Singleton duties, while this process leads."""
        cfg = self.config
        while not self._stopping.is_set():
            if await asyncio.to_thread(self.leader.refresh):
                log.info("%s leads the singleton duties", self.worker_id)
                try:
                    async with asyncio.TaskGroup() as tg:
                        tg.create_task(self._publisher())
                        tg.create_task(self._mt_loop())
                        tg.create_task(self._housekeeping())
                        tg.create_task(self._keep_leading())
                except* LostLead:
                    pass
                finally:
                    await asyncio.to_thread(self._flush_marks)
                    with self._inflight_lock:
                        self._inflight.clear()
                        self._done.clear()
                        self._marked.clear()
            if not self._stopping.is_set():
                await wait_any(self.clock, min(2.0, cfg.scale.claim_after_s), self._stopping)

    async def _keep_leading(self) -> None:
        while not self._stopping.is_set():
            await wait_any(self.clock, 2.0, self._stopping)
            if not await asyncio.to_thread(self.leader.refresh):
                log.warning("%s lost the lead", self.worker_id)
                raise LostLead

    async def _housekeeping(self) -> None:
        """Alerts for silent vessels, fragment timeouts, retention, and frames no worker took."""
        cfg = self.config
        last_alerts = last_retention = last_statuses = float("-inf")
        keep = cfg.retention.by_kind()
        while not self._stopping.is_set():
            now = self.clock.now()
            try:
                if self.role == "worker" or self.archive.dialect == "postgresql":
                    frames = await asyncio.to_thread(
                        self.archive.queued_frames, now - cfg.scale.claim_after_s
                    )
                    if frames:
                        outcomes = await asyncio.to_thread(
                            self.relay.handle_batch,
                            [Delivery(f.imei, f.momsn, f.raw, f.network, now) for f in frames],
                        )
                        for frame, outcome in zip(frames, outcomes, strict=True):
                            log.info("queued frame %s/%d taken over: %s", frame.imei, frame.momsn, outcome)
                        self._events_wake.set()
                if cfg.alerts.silent_after_s > 0 and now - last_alerts >= cfg.alerts.check_s:
                    last_alerts = now
                    if await asyncio.to_thread(self.relay.check_silence, now, cfg.alerts.silent_after_s):
                        self._events_wake.set()
                if self._idp_client is not None and now - last_statuses >= cfg.idp.poll_s:
                    last_statuses = now
                    if await self._mt_delivery().close_idp_submissions():
                        self._mt_wake.set()
                if now - last_retention >= cfg.retention.check_s:
                    last_retention = now
                    await asyncio.to_thread(self.archive.expire_fragments, now - cfg.link.fragment_timeout_s)
                    deleted = await asyncio.to_thread(
                        self.archive.prune, now, keep, cfg.retention.frames_s or None
                    )
                    if any(deleted.values()):
                        log.info("retention removed %s", deleted)
            except Exception:  # housekeeping must never stop the relay; the next round retries
                log.exception("housekeeping round failed")
            pause = min(5.0, cfg.alerts.check_s, cfg.scale.claim_after_s)
            if self._idp_client is not None:
                pause = min(pause, cfg.idp.poll_s)
            await wait_any(self.clock, pause, self._stopping)

    # --- MO in ------------------------------------------------------------------------------------

    async def ingest(self, delivery: Delivery) -> str:
        """Hand one delivery from any network to the pipeline (or, in the ingest role, to the workers).
        Returns once it is durably stored."""
        if self.role == "ingest":
            return await asyncio.to_thread(self._enqueue, delivery)
        outcome = await self.batcher.process(delivery)
        if outcome == NOT_STORED:  # not confirmed to the network, which delivers it again later
            raise RuntimeError(f"delivery {delivery.imei} MOMSN {delivery.momsn} could not be stored")
        return outcome

    def _after_batch(self) -> None:
        """Batcher thread: new outbox events and acks owed wait for the publisher and the MT loop."""
        self._wake(self._events_wake)
        self._wake(self._mt_wake)

    def _enqueue(self, d: Delivery) -> str:
        refused = self.relay.precheck(d.imei, d.payload, d.network)
        if refused is not None:
            return refused
        assert d.payload is not None and self.mqtt is not None
        if not self.archive.enqueue_frame(d.imei, d.momsn, d.network, d.payload, d.now):
            self.relay.rejections["duplicate-delivery"] += 1
            return "duplicate"
        self.mqtt.publish(f"{FRAMES_TOPIC}/{d.network}", frame_messages.encode(d), qos=1)
        return "queued"

    def _on_frame(self, _topic: str, payload: bytes, ack: Callable[[], None]) -> None:
        """Worker (network thread): one raw frame from an ingest endpoint, queued for the batcher.
        The broker gets its PUBACK only after the frame's batch committed."""
        try:
            delivery = frame_messages.decode(payload, self.clock.now())
        except (ValueError, KeyError, TypeError) as exc:
            self.ingest_rejections["malformed-frame-message"] += 1
            log.warning("frame message refused: %s", exc)
            ack()
            return
        self.batcher.submit(delivery, lambda _outcome: ack())

    async def _on_mo(self, message: MoMessage) -> bool:
        header, where = message.header, message.location
        position = None if where is None else NetworkPosition.reported(where.latitude, where.longitude, where.cep_km)
        delivery = Delivery(header.imei, header.momsn, message.payload, "iridium-directip", self.clock.now(), position)
        outcome = await self.ingest(delivery)
        log.info("MO %s MOMSN %d: %s", header.imei, header.momsn, outcome)
        # Confirm everything we archived or deliberately refused, so the network stops retrying it.
        return True

    async def _on_webhook(self, mo: WebhookMo) -> str:
        position = NetworkPosition.reported(mo.latitude, mo.longitude, mo.cep_km)
        return await self.ingest(Delivery(mo.imei, mo.momsn, mo.data, "rockblock", self.clock.now(), position))

    async def _on_idp(self, mobile_id: str, msg_id: int, frame: bytes) -> str:
        return await self.ingest(Delivery(mobile_id, msg_id, frame, "inmarsat-idp", self.clock.now()))

    def _webhook_app(self) -> Any:
        w = self.config.webhook
        key = None
        if w.jwt_public_key is not None:
            key = resolve(self.base_dir, w.jwt_public_key).read_bytes()
        auth = Authenticator(key, w.shared_secret or None, max_lifetime_s=w.jwt_max_lifetime_s)
        if not auth.configured:
            log.warning("webhook has no JWT key or shared secret configured: every request is refused")
        limiter = RateLimiter(w.rate_per_s, w.burst, w.global_rate_per_s)
        return create_webhook_app(
            self._on_webhook,
            auth,
            limiter,
            self.clock,
            rejections=self.ingest_rejections,
            path=w.path,
            answer_within_s=w.answer_within_s,
            max_body_bytes=w.max_body_bytes,
        )

    # --- events out -------------------------------------------------------------------------------

    async def _publisher(self) -> None:
        assert self.mqtt is not None
        expiry = self.config.broker.message_expiry_s or None
        try:
            while not self._stopping.is_set():
                # Write the marks of everything the broker acknowledged, in one transaction. An event
                # acknowledged while the query below runs may still come back from it: ids stay in
                # ``_done`` (never re-published) until a query that started after their mark has run.
                await asyncio.to_thread(self._flush_marks)
                with self._inflight_lock:
                    settled = set(self._marked)
                events = await asyncio.to_thread(self.archive.pending_events, PUBLISH_WINDOW)
                sent_any = False
                for event in events:
                    with self._inflight_lock:
                        if event.id in self._inflight or event.id in self._done:
                            continue
                        self._inflight.add(event.id)
                    sent_any = True
                    self.mqtt.publish(
                        event.topic,
                        event.payload,
                        retain=event.retain,
                        expiry_s=None if event.retain else expiry,
                        content_type="application/json",
                        on_done=self._published(event.id, event.created),
                    )
                with self._inflight_lock:
                    self._done -= settled
                    self._marked -= settled
                self._events_wake.clear()
                await wait_any(self.clock, 1.0 if not sent_any else 0.2, self._events_wake, self._stopping)
        finally:
            await asyncio.to_thread(self._flush_marks)

    def _flush_marks(self) -> None:
        with self._inflight_lock:
            batch, self._to_mark = self._to_mark, []
        if not batch:
            return
        try:
            self.archive.events_published(batch)
        except Exception:
            with self._inflight_lock:  # keep them for the next try; until then they are not re-sent
                self._to_mark[:0] = batch
            raise
        with self._inflight_lock:
            self._marked.update(event_id for event_id, _ in batch)

    def _published(self, event_id: int, created: float) -> Callable[[], None]:
        def done() -> None:
            now = self.clock.now()
            if created:
                self.metrics.publish_latency.observe(max(0.0, now - created))
            with self._inflight_lock:
                self._inflight.discard(event_id)
                self._done.add(event_id)
                self._to_mark.append((event_id, now))
                left = len(self._inflight)
            # Wake the publisher when half the window was acknowledged, and when all of it was: not on
            # every acknowledgement (each wake costs a query), the marks wait for the next round.
            if left in (0, PUBLISH_WINDOW // 2):
                self._events_wake_threadsafe()

        return done

    def _events_wake_threadsafe(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._events_wake.set)

    # --- replies in -------------------------------------------------------------------------------

    def _on_reply(self, topic: str, payload: bytes) -> None:
        """MQTT handler (network thread): validate a reply and queue it for its vessel."""
        parts = topic.split("/")
        if len(payload) > MAX_REPLY_PAYLOAD or len(parts) != 6:
            log.warning("reply on %s refused: too large or bad topic", topic)
            return
        fleet, vessel_slug = parts[2], parts[3]
        try:
            data: Any = json.loads(payload)
            member = data["member"]
            text = data["text"]
            if type(member) is not int or member < 0 or not isinstance(text, str) or not text.strip():
                raise ValueError("member must be a non-negative integer and text a non-empty string")
            sender = str(data.get("sender", "hotline"))[:32]
            client_id = data.get("msg_id")
            if client_id is not None and (not isinstance(client_id, str) or len(client_id) > 64):
                raise ValueError("msg_id must be a string of at most 64 characters")
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("reply on %s refused: %s", topic, exc)
            return
        vessel = next(
            (v for v in self.archive.vessels() if slug(v.name) == vessel_slug and slug(v.fleet) == fleet),
            None,
        )
        if vessel is None:
            log.warning("reply on %s refused: unknown vessel", topic)
            return
        rid, created = self.relay.accept_reply(
            vessel, member, text.strip()[:1000], sender, client_id, self.clock.now()
        )
        log.info(
            "reply %s for %s member %d queued as MT record %d%s",
            client_id,
            vessel.name,
            member,
            rid,
            "" if created else " (repeat ignored)",
        )
        self._wake(self._mt_wake)

    def _publish_reply(self, topic: str, payload: bytes) -> None:
        assert self.mqtt is not None
        self.mqtt.publish(topic, payload)

    # --- MT out -----------------------------------------------------------------------------------

    def _mt_delivery(self) -> MtDelivery:
        assert self._http is not None
        return MtDelivery(
            self.config, self.archive, self.clock, self._http, self._idp_client, self.ingest_rejections
        )

    async def _mt_loop(self) -> None:
        cfg = self.config
        retry_at: dict[str, float] = {}
        while not self._stopping.is_set():
            self._mt_wake.clear()
            now = self.clock.now()
            imeis = await asyncio.to_thread(self.relay.vessels_with_mt, now)
            for imei in imeis:
                if retry_at.get(imei, 0) > now:
                    continue
                vessel = await asyncio.to_thread(self.archive.vessel, imei)
                if vessel is None or vessel.revoked:
                    continue
                frame = await asyncio.to_thread(self.relay.build_mt, imei, now)
                if frame is None:
                    continue
                try:
                    ok, detail = await self._mt_delivery().deliver(vessel, frame)
                except (TimeoutError, OSError, ValueError, httpx.HTTPError) as exc:
                    ok, detail = False, str(exc)
                if ok:
                    await asyncio.to_thread(self.relay.mt_sent, frame, self.clock.now())
                    self.frames_out[vessel.network] += 1
                    retry_at.pop(imei, None)
                    log.info(
                        "MT frame %d (%d B) for %s handed to %s: %s",
                        frame.counter,
                        len(frame.data),
                        vessel.name,
                        vessel.network,
                        detail,
                    )
                else:
                    self.mt_failures += 1
                    self.ingest_rejections["mt-not-accepted"] += 1
                    retry_at[imei] = self.clock.now() + 30.0
                    log.warning("MT frame for %s not accepted by %s: %s", vessel.name, vessel.network, detail)
            await wait_any(self.clock, cfg.link.mt_poll_s, self._mt_wake, self._stopping)

