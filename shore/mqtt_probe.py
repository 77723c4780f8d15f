"""Which MQTT version a broker speaks, asked on a throw-away connection before the real one.

It owns the bare MQTT 5 CONNECT it sends and the reading of the answer; it must not keep the
connection or know about sessions (``shore.mqtt.MqttClient`` uses the answer).
"""

from __future__ import annotations

import contextlib
import socket
import ssl

_PACKET_CONNACK = 0x20
_PACKET_DISCONNECT = b"\xe0\x00"


def probe_mqtt5(host: str, port: int, *, tls: bool = False, timeout: float = 5.0) -> bool:
    """Ask a broker whether it speaks MQTT 5, on a throw-away connection.

    Sends a bare MQTT 5 CONNECT (clean start, no credentials, no properties, empty client id), which a
    3.1.1-only broker can parse and refuse. Any CONNACK in MQTT 5 format, even "not authorised", means
    MQTT 5; a 3.1.1-format CONNACK (two bytes, e.g. amqtt's "unacceptable protocol version") or a
    closed connection means 3.1.1. Raises ``OSError`` when the broker cannot be reached.
    """
    connect = bytes([0x10, 13, 0x00, 0x04]) + b"MQTT" + bytes([5, 0x02, 0x00, 0x1E, 0x00, 0x00, 0x00])
    with socket.create_connection((host, port), timeout=timeout) as raw:
        sock: socket.socket = raw
        if tls:
            sock = ssl.create_default_context().wrap_socket(raw, server_hostname=host)
        sock.sendall(connect)
        header = _recv_exact(sock, 2)
        if header is None or header[0] != _PACKET_CONNACK:
            return False
        remaining = header[1]
        # A 3.1.1 CONNACK is exactly two bytes long; an MQTT 5 one adds properties (a set top bit means
        # a multi-byte length, which only MQTT 5 CONNACKs reach).
        is_v5 = bool(remaining & 0x80) or remaining > 2
        if is_v5:
            with contextlib.suppress(OSError):
                sock.sendall(_PACKET_DISCONNECT)
        else:
            # Let a 3.1.1 broker close first: closing under it makes amqtt log a spurious error.
            with contextlib.suppress(OSError):
                sock.settimeout(min(timeout, 1.0))
                while sock.recv(64):
                    pass
        return is_v5


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        try:
            chunk = sock.recv(n - len(data))
        except (TimeoutError, ConnectionError):
            return None
        if not chunk:
            return None
        data += chunk
    return data
