"""The relay pipeline: frames in from any network, records out to MQTT, replies and acks back.

For each MO delivery: look the vessel up by IMEI (unknown or revoked: rejected and counted), archive
the raw frame (a repeat of the same delivery is acknowledged again but not processed twice), verify
and decrypt it, check the replay window, then apply its items in one transaction: acknowledgements
close MT records, records are stored once per (vessel, record id), fragments wait for their siblings,
and every newly delivered record turns into MQTT events in the same transaction (a transactional
outbox: an event is published until the broker acknowledges it). A position the network reports for an
accepted delivery (the DirectIP location element, RockBLOCK's ``iridium_latitude``/``iridium_longitude``/
``iridium_cep``) becomes the vessel's retained ``state/position`` with its source and accuracy, so a
vessel whose GPS is broken still shows where it is.

Acknowledgement by exception (``shore.acks``, ``wire.ackpolicy``): the network's acceptance is the
vessel's proof of sending, so a frame earns no acknowledgement of its own. Each MT frame that goes
anyway (a reply) carries a cumulative acknowledgement and names any missing frame; an MT frame goes
for acknowledgements alone only for an SOS (at once), for a missing frame after a grace period, or
after the long cumulative interval.

It does no network I/O itself: ingest adapters call ``handle_mo``; the MT loop calls ``build_mt``
and ``mt_sent``; the publisher drains ``Archive.pending_events``.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nacl.public import PrivateKey, PublicKey

from firmware_profiles import load_profile
from wire.ackpolicy import CumAckItem, ResendItem, VoidItem
from wire.catch import TripStart, TripUnknownError
from wire.codec import codecs_from_mask
from wire.crypto import link_key
from wire.errors import RemoteWireError
from wire.items import AckItem, FragmentItem, RecordItem, dumps, join_fragments, loads_one
from wire.records import Capabilities, Epoch, Kind, Sos, from_wire_time

from . import acks, airtime, crew_epochs
from .acks import AckPolicy
from .archive import Archive, Vessel
from .catch_events import named, needs_trip, trip_start_of
from .config import LinkSection
from .frame_batch import FrameBatch
from .network_position import NetworkPosition, position_event
from .relay_mt import RelayMt
from .topics import slug, vessel_topic

log = logging.getLogger("shore.relay")


class FragmentCapError(RemoteWireError):
    """The vessel's partial records would exceed the memory cap."""

    reason = "fragment-cap"


NOT_STORED = "error"  # outcome of a delivery the archive could not store: the network must retry it


@dataclass(frozen=True)
class Delivery:
    """One MO delivery as a network handed it over (``position``: where the network placed the
    terminal, if it says)."""

    imei: str
    momsn: int
    payload: bytes | None
    network: str
    now: float
    position: NetworkPosition | None = None


class _Duplicate(Exception):
    """Internal: the delivery was processed before (rolls the claim transaction back)."""


