"""Crew epochs at the shore for wire format v2: opening MO frames of either version (v2 frames may be
sealed under an epoch), member handles, and format-2 crew messages.

Owns three facts per vessel, kept in the archive's marks: the base record id of each epoch (the id of
its EPOCH record, from which attached crew items count), and each member's handle per epoch (sent once
per member and epoch, checked against the epoch key). It derives epoch keys from the shore's crew
secret and the epoch public keys in the ``epochs`` table. Must not publish events or decide outcomes:
the relay does that.
"""

from __future__ import annotations

from typing import Any

from nacl.public import PrivateKey

from wire.codec import decode_text
from wire.crypto import crew_epoch_key
from wire.crypto import open_crew as open_crew_v1
from wire.frame import Direction, FrameHeader
from wire.items import Item
from wire.records import CrewContent, CrewMessage, to_wire_time
from wire.v2.crew import FrameEpoch, body_epoch, is_format2, open_crew, open_member
from wire.versions import frame_version, open_any, versions_from_mask

from .archive import Archive


def _mark(db: Any, source: str) -> str | None:
    return Archive.read_mark(db, source)


def _public_key(db: Any, imei: str, number: int) -> bytes | None:
    row = db.execute("SELECT public_key FROM epochs WHERE imei = ? AND number = ?", (imei, number)).fetchone()
    return None if row is None else bytes(row[0])


def epoch_key(db: Any, imei: str, number: int, crew_secret: PrivateKey) -> bytes | None:
    public = _public_key(db, imei, number)
    return None if public is None else crew_epoch_key(crew_secret, public)


def remember_base(db: Any, imei: str, number: int, rid: int, now: float) -> None:
    """The EPOCH record ``rid`` announced epoch ``number``: attached crew items count from it."""
    Archive.set_mark(db, f"epoch-rid:{imei}:{number}", str(rid), now)


def frame_epochs(db: Any, imei: str, crew_secret: PrivateKey) -> dict[int, FrameEpoch]:
    """The vessel's latest epoch of each parity whose base is known: what a crew-sealed frame names."""
    out: dict[int, FrameEpoch] = {}
    rows = db.execute(
        "SELECT number, public_key FROM epochs WHERE imei = ? ORDER BY number DESC LIMIT 4", (imei,)
    ).fetchall()
    for number, public in rows:
        base = _mark(db, f"epoch-rid:{imei}:{number}")
        if base is not None and number % 2 not in out:
            out[number % 2] = FrameEpoch(number, crew_epoch_key(crew_secret, bytes(public)), int(base))
    return out


def announced_version(mark: str | None) -> int:
    """The highest wire format version in a vessel's announced mask (1 before any announcement)."""
    return max(versions_from_mask(int(mark) if mark and mark.isdigit() else 0))


def open_mo(
    db: Any, imei: str, crew_secret: PrivateKey, link_key: bytes, payload: bytes, now: float
) -> tuple[FrameHeader, list[Item]]:
    """Verify and parse an MO frame of either version; v2 needs the highest counter accepted (16 bits
    of it travel) and the vessel's crew epochs (frames sealed under one)."""
    if frame_version(payload) != 2:
        return open_any(link_key, payload, Direction.MO)
    row = db.execute("SELECT rx_highest FROM vessels WHERE imei = ?", (imei,)).fetchone()
    highest = int(row[0]) if row is not None and row[0] is not None else -1
    return open_any(link_key, payload, Direction.MO, highest, frame_epochs(db, imei, crew_secret).get, now)


def bind_member(db: Any, imei: str, crew_secret: PrivateKey, rid: int, body: Any, now: float) -> bool:
    """Check a member binding against its epoch key and keep the handle; False while the epoch is
    unknown. Raises ``RemoteWireError`` if it does not verify."""
    key = epoch_key(db, imei, body_epoch(body), crew_secret)
    if key is None:
        return False
    member, epoch, handle = open_member(key, rid, body)
    Archive.set_mark(db, f"handle:{imei}:{epoch}:{member}", handle, now)
    return True


def open_message(
    db: Any, imei: str, crew_secret: PrivateKey, rid: int, body: Any, member: int
) -> tuple[str, str, str, float] | None:
    """``(handle, to, text, created)`` of a format-2 crew message; None while its epoch or the
    member's handle has not arrived. Raises ``RemoteWireError`` if it does not verify."""
    number = body_epoch(body)
    key = epoch_key(db, imei, number, crew_secret)
    if key is None:
        return None
    to, coded, created = open_crew(key, rid, body)
    handle = _mark(db, f"handle:{imei}:{number}:{member}")
    if handle is None:
        return None
    return handle, to, decode_text(coded), created


def open_crew_record(
    db: Any, imei: str, crew_secret: PrivateKey, rid: int, body: Any
) -> tuple[CrewMessage, CrewContent] | None:
    """A crew message record of either format, opened; None while its epoch (or, format 2, its
    member's handle) has not arrived. Raises ``RemoteWireError`` if it does not verify."""
    msg = CrewMessage.from_body(body)
    if is_format2(body):
        opened = open_message(db, imei, crew_secret, rid, body, msg.member)
        if opened is None:
            return None
        handle, to, text, created = opened
        return CrewMessage(msg.member, msg.epoch, b"", to_wire_time(created)), CrewContent(to, text, handle)
    public = db.epoch_key(imei, msg.epoch)
    if public is None:
        return None
    return msg, CrewContent.decode(open_crew_v1(crew_secret, msg.epoch, public, rid, msg.sealed))
