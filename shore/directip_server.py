"""asyncio adapters around the DirectIP codec: the shore's MO server and the MO/MT TCP clients.

Owns the TCP side of DirectIP: one message per connection, who may connect (an accept-list of source
networks), read deadlines (idle and whole-message), connection limits (in total and per source
address), and the confirmation written back before the connection is closed. The byte layouts and every judgement about
them belong to ``shore.directip``; this module only moves bytes and counts what happened.

* :class:`DirectIpMoServer` — the vendor's MO listener. The Iridium gateway connects, sends one MO
  message and (if the IMEI is provisioned for MO confirmation) waits for a confirmation; the server
  decodes it, hands it to an async handler, answers status 1 if the handler returned True and status 0
  otherwise, and closes. Garbage, slow peers and failing handlers are logged and counted, never raised.
  A full server makes room for a new connection by closing the oldest one still waiting for its
  message (per source address first, then in total), so idle or trickling peers cannot keep a real
  delivery out; connections already handing a message to the relay are never cut.
* :func:`send_mt` — the vendor's MT client: one MT message out, one MT confirmation back.
* :func:`send_mo` — the gateway's MO client (used by the emulated Iridium network).
* :func:`read_message` — read one whole DirectIP message from a stream with a deadline.

This module must not decide what an MO message means (that is the relay pipeline's job) and must not
retry: retry schedules belong to the caller. Network I/O deadlines are real (event-loop) time; the
injected clock stamps what the server reports (``last_message_at``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from common.clock import Clock, SystemClock
from shore.directip import (
    MAX_MESSAGE_LENGTH,
    DirectIpError,
    MoMessage,
    MtConfirmation,
    MtMessage,
    decode_mo,
    decode_mo_confirmation,
    decode_mt_confirmation,
    encode_mo,
    encode_mo_confirmation,
    encode_mt,
)
from shore.directip_framing import MessageReader

__all__ = ["LOOPBACK_ONLY", "DirectIpMoServer", "MoHandler", "read_message", "send_mo", "send_mt"]

MoHandler = Callable[[MoMessage], Awaitable[bool]]

_LOG = logging.getLogger(__name__)

# Who may connect when nobody says otherwise: this host only. A public listener lists the network's
# published source addresses instead (docs/deploy.md, "Hardening the shore").
LOOPBACK_ONLY: tuple[str, ...] = ("127.0.0.0/8", "::1/128")

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Iterable[str]) -> tuple[_Network, ...]:
    """``["12.47.179.11", "10.0.0.0/8"]`` → networks; a bare address is a /32 (/128). ValueError names
    the bad entry."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(f"not an address or network: {entry!r}") from None
    return tuple(networks)


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        addr = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


async def read_message(
    reader: asyncio.StreamReader,
    *,
    timeout_s: float,
    max_length: int = MAX_MESSAGE_LENGTH,
    idle_timeout_s: float | None = None,
) -> bytes:
    """Read exactly one DirectIP message (preamble + overall length) from ``reader``.

    Raises ``TimeoutError`` if it has not arrived within ``timeout_s`` seconds, or if ``idle_timeout_s``
    is set and that long passes without a byte (before the first one or between two), ``EOFError`` if the peer
    closes without sending a byte, :class:`TruncatedMessage` if it closes mid-message, and another
    :class:`DirectIpError` for a bad revision or an overall length above ``max_length``. Bytes after the
    message are left unread.
    """
    framer = MessageReader(max_length)
    async with asyncio.timeout(timeout_s):
        while True:
            message = framer.next_message()
            if message is not None:
                return message
            # Never ask for more than the message still needs, so nothing after it is consumed.
            async with asyncio.timeout(idle_timeout_s):
                chunk = await reader.read(max(1, framer.missing))
            if not chunk:
                framer.end_of_stream()
                raise EOFError("peer closed the connection without sending anything")
            framer.feed(chunk)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


async def send_mt(host: str, port: int, message: MtMessage, timeout_s: float = 30.0) -> MtConfirmation:
    """Send one MT message to a DirectIP MT server and return its confirmation.

    Raises ``OSError`` if the connection fails, ``TimeoutError`` if no whole confirmation arrives within
    ``timeout_s`` (one deadline for connecting, sending and reading), ``EOFError`` if the server closes
    without answering, and :class:`DirectIpError` if the answer is malformed.
    """
    data = encode_mt(message)
    async with asyncio.timeout(timeout_s):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(data)
            await writer.drain()
            answer = await read_message(reader, timeout_s=timeout_s)
        finally:
            await _close(writer)
    return decode_mt_confirmation(answer)


