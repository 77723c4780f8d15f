"""MqttClient against a real Mosquitto and the embedded amqtt broker."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from shore.mqtt import BrokerConfig, MqttClient, probe_mqtt5

CONNECT_TIMEOUT_S = 10.0


class Inbox:
    """Thread-safe collector usable as a subscription handler."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._cond = threading.Condition()

    def __call__(self, topic: str, payload: bytes) -> None:
        with self._cond:
            self.messages.append((topic, payload))
            self._cond.notify_all()

    def wait_for(self, n: int, timeout: float = 5.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self.messages) >= n, timeout)

    def payloads(self) -> list[bytes]:
        with self._cond:
            return [p for _t, p in self.messages]


@pytest.fixture
def topic() -> str:
    """A topic prefix no other test uses (the Mosquitto fixture is shared by the session)."""
    return f"seabridge/test/{uuid.uuid4().hex[:12]}"


@pytest.fixture
def clients() -> Iterator[list[MqttClient]]:
    """Collects clients made by a test and stops them at teardown."""
    made: list[MqttClient] = []
    yield made
    for client in made:
        client.stop()


def connect(clients: list[MqttClient], url: str, name: str, **kw: object) -> MqttClient:
    client = MqttClient(url, f"{name}-{uuid.uuid4().hex[:8]}", reconnect_delay_s=(1, 2), **kw)  # type: ignore[arg-type]
    clients.append(client)
    client.start()
    assert client.wait_connected(CONNECT_TIMEOUT_S), f"{name} did not connect to {url}"
    return client


def subscribed(client: MqttClient, topic_filter: str, handler: Inbox, probe_topic: str) -> None:
    """Subscribe and make sure the SUBACK happened (a message on ``probe_topic`` comes back)."""
    client.subscribe(topic_filter, handler)
    seen = threading.Event()
    client.subscribe(probe_topic, lambda _t, _p: seen.set())
    deadline = time.monotonic() + 5.0
    while not seen.is_set() and time.monotonic() < deadline:
        client.publish(probe_topic, b"ping")
        seen.wait(0.2)
    assert seen.is_set(), "subscription never became active"


# ------------------------------------------------------------------------------------- both brokers


def test_qos1_message_reaches_subscriber(any_broker, clients, topic) -> None:
    sub = connect(clients, any_broker.url, "sub")
    pub = connect(clients, any_broker.url, "pub")
    inbox = Inbox()
    subscribed(sub, f"{topic}/up/#", inbox, f"{topic}/probe")

    for i in range(5):
        pub.publish(f"{topic}/up/{i}", f"m{i}".encode(), qos=1)

    assert inbox.wait_for(5)
    assert sorted(inbox.messages) == [(f"{topic}/up/{i}", f"m{i}".encode()) for i in range(5)]


def test_on_done_fires_once_per_acknowledged_publish(any_broker, clients, topic) -> None:
    pub = connect(clients, any_broker.url, "pub")
    done: list[int] = []
    all_done = threading.Event()

    def on_done(i: int) -> None:
        done.append(i)
        if len(done) == 20:
            all_done.set()

    for i in range(20):
        pub.publish(f"{topic}/n", b"x", on_done=lambda i=i: on_done(i))

    assert all_done.wait(5)
    time.sleep(0.1)
    assert sorted(done) == list(range(20))


def test_publish_and_wait_returns_after_ack(any_broker, clients, topic) -> None:
    pub = connect(clients, any_broker.url, "pub")
    sub = connect(clients, any_broker.url, "sub")
    inbox = Inbox()
    subscribed(sub, f"{topic}/aw", inbox, f"{topic}/probe")

    async def main() -> None:
        await pub.publish_and_wait(f"{topic}/aw", b"acked", timeout=5)

    asyncio.run(main())
    assert inbox.wait_for(1)
    assert inbox.payloads() == [b"acked"]


def test_retained_message_reaches_late_subscriber(any_broker, clients, topic) -> None:
    pub = connect(clients, any_broker.url, "pub")
    acked = threading.Event()
    pub.publish(f"{topic}/state/link", b'{"net":"sbd"}', retain=True, on_done=acked.set)
    assert acked.wait(5)

    late = connect(clients, any_broker.url, "late")
    inbox = Inbox()
    late.subscribe(f"{topic}/state/#", inbox)

    assert inbox.wait_for(1)
    assert inbox.messages == [(f"{topic}/state/link", b'{"net":"sbd"}')]
    pub.publish(f"{topic}/state/link", b"", retain=True)  # clear it for later sessions


