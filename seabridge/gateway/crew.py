"""What a crew member can do through the gateway: claim a handle, send a sealed message, read replies.

Crew content is sealed for the shore's crew key the moment it is accepted, with this run's RAM-only
epoch key (see ``wire.crypto``). The first crew message of an epoch also queues the epoch's public key
as a control record, so the shore can open everything sealed in this run.
"""

from __future__ import annotations

import threading
import unicodedata
from dataclasses import dataclass

from nacl.public import PublicKey

from seabridge.clock import Clock
from seabridge.wire.crypto import CrewEpoch
from seabridge.wire.records import HOTLINE, CrewContent, CrewMessage, Epoch, Kind, Sos, to_wire_time

from .store import GatewayStore, InboxEntry, MessageStatus

MAX_TEXT_CHARS = 1000
MAX_HANDLE_CHARS = 32
MAX_CONTACT_CHARS = 64


class CrewInputError(ValueError):
    """A person's input was refused; the message names the field and is safe to show."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def clean_text(value: str, field: str, max_chars: int, allow_newlines: bool = False) -> str:
    value = unicodedata.normalize("NFC", value).strip()
    if not value:
        raise CrewInputError(field, "must not be empty")
    if len(value) > max_chars:
        raise CrewInputError(field, f"at most {max_chars} characters")
    for ch in value:
        if unicodedata.category(ch) == "Cc" and not (allow_newlines and ch in "\n\t"):
            raise CrewInputError(field, "contains control characters")
    return value


@dataclass
class CrewDesk:
    store: GatewayStore
    crew_public: PublicKey
    clock: Clock
    message_lifetime_s: float = 30 * 86400

    def __post_init__(self) -> None:
        self._epoch: CrewEpoch | None = None
        self._epoch_announced = False
        self._lock = threading.Lock()

    def login(self, handle: str, pin: str) -> int | None:
        handle = clean_text(handle, "handle", MAX_HANDLE_CHARS)
        if not (pin.isdigit() and 4 <= len(pin) <= 12):
            raise CrewInputError("pin", "4 to 12 digits")
        return self.store.claim_or_login(handle, pin, self.clock.now())

    def _current_epoch(self) -> CrewEpoch:
        with self._lock:
            if self._epoch is None:
                self._epoch = CrewEpoch.start(self.store.next_epoch(), self.crew_public)
            if not self._epoch_announced:
                epoch = self._epoch
                self.store.accept(
                    Kind.EPOCH, lambda _rid: Epoch(epoch.number, epoch.public_bytes).body(), self.clock.now()
                )
                self._epoch_announced = True
            return self._epoch

    def send(self, member: int, to: str, text: str) -> int:
        """Seal and queue a crew message; durable when this returns."""
        to = HOTLINE if to.strip().lower() in ("", HOTLINE) else clean_text(to, "to", MAX_CONTACT_CHARS)
        text = clean_text(text, "text", MAX_TEXT_CHARS, allow_newlines=True)
        handle = self.store.member_handle(member)
        if handle is None:
            raise CrewInputError("member", "unknown member")
        epoch = self._current_epoch()
        now = self.clock.now()
        content = CrewContent(to=to, text=text, handle=handle).encode()

        def body(rid: int) -> dict:
            return CrewMessage(member, epoch.number, epoch.seal(rid, content), to_wire_time(now)).body()

        return self.store.accept(
            Kind.CREW_MESSAGE, body, now, member=member, lifetime_s=self.message_lifetime_s
        )

    def sos(self, note: str = "", latitude: float | None = None, longitude: float | None = None) -> int:
        now = self.clock.now()
        lat = None if latitude is None else round(latitude * 1e5)
        lon = None if longitude is None else round(longitude * 1e5)
        record = Sos(to_wire_time(now), lat, lon, note[:200])
        return self.store.accept(Kind.SOS, lambda _rid: record.body(), now)

    def messages(self, member: int) -> list[MessageStatus]:
        return self.store.member_messages(member)

    def inbox(self, member: int) -> list[InboxEntry]:
        return self.store.inbox(member)