class Relay(RelayMt):
    """Frames in (``handle_mo``, ``handle_batch``); the MT side is ``RelayMt``."""

    def __init__(
        self,
        archive: Archive,
        shore_secret: PrivateKey,
        crew_secret: PrivateKey,
        resend_after_s: float = LinkSection.resend_after_s,
        max_fragment_bytes: int = LinkSection.fragment_max_bytes,
        ack_policy: AckPolicy | None = None,
    ) -> None:
        self.archive = archive
        self.shore_secret = shore_secret
        self.crew_secret = crew_secret
        self.resend_after_s = resend_after_s
        self.max_fragment_bytes = max_fragment_bytes
        self.ack_policy = ack_policy or AckPolicy()
        self.rejections: Counter[str] = Counter()
        self._trips: dict[tuple[str, int], TripStart] = {}
        self.frames_in: Counter[str] = Counter()
        self.accepted = 0
        self._keys: dict[bytes, bytes] = {}

    def _link_key(self, vessel: Vessel) -> bytes:
        key = self._keys.get(vessel.public_key)
        if key is None:
            key = link_key(self.shore_secret, PublicKey(vessel.public_key))
            self._keys[vessel.public_key] = key
        return key

    def _reject(self, reason: str, detail: str) -> str:
        self.rejections[reason] += 1
        log.warning("frame rejected: %s: %s", reason, detail)
        return reason

    # --- MO ---------------------------------------------------------------------------------------

    def handle_mo(
        self,
        imei: str,
        momsn: int,
        payload: bytes | None,
        network: str,
        now: float,
        position: NetworkPosition | None = None,
    ) -> str:
        """Process one MO delivery. Returns its outcome: ``accepted``, ``duplicate``, ``empty`` or a
        rejection reason. Never raises on bad input. A batch of one: see :meth:`handle_batch`."""
        return self.handle_batch([Delivery(imei, momsn, payload, network, now, position)])[0]

    def handle_batch(self, deliveries: Sequence[Delivery]) -> list[str]:
        """Process MO deliveries in one transaction (group commit); returns their outcomes in order.

        The vessels are locked and their replay state read once for the batch; each frame (its log
        entry, replay window, records and outbox events) runs under its own savepoint, so a frame that
        fails rolls back alone. A worker that dies half way leaves nothing of the batch behind, and any
        other worker can process the same deliveries again. If the database refuses the batch, each
        delivery is retried in a transaction of its own, so one frame cannot hold back the others.
        """
        if not deliveries:
            return []
        for d in deliveries:
            self.frames_in[d.network] += 1
        rejections, accepted = Counter(self.rejections), self.accepted
        try:
            return self.archive.in_batch(lambda batch: self._run_batch(batch, deliveries))
        except Exception:
            self.rejections, self.accepted = rejections, accepted  # nothing of the batch was kept
            self._trips.clear()
            if len(deliveries) == 1 or self.archive.connection_lost():
                raise  # the caller retries (the archive connects again on the next call)
            log.exception("batch of %d frames failed; processing them one by one", len(deliveries))
        outcomes = []
        for d in deliveries:
            try:
                outcomes.append(self.archive.in_batch(lambda batch, d=d: self._run_batch(batch, [d]))[0])
            except Exception:
                log.exception("frame %s MOMSN %d failed", d.imei, d.momsn)
                outcomes.append(NOT_STORED)
        return outcomes

    def _run_batch(self, batch: FrameBatch, deliveries: Sequence[Delivery]) -> list[str]:
        batch.load_vessels(d.imei for d in deliveries)
        batch.load_marks(  # what every frame reads and writes: receipt ledger, ack due, airtime units
            source
            for d in deliveries
            if d.imei in batch.vessels
            for source in (acks.LEDGER + d.imei, acks.DUE + d.imei, airtime.mark_source(d.imei, d.now))
        )
        opened: list[tuple[Delivery, Vessel | None, Any]] = []
        for d in deliveries:
            vessel = batch.vessels.get(d.imei)
            refused = self._precheck(vessel, d.imei, d.payload)
            if refused is None and vessel is not None and not d.payload:
                # A mailbox check: billed, and part of what the link costs.
                airtime.record(batch, d.imei, vessel.profile, 0, "mo", d.now)
            if refused is not None or vessel is None or not d.payload:
                opened.append((d, None, refused or "empty"))
                continue
            try:
                frame = crew_epochs.open_mo(
                    batch.db, vessel.imei, self.crew_secret, self._link_key(vessel), d.payload, d.now
                )
                opened.append((d, vessel, frame))
            except RemoteWireError as exc:
                opened.append((d, vessel, exc))
        batch.load_frames((d.imei, d.momsn, d.payload) for d, v, _f in opened if v is not None and d.payload)
        batch.load_records(
            (
                (d.imei, item.rid)
                for d, _v, f in opened
                if isinstance(f, tuple)
                for item in f[1]
                if isinstance(item, RecordItem | FragmentItem)
            ),
            (d.imei for d, v, f in opened if isinstance(f, tuple)),
        )
        outcomes = []
        for d, vessel, frame in opened:
            if isinstance(frame, str):
                outcomes.append(frame)
            elif isinstance(frame, RemoteWireError):
                outcomes.append(self._refuse_frame(batch, d, vessel, frame))
            else:
                assert vessel is not None and d.payload
                outcomes.append(self._apply_frame(batch, d, vessel, frame[0], frame[1]))
        batch.finish()
        return outcomes

    def _refuse_frame(self, batch: FrameBatch, d: Delivery, vessel: Any, exc: RemoteWireError) -> str:
        assert d.payload
        with batch.frame():
            if not batch.claim(d.imei, d.momsn, d.network, d.payload, d.now):
                self.rejections["duplicate-delivery"] += 1
                return "duplicate"
            self._keep_rejected(batch, d.imei, d.momsn, d.payload, exc.reason)
        return self._reject(exc.reason, f"{vessel.name} MOMSN {d.momsn}: {exc}")

    def _keep_rejected(self, batch: FrameBatch, imei: str, momsn: int, payload: bytes, reason: str) -> None:
        if self.archive.rejected_room(batch, imei, len(payload)):  # else counted, the archive logs it
            return batch.outcome(imei, momsn, payload, reason)
        batch.forget_claim(imei, momsn, payload)
        self.rejections["rejected-not-archived"] += 1

    def _apply_frame(
        self, batch: FrameBatch, d: Delivery, vessel: Vessel, head: Any, items: list[Any]
    ) -> str:
        assert d.payload
        imei, momsn, payload, now = d.imei, d.momsn, d.payload, d.now
        carries_records = any(isinstance(i, RecordItem | FragmentItem) for i in items)
        urgent = any(isinstance(i, RecordItem) and i.kind == Kind.SOS for i in items)
        try:
            with batch.frame():
                if not batch.claim(imei, momsn, d.network, payload, now):
                    raise _Duplicate
                batch.window(imei, now).record(head.counter)
                ledger = acks.load_ledger(batch, imei, now)
                if ledger.receive(head.counter, now, carries_records) and urgent:
                    Archive.owe_ack(batch, imei, head.counter, now)  # SOS: acknowledged at once
                for item in items:
                    if isinstance(item, VoidItem):
                        ledger.void(item.counters, now)
                    else:
                        self._apply(batch, vessel, item, now)
                acks.save_ledger(batch, imei, ledger, self.ack_policy, now)
                airtime.record(batch, imei, vessel.profile, len(payload), "mo", now)
                Archive.add_event(
                    batch,
                    vessel_topic(vessel, "state", "link"),
                    _json(
                        {
                            "msg_id": f"{slug(vessel.name)}:link:{head.counter}",
                            "vessel": vessel.name,
                            "last_contact": now,
                            "network": d.network,
                            "momsn": momsn,
                            "frame_counter": head.counter,
                            "frame_bytes": len(payload),
                        }
                    ),
                    now,
                    retain=True,
                )
                if d.position is not None:
                    # Only with a frame the vessel's key authenticated: the location element is not.
                    Archive.add_event(
                        batch,
                        vessel_topic(vessel, "state", "position"),
                        _json(position_event(vessel, d.position, head.counter, now)),
                        now,
                        retain=True,
                    )
                batch.outcome(imei, momsn, payload, "accepted")
        except _Duplicate:
            self.rejections["duplicate-delivery"] += 1
            return "duplicate"
        except RemoteWireError as exc:
            outcome = self._reject(exc.reason, f"{vessel.name} frame {head.counter}: {exc}")
            with batch.frame():
                batch.claim(imei, momsn, d.network, payload, now)
                self._keep_rejected(batch, imei, momsn, payload, outcome)
                # A replay owes nothing: its counter is settled, and the next cumulative
                # acknowledgement covers it whatever the number of copies.
            return outcome
        self.accepted += 1
        return "accepted"

    def precheck(self, imei: str, payload: bytes | None, network: str) -> str | None:
        """The checks an ingest endpoint can make without the vessel's replay state (scale-out ingest):
        None if the delivery should be queued for the workers, else the outcome (rejection or empty)."""
        self.frames_in[network] += 1
        vessel = self.archive.vessel(imei)
        refused = self._precheck(vessel, imei, payload)
        if refused is None and not payload:
            return "empty"
        return refused

    def _precheck(self, vessel: Vessel | None, imei: str, payload: bytes | None) -> str | None:
        if vessel is None:
            return self._reject("unknown-vessel", f"IMEI {imei!r} is not registered")
        if vessel.revoked:
            return self._reject("revoked-vessel", f"vessel {vessel.name} is revoked")
        if not payload:
            return None  # a mailbox check or failed session: nothing to do
        limit = self._mo_limit(vessel)
        if len(payload) > limit:
            return self._reject("oversize-frame", f"{vessel.name}: {len(payload)} B > {limit} B")
        return None

    def check_silence(self, now: float, silent_after_s: float) -> list[Vessel]:
        """Raise one alert per vessel silent for longer than ``silent_after_s`` (cleared by contact)."""
        silent = self.archive.silent_vessels(now, silent_after_s)
        if silent:
            with self.archive.tx() as db:
                for vessel in silent:
                    alert = {
                        "msg_id": f"{slug(vessel.name)}:silent:{int(vessel.last_contact or 0)}",
                        "vessel": vessel.name,
                        "alert": "silent",
                        "last_contact": vessel.last_contact,
                        "silent_s": now - (vessel.last_contact or now),
                        "at": now,
                    }
                    Archive.add_event(db, vessel_topic(vessel, "evt", "alert"), _json(alert), now)
                    log.warning("vessel %s silent for %.0f s", vessel.name, alert["silent_s"])
        return silent

    def _apply(self, db: FrameBatch, vessel: Vessel, item: Any, now: float) -> None:
        if isinstance(item, ResendItem):
            acks.mt_resend(db, vessel.imei, item.counters, now)
        elif isinstance(item, AckItem | CumAckItem):
            delivered = (
                Archive.mt_frames_acked(db, vessel.imei, item.counters, now)
                if isinstance(item, AckItem)
                else acks.mt_cumulative(db, vessel.imei, item, now)
            )
            for rid, client_id in delivered:
                Archive.add_event(
                    db,
                    vessel_topic(vessel, "evt", "delivery"),
                    _json(
                        {
                            "msg_id": client_id or f"{slug(vessel.name)}:mt:{rid}",
                            "rid": rid,
                            "status": "delivered",
                            "at": now,
                        }
                    ),
                    now,
                )
        elif isinstance(item, RecordItem):
            self._deliver(db, vessel, item, now)
        elif isinstance(item, FragmentItem):
            if db.record_delivered(vessel.imei, item.rid):
                return
            if Archive.fragment_bytes(db, vessel.imei) + len(item.chunk) > self.max_fragment_bytes:
                # Refuse the whole frame, unacknowledged: the vessel resends it once stale partial
                # records have expired, so nothing is lost to the cap.
                raise FragmentCapError(f"record {item.rid}: partial records of this vessel over the cap")
            chunks = Archive.add_fragment(db, vessel.imei, item.rid, item.index, item.count, item.chunk, now)
            try:
                joined = join_fragments(item.count, chunks)
            except RemoteWireError as exc:
                Archive.drop_fragments(db, vessel.imei, item.rid)
                self._reject(exc.reason, f"{vessel.name} record {item.rid}: {exc}")
                return
            if joined is not None:
                Archive.drop_fragments(db, vessel.imei, item.rid)
                self._deliver(db, vessel, RecordItem(item.rid, joined.kind, joined.body), now)

    def _deliver(self, db: FrameBatch, vessel: Vessel, item: RecordItem, now: float) -> None:
        if not db.add_record(vessel.imei, item.rid, item.kind, dumps(item.body), now):
            return  # already delivered once
        try:
            self._publish_record(db, vessel, item, now)
        except RemoteWireError as exc:
            self._reject(exc.reason, f"{vessel.name} record {item.rid} kind {item.kind}: {exc}")

    def _publish_record(self, db: FrameBatch, vessel: Vessel, item: RecordItem, now: float) -> None:
        msg_id = f"{slug(vessel.name)}:{item.rid}"
        if item.kind == Kind.EPOCH:
            epoch = Epoch.from_body(item.body)
            db.add_epoch(vessel.imei, epoch.number, epoch.public_key)
            crew_epochs.remember_base(db, vessel.imei, epoch.number, item.rid, now)
            self._publish_waiting_crew(db, vessel, now)  # crew records that arrived before their epoch
        elif item.kind == Kind.MEMBER:
            if crew_epochs.bind_member(db, vessel.imei, self.crew_secret, item.rid, item.body, now):
                self._mark(db, vessel, item.rid, now)
                self._publish_waiting_crew(db, vessel, now)
        elif item.kind == Kind.CREW_MESSAGE:
            self._publish_crew(db, vessel, item.rid, item.body, now)
        elif item.kind == Kind.SOS:
            sos = Sos.from_body(item.body)
            event = {
                "msg_id": msg_id,
                "vessel": vessel.name,
                "created": from_wire_time(sos.created),
                "received": now,
                "note": sos.note,
                "latitude": None if sos.latitude_e5 is None else sos.latitude_e5 / 1e5,
                "longitude": None if sos.longitude_e5 is None else sos.longitude_e5 / 1e5,
                "devices": sos.devices,
            }
            state = "false-alarm" if sos.false_alarm else "open"
            if sos.update_of is not None:  # another device confirmed it, or it was a false alarm
                event.update(update_of=f"{slug(vessel.name)}:{sos.update_of}", false_alarm=sos.false_alarm)
            Archive.add_event(db, vessel_topic(vessel, "up", "sos"), _json(event), now)
            alert = {**event, "msg_id": event.get("update_of", msg_id), "state": state}
            Archive.add_event(db, vessel_topic(vessel, "state", "sos"), _json(alert), now, retain=True)
            self._mark(db, vessel, item.rid, now)
        elif item.kind == Kind.CAPABILITIES:
            caps = Capabilities.from_body(item.body)
            Archive.set_mark(db, f"codecs:{vessel.imei}", str(caps.codecs_mask), now)
            Archive.set_mark(db, f"wire:{vessel.imei}", str(caps.wire_versions), now)
            Archive.add_event(
                db,
                vessel_topic(vessel, "state", "capabilities"),
                _json(
                    {
                        "vessel": vessel.name,
                        "codecs": sorted(codecs_from_mask(caps.codecs_mask)),
                        "software": caps.software,
                        "at": now,
                    }
                ),
                now,
                retain=True,
            )
            self._mark(db, vessel, item.rid, now)
        elif item.kind == Kind.CATCH:
            start = trip_start_of(item.body)  # decoded once, here, when it is one
            self._publish_catch(db, vessel, item.rid, item.body, now, start)
            if start is not None:
                db.stage(self._trips, (vessel.imei, start.trip), start)
                # Events of this trip that arrived before its start can be decoded now.
                for rid, body in db.unpublished(vessel.imei, int(Kind.CATCH)):
                    pending = loads_one(body)
                    if needs_trip(pending) == start.trip:
                        self._publish_catch(db, vessel, rid, pending, now)
        else:
            name = (
                Kind(item.kind).name.lower() if item.kind in Kind._value2member_map_ else f"kind-{item.kind}"
            )
            Archive.add_event(
                db,
                vessel_topic(vessel, "up", name),
                _json(
                    {"msg_id": msg_id, "vessel": vessel.name, "received": now, "body": _jsonable(item.body)}
                ),
                now,
            )
            self._mark(db, vessel, item.rid, now)

    def _trip_starts(self, db: FrameBatch, vessel: Vessel, trip: int) -> dict[int, TripStart]:
        key = (vessel.imei, trip)
        start = db.staged(key) or self._trips.get(key)
        if start is None:
            for (body,) in db.execute(
                "SELECT body FROM records WHERE imei = ? AND kind = ? ORDER BY rid DESC",
                (vessel.imei, int(Kind.CATCH)),
            ).fetchall():
                try:
                    found = trip_start_of(loads_one(bytes(body)))
                except RemoteWireError:
                    continue
                if found is not None and found.trip == trip:
                    start = self._trips[key] = found
                    break
        return {trip: start} if start is not None else {}

    def _publish_catch(
        self, db: FrameBatch, vessel: Vessel, rid: int, body: Any, now: float, decoded: Any = None
    ) -> None:
        trip = needs_trip(body)
        trips = self._trip_starts(db, vessel, trip) if trip is not None else {}
        trip_id = body.get(1) if isinstance(body, dict) else None
        try:
            name, event = named(body, trips, f"{slug(vessel.name)}/{trip_id}", decoded)
        except TripUnknownError:
            log.info("catch record %d of %s waits for the start of trip %s", rid, vessel.name, trip)
            return
        Archive.add_event(
            db,
            vessel_topic(vessel, "up", "catch", name),
            _json(
                {
                    "msg_id": f"{slug(vessel.name)}:{rid}",
                    "vessel": vessel.name,
                    "received": now,
                    "body": event,
                }
            ),
            now,
        )
        self._mark(db, vessel, rid, now)

    def _publish_waiting_crew(self, db: FrameBatch, vessel: Vessel, now: float) -> None:
        """Member bindings, then crew messages, that waited for their epoch or their member's handle."""
        for kind in (Kind.MEMBER, Kind.CREW_MESSAGE):
            for rid, body in db.unpublished(vessel.imei, int(kind)):
                try:
                    record = loads_one(bytes(body))
                    if kind == Kind.CREW_MESSAGE:
                        self._publish_crew(db, vessel, rid, record, now)
                    elif crew_epochs.bind_member(db, vessel.imei, self.crew_secret, rid, record, now):
                        self._mark(db, vessel, rid, now)
                except RemoteWireError as exc:
                    self._reject(exc.reason, f"{vessel.name} record {rid} kind {kind}: {exc}")

    def _publish_crew(self, db: FrameBatch, vessel: Vessel, rid: int, body: Any, now: float) -> None:
        opened = crew_epochs.open_crew_record(db, vessel.imei, self.crew_secret, rid, body)
        if opened is None:
            log.info("crew record %d of %s waits for its epoch or member handle", rid, vessel.name)
            return
        msg, content = opened
        Archive.add_event(
            db,
            vessel_topic(vessel, "up", "crew"),
            _json(
                {
                    "msg_id": f"{slug(vessel.name)}:{rid}",
                    "vessel": vessel.name,
                    "member": msg.member,
                    "handle": content.handle,
                    "to": content.to,
                    "text": content.text,
                    "created": from_wire_time(msg.created),
                    "received": now,
                }
            ),
            now,
        )
        self._mark(db, vessel, rid, now)

    def _mo_limit(self, vessel: Vessel) -> int:
        return load_profile(vessel.profile).mo_frame_limit  # without the network's prefix (IDP SIN)

    @staticmethod
    def _mark(db: FrameBatch, vessel: Vessel, rid: int, now: float) -> None:
        db.mark_published(vessel.imei, rid, now)


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # one encoder, not one per event


def _json(value: dict[str, Any]) -> bytes:
    return _ENCODER.encode(value).encode("utf-8")
