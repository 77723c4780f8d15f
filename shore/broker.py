"""The embedded MQTT broker for the demo and small installs: amqtt, in-process, MQTT 3.1.1 only.

``EmbeddedBroker`` owns one amqtt ``Broker`` on one TCP listener and its password file. It is
configured the way the shore research notes (amqtt deviations) require:

* ``allow_anonymous`` is off and one user authenticates against a generated argon2 password file
  (``FileAuthPlugin``). amqtt treats *every* session as anonymous when anonymous access is allowed,
  and anonymous sessions never queue messages for offline persistent subscribers;
* disconnected persistent sessions expire after ``session_expiry_s`` (default 7 days), so client ids
  that never return cannot grow memory without bound;
* no ``$SYS`` plugin and no packet logging.

State is **in memory only**: retained messages, persistent sessions and their queued messages are
lost when the broker stops. amqtt's persistence plugin needs SQLAlchemy and aiosqlite, which Seabridge
does not depend on; the durable state (outbox, archive, dedupe) lives in Seabridge's own store, and
publishers re-publish retained ``state/`` topics on start.

Limits inherited from amqtt 0.12.1: MQTT 3.1.1 only (``MqttClient`` falls back automatically), no
``$share`` shared subscriptions (so only one relay worker), delivered QoS = subscription QoS,
messages queued for an offline session arrive with RETAIN=1. Scale-out needs an external broker
(Mosquitto).

It must not: run outside the caller's event loop (amqtt binds to the running loop), listen on
anything but ``host`` (default loopback), or publish anything itself.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import quote

from amqtt.broker import Broker
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

__all__ = ["EmbeddedBroker"]

PASSWORD_FILE_NAME = "mqtt-passwd"
_BIND_ATTEMPTS = 5


class EmbeddedBroker:
    """An amqtt broker in the current event loop, with password auth on ``host:port``.

    ``port=0`` picks a free port; read it from ``.port`` after ``start()``. ``.url`` carries the
    credentials (``mqtt://user:pass@host:port``) and is what ``MqttClient`` takes.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        data_dir: Path,
        username: str,
        password: str,
        session_expiry_s: int = 7 * 24 * 3600,
        log: logging.Logger | None = None,
    ) -> None:
        if not username or ":" in username:
            raise ValueError("username must be non-empty and contain no ':'")
        if not password:
            raise ValueError("password must be non-empty")
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self.data_dir = Path(data_dir)
        self.username = username
        self.password = password
        self.session_expiry_s = session_expiry_s
        self.log = log or logging.getLogger(__name__)
        self._broker: Broker | None = None

    @property
    def password_file(self) -> Path:
        return self.data_dir / PASSWORD_FILE_NAME

    @property
    def port(self) -> int:
        """The bound TCP port (only after ``start``)."""
        if self._port is None:
            raise RuntimeError("EmbeddedBroker is not started")
        return self._port

    @property
    def url(self) -> str:
        """``mqtt://user:pass@host:port`` with user and password percent-encoded."""
        user = quote(self.username, safe="")
        pw = quote(self.password, safe="")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"mqtt://{user}:{pw}@{host}:{self.port}"

    async def start(self) -> None:
        """Write the password file and start listening. Must run inside the loop that will serve it."""
        if self._broker is not None:
            raise RuntimeError("EmbeddedBroker already started")
        await asyncio.to_thread(self._write_password_file)
        last_error: OSError | None = None
        choose_own = False  # set when amqtt hides the port it picked for 0
        for _attempt in range(_BIND_ATTEMPTS):
            port = _free_port(self.host) if choose_own else self._requested_port
            broker = Broker(self._config(port))
            try:
                await broker.start()
            except Exception as exc:  # amqtt wraps bind errors in BrokerError
                cause = exc.__cause__
                if self._requested_port == 0 and isinstance(cause, OSError):
                    last_error = cause  # lost a race for a port we chose ourselves: try another
                    continue
                raise
            bound = port if port else _bound_port(broker, "default")
            if bound is None:
                await broker.shutdown()
                choose_own = True
                continue
            self._broker = broker
            self._port = bound
            self.log.info("embedded MQTT broker listening on %s:%d", self.host, bound)
            return
        raise OSError(f"embedded MQTT broker could not bind {self.host}: {last_error}")

    async def stop(self) -> None:
        """Close every client connection and the listener; retained and session state are dropped."""
        broker, self._broker = self._broker, None
        if broker is not None:
            await broker.shutdown()
            self.log.info("embedded MQTT broker on %s:%s stopped", self.host, self._port)

    async def __aenter__(self) -> EmbeddedBroker:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ internals

    def _config(self, port: int) -> dict[str, Any]:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return {
            "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
            "session_expiry_interval": self.session_expiry_s,
            # Only FileAuthPlugin: a CONNECT without username gets no verdict and is refused.
            "plugins": {
                "amqtt.plugins.authentication.FileAuthPlugin": {"password_file": str(self.password_file)},
            },
        }

    def _write_password_file(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        line = f"{self.username}:{PasswordHash((Argon2Hasher(),)).hash(self.password)}\n"
        tmp = self.password_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(line)
        tmp.replace(self.password_file)


def _bound_port(broker: Broker, listener: str) -> int | None:
    """The port amqtt's listener actually bound (amqtt has no public accessor for it)."""
    server = getattr(broker, "_servers", {}).get(listener)
    sockets = getattr(getattr(server, "instance", None), "sockets", None)
    if not sockets:
        return None
    return int(sockets[0].getsockname()[1])


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
