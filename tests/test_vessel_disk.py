"""What the vessel's disk reveals to its operator, measured: three crew members sign in, send messages
of many lengths (one sends the covert personal-safety alert), receive replies; then the operator opens
the SQLite file and its write-ahead log as they are on disk and tries to link records to members, to
find nicknames and reply text, and to tell the alert by its size. The promise (docs/captive-page.md):
the file tells at most that *some* crew member sent *something* of a padded size class, and when."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

from nacl.public import PrivateKey

from common.clock import ManualClock
from firmware_profiles import load_profile
from gateway.accounts import Accounts
from gateway.crew import PERSONAL_ALERT_TEXT, CrewDesk
from gateway.store import GatewayStore
from wire.crypto import CrewEpoch
from wire.frame import frame_capacity
from wire.records import CONTENT_SIZE_CLASS, CrewMessage, Kind

PROFILE = load_profile("iridium-9603")
CREW = {"Ko Aung Min": "482913", "Sok Dara": "1357", "Nok Wong": "86420"}
REPLY = "Your case number is 4471, a lawyer will call"
LEGACY_REPLY = "Reply stored before your key existed"


class Vessel:
    def __init__(self, folder: Path, clock: ManualClock) -> None:
        self.store = GatewayStore(folder / "gateway.sqlite3", frame_capacity(PROFILE.mo_max_bytes, 2**35 - 1))
        self.accounts = Accounts(self.store, clock)
        self.desk = CrewDesk(self.store, PrivateKey.generate().public_key, clock)

    def close(self) -> None:
        self.store.close()


def _disk_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.glob("gateway.sqlite3*")))


def _operator(folder: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{folder / 'gateway.sqlite3'}?mode=ro", uri=True)


def _crew_sizes(db: sqlite3.Connection) -> dict[int, int]:
    """Bytes of each crew record as stored (its body and its units), by record id."""
    return dict(
        db.execute(
            "SELECT r.rid, SUM(LENGTH(u.item)) FROM records r JOIN units u ON u.rid = r.rid WHERE r.kind = ? "
            "GROUP BY r.rid",
            (int(Kind.CREW_MESSAGE),),
        ).fetchall()
    )


def test_the_operator_cannot_link_records_to_members_nor_read_handles_replies_or_the_alert(tmp_path: Path) -> None:
    clock = ManualClock(start=1_780_000_000.0)
    rng = random.Random(3)
    vessel = Vessel(tmp_path, clock)
    sessions = {}
    for handle, pin in CREW.items():
        session = vessel.accounts.login(handle, pin)
        assert session is not None
        sessions[handle] = session
    # A reply for a member who has no key yet is held in the clear until that member signs in.
    late = vessel.accounts.members.claim_or_login("Late Joiner", "2468", clock.now())
    assert late is not None
    with vessel.store.transaction() as db:
        GatewayStore.inbox_add(db, late, "hotline", LEGACY_REPLY, clock.now(), clock.now(), 900)
    sent: dict[str, list[int]] = {h: [] for h in CREW}
    for i in range(60):
        handle = rng.choice(list(CREW))
        clock.advance(rng.uniform(1, 600))
        text = " ".join(rng.choice(["pay", "passport", "help", "ok", "ငွေ", "ប្រាក់", "เงิน"]) for _ in range(rng.randint(1, 40)))
        sent[handle].append(vessel.desk.send(sessions[handle].member, "hotline", f"{i} {text}"))
    short = vessel.desk.send(sessions["Sok Dara"].member, "hotline", "I am fine, thank you")
    alert = vessel.desk.personal_alert(sessions["Nok Wong"].member)
    with vessel.store.transaction() as db:
        GatewayStore.inbox_add(db, sessions["Ko Aung Min"].member, "hotline", REPLY, clock.now(), clock.now(), 901)
    assert vessel.accounts.login("Late Joiner", "2468") is not None  # seals the held reply
    assert [e.text for e in vessel.accounts.inbox(sessions["Ko Aung Min"])] == [REPLY]
    with vessel.store.transaction() as db:
        assert db.execute("PRAGMA secure_delete").fetchone()[0] == 1
    vessel.close()

    # --- the operator's view: the files as they are on disk ---------------------------------------
    raw = _disk_bytes(tmp_path)
    for secret in [*CREW, "Late Joiner", REPLY, LEGACY_REPLY, PERSONAL_ALERT_TEXT]:
        assert secret.encode() not in raw, f"{secret!r} is readable in the file"
    db = _operator(tmp_path)
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    for table in tables:
        columns = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
        if "member" in columns and "rid" in columns:
            linked = db.execute(f"SELECT COUNT(*) FROM {table} WHERE member IS NOT NULL").fetchone()[0]
            assert linked == 0, f"{table} links records to members"
    assert db.execute("SELECT COUNT(*) FROM member_usage").fetchone()[0] == 0
    # Sizes: every crew record is a whole number of size classes of sealed content, and the alert's
    # class is one that ordinary messages fill too: it hides among them.
    sizes = _crew_sizes(db)
    # Every crew message has a receipt, the alert too (its receipt opens with no key): no tell there.
    receipts = {r[0] for r in db.execute("SELECT rid FROM crew_receipts")}
    assert receipts == set(sizes) and alert in receipts
    bodies = {rid: len(CrewMessage.from_body(_body(db, rid)).sealed) for rid in sizes}
    tag = 16  # the epoch seal's authentication tag
    assert all((n - tag) % CONTENT_SIZE_CLASS == 0 for n in bodies.values()), sorted(set(bodies.values()))
    same_class = [rid for rid, n in bodies.items() if n == bodies[alert] and rid != alert]
    assert len(same_class) >= 5, f"only {len(same_class)} ordinary messages share the alert's size"
    assert len(set(bodies.values())) < len(bodies) / 4, "sizes must fall into a few classes"
    db.close()

    # --- after a restart, each member finds their own messages again, and only theirs -----------------
    vessel = Vessel(tmp_path, clock)
    for handle, session in sessions.items():
        again = vessel.accounts.session(session.token)
        assert again is not None
        mine = {m.rid for m in vessel.desk.messages(again.member)}
        expected = set(sent[handle]) | ({short} if handle == "Sok Dara" else set())
        assert mine == expected, handle  # the covert alert is in nobody's list, its sender's included
        assert vessel.desk.members.handle(again.member) == handle
    vessel.close()


def _body(db: sqlite3.Connection, rid: int) -> dict:
    from wire.items import decode_items

    items = b"".join(bytes(r[0]) for r in db.execute("SELECT item FROM units WHERE rid = ? ORDER BY idx", (rid,)))
    [item] = decode_items(items)
    return item.body  # type: ignore[union-attr]


def test_sealed_content_opens_ashore_with_its_padding_ignored() -> None:
    from wire.records import CrewContent, padded_content

    crew = PrivateKey.generate()
    epoch = CrewEpoch.start(1, crew.public_key)
    for text in ["", "ok", PERSONAL_ALERT_TEXT, "x" * 500]:
        content = CrewContent("hotline", text or "-", "Nok")
        padded = padded_content(content)
        assert len(padded) % CONTENT_SIZE_CLASS == 0
        assert CrewContent.decode(padded) == content
        assert len(epoch.seal(7, padded)) == len(padded) + 16
