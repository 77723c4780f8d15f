"""The shore side's one MQTT client: a thread-safe, asyncio-friendly wrapper around paho-mqtt 2.x.

The relay and the dashboard talk to the broker only through ``MqttClient``. It owns:

* the connection: ``connect_async`` + ``loop_start``, automatic reconnects with back-off, and the
  protocol choice. ``protocol="auto"`` first asks the broker whether it speaks MQTT 5 (a bare MQTT 5
  CONNECT on a throw-away socket) and falls back to MQTT 3.1.1 when the broker answers in the 3.1.1
  format (the embedded amqtt broker answers "unacceptable protocol version");
* subscriptions, which it (re)sends after every connect that did not resume a session;
* PUBACK tracking: ``publish(..., on_done=...)`` and ``await publish_and_wait(...)``;
* acknowledgements of messages it receives: sent when the handlers returned, or, for a
  ``subscribe(..., deferred_ack=True)`` handler, when that handler calls the ``ack`` it was given
  (after its own durable write: at-least-once into the caller's store, however long it batches).

Rules it keeps (see the shore research notes, paho-mqtt section):

* always ``CallbackAPIVersion.VERSION2``; every paho callback is wrapped so it cannot raise and kill
  the network thread; exceptions from subscription handlers are logged, never propagated;
* a QoS >= 1 publish while disconnected is *not* re-published: paho keeps it in memory and sends it
  after the reconnect (re-publishing would duplicate it);
* MQTT 5 extras (message expiry, content type, session expiry) are added only on MQTT 5 sessions, so
  callers must put everything they need (message id, timestamps, schema) in the payload.

It must not: persist anything (paho's queue is memory only; durable outboxes belong to the caller and
are marked sent from ``on_done``), block inside a paho callback, or know about Seabridge topics.
Handlers and ``on_done`` run on the paho network thread; hand work to asyncio with
``loop.call_soon_threadsafe`` and keep them short.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from .mqtt_probe import probe_mqtt5

__all__ = [
    "BrokerConfig",
    "MqttClient",
    "MqttPublishError",
    "Protocol",
    "Will",
    "probe_mqtt5",
]

Protocol = Literal["auto", "5", "3.1.1"]
Handler = Callable[[str, bytes], None]
AckedHandler = Callable[[str, bytes, Callable[[], None]], None]

_DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
_MATCH_CACHE = 1024  # topics whose matching handlers are remembered


class MqttPublishError(RuntimeError):
    """The client could not queue a publish, or the broker refused it (MQTT 5 PUBACK failure)."""


@dataclass(frozen=True)
class BrokerConfig:
    """Where the broker is: ``mqtt://[user:pass@]host[:port]`` or ``mqtts://…`` (TLS, system CAs).

    User and password are percent-decoded. The port defaults to 1883 (``mqtt``) or 8883 (``mqtts``).
    """

    url: str
    host: str = field(init=False)
    port: int = field(init=False)
    username: str | None = field(init=False)
    password: str | None = field(init=False)
    tls: bool = field(init=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in _DEFAULT_PORTS:
            raise ValueError(f"broker url must start with mqtt:// or mqtts://, got {self.url!r}")
        if not parts.hostname:
            raise ValueError(f"broker url has no host: {self.url!r}")
        try:
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"broker url has an invalid port: {self.url!r}") from exc
        object.__setattr__(self, "host", parts.hostname)
        object.__setattr__(self, "port", port if port is not None else _DEFAULT_PORTS[parts.scheme])
        object.__setattr__(self, "username", unquote(parts.username) if parts.username is not None else None)
        object.__setattr__(self, "password", unquote(parts.password) if parts.password is not None else None)
        object.__setattr__(self, "tls", parts.scheme == "mqtts")

    def __repr__(self) -> str:  # never print the password
        user = f"{self.username}:***@" if self.username else ""
        return f"BrokerConfig({'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port})"


@dataclass(frozen=True)
class Will:
    """Last-will message the broker publishes if this client vanishes (e.g. a retained ``offline`` status)."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


@dataclass
class _Outgoing:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    expiry_s: int | None
    content_type: str | None
    on_result: Callable[[MqttPublishError | None], None] | None


