"""What a crew member can do through the gateway: claim a handle, send a sealed message, read replies.

Crew content is sealed for the shore's crew key the moment it is accepted, with this run's RAM-only
epoch key (see ``wire.crypto``). The first crew message of an epoch also queues the epoch's public key
as a control record, so the shore can open everything sealed in this run. Before sealing, the content
is padded to a size class (``CONTENT_SIZE_CLASS``), so that the size on disk and on the air tells only
the class, and the covert personal-safety alert has the class of any short message.
"""

from __future__ import annotations

import sqlite3
import threading
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from nacl.public import PublicKey

from common.clock import Clock
from wire.codec import encode_text
from wire.crypto import CrewEpoch
from wire.records import (
    HOTLINE,
    PERSONAL_ALERT_TEXT,
    CrewContent,
    CrewMessage,
    Epoch,
    Kind,
    pad_content,
    to_wire_time,
)
from wire.v2.crew import FrameEpoch, seal_crew, seal_member

from .accounts import Members, write_receipt
from .config import LinkSection
from .distress import Distress
from .fairness import AllowanceState
from .i18n import to_unicode
from .store import GatewayStore, InboxEntry, MessageStatus

MAX_TEXT_CHARS = 1000
MAX_HANDLE_CHARS = 32
MAX_CONTACT_CHARS = 64
class CrewInputError(ValueError):
    """A person's input was refused; the message names the field and is safe to show.

    ``problem`` is the catalogue key of the translated explanation, ``values`` its placeholders."""

    def __init__(self, field: str, message: str, problem: str = "", **values: object) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.problem = problem or "problem_empty"
        self.values = values


def clean_text(value: str, field: str, max_chars: int, allow_newlines: bool = False) -> str:
    """NFC-normalised, trimmed text with Zawgyi-encoded Burmese converted to Unicode."""
    value = unicodedata.normalize("NFC", to_unicode(value)).strip()
    if not value:
        raise CrewInputError(field, "must not be empty", "problem_empty")
    if len(value) > max_chars:
        raise CrewInputError(field, f"at most {max_chars} characters", "problem_too_long")
    for ch in value:
        if unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn") and not (allow_newlines and ch in "\n\t"):
            raise CrewInputError(field, "contains control characters", "problem_control")
    return value