async def send_mo(
    host: str, port: int, data: bytes | MoMessage, *, timeout_s: float = 30.0, wait_confirmation: bool = True
) -> bool:
    """Deliver one MO message the way the Iridium gateway does: connect, send, (await confirmation), close.

    Returns True when the message counts as delivered: a status-1 confirmation arrived, or the message was
    written and ``wait_confirmation`` is False. Returns False on a status-0 confirmation. Raises
    ``OSError`` / ``TimeoutError`` when the connection or the confirmation fails, and
    ``EOFError`` if the server closes without a confirmation, and :class:`DirectIpError` for a malformed
    one.
    """
    raw = encode_mo(data) if isinstance(data, MoMessage) else bytes(data)
    async with asyncio.timeout(timeout_s):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(raw)
            await writer.drain()
            if not wait_confirmation:
                return True
            answer = await read_message(reader, timeout_s=timeout_s)
        finally:
            await _close(writer)
    return decode_mo_confirmation(answer)


@dataclass
class _Connection:
    peer: str  # source address (no port)
    opened: float  # event-loop time
    task: asyncio.Task[None]
    reading: bool = True  # still waiting for its message (may be cut to make room)
    evicted: bool = False


class DirectIpMoServer:
    """TCP listener for DirectIP MO deliveries (one message per connection).

    ``handler`` is awaited with each decoded message; its True/False (or an exception, counted as False)
    becomes the MO confirmation status. Only peers inside ``accept_from`` (networks or addresses; an
    empty list accepts anyone) are served. A peer has ``idle_timeout_s`` for its first byte and between
    bytes, and ``read_timeout_s`` for the whole message. At most ``max_per_peer`` connections per source
    address and ``max_connections`` in all are open; a connection beyond either limit closes the oldest
    connection still waiting for its message to make room, and is refused only when every open one is
    already in the handler.

    ``counters`` holds: ``connections``, ``accepted`` (handler said True), ``handler_failed`` (False or
    raised), ``rejected`` (undecodable bytes), ``timeouts``, ``closed_early`` (peer closed before
    sending anything), ``refused`` (no room), ``evicted`` (cut to make room), ``not_allowed`` (source
    outside ``accept_from``).
    """

    def __init__(
        self,
        host: str,
        port: int,
        handler: MoHandler,
        *,
        read_timeout_s: float = 30.0,
        idle_timeout_s: float = 10.0,
        max_connections: int = 64,
        max_per_peer: int = 8,
        accept_from: Iterable[str] = LOOPBACK_ONLY,
        clock: Clock | None = None,
        log: logging.Logger | None = None,
        send_confirmation: bool = True,
        max_message_bytes: int = MAX_MESSAGE_LENGTH,
    ) -> None:
        if read_timeout_s <= 0 or idle_timeout_s <= 0:
            raise ValueError("read_timeout_s and idle_timeout_s must be positive")
        if max_connections <= 0 or max_per_peer <= 0:
            raise ValueError("max_connections and max_per_peer must be positive")
        self.host = host
        self._requested_port = port
        self._handler = handler
        self.read_timeout_s = read_timeout_s
        self.idle_timeout_s = min(idle_timeout_s, read_timeout_s)
        self.max_connections = max_connections
        self.max_per_peer = min(max_per_peer, max_connections)
        self.accept_from = parse_networks(accept_from)
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._log = log if log is not None else _LOG
        self.send_confirmation = send_confirmation
        self.max_message_bytes = max_message_bytes
        self.counters: dict[str, int] = dict.fromkeys(
            (
                "connections",
                "accepted",
                "handler_failed",
                "rejected",
                "timeouts",
                "closed_early",
                "refused",
                "evicted",
                "not_allowed",
            ),
            0,
        )
        self.last_message_at: float | None = None
        self._server: asyncio.Server | None = None
        self._open: dict[asyncio.Task[None], _Connection] = {}

    @property
    def port(self) -> int:
        """The bound port (the real one when constructed with port 0); only valid after :meth:`start`."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("server is not started")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def active_connections(self) -> int:
        return len(self._open)

    def allowed(self, host: str) -> bool:
        """True if a peer at ``host`` may deliver (inside ``accept_from``, or the list is empty)."""
        if not self.accept_from:
            return True
        addr = _address(host)
        return addr is not None and any(addr in net for net in self.accept_from)

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("server already started")
        self._server = await asyncio.start_server(self._accept, self.host, self._requested_port)
        allowed = ", ".join(map(str, self.accept_from)) or "anyone"
        self._log.info("DirectIP MO server listening on %s:%d (accepts %s)", self.host, self.port, allowed)

    async def stop(self, grace_s: float = 5.0) -> None:
        """Stop listening, give open connections ``grace_s`` seconds to finish, then cancel them."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        if self._open:
            _done, pending = await asyncio.wait(set(self._open), timeout=grace_s)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        await server.wait_closed()
        self._log.info("DirectIP MO server stopped")

    async def __aenter__(self) -> DirectIpMoServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def _oldest_waiting(self, peer: str | None) -> _Connection | None:
        waiting = [c for c in self._open.values() if c.reading and (peer is None or c.peer == peer)]
        return min(waiting, key=lambda c: c.opened, default=None)

    def _make_room(self, peer: str) -> bool:
        """Close the oldest connections still waiting for their message until a new one from ``peer``
        fits both limits; False if it cannot (every open connection is in the handler)."""
        for scope, limit in ((peer, self.max_per_peer), (None, self.max_connections)):
            while sum(1 for c in self._open.values() if scope is None or c.peer == scope) >= limit:
                victim = self._oldest_waiting(scope)
                if victim is None:
                    return False
                victim.evicted = True
                del self._open[victim.task]
                victim.task.cancel()
                self.counters["evicted"] += 1
                self._log.warning("DirectIP MO: closing an idle connection from %s to make room", victim.peer)
        return True

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is None:  # pragma: no cover - start_server always runs callbacks in a task
            await _close(writer)
            return
        self.counters["connections"] += 1
        peer = _peer_host(writer)
        if not self.allowed(peer):
            self.counters["not_allowed"] += 1
            self._log.warning("DirectIP MO: %s is not in the accept-list; closed", peer)
            await _close(writer)
            return
        if not self._make_room(peer):
            self.counters["refused"] += 1
            self._log.warning("DirectIP MO: refusing %s, %d connections busy", peer, len(self._open))
            await _close(writer)
            return
        conn = _Connection(peer, asyncio.get_running_loop().time(), task)
        self._open[task] = conn
        try:
            await self._serve(reader, writer, conn)
        except asyncio.CancelledError:
            if not conn.evicted:
                raise
        finally:
            self._open.pop(task, None)
            await _close(writer)

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: _Connection
    ) -> None:
        peer = _peer(writer)
        try:
            raw = await read_message(
                reader,
                timeout_s=self.read_timeout_s,
                max_length=self.max_message_bytes,
                idle_timeout_s=self.idle_timeout_s,
            )
            conn.reading = False
            message = decode_mo(raw)
        except TimeoutError:
            self.counters["timeouts"] += 1
            self._log.warning(
                "DirectIP MO from %s: no whole message within %.1f s (or %.1f s without a byte)",
                peer,
                self.read_timeout_s,
                self.idle_timeout_s,
            )
            return
        except EOFError:
            self.counters["closed_early"] += 1
            self._log.info("DirectIP MO from %s: connection closed without data", peer)
            return
        except DirectIpError as exc:
            self.counters["rejected"] += 1
            self._log.warning("DirectIP MO from %s rejected: %s: %s", peer, type(exc).__name__, exc)
            return
        except OSError as exc:
            self.counters["rejected"] += 1
            self._log.warning("DirectIP MO from %s: read failed: %s", peer, exc)
            return
        self.last_message_at = self._clock.now()
        ok = await self._call_handler(message, peer)
        self.counters["accepted" if ok else "handler_failed"] += 1
        if self.send_confirmation:
            try:
                writer.write(encode_mo_confirmation(ok))
                await asyncio.wait_for(writer.drain(), self.read_timeout_s)
            except (OSError, TimeoutError) as exc:
                self._log.warning("DirectIP MO from %s: confirmation not sent: %s", peer, exc)

    async def _call_handler(self, message: MoMessage, peer: str) -> bool:
        h = message.header
        try:
            result = await self._handler(message)
        except Exception:
            self._log.exception(
                "DirectIP MO handler failed for IMEI %s MOMSN %d (from %s)", h.imei, h.momsn, peer
            )
            return False
        if result is not True:
            self._log.warning(
                "DirectIP MO handler declined IMEI %s MOMSN %d (from %s)", h.imei, h.momsn, peer
            )
            return False
        return True


def _peer_host(writer: asyncio.StreamWriter) -> str:
    info = writer.get_extra_info("peername")
    if isinstance(info, tuple) and info:
        return str(info[0])
    return str(info)


def _peer(writer: asyncio.StreamWriter) -> str:
    info = writer.get_extra_info("peername")
    if isinstance(info, tuple) and len(info) >= 2:
        return f"{info[0]}:{info[1]}"
    return str(info)


def directip_rejections(server: DirectIpMoServer) -> dict[str, int]:
    """The server's refusals under the relay's rejection reasons (metrics and health)."""
    c = server.counters
    return {
        "directip-undecodable": c["rejected"],
        "directip-timeout": c["timeouts"],
        "directip-refused": c["refused"],
        "directip-evicted": c["evicted"],
        "directip-not-allowed": c["not_allowed"],
    }