class MqttClient:
    """One MQTT connection, shared by any number of threads and one asyncio loop.

    ``persistent_session=True`` asks the broker to keep the session (subscriptions and queued QoS 1
    messages) while the client is away: ``clean_session=False`` on 3.1.1, ``clean_start=False`` plus
    ``SessionExpiryInterval=session_expiry_s`` on MQTT 5. It needs a stable, non-empty ``client_id``.
    With the embedded broker it also needs a username (anonymous amqtt sessions never queue).
    Relay workers on ``$share`` subscriptions should keep the default clean session.

    ``protocol="5"`` skips the probe; do not use it with amqtt (a 3.1.1-only broker may never answer an
    MQTT 5 CONNECT that carries credentials or properties). The client is one-shot: ``start`` once,
    ``stop`` once.
    """

    def __init__(
        self,
        url: str,
        client_id: str,
        *,
        log: logging.Logger | None = None,
        protocol: Protocol = "auto",
        persistent_session: bool = False,
        session_expiry_s: int = 7 * 24 * 3600,
        keepalive_s: int = 60,
        reconnect_delay_s: tuple[int, int] = (1, 30),
        probe_timeout_s: float = 5.0,
        will: Will | None = None,
        receive_maximum: int | None = None,
    ) -> None:
        if protocol not in ("auto", "5", "3.1.1"):
            raise ValueError(f"protocol must be 'auto', '5' or '3.1.1', got {protocol!r}")
        if persistent_session and not client_id:
            raise ValueError("a persistent session needs a stable, non-empty client_id")
        self.config = BrokerConfig(url)
        self.client_id = client_id
        self.log = log or logging.getLogger(__name__)
        self.protocol: Protocol = protocol
        self.persistent_session = persistent_session
        self.session_expiry_s = session_expiry_s
        self.keepalive_s = keepalive_s
        self.reconnect_delay_s = reconnect_delay_s
        self.probe_timeout_s = probe_timeout_s
        self.will = will
        # MQTT 5 Receive Maximum: how many QoS 1 messages the broker may have unacknowledged with us
        # (a handler that batches its acks needs more than the broker's default window).
        self.receive_maximum = receive_maximum

        self._client: paho.Client | None = None
        self._mqtt5 = False
        self._started = False
        self._stopping = threading.Event()
        self._connected = threading.Event()
        self._probe_thread: threading.Thread | None = None
        # _state_lock guards _client/_pending; paho is called under it only before loop_start.
        self._state_lock = threading.Lock()
        self._pending: list[_Outgoing] = []
        self._publish_properties: dict[tuple[int | None, str | None], Properties] = {}
        # _acks_lock guards the PUBACK bookkeeping; paho is never called while it is held.
        self._acks_lock = threading.Lock()
        self._awaiting: dict[int, Callable[[MqttPublishError | None], None] | None] = {}
        self._early: dict[int, MqttPublishError | None] = {}
        # _subs_lock guards the subscription table; paho is never called while it is held.
        self._subs_lock = threading.Lock()
        self._subs: dict[str, tuple[int, list[Handler | AckedHandler]]] = {}
        self._deferred: set[Handler | AckedHandler] = set()  # handlers that acknowledge themselves
        self._matches: dict[str, list[tuple[Handler | AckedHandler, bool]]] = {}  # topic -> its handlers
        self._sent_subs: set[str] = set()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start connecting in the background; returns at once. Reconnects until ``stop``."""
        if self._started:
            raise RuntimeError("MqttClient.start() called twice")
        self._started = True
        if self.protocol == "auto":
            self._probe_thread = threading.Thread(
                target=self._probe_then_connect, name=f"mqtt-probe-{self.client_id}", daemon=True
            )
            self._probe_thread.start()
        else:
            self._launch(mqtt5=self.protocol == "5")

    def stop(self) -> None:
        """Disconnect cleanly (a persistent session stays on the broker) and stop the network thread.

        QoS 1 messages not yet acknowledged are dropped with the client; callers that need them keep a
        durable outbox and re-send on the next start.
        """
        self._stopping.set()
        if self._probe_thread is not None:
            self._probe_thread.join(timeout=self.probe_timeout_s + 1.0)
        with self._state_lock:
            client = self._client
        if client is not None:
            try:
                client.disconnect()
            except (OSError, ValueError) as exc:  # already closed
                self.log.debug("mqtt %s: disconnect: %s", self.client_id, exc)
            client.loop_stop()
        self._connected.clear()

    def wait_connected(self, timeout: float) -> bool:
        """Block until the client is connected (True) or ``timeout`` seconds passed (False)."""
        return self._connected.wait(timeout)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def mqtt5(self) -> bool:
        """True when the session is MQTT 5 (False until the protocol is known)."""
        return self._mqtt5

    # ------------------------------------------------------------------ publishing

    def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        expiry_s: int | None = None,
        content_type: str | None = None,
        on_done: Callable[[], None] | None = None,
    ) -> None:
        """Queue one message. Never blocks on the network and never re-publishes.

        ``on_done`` runs on the network thread once the broker acknowledged the message (PUBACK for
        QoS 1; for QoS 0, once it was written to the socket). A QoS 1 message published while
        disconnected waits in memory and goes out after the reconnect. QoS 0 while disconnected is
        dropped. ``expiry_s`` and ``content_type`` are sent only on MQTT 5 sessions.
        """
        result_cb: Callable[[MqttPublishError | None], None] | None = None
        if on_done is not None:
            done = on_done

            def result_cb(error: MqttPublishError | None) -> None:
                if error is None:
                    done()
                else:
                    self.log.warning("mqtt %s: publish to %s failed: %s", self.client_id, topic, error)

        self._publish(_Outgoing(topic, payload, qos, retain, expiry_s, content_type, result_cb))

    async def publish_and_wait(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        timeout: float = 10.0,
        expiry_s: int | None = None,
        content_type: str | None = None,
    ) -> None:
        """Publish and wait for the broker's acknowledgement.

        Raises ``TimeoutError`` after ``timeout`` seconds (the message stays queued and may still be
        delivered later) and ``MqttPublishError`` when the broker refuses it.
        """
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()

        def settle(error: MqttPublishError | None) -> None:
            if fut.done():
                return
            if error is None:
                fut.set_result(None)
            else:
                fut.set_exception(error)

        def on_result(error: MqttPublishError | None) -> None:
            loop.call_soon_threadsafe(settle, error)

        self._publish(_Outgoing(topic, payload, qos, retain, expiry_s, content_type, on_result))
        async with asyncio.timeout(timeout):
            await fut

    def _publish(self, out: _Outgoing) -> None:
        if out.qos not in (0, 1, 2):
            raise ValueError(f"qos must be 0, 1 or 2, got {out.qos}")
        if not isinstance(out.payload, bytes | bytearray):
            raise TypeError("payload must be bytes")
        with self._state_lock:
            client = self._client
            if client is None:  # protocol probe still running: keep order, send once the client exists
                self._pending.append(out)
                return
        self._send(client, out)

    def _properties(self, expiry_s: int | None, content_type: str | None) -> Properties | None:
        """The MQTT 5 PUBLISH properties for these settings: built once and shared (paho only reads
        them), since building them costs as much as the rest of a publish."""
        if not self._mqtt5 or (expiry_s is None and content_type is None):
            return None
        key = (expiry_s, content_type)
        properties = self._publish_properties.get(key)
        if properties is None:
            properties = Properties(PacketTypes.PUBLISH)
            if expiry_s is not None:
                properties.MessageExpiryInterval = int(expiry_s)
            if content_type is not None:
                properties.ContentType = content_type
            self._publish_properties[key] = properties
        return properties

    def _send(self, client: paho.Client, out: _Outgoing) -> None:
        properties = self._properties(out.expiry_s, out.content_type)
        info = client.publish(out.topic, out.payload, qos=out.qos, retain=out.retain, properties=properties)
        if info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN:
            if out.qos == 0:
                self.log.debug("mqtt %s: QoS 0 to %s dropped while disconnected", self.client_id, out.topic)
                return
            # paho keeps QoS>=1 messages and sends them after the reconnect: do NOT re-publish.
            self.log.debug("mqtt %s: %s queued until reconnect (mid %d)", self.client_id, out.topic, info.mid)
        elif info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise MqttPublishError(f"publish to {out.topic} not queued: {paho.error_string(info.rc)}")
        with self._acks_lock:
            if info.mid in self._early:
                error = self._early.pop(info.mid)
                fire = True
            else:
                self._awaiting[info.mid] = out.on_result
                fire = False
        if fire and out.on_result is not None:
            self._call_result(out.on_result, error)

    # ------------------------------------------------------------------ subscribing

    def subscribe(
        self, topic_filter: str, handler: Handler | AckedHandler, qos: int = 1, *, deferred_ack: bool = False
    ) -> None:
        """Call ``handler(topic, payload)`` for every message matching ``topic_filter``.

        Subscriptions are remembered and re-sent after each connect that did not resume a session.
        ``$share/<group>/<filter>`` filters match like ``<filter>``. Handlers run on the network
        thread; an exception in one is logged and does not affect later messages.

        With ``deferred_ack=True`` the handler is called as ``handler(topic, payload, ack)`` and the
        message is acknowledged to the broker only when ``ack()`` was called (from any thread), so the
        handler may queue the message and acknowledge it after its own commit. Until then the broker
        counts it against the client's receive window (``receive_maximum``).
        """
        with self._subs_lock:
            self._matches.clear()
            if deferred_ack:
                self._deferred.add(handler)
            old_qos, handlers = self._subs.get(topic_filter, (qos, []))
            self._subs[topic_filter] = (max(old_qos, qos), [*handlers, handler])
            already = topic_filter in self._sent_subs and old_qos >= qos
        with self._state_lock:
            client = self._client
        if client is not None and self._connected.is_set() and not already:
            self._send_subscribe(client, topic_filter, qos)

    def _send_subscribe(self, client: paho.Client, topic_filter: str, qos: int) -> None:
        if self._mqtt5:
            rc, _mid = client.subscribe(topic_filter, options=SubscribeOptions(qos=qos))
        else:
            rc, _mid = client.subscribe(topic_filter, qos=qos)
        if rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
            with self._subs_lock:
                self._sent_subs.add(topic_filter)
        else:
            self.log.debug("mqtt %s: subscribe %s deferred: %s", self.client_id, topic_filter, rc)

    # ------------------------------------------------------------------ connection internals

    def _probe_then_connect(self) -> None:
        delay = float(self.reconnect_delay_s[0])
        while not self._stopping.is_set():
            try:
                mqtt5 = probe_mqtt5(
                    self.config.host, self.config.port, tls=self.config.tls, timeout=self.probe_timeout_s
                )
            except OSError as exc:
                self.log.info(
                    "mqtt %s: broker %r not reachable (%s); retrying", self.client_id, self.config, exc
                )
                self._stopping.wait(delay)
                delay = min(delay * 2, float(self.reconnect_delay_s[1]))
                continue
            self.log.info("mqtt %s: broker speaks MQTT %s", self.client_id, "5" if mqtt5 else "3.1.1")
            self._launch(mqtt5=mqtt5)
            return

    def _launch(self, *, mqtt5: bool) -> None:
        cfg = self.config
        if mqtt5:
            client = paho.Client(
                CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=paho.MQTTv5, manual_ack=True
            )
        else:
            client = paho.Client(
                CallbackAPIVersion.VERSION2,
                client_id=self.client_id,
                protocol=paho.MQTTv311,
                clean_session=not self.persistent_session,
                manual_ack=True,
            )
        client.enable_logger(_PahoLog(self.log, self.client_id, self._stopping))  # type: ignore[arg-type]
        client.max_queued_messages_set(0)
        client.reconnect_delay_set(min_delay=self.reconnect_delay_s[0], max_delay=self.reconnect_delay_s[1])
        if cfg.username is not None:
            client.username_pw_set(cfg.username, cfg.password)
        if cfg.tls:
            client.tls_set()
        if self.will is not None:
            client.will_set(self.will.topic, self.will.payload, qos=self.will.qos, retain=self.will.retain)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message

        connect_kw: dict[str, Any] = {}
        if mqtt5:
            props = Properties(PacketTypes.CONNECT)
            if self.receive_maximum is not None:
                props.ReceiveMaximum = self.receive_maximum
            if self.persistent_session:
                props.SessionExpiryInterval = self.session_expiry_s
                connect_kw["clean_start"] = False
            else:
                connect_kw["clean_start"] = True
            connect_kw["properties"] = props

        with self._state_lock:
            if self._stopping.is_set():
                return
            self._mqtt5 = mqtt5
            client.connect_async(cfg.host, cfg.port, keepalive=self.keepalive_s, **connect_kw)
            self._client = client
            pending, self._pending = self._pending, []
            for out in pending:  # the network thread is not running yet, so paho is safe to call here
                try:
                    self._send(client, out)
                except MqttPublishError as exc:
                    self.log.error("mqtt %s: %s", self.client_id, exc)
                    if out.on_result is not None:
                        self._call_result(out.on_result, exc)
            client.loop_start()

    # ------------------------------------------------------------------ paho callbacks (network thread)

    def _on_connect(
        self, client: paho.Client, _userdata: Any, flags: Any, reason: ReasonCode, _props: Any
    ) -> None:
        try:
            if reason.is_failure:
                self.log.warning("mqtt %s: connection refused: %s", self.client_id, reason)
                return
            session_present = bool(getattr(flags, "session_present", False))
            self.log.info(
                "mqtt %s: connected to %r (MQTT %s, session present: %s)",
                self.client_id,
                self.config,
                "5" if self._mqtt5 else "3.1.1",
                session_present,
            )
            with self._subs_lock:
                if not session_present:
                    self._sent_subs.clear()
                todo = [(f, q) for f, (q, _h) in self._subs.items() if f not in self._sent_subs]
            self._connected.set()
            for topic_filter, qos in todo:
                self._send_subscribe(client, topic_filter, qos)
        except Exception:
            self.log.exception("mqtt %s: error in on_connect", self.client_id)

    def _on_connect_fail(self, _client: paho.Client, _userdata: Any) -> None:
        with contextlib.suppress(Exception):  # even logging must not kill the network thread
            self.log.info("mqtt %s: cannot reach %r; retrying", self.client_id, self.config)

    def _on_disconnect(
        self, _client: paho.Client, _userdata: Any, _flags: Any, reason: ReasonCode, _props: Any
    ) -> None:
        try:
            self._connected.clear()
            if not self._stopping.is_set():
                self.log.info("mqtt %s: disconnected (%s); will reconnect", self.client_id, reason)
        except Exception:
            self.log.exception("mqtt %s: error in on_disconnect", self.client_id)

    def _on_publish(
        self, _client: paho.Client, _userdata: Any, mid: int, reason: ReasonCode, _props: Any
    ) -> None:
        try:
            error = MqttPublishError(f"broker refused publish: {reason}") if reason.is_failure else None
            with self._acks_lock:
                if mid in self._awaiting:
                    on_result = self._awaiting.pop(mid)
                else:  # PUBACK overtook the bookkeeping in _send; it will fire from there
                    self._early[mid] = error
                    return
            if on_result is not None:
                self._call_result(on_result, error)
        except Exception:
            self.log.exception("mqtt %s: error in on_publish", self.client_id)

    def _on_message(self, client: paho.Client, _userdata: Any, msg: paho.MQTTMessage) -> None:
        try:
            topic = msg.topic
            payload = bytes(msg.payload)
            with self._subs_lock:
                handlers = self._matches.get(topic)
                if handlers is None:
                    handlers = [
                        (h, h in self._deferred)
                        for f, (_q, hs) in self._subs.items()
                        if paho.topic_matches_sub(_plain_filter(f), topic)
                        for h in hs
                    ]
                    if len(self._matches) >= _MATCH_CACHE:
                        self._matches.clear()
                    self._matches[topic] = handlers
            deferring = sum(1 for _h, deferred in handlers if deferred)
            owed = [deferring]
            ack_lock = threading.Lock()

            def ack() -> None:  # the broker hears once every deferring handler is done
                with ack_lock:
                    owed[0] -= 1
                    last = owed[0] == 0
                if last:
                    self._ack(client, msg)

            for handler, deferred in handlers:
                try:
                    if deferred:
                        handler(topic, payload, ack)  # type: ignore[call-arg]
                    else:
                        handler(topic, payload)  # type: ignore[call-arg]
                except Exception:
                    self.log.exception("mqtt %s: handler for %s failed", self.client_id, topic)
                    if deferred:
                        ack()
            if deferring == 0:
                self._ack(client, msg)
        except Exception:
            self.log.exception("mqtt %s: error in on_message", self.client_id)

    def _ack(self, client: paho.Client, msg: paho.MQTTMessage) -> None:
        try:
            client.ack(msg.mid, msg.qos)
        except Exception:  # may run on any thread; a lost connection loses the ack, not the caller
            self.log.exception("mqtt %s: acknowledging message %d failed", self.client_id, msg.mid)

    def _call_result(
        self, on_result: Callable[[MqttPublishError | None], None], error: MqttPublishError | None
    ) -> None:
        try:
            on_result(error)
        except Exception:
            self.log.exception("mqtt %s: publish callback failed", self.client_id)


class _PahoLog:
    """paho's own log lines, at their level, under our logger. paho formats a line only for a logger
    that wants its level (an ``on_log`` callback would have it format one for every packet).

    One line is lowered to DEBUG: after our DISCONNECT, paho 2.2's network thread may turn once more
    before ``loop_stop`` ends it and reports "Client is not connected" as an error. During ``stop``
    that is the expected end, not a fault."""

    def __init__(self, logger: logging.Logger, client_id: str, stopping: threading.Event) -> None:
        self.logger = logger
        self.client_id = client_id
        self.stopping = stopping

    def log(self, level: int, msg: str, *args: Any) -> None:
        if not self.logger.isEnabledFor(level):
            return
        message = msg % args if args else msg
        if level > logging.DEBUG and self.stopping.is_set() and message.startswith("Client is not connected"):
            level = logging.DEBUG
            if not self.logger.isEnabledFor(level):
                return
        self.logger.log(level, "mqtt %s: %s", self.client_id, message)


def _plain_filter(topic_filter: str) -> str:
    """``$share/<group>/<filter>`` → ``<filter>``; other filters unchanged."""
    if topic_filter.startswith("$share/"):
        parts = topic_filter.split("/", 2)
        if len(parts) == 3:
            return parts[2]
    return topic_filter