@dataclass
class CrewDesk:
    store: GatewayStore
    crew_public: PublicKey
    clock: Clock
    message_lifetime_s: float = LinkSection.message_lifetime_s
    # Hooks the page calls, given by the daemon: a member's remaining allowance (from its allowance
    # policy), and when a crew message accepted at ``created`` should leave at the latest.
    allowance: Callable[[int], AllowanceState] | None = None
    expected_send: Callable[[float], float | None] | None = None
    # The vessel's position now (latitude, longitude) or None: an SOS carries it.
    position: Callable[[], tuple[float, float] | None] | None = None
    # Wire format 2: content sealed as a format-2 body, the handle once per member and epoch.
    wire_version: int = 1

    def __post_init__(self) -> None:
        self.members = Members(self.store)
        self.distress = Distress(self.store, self.clock)
        self._epoch: CrewEpoch | None = None
        self._epoch_announced = False
        self._frame_epoch: FrameEpoch | None = None
        self._members_announced: set[int] = set()
        self._lock = threading.Lock()

    def frame_epoch(self) -> FrameEpoch | None:
        """This run's epoch as v2 frames use it (None before the first crew message)."""
        return self._frame_epoch

    @staticmethod
    def check_handle(handle: str) -> str:
        return clean_text(handle, "handle", MAX_HANDLE_CHARS)

    @staticmethod
    def check_pin(pin: str) -> str:
        if not (pin.isascii() and pin.isdigit() and 4 <= len(pin) <= 12):
            raise CrewInputError("pin", "4 to 12 digits", "problem_pin_format")
        return pin

    def login(self, handle: str, pin: str) -> int | None:
        handle = self.check_handle(handle)
        return self.members.claim_or_login(handle, self.check_pin(pin), self.clock.now())

    def _current_epoch(self) -> CrewEpoch:
        with self._lock:
            if self._epoch is None:
                self._epoch = CrewEpoch.start(self.store.next_epoch(), self.crew_public)
            if not self._epoch_announced:
                epoch = self._epoch
                rid = self.store.accept(
                    Kind.EPOCH, lambda _rid: Epoch(epoch.number, epoch.public_bytes).body(), self.clock.now()
                )
                self._frame_epoch = FrameEpoch(epoch.number, epoch.key, rid)
                self._epoch_announced = True
            return self._epoch

    def _announce_member(self, epoch: CrewEpoch, member: int, handle: str, now: float) -> None:
        """v2: the member's handle goes ashore once per epoch, sealed like the messages."""
        with self._lock:
            if member in self._members_announced:
                return
            self.store.accept(
                Kind.MEMBER, lambda rid: seal_member(epoch.number, epoch.key, rid, member, handle), now
            )
            self._members_announced.add(member)

    def send(self, member: int, to: str, text: str, *, listed: bool = True) -> int:
        """Seal and queue a crew message; durable when this returns. Unless ``listed``, the message
        shows in none of the member's lists and its receipt opens with no key (``personal_alert``)."""
        to = HOTLINE if to.strip().lower() in ("", HOTLINE) else clean_text(to, "to", MAX_CONTACT_CHARS)
        text = clean_text(text, "text", MAX_TEXT_CHARS, allow_newlines=True)
        handle = self.members.handle(member)
        if handle is None:
            raise CrewInputError("session", "unknown member", "problem_expired")
        epoch = self._current_epoch()
        now = self.clock.now()
        if self.wire_version >= 2:
            self._announce_member(epoch, member, handle, now)
            coded = encode_text(text)

            def body_v2(db: sqlite3.Connection, rid: int) -> dict:
                write_receipt(db, rid, member, opens=listed)  # the sender finds it again; no one else
                return seal_crew(epoch.number, epoch.key, rid, member, now, to, coded)

            return self.store.accept_with_rows(
                Kind.CREW_MESSAGE, body_v2, now, member, self.message_lifetime_s, listed
            )
        content = pad_content(CrewContent(to=to, text=text, handle=handle).encode())

        def body(db: sqlite3.Connection, rid: int) -> dict:
            write_receipt(db, rid, member, opens=listed)  # the sender finds it again; no one else
            return CrewMessage(member, epoch.number, epoch.seal(rid, content), to_wire_time(now)).body()

        return self.store.accept_with_rows(
            Kind.CREW_MESSAGE, body, now, member, self.message_lifetime_s, listed
        )

    def sos(
        self, note: str = "", latitude: float | None = None, longitude: float | None = None, device: str = "vessel"
    ) -> int:
        """Raise (or confirm) the vessel's distress alert, at the given position or else where the vessel is
        now, if known; see ``gateway.distress``. Returns its id."""
        if (latitude is None or longitude is None) and self.position is not None:
            latitude, longitude = self.position() or (None, None)
        return self.distress.raise_alert(device, note, latitude, longitude).rid

    def cancel_sos(self, rid: int) -> str:
        """Mark distress alert ``rid`` a false alarm: "withdrawn" if nothing of it left yet, else
        "cancel-sent" (a small update says so); "unknown" if ``rid`` is no alert."""
        return self.distress.false_alarm(rid)

    def personal_alert(self, member: int) -> int:
        """The covert personal-safety alert: an ordinary sealed crew message to the hotline, the same
        class and a similar size as any other, so nobody on board can tell it from a normal message.
        It is scheduled as the member's, but shown in none of their lists nor counted in their
        allowance, and its receipt opens with no key: whoever looks at the member's phone, now or after
        a restart, does not see it, and on disk it has a receipt like every other message."""
        return self.send(member, HOTLINE, PERSONAL_ALERT_TEXT, listed=False)

    def queue_position(self, rid: int) -> int | None:
        """How many records go before ``rid`` (None once it has left the queue)."""
        with self.store.transaction() as db:
            row = db.execute("SELECT class, state FROM records WHERE rid = ?", (rid,)).fetchone()
            if row is None or row[1] != "queued":
                return None
            ahead = db.execute(
                "SELECT COUNT(*) FROM records WHERE state = 'queued' AND (class < ? OR (class = ? AND rid < ?))",
                (row[0], row[0], rid),
            ).fetchone()[0]
        return int(ahead)

    def messages(self, member: int) -> list[MessageStatus]:
        return self.store.member_messages(member)

    def inbox(self, member: int) -> list[InboxEntry]:
        return self.store.inbox(member)
