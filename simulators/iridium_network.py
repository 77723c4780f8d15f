"""Emulated Iridium gateway (the "network side" between a simulated modem and the shore).

Owns what the real Iridium gateway does with SBD traffic, over real TCP:

* **MO path.** :meth:`IridiumNetwork.session` is called by the modem emulator for every SBD session
  (``AT+SBDIX``). It turns the MO payload (or a payload-less mailbox check) into a DirectIP MO message —
  CDR reference counting up, session time, MOMSN, MTMSN of the MT handed over, optional location — and
  queues it FIFO for each configured shore destination. One delivery task per destination pushes the head
  of its queue with the DirectIP MO client (one message per connection; with ``mo_confirmation`` it waits
  for a status-1 confirmation). A failed attempt (refused connection, timeout, missing or status-0
  confirmation) is retried after 1, 5, 10, 20, 30, 60, 120, 240, 360 s and then every 360 s until the
  message is 12 h old (SBDG §4). ``retry_scale`` multiplies those delays and the lifetime for demos and
  tests; ``latency_s`` delays the first attempt (satellite and gateway processing).
* **MT path.** A DirectIP MT server answers each MT message with an MT confirmation carrying the real
  status codes, keeps a per-IMEI MT queue (priority ordered, bounded by the IMEI's profile
  ``mt_queue_max``, payloads bounded by its ``mt_max_bytes``), assigns MTMSNs (1..65535, wrapping) and
  calls the ring callbacks (``callback(imei, now)``, plain or async) whenever an MT is queued or a ring
  alert is requested, so the modem emulator can raise SBDRING. The next :meth:`session` of that IMEI
  hands the head of the queue over as ``MtDelivery`` (the modem emulator's type, so this class satisfies
  its ``SatelliteNetwork`` protocol; :meth:`IridiumNetwork.attach` wires a modem emulator in).
* **Provisioning.** A registry of known IMEIs and the firmware profile each one's modem uses.

It must not print, must not read the wall clock (time comes from the injected ``Clock``), must not know
about the wire format inside payloads, and must not import the gateway or shore relay beyond the DirectIP
codec and its TCP helpers. Network I/O deadlines (``io_timeout_s``) are real time.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import re
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field

from common.clock import Clock
from firmware_profiles import ModemProfile, load_profile
from shore.directip import (
    MT_PRIORITY_DEFAULT,
    DirectIpError,
    MoHeader,
    MoLocation,
    MoMessage,
    MtConfirmation,
    MtFlags,
    MtMessage,
    PayloadTooLarge,
    decode_mt,
    encode_mo,
    encode_mt_confirmation,
    salvage_mt_header,
)
from shore.directip_server import read_message, send_mo
from simulators.iridium_modem import IridiumModemEmulator, MtDelivery

__all__ = [
    "MO_LIFETIME_S",
    "MO_QUEUE_MAX",
    "MO_RETRY_REPEAT_S",
    "MO_RETRY_SCHEDULE_S",
    "DeliveryAttempt",
    "IridiumNetwork",
    "MtDelivery",
    "RingCallback",
    "UnknownImei",
]

# Iridium gateway behaviour towards DirectIP MO destinations (SBDG §4.2.4).
MO_RETRY_SCHEDULE_S: tuple[float, ...] = (1, 5, 10, 20, 30, 60, 120, 240, 360)
MO_RETRY_REPEAT_S: float = 360
MO_LIFETIME_S: float = 12 * 3600
MO_QUEUE_MAX = 10_000  # per vendor application; the oldest message is dropped beyond this
# MT messages wait at the gateway for up to 5 days (SBDG §7).
MT_LIFETIME_S: float = 5 * 86400

_MTMSN_MAX = 0xFFFF
_U32_MAX = 0xFFFF_FFFF
_PRIORITY_RANGE = range(1, MT_PRIORITY_DEFAULT + 1)
_IMEI = re.compile(r"[0-9]{15}")
_NO_CLIENT_ID = bytes(4)
_NO_IMEI = "0" * 15

# MT confirmation statuses used here (SBDG Table 7.1-5).
_MT_OK_NO_PAYLOAD = 0
_MT_BAD_IMEI = -1
_MT_UNKNOWN_IMEI = -2
_MT_TOO_LARGE = -3
_MT_MISSING_PAYLOAD = -4
_MT_QUEUE_FULL = -5
_MT_PROTOCOL_VIOLATION = -7
_MT_RING_ALERTS_DISABLED = -8  # ring-alert request for an IMEI provisioned without ring alerts
_MT_NOT_ATTACHED = -9  # ring-alert request for an IMEI that never registered (no SBDIX/SBDREG yet)
_MT_MTMSN_RANGE = -11

RingCallback = Callable[[str, float], Awaitable[None] | None]


@dataclass(frozen=True)
class DeliveryAttempt:
    """One MO push to a shore destination, as recorded in :attr:`IridiumNetwork.attempts`."""

    destination: tuple[str, int]
    imei: str
    momsn: int
    attempt: int
    at: float
    delivered: bool
    error: str | None = None


class UnknownImei(LookupError):
    """A session for an IMEI that is not provisioned in the network's registry."""