def test_auto_protocol_is_mqtt5_on_mosquitto_and_311_on_embedded(any_broker, clients) -> None:
    client = connect(clients, any_broker.url, "proto")
    assert client.mqtt5 is (any_broker.kind == "mosquitto")


def test_raising_handler_does_not_stop_later_deliveries(any_broker, clients, topic) -> None:
    sub = connect(clients, any_broker.url, "sub")
    pub = connect(clients, any_broker.url, "pub")
    calls: list[bytes] = []

    def bad_handler(_topic: str, payload: bytes) -> None:
        calls.append(payload)
        raise RuntimeError("handler bug")

    inbox = Inbox()
    sub.subscribe(f"{topic}/x", bad_handler)
    subscribed(sub, f"{topic}/x", inbox, f"{topic}/probe")

    pub.publish(f"{topic}/x", b"1")
    pub.publish(f"{topic}/x", b"2")

    assert inbox.wait_for(2)
    assert inbox.payloads() == [b"1", b"2"]
    assert calls == [b"1", b"2"]
    assert sub.connected


def test_persistent_subscriber_receives_messages_published_while_offline(any_broker, clients, topic) -> None:
    client_id = f"persist-{uuid.uuid4().hex[:8]}"
    first = MqttClient(any_broker.url, client_id, persistent_session=True, reconnect_delay_s=(1, 2))
    clients.append(first)
    first.start()
    assert first.wait_connected(CONNECT_TIMEOUT_S)
    subscribed(first, f"{topic}/q", Inbox(), f"{topic}/probe")
    first.stop()

    pub = connect(clients, any_broker.url, "pub")
    acked = threading.Event()
    pub.publish(f"{topic}/q", b"while-away", on_done=acked.set)
    assert acked.wait(5)

    inbox = Inbox()
    again = MqttClient(any_broker.url, client_id, persistent_session=True, reconnect_delay_s=(1, 2))
    clients.append(again)
    again.subscribe(f"{topic}/q", inbox)
    again.start()

    assert inbox.wait_for(1)
    time.sleep(0.3)
    assert inbox.payloads() == [b"while-away"]


# ------------------------------------------------------------------------------------- Mosquitto only


def test_publish_during_broker_restart_is_delivered_exactly_once(mosquitto, clients, topic) -> None:
    sub = MqttClient(
        mosquitto.url, f"sub-{uuid.uuid4().hex[:8]}", persistent_session=True, reconnect_delay_s=(1, 2)
    )
    clients.append(sub)
    inbox = Inbox()
    sub.subscribe(f"{topic}/up/#", inbox)
    sub.start()
    assert sub.wait_connected(CONNECT_TIMEOUT_S)
    pub = connect(clients, mosquitto.url, "pub")
    subscribed(sub, f"{topic}/up/#", Inbox(), f"{topic}/probe")

    done = threading.Event()
    mosquitto.stop()
    deadline = time.monotonic() + 5.0
    while pub.connected and time.monotonic() < deadline:  # publish on the NO_CONN path
        time.sleep(0.02)
    assert not pub.connected
    pub.publish(f"{topic}/up/a", b"during-outage", on_done=done.set)
    time.sleep(0.2)
    assert not done.is_set(), "on_done must wait for the broker's PUBACK"
    mosquitto.start(keep_port=True)

    assert done.wait(CONNECT_TIMEOUT_S)
    assert inbox.wait_for(1, CONNECT_TIMEOUT_S)
    time.sleep(0.5)
    assert inbox.payloads() == [b"during-outage"]


def test_persistent_session_survives_broker_restart(mosquitto, clients, topic) -> None:
    client_id = f"persist-{uuid.uuid4().hex[:8]}"
    first = MqttClient(mosquitto.url, client_id, persistent_session=True, reconnect_delay_s=(1, 2))
    clients.append(first)
    first.start()
    assert first.wait_connected(CONNECT_TIMEOUT_S)
    subscribed(first, f"{topic}/q", Inbox(), f"{topic}/probe")
    first.stop()

    pub = connect(clients, mosquitto.url, "pub")
    acked = threading.Event()
    pub.publish(f"{topic}/q", b"queued-before-restart", on_done=acked.set)
    assert acked.wait(5)
    mosquitto.restart()

    inbox = Inbox()
    again = MqttClient(mosquitto.url, client_id, persistent_session=True, reconnect_delay_s=(1, 2))
    clients.append(again)
    again.subscribe(f"{topic}/q", inbox)
    again.start()

    assert inbox.wait_for(1, CONNECT_TIMEOUT_S)
    time.sleep(0.3)
    assert inbox.payloads() == [b"queued-before-restart"]


