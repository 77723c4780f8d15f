"""The relay's MT side: replies queued for a vessel and the MT frames that carry them with the shore's
acknowledgements (an SOS acknowledgement, a cumulative acknowledgement, resend requests and void
declarations, ``shore.acks``), and what sending one changes in the archive.

It does no network I/O (``mt_delivery`` hands a frame to a network) and receives nothing (``relay``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from firmware_profiles import load_profile
from wire.ackpolicy import CumAckItem, ResendItem, VoidItem, first_runs
from wire.codec import CODEC_DEFLATE, CODEC_RAW, codecs_from_mask
from wire.fill import fill_frame
from wire.frame import Direction, frame_capacity
from wire.records import KIND_CLASS, CrewReply, Kind, to_wire_time
from wire.units import Unit, cut_record
from wire.versions import wire_format

from . import acks, airtime, crew_epochs
from .acks import AckPolicy
from .archive import Archive, Vessel

BASELINE_CODECS = frozenset({CODEC_RAW, CODEC_DEFLATE})


@dataclass
class MtFrame:
    imei: str
    counter: int
    data: bytes
    units: list[Unit]
    acks: list[int]
    cumulative: CumAckItem | None = None
    resend: frozenset[int] = frozenset()
    voids: frozenset[int] = frozenset()
    cause: str = "reply"  # why it goes: reply, sos-ack, resend-request, ack


class RelayMt:
    """The MT half of ``Relay`` (which sets these attributes and ``_link_key``)."""

    archive: Archive
    resend_after_s: float
    ack_policy: AckPolicy

    def _link_key(self, vessel: Vessel) -> bytes:
        raise NotImplementedError

    def vessel_codecs(self, vessel: Vessel) -> frozenset[int]:
        """Codecs the vessel announced; before any announcement, the ones every gateway has."""
        mark = self.archive.get_mark(f"codecs:{vessel.imei}")
        if mark is None or not (mark.isascii() and mark.isdigit()):
            return BASELINE_CODECS
        return codecs_from_mask(int(mark)) | BASELINE_CODECS

    def accept_reply(
        self, vessel: Vessel, member: int, text: str, sender: str, client_id: str | None, now: float
    ) -> tuple[int, bool]:
        """Queue a reply for one crew member of ``vessel``; idempotent per ``client_id``."""
        reply = CrewReply(member, text, sender, to_wire_time(now))
        capacity = self._unit_capacity(vessel)
        allowed = self.vessel_codecs(vessel)
        return self.archive.mt_accept(
            vessel.imei,
            client_id,
            int(Kind.CREW_REPLY),
            int(KIND_CLASS[Kind.CREW_REPLY]),
            now,
            lambda rid: cut_record(rid, int(Kind.CREW_REPLY), reply.body(allowed), capacity),
        )

    def _mt_limit(self, vessel: Vessel) -> int:
        return load_profile(vessel.profile).mt_frame_limit

    def _unit_capacity(self, vessel: Vessel) -> int:
        return frame_capacity(self._mt_limit(vessel), 2**35 - 1)

    def vessels_with_mt(self, now: float) -> list[str]:
        """Vessels with an MT frame to build now: replies due, an SOS acknowledgement, or an
        acknowledgement or resend request that has waited long enough to go alone."""
        due = set(self.archive.vessels_with_mt(now, self.resend_after_s))
        return sorted(due | set(acks.vessels_due(self.archive, now)))

    def build_mt(self, imei: str, now: float) -> MtFrame | None:
        """The next MT frame for ``imei``, or None when nothing is worth a billed message yet."""
        vessel = self.archive.vessel(imei)
        if vessel is None or vessel.revoked:
            return None
        policy = self.ack_policy
        units = self.archive.mt_pending(imei, now, self.resend_after_s)
        urgent = self.archive.acks_owed(imei)
        with self.archive.tx() as db:
            ledger = acks.load_ledger(db, imei)
            voids = acks.voids_owed(db, imei)
        cumulative = ledger.cumulative(now, policy.reorder_grace_s)
        resend = ledger.resend_due(now, policy.resend_grace_s)
        if units:
            cause = "reply"
        elif urgent:
            cause = "sos-ack"
        elif resend:
            cause, cumulative = "resend-request", None
        elif ledger.standalone_ack_due(now, policy.cumulative_interval_s) and cumulative is not None:
            cause = "ack"
        else:
            return None  # acknowledgements wait for a frame that goes anyway
        limit = self._mt_limit(vessel)
        counter = self.archive.next_mt_counter(imei)
        fmt = wire_format(crew_epochs.announced_version(self.archive.get_mark(f"wire:{vessel.imei}")))
        room = fmt.capacity(limit, counter)
        items: list[bytes] = []
        sent: dict[str, Any] = {"acks": [], "cum": None, "resend": frozenset(), "voids": frozenset()}
        for key, value, encode in (
            ("acks", urgent, lambda v: fmt.encode_ack(set(v))),
            ("resend", resend, lambda v: fmt.encode_policy(ResendItem(frozenset(v)))),
            ("cum", cumulative, fmt.encode_policy),
            ("voids", first_runs(voids), lambda v: fmt.encode_policy(VoidItem(frozenset(v)))),
        ):
            if value:
                item = encode(value)
                if fmt.cost(item) < room:
                    items.append(item)
                    room -= fmt.cost(item)
                    sent[key] = value
        ready = [(u, fmt.prepare(u.item, None, now)) for u in units]
        fill = fill_frame([], ready, room, lambda pair: pair[1], fmt.cost)
        chosen = [u for u, _ in fill.units]
        items.extend(i for _, i in fill.units)
        data = fmt.seal(self._link_key(vessel), Direction.MT, counter, items, limit)
        return MtFrame(
            imei, counter, data, chosen, list(sent["acks"]), sent["cum"], sent["resend"], sent["voids"], cause
        )

    def mt_sent(self, frame: MtFrame, now: float) -> None:
        self.archive.mt_frame_sent(frame.imei, frame.counter, frame.units, frame.acks, now)
        with self.archive.tx() as db:
            Archive.lock_vessel(db, frame.imei)
            ledger = acks.load_ledger(db, frame.imei)
            if frame.cumulative is not None:
                ledger.cumulative_sent(frame.cumulative, now)
            ledger.resend_sent(frame.resend)
            acks.save_ledger(db, frame.imei, ledger, self.ack_policy, now)
            acks.voids_sent(db, frame.imei, set(frame.voids), now)
            vessel = self.archive.vessel(frame.imei)
            if vessel is not None:
                airtime.record(db, frame.imei, vessel.profile, len(frame.data), "mt", now)