@dataclass
class _PendingMo:
    data: bytes
    imei: str
    momsn: int
    created_at: float
    due_at: float
    attempts: int = 0


@dataclass
class _Destination:
    host: str
    port: int
    queue: deque[_PendingMo] = field(default_factory=deque)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)


@dataclass
class _QueuedMt:
    payload: bytes
    mtmsn: int
    priority: int
    queued_at: float


class IridiumNetwork:
    """The emulated Iridium gateway. Construct, :meth:`register_imei` (or pass ``imeis``), ``await start()``.

    Args:
        clock: time source for session scheduling, retries, lifetimes and ring callbacks.
        shore: DirectIP MO destinations as ``(host, port)``; each gets its own FIFO queue (at most 5).
        imeis: initial registry, IMEI → firmware profile name (e.g. ``"iridium-9603"``).
        mo_confirmation: wait for the shore's MO confirmation (the IMEI is "provisioned for MO
            confirmation"); without it a message counts as delivered once written.
        retry_scale: factor on the MO retry delays and the MO lifetime (1.0 = the real schedule).
        latency_s: clock seconds between a session and the first delivery attempt of its MO message.
        mt_host, mt_port: where the DirectIP MT server listens (port 0 = an ephemeral port).
        io_timeout_s: real-time deadline for each TCP exchange (MO push, MT read).
        cdr_start: first CDR reference handed out.
        log: logger (default: this module's).
    """

    def __init__(
        self,
        *,
        clock: Clock,
        shore: Iterable[tuple[str, int]] = (),
        imeis: Mapping[str, str] | None = None,
        mo_confirmation: bool = True,
        retry_scale: float = 1.0,
        latency_s: float = 0.0,
        mt_host: str = "127.0.0.1",
        mt_port: int = 0,
        io_timeout_s: float = 10.0,
        cdr_start: int = 1,
        log: logging.Logger | None = None,
    ) -> None:
        if retry_scale <= 0:
            raise ValueError("retry_scale must be positive")
        if latency_s < 0:
            raise ValueError("latency_s must not be negative")
        if io_timeout_s <= 0:
            raise ValueError("io_timeout_s must be positive")
        self._clock = clock
        self._destinations = [_Destination(host, int(port)) for host, port in shore]
        if len(self._destinations) > 5:
            raise ValueError("DirectIP allows at most 5 MO destinations")
        self.mo_confirmation = mo_confirmation
        self.retry_scale = retry_scale
        self.latency_s = latency_s
        self._mt_host = mt_host
        self._mt_port = mt_port
        self.io_timeout_s = io_timeout_s
        self._log = log if log is not None else logging.getLogger(__name__)
        self._cdr = cdr_start & _U32_MAX
        self._auto_id = 0
        self._profiles: dict[str, ModemProfile] = {}
        self._locations: dict[str, MoLocation] = {}
        self._mt_queues: dict[str, list[_QueuedMt]] = {}
        self._mtmsn: dict[str, int] = {}
        self.ring_alerts_disabled: set[str] = set()  # provisioning: IMEIs without ring alerts
        self.attached: set[str] = set()  # IMEIs registered by a session (kept by the gateway, not the modem)
        self._ring_callbacks: list[RingCallback] = []
        self._mt_server: asyncio.Server | None = None
        self._mt_tasks: set[asyncio.Task[None]] = set()
        self._runner: asyncio.Task[None] | None = None
        self._group: asyncio.TaskGroup | None = None
        self.attempts: deque[DeliveryAttempt] = deque(maxlen=10_000)
        self.stats: dict[str, int] = dict.fromkeys(
            (
                "sessions",
                "mo_queued",
                "mo_attempts",
                "mo_delivered",
                "mo_failed_attempts",
                "mo_expired",
                "mo_dropped",
                "mt_received",
                "mt_accepted",
                "mt_rejected",
                "mt_delivered",
                "mt_expired",
                "ring_alerts",
            ),
            0,
        )
        for imei, profile_name in (imeis or {}).items():
            self.register_imei(imei, profile_name)

    # ---------------------------------------------------------------------------------------- registry

    def register_imei(self, imei: str, profile_name: str) -> None:
        """Provision ``imei`` (15 digits) with the firmware profile its modem uses."""
        if not _IMEI.fullmatch(imei):
            raise ValueError(f"IMEI {imei!r} is not 15 digits")
        self._profiles[imei] = load_profile(profile_name)
        self._mt_queues.setdefault(imei, [])

    def profile_of(self, imei: str) -> ModemProfile:
        try:
            return self._profiles[imei]
        except KeyError:
            raise UnknownImei(f"IMEI {imei} is not provisioned") from None

    @property
    def imeis(self) -> dict[str, str]:
        """IMEI → profile name."""
        return {imei: profile.name for imei, profile in self._profiles.items()}

    def set_location(self, imei: str, location: MoLocation | None) -> None:
        """The position reported in the MO location IE of ``imei``'s next sessions (None: no IE)."""
        self.profile_of(imei)
        if location is None:
            self._locations.pop(imei, None)
        else:
            self._locations[imei] = location

    def add_ring_callback(self, callback: RingCallback) -> None:
        """Call ``callback(imei, now)`` whenever an MT message is queued or a ring alert is requested."""
        self._ring_callbacks.append(callback)

    on_mt_queued = add_ring_callback

    def attach(self, modem: IridiumModemEmulator) -> None:
        """Provision ``modem``'s IMEI with its profile; ring it (``modem.ring_alert``) when MT is queued."""
        self.register_imei(modem.imei, modem.profile.name)

        def ring(imei: str, now: float) -> None:
            if imei == modem.imei:
                modem.ring_alert(now)

        self.add_ring_callback(ring)

    # ---------------------------------------------------------------------------------------- MO path

    def session(
        self,
        imei: str,
        mo_payload: bytes | None,
        momsn: int,
        now: float,
        *,
        location: MoLocation | None = None,
        take_mt: bool = True,
    ) -> MtDelivery:
        """One successful SBD session of ``imei`` at ``now``: queue the MO for the shore, hand over an MT.

        ``mo_payload`` None or empty is a mailbox check, delivered to the shore without a payload IE.
        ``location`` overrides the position set with :meth:`set_location`. Raises :class:`UnknownImei`
        for an IMEI not provisioned and ``ValueError`` for an MO payload above the profile's
        ``mo_max_bytes``. Synchronous: delivery to the shore happens later, in the delivery tasks.
        """
        profile = self.profile_of(imei)
        payload = bytes(mo_payload) if mo_payload else None
        if payload is not None and len(payload) > profile.limits.mo_max_bytes:
            raise ValueError(
                f"MO payload of {len(payload)} bytes exceeds {profile.name} mo_max_bytes "
                f"{profile.limits.mo_max_bytes}"
            )
        self.stats["sessions"] += 1
        self.attached.add(imei)
        mt = self._pop_mt(imei, now) if take_mt else MtDelivery(queued=len(self._mt_queues.get(imei, ())))
        header = MoHeader(
            cdr_reference=self._next_cdr(),
            imei=imei,
            session_status=0,
            momsn=momsn & _MTMSN_MAX,
            mtmsn=mt.mtmsn,
            session_time=int(now) & _U32_MAX,
        )
        where = location if location is not None else self._locations.get(imei)
        data = encode_mo(MoMessage(header=header, payload=payload, location=where))
        self._enqueue_mo(data, imei, header.momsn)
        return mt

    def pending_mo(self) -> int:
        """MO messages not yet delivered, summed over all destinations."""
        return sum(len(d.queue) for d in self._destinations)

    def _next_cdr(self) -> int:
        cdr = self._cdr
        self._cdr = (self._cdr + 1) & _U32_MAX
        return cdr

    def _enqueue_mo(self, data: bytes, imei: str, momsn: int) -> None:
        created = self._clock.now()
        for dest in self._destinations:
            if len(dest.queue) >= MO_QUEUE_MAX:
                dropped = dest.queue.popleft()
                self.stats["mo_dropped"] += 1
                self._log.warning(
                    "MO queue for %s:%d full, dropped IMEI %s MOMSN %d",
                    dest.host,
                    dest.port,
                    dropped.imei,
                    dropped.momsn,
                )
            dest.queue.append(_PendingMo(data, imei, momsn, created, created + self.latency_s))
            dest.wakeup.set()
            self.stats["mo_queued"] += 1

    def retry_delay(self, failures: int) -> float:
        """Clock seconds to wait after the ``failures``-th failed attempt (1-based), scaled."""
        index = failures - 1
        base = MO_RETRY_SCHEDULE_S[index] if index < len(MO_RETRY_SCHEDULE_S) else MO_RETRY_REPEAT_S
        return base * self.retry_scale

    async def _deliver_loop(self, dest: _Destination) -> None:
        lifetime = MO_LIFETIME_S * self.retry_scale
        while True:
            if not dest.queue:
                dest.wakeup.clear()
                await dest.wakeup.wait()
                continue
            item = dest.queue[0]
            wait = item.due_at - self._clock.now()
            if wait > 0:
                await self._clock.sleep(wait)
                continue  # the head may have been dropped meanwhile: look again
            if self._clock.now() - item.created_at > lifetime:
                dest.queue.popleft()
                self.stats["mo_expired"] += 1
                self._log.warning("MO for IMEI %s MOMSN %d expired undelivered", item.imei, item.momsn)
                continue
            delivered = await self._attempt(dest, item)
            if delivered:
                if dest.queue and dest.queue[0] is item:
                    dest.queue.popleft()
                self.stats["mo_delivered"] += 1
            else:
                item.due_at = self._clock.now() + self.retry_delay(item.attempts)

    async def _attempt(self, dest: _Destination, item: _PendingMo) -> bool:
        item.attempts += 1
        self.stats["mo_attempts"] += 1
        error: str | None = None
        try:
            delivered = await send_mo(
                dest.host,
                dest.port,
                item.data,
                timeout_s=self.io_timeout_s,
                wait_confirmation=self.mo_confirmation,
            )
            if not delivered:
                error = "shore confirmed with status 0"
        except (OSError, TimeoutError, EOFError, DirectIpError) as exc:
            delivered = False
            error = f"{type(exc).__name__}: {exc}"
        self.attempts.append(
            DeliveryAttempt(
                dest.address, item.imei, item.momsn, item.attempts, self._clock.now(), delivered, error
            )
        )
        if not delivered:
            self.stats["mo_failed_attempts"] += 1
            self._log.info(
                "MO IMEI %s MOMSN %d to %s:%d attempt %d failed: %s",
                item.imei,
                item.momsn,
                dest.host,
                dest.port,
                item.attempts,
                error,
            )
        return delivered

    # ---------------------------------------------------------------------------------------- MT path

    @property
    def mt_address(self) -> tuple[str, int]:
        """``(host, port)`` of the DirectIP MT server; only valid after :meth:`start`."""
        if self._mt_server is None or not self._mt_server.sockets:
            raise RuntimeError("network is not started")
        host, port = self._mt_server.sockets[0].getsockname()[:2]
        return (str(host), int(port))

    def mt_queue_length(self, imei: str) -> int:
        return len(self._mt_queues.get(imei, ()))

    def queued_mt(self, imei: str) -> list[bytes]:
        """Payloads queued for ``imei``, in delivery order."""
        return [m.payload for m in self._mt_queues.get(imei, ())]

    def _pop_mt(self, imei: str, now: float) -> MtDelivery:
        queue = self._mt_queues.setdefault(imei, [])
        while queue and now - queue[0].queued_at > MT_LIFETIME_S:
            expired = queue.pop(0)
            self.stats["mt_expired"] += 1
            self._log.info("MT MTMSN %d for IMEI %s expired", expired.mtmsn, imei)
        if not queue:
            return MtDelivery(payload=None, mtmsn=0, queued=0)
        head = queue.pop(0)
        self.stats["mt_delivered"] += 1
        return MtDelivery(payload=head.payload, mtmsn=head.mtmsn, queued=len(queue))

    def _next_mtmsn(self, imei: str) -> int:
        mtmsn = self._mtmsn.get(imei, 0) % _MTMSN_MAX + 1
        self._mtmsn[imei] = mtmsn
        return mtmsn

    def _next_auto_id(self) -> int:
        self._auto_id = self._auto_id % _U32_MAX + 1
        return self._auto_id

    async def handle_mt(self, data: bytes) -> MtConfirmation:
        """Judge one MT message's bytes, queue it, fire ring callbacks, and return the confirmation.

        This is what the MT server does for each connection; tests may call it directly.
        """
        self.stats["mt_received"] += 1
        confirmation, ring_imei = self._decide_mt(data)
        self.stats["mt_accepted" if confirmation.ok else "mt_rejected"] += 1
        if ring_imei is not None:
            await self._ring(ring_imei)
        return confirmation

    def _reject(self, status: int, client_id: bytes, imei: str) -> tuple[MtConfirmation, None]:
        self._log.info("MT for IMEI %r rejected with status %d", imei, status)
        return MtConfirmation(client_id, imei, 0, status), None

    def _decide_mt(self, data: bytes) -> tuple[MtConfirmation, str | None]:
        try:
            message = decode_mt(data)
        except DirectIpError as exc:
            client_id, imei = salvage_mt_header(data) or (_NO_CLIENT_ID, _NO_IMEI)
            status = _MT_TOO_LARGE if isinstance(exc, PayloadTooLarge) else _MT_PROTOCOL_VIOLATION
            return self._reject(status, client_id, imei)
        return self._decide_mt_message(message)

    def _decide_mt_message(self, message: MtMessage) -> tuple[MtConfirmation, str | None]:
        cid, imei, flags, payload = message.client_message_id, message.imei, message.flags, message.payload
        if not _IMEI.fullmatch(imei):
            return self._reject(_MT_BAD_IMEI, cid, imei)
        profile = self._profiles.get(imei)
        if profile is None:
            return self._reject(_MT_UNKNOWN_IMEI, cid, imei)
        ring_only = MtFlags.SEND_RING_ALERT in flags
        assign = MtFlags.ASSIGN_MTMSN in flags
        flush = MtFlags.FLUSH_MT_QUEUE in flags
        if ring_only and (assign or payload is not None):
            return self._reject(_MT_PROTOCOL_VIOLATION, cid, imei)
        if ring_only and (imei in self.ring_alerts_disabled or imei not in self.attached):
            return self._reject(
                _MT_RING_ALERTS_DISABLED if imei in self.ring_alerts_disabled else _MT_NOT_ATTACHED, cid, imei
            )
        assigned_mtmsn: int | None = None
        if assign:
            assigned_mtmsn = int.from_bytes(cid, "big")
            if not 1 <= assigned_mtmsn <= _MTMSN_MAX:
                return self._reject(_MT_MTMSN_RANGE, cid, imei)
        if payload is None and not (flush or ring_only):
            return self._reject(_MT_MISSING_PAYLOAD, cid, imei)
        if payload is not None and len(payload) > profile.limits.mt_max_bytes:
            return self._reject(_MT_TOO_LARGE, cid, imei)
        queue = self._mt_queues.setdefault(imei, [])
        if flush:
            self._log.info("MT queue of IMEI %s flushed (%d messages)", imei, len(queue))
            queue.clear()
        if payload is None:
            return MtConfirmation(
                cid, imei, self._next_auto_id(), _MT_OK_NO_PAYLOAD
            ), imei if ring_only else None
        limit = profile.limits.mt_queue_max
        if limit and len(queue) >= limit:
            return self._reject(_MT_QUEUE_FULL, cid, imei)
        priority = MT_PRIORITY_DEFAULT
        if MtFlags.HIGH_PRIORITY in flags and message.priority in _PRIORITY_RANGE:
            priority = int(message.priority)
        mtmsn = assigned_mtmsn if assigned_mtmsn is not None else self._next_mtmsn(imei)
        position = next((i for i, m in enumerate(queue) if m.priority > priority), len(queue))
        queue.insert(position, _QueuedMt(payload, mtmsn, priority, self._clock.now()))
        self._log.info("MT MTMSN %d queued for IMEI %s at position %d", mtmsn, imei, position + 1)
        return MtConfirmation(cid, imei, self._next_auto_id(), position + 1), imei

    async def _ring(self, imei: str) -> None:
        self.stats["ring_alerts"] += 1
        now = self._clock.now()
        for callback in list(self._ring_callbacks):
            try:
                result = callback(imei, now)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                self._log.exception("ring callback failed for IMEI %s", imei)

    async def _mt_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._mt_tasks.add(task)
        try:
            try:
                raw = await read_message(reader, timeout_s=self.io_timeout_s)
            except DirectIpError as exc:
                self._log.warning("MT connection sent garbage: %s", exc)
                self.stats["mt_received"] += 1
                self.stats["mt_rejected"] += 1
                confirmation = MtConfirmation(_NO_CLIENT_ID, _NO_IMEI, 0, _MT_PROTOCOL_VIOLATION)
            except (TimeoutError, EOFError, OSError) as exc:
                self._log.info("MT connection closed without a message: %s", type(exc).__name__)
                return
            else:
                confirmation = await self.handle_mt(raw)
            writer.write(encode_mt_confirmation(confirmation))
            await asyncio.wait_for(writer.drain(), self.io_timeout_s)
        except (OSError, TimeoutError) as exc:
            self._log.info("MT confirmation not sent: %s", exc)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            if task is not None:
                self._mt_tasks.discard(task)

    # ---------------------------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Open the MT server and start one MO delivery task per destination."""
        if self._mt_server is not None:
            raise RuntimeError("network already started")
        self._mt_server = await asyncio.start_server(self._mt_connection, self._mt_host, self._mt_port)
        self._runner = asyncio.create_task(self._run_deliveries(), name="iridium-network-mo")
        host, port = self.mt_address
        self._log.info(
            "Iridium network: MT server on %s:%d, %d MO destinations", host, port, len(self._destinations)
        )

    def add_destination(self, host: str, port: int) -> None:
        """Deliver later sessions' MO messages to ``host:port`` too; allowed while running."""
        if len(self._destinations) >= 5:
            raise ValueError("DirectIP allows at most 5 MO destinations")
        dest = _Destination(host, int(port))
        self._destinations.append(dest)
        if self._group is not None and self._runner is not None and not self._runner.done():
            self._group.create_task(self._deliver_loop(dest), name=f"mo-to-{dest.host}:{dest.port}")

    async def _run_deliveries(self) -> None:
        async with asyncio.TaskGroup() as self._group:
            for dest in self._destinations:
                self._group.create_task(self._deliver_loop(dest), name=f"mo-to-{dest.host}:{dest.port}")
            await asyncio.Event().wait()  # until stop() cancels: destinations may still be added

    async def stop(self) -> None:
        """Stop delivering (undelivered MO messages stay queued) and close the MT server."""
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.cancel()
            await asyncio.wait([runner])
            self._group = None
            if not runner.cancelled() and runner.exception() is not None:
                self._log.error("MO delivery stopped by an error", exc_info=runner.exception())
        server, self._mt_server = self._mt_server, None
        if server is not None:
            server.close()
            for task in list(self._mt_tasks):
                task.cancel()
            await asyncio.gather(*self._mt_tasks, return_exceptions=True)
            await server.wait_closed()

    async def __aenter__(self) -> IridiumNetwork:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