def test_forced_311_on_mosquitto_is_not_mqtt5(mosquitto, clients) -> None:
    client = connect(clients, mosquitto.url, "v311", protocol="3.1.1")
    assert client.mqtt5 is False


def test_mqtt5_extras_reach_an_mqtt5_subscriber(mosquitto, clients, topic) -> None:
    sub = connect(clients, mosquitto.url, "sub")
    pub = connect(clients, mosquitto.url, "pub")
    inbox = Inbox()
    subscribed(sub, f"{topic}/evt", inbox, f"{topic}/probe")
    pub.publish(f"{topic}/evt", b"{}", expiry_s=60, content_type="application/json")
    assert inbox.wait_for(1)


# ------------------------------------------------------------------------------------- embedded only


def test_embedded_broker_refuses_wrong_password(embedded_broker, clients) -> None:
    bad_url = f"mqtt://{embedded_broker.broker.username}:wrong@127.0.0.1:{embedded_broker.port}"
    client = MqttClient(bad_url, "intruder", reconnect_delay_s=(1, 2))
    clients.append(client)
    client.start()
    assert not client.wait_connected(1.0)


def test_embedded_broker_refuses_anonymous(embedded_broker, clients) -> None:
    client = MqttClient(f"mqtt://127.0.0.1:{embedded_broker.port}", "anon", reconnect_delay_s=(1, 2))
    clients.append(client)
    client.start()
    assert not client.wait_connected(1.0)


def test_embedded_broker_port_zero_picks_a_free_port(embedded_broker) -> None:
    assert embedded_broker.port > 0
    assert embedded_broker.url.endswith(f"@127.0.0.1:{embedded_broker.port}")
    assert (embedded_broker.broker.password_file.stat().st_mode & 0o777) == 0o600


# ------------------------------------------------------------------------------------- no broker


def test_broker_config_parses_credentials_and_default_port() -> None:
    cfg = BrokerConfig("mqtt://relay%40fleet:p%3Ass@broker.example:2883")
    assert (cfg.host, cfg.port, cfg.username, cfg.password, cfg.tls) == (
        "broker.example",
        2883,
        "relay@fleet",
        "p:ss",
        False,
    )
    assert BrokerConfig("mqtts://h").port == 8883
    assert BrokerConfig("mqtt://h").username is None
    assert "p:ss" not in repr(cfg)
    with pytest.raises(ValueError):
        BrokerConfig("http://h:1883")


def test_probe_on_closed_port_raises_oserror() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(OSError):
        probe_mqtt5("127.0.0.1", port, timeout=1.0)


def test_publish_before_protocol_is_known_is_sent_after_connect(any_broker, clients, topic) -> None:
    sub = connect(clients, any_broker.url, "sub")
    inbox = Inbox()
    subscribed(sub, f"{topic}/early", inbox, f"{topic}/probe")

    pub = MqttClient(any_broker.url, f"early-{uuid.uuid4().hex[:8]}", reconnect_delay_s=(1, 2))
    clients.append(pub)
    done = threading.Event()
    pub.publish(f"{topic}/early", b"before-start", on_done=done.set)
    pub.start()

    assert done.wait(5)
    assert inbox.wait_for(1)
    time.sleep(0.2)
    assert inbox.payloads() == [b"before-start"]


def test_stopping_a_connected_client_logs_no_error(mosquitto, caplog) -> None:
    """paho 2.2's network thread may turn once more after our DISCONNECT and report "Client is not
    connected" as an error; an orderly stop is not an error (the demo's smoke test used to end on one)."""
    caplog.set_level(logging.DEBUG, logger="shore.mqtt")
    for _ in range(40):
        client = MqttClient(mosquitto.url, f"stopper-{uuid.uuid4().hex[:8]}", protocol="3.1.1")
        client.start()
        assert client.wait_connected(CONNECT_TIMEOUT_S)
        client.stop()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
