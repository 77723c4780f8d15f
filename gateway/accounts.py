"""Crew member accounts on the captive page: PIN checks with brute-force limits, sessions that need no
cookie, per-member reply sealing, consent and language preference.

What it owns (its own tables in the gateway store's file):

- ``members`` and ``sessions`` (the ``Members`` repository): a slow keyed hash of each handle (the
  file never lists nicknames; the handle itself is kept sealed to the member's key and, once the
  member signs in, in memory), their PINs (scrypt, see ``gateway.pins``) and session ids.
- ``crew_receipts``: for each crew message, a receipt sealed to its sender's public key (no member
  column), so that after a restart a member's own records are found again with the member's key
  only; the queue itself never names members (``gateway.store``).
- ``crew_keys``: one X25519 key pair per member. The public half seals replies as they arrive; the
  private half is stored encrypted (XSalsa20-Poly1305) under a key derived from the PIN with Argon2id,
  so reading replies needs the PIN.
- ``crew_sessions``: a session is ``<sid>.<k>``: ``sid`` names a row in the sessions table,
  ``k`` (never stored) unlocks that row's copy of the member's private key. The token can travel in a
  cookie, a hidden form field or the URL, so the page works in sign-in mini-browsers that drop cookies.
- ``crew_sealed_inbox``: replies sealed to the member's public key. A temporary trigger on the
  store's ``inbox`` table seals each reply in the same transaction that inserts it and blanks the
  plaintext columns, so the committed database never holds a reply in the clear.
- ``crew_login_failures``: wrong-PIN counts per handle (a ``gateway.pins.PinLockout``).

This module must not open the network or the modem, and takes time only from the injected clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import secrets
import sqlite3
import threading
from dataclasses import dataclass

import cbor2
from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox
from nacl.pwhash import argon2id
from nacl.secret import SecretBox

from common.clock import Clock

from .pins import PinLockout, new_pin_hash, pin_matches
from .store import GatewayStore, InboxEntry

log = logging.getLogger("gateway.accounts")

CONSENT_VERSION = 1
SESSION_IDLE_S = 12 * 3600.0  # a session not used for this long ends
SESSION_MAX_S = 7 * 86400.0  # and none lasts longer than this
KDF_OPSLIMIT = 3
KDF_MEMLIMIT = 16 * 1024 * 1024  # bytes of RAM per derivation (a Raspberry Pi can afford a few at once)
MAX_TOKEN_CHARS = 96
HANDLE_TAG_PREFIX = "h1:"  # members.handle holds this + scrypt(handle, the file's salt), never the handle
RECEIPT_PREFIX = b"seabridge-receipt:"

MEMBERS_SCHEMA = """
CREATE TABLE IF NOT EXISTS members (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    handle TEXT NOT NULL UNIQUE,
    pin_salt BLOB NOT NULL,
    pin_hash BLOB NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token TEXT PRIMARY KEY,
    member INTEGER NOT NULL REFERENCES members(id),
    created REAL NOT NULL
);
"""
# A temporary trigger lives on the connection, so it is created again each time the file is opened.
SEAL_TRIGGER = """
CREATE TEMP TRIGGER IF NOT EXISTS crew_inbox_seal AFTER INSERT ON main.inbox
WHEN EXISTS (SELECT 1 FROM crew_keys WHERE member = NEW.member)
BEGIN
    INSERT OR IGNORE INTO crew_sealed_inbox (inbox_id, member, sealed)
        VALUES (NEW.id, NEW.member,
                sb_seal_reply((SELECT public FROM crew_keys WHERE member = NEW.member), NEW.sender, NEW.text));
    UPDATE inbox SET text = '', sender = '' WHERE id = NEW.id;
END;
"""


def _create_tables(store: GatewayStore) -> None:
    with store.schema() as db:
        db.executescript(MEMBERS_SCHEMA)  # AUTOINCREMENT and UNIQUE: plain SQL says it best
        db["crew_keys"].create(
            {
                "member": int,
                "public": bytes,
                "kdf_salt": bytes,
                "wrapped": bytes,  # private key under Argon2id(PIN)
                "lang": str,
                "consent_at": float,
                "consent_version": int,
            },
            pk="member",
            not_null={"public", "kdf_salt", "wrapped"},
            if_not_exists=True,
        )
        db["crew_sessions"].create(
            # wrapped: the private key under the token's secret half
            {"sid": str, "member": int, "created": float, "seen": float, "wrapped": bytes},
            pk="sid",
            not_null={"member", "created", "seen", "wrapped"},
            if_not_exists=True,
        )
        db["crew_receipts"].create(
            {"rid": int, "sealed": bytes},  # sealed to the sender's public key: RECEIPT_PREFIX + rid
            pk="rid",
            not_null={"sealed"},
            if_not_exists=True,
        )
        if "handle_sealed" not in db["crew_keys"].columns_dict:
            db["crew_keys"].add_column("handle_sealed", bytes)  # the handle, sealed to the public key
        db["crew_sealed_inbox"].create(
            {"inbox_id": int, "member": int, "sealed": bytes},  # inbox_id: the store's inbox row
            pk="inbox_id",
            not_null={"member", "sealed"},
            if_not_exists=True,
        )
    store.add_schema(SEAL_TRIGGER, functions={"sb_seal_reply": (3, _seal_reply)})


class Members:
    """The ``members`` and ``sessions`` tables: who has claimed which handle, and their sessions.

    The file keeps only a tag of each handle (``tag``: scrypt under a salt of this file), so it does
    not list the crew's nicknames; whoever guesses a nickname can confirm it, one scrypt per guess.
    The handle itself is known while its member is signed in (``store.handles``, memory only)."""

    def __init__(self, store: GatewayStore) -> None:
        self.store = store
        with store.schema() as db:
            db.executescript(MEMBERS_SCHEMA)
        self._salt = bytes.fromhex(store.setting("handle_salt", lambda: secrets.token_hex(16)))
        self._tag_legacy_handles()

    def tag(self, handle: str) -> str:
        digest = hashlib.scrypt(handle.encode("utf-8"), salt=self._salt, n=2**14, r=8, p=1, dklen=16)
        return HANDLE_TAG_PREFIX + digest.hex()

    def _tag_legacy_handles(self) -> None:
        """Files from before handles were tagged: replace each plaintext handle by its tag (the handle
        stays in memory until sign-in seals it)."""
        with self.store.transaction() as db:
            rows = db.execute(
                "SELECT id, handle FROM members WHERE substr(handle, 1, 3) != ?", (HANDLE_TAG_PREFIX,)
            ).fetchall()
            for member, handle in rows:
                db.execute("UPDATE members SET handle = ? WHERE id = ?", (self.tag(handle), member))
                self.store.handles[member] = handle
        if rows:
            self.store.fold_wal()

    def claim_or_login(self, handle: str, pin: str, now: float) -> int | None:
        """Member id for ``handle`` if ``pin`` matches; a new account if the handle is free."""
        tag = self.tag(handle)
        with self.store.transaction() as db:
            row = db.execute("SELECT id, pin_salt, pin_hash FROM members WHERE handle = ?", (tag,)).fetchone()
            if row is None:
                salt, pin_hash = new_pin_hash(pin)
                cur = db.execute(
                    "INSERT INTO members (handle, pin_salt, pin_hash, created) VALUES (?, ?, ?, ?)",
                    (tag, salt, pin_hash, now),
                )
                member: int | None = int(cur.lastrowid or 0)
            else:
                member = row[0] if pin_matches(pin, row[1], row[2]) else None
        if member is not None:
            self.store.handles[member] = handle
        return member

    def handle(self, member: int) -> str | None:
        """The member's handle while known in this process (signed in since it started)."""
        return self.store.handles.get(member)

    def open_session(self, member: int, now: float) -> str:
        token = secrets.token_urlsafe(24)
        with self.store.transaction() as db:
            db.execute("INSERT INTO sessions (token, member, created) VALUES (?, ?, ?)", (token, member, now))
        return token

    def session_member(self, token: str) -> int | None:
        with self.store.transaction() as db:
            row = db.execute("SELECT member FROM sessions WHERE token = ?", (token,)).fetchone()
        return row[0] if row else None

    def close_session(self, token: str) -> None:
        with self.store.transaction() as db:
            db.execute("DELETE FROM sessions WHERE token = ?", (token,))


class LoginLocked(Exception):
    """Too many wrong PINs for this handle; ``seconds`` until the next try is allowed."""

    def __init__(self, seconds: int) -> None:
        super().__init__(f"locked for {seconds} s")
        self.seconds = seconds


@dataclass(frozen=True)
class Session:
    token: str
    sid: str
    member: int
    secret: PrivateKey


@dataclass(frozen=True)
class Profile:
    member: int
    handle: str
    lang: str | None
    consented: bool


def _seal_reply(public: bytes | None, sender: str, text: str) -> bytes | None:
    if public is None:
        return None
    return SealedBox(PublicKey(bytes(public))).encrypt(cbor2.dumps([sender, text]))


def _pin_key(pin: str, salt: bytes) -> bytes:
    return argon2id.kdf(
        SecretBox.KEY_SIZE, pin.encode("utf-8"), salt, opslimit=KDF_OPSLIMIT, memlimit=KDF_MEMLIMIT
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Accounts:
    """Crew accounts over a ``GatewayStore`` (thread-safe; call from worker threads)."""

    def __init__(self, store: GatewayStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self._lock = threading.Lock()
        self.members = Members(store)
        self.lockout = PinLockout(store, "crew_login_failures")
        self._relearned: set[int] = set()
        _create_tables(store)
        for member, handle in list(store.handles.items()):  # legacy plaintext handles, just tagged
            self._seal_handle(member, handle)

    # --- logging in --------------------------------------------------------------------------------

    def locked_for(self, handle: str) -> int:
        return self.lockout.locked_for(handle, self.clock.now())

    def _failed(self, handle: str) -> None:
        failures = self.lockout.failed(handle, self.clock.now())
        log.warning("wrong PIN for a crew handle (%d in a row)", failures)

    def login(self, handle: str, pin: str) -> Session | None:
        """A new session if ``pin`` is right (claiming ``handle`` if it is free); None if wrong.

        Raises ``LoginLocked`` while the handle is locked after repeated wrong PINs."""
        wait = self.locked_for(handle)
        if wait:
            raise LoginLocked(wait)
        now = self.clock.now()
        member = self.members.claim_or_login(handle, pin, now)
        if member is None:
            self._failed(handle)
            return None
        secret = self._unlock_or_create(member, pin)
        if secret is None:
            self._failed(handle)
            return None
        self.lockout.cleared(handle)
        self._seal_legacy_replies(member)
        self._seal_handle(member, handle)
        self._relearn(member, secret)
        return self._open_session(member, secret, now)

    def _seal_handle(self, member: int, handle: str) -> None:
        public = self._public(member)
        if public is not None:
            sealed = SealedBox(PublicKey(public)).encrypt(handle.encode("utf-8"))
            with self.store.transaction() as db:
                db.execute("UPDATE crew_keys SET handle_sealed = ? WHERE member = ?", (sealed, member))

    def _relearn(self, member: int, secret: PrivateKey) -> None:
        """Once per process and member: find the member's handle and own queued records again, with
        the member's key (the file links neither to the member)."""
        if member in self._relearned:
            return
        box = SealedBox(secret)
        with self.store.transaction() as db:
            row = db.execute("SELECT handle_sealed FROM crew_keys WHERE member = ?", (member,)).fetchone()
            receipts = db.execute("SELECT rid, sealed FROM crew_receipts").fetchall()
        if row is not None and row[0] is not None:
            try:
                self.store.handles[member] = box.decrypt(bytes(row[0])).decode("utf-8")
            except (CryptoError, UnicodeDecodeError):
                log.warning("member %d: the sealed handle did not open", member)
        for rid, sealed in receipts:
            try:
                opened = box.decrypt(bytes(sealed))
            except CryptoError:
                continue  # someone else's
            if opened == RECEIPT_PREFIX + str(rid).encode():
                self.store.remember_member(int(rid), member)
        self._relearned.add(member)

    def _unlock_or_create(self, member: int, pin: str) -> PrivateKey | None:
        with self._lock:
            with self.store.transaction() as db:
                row = db.execute(
                    "SELECT kdf_salt, wrapped FROM crew_keys WHERE member = ?", (member,)
                ).fetchone()
            if row is not None:
                try:
                    return PrivateKey(SecretBox(_pin_key(pin, bytes(row[0]))).decrypt(bytes(row[1])))
                except CryptoError:
                    log.warning("member %d: PIN accepted by the store but the key did not open", member)
                    return None
            secret = PrivateKey.generate()
            salt = secrets.token_bytes(argon2id.SALTBYTES)
            wrapped = SecretBox(_pin_key(pin, salt)).encrypt(bytes(secret))
            with self.store.transaction() as db:
                db.execute(
                    "INSERT INTO crew_keys (member, public, kdf_salt, wrapped) VALUES (?, ?, ?, ?)",
                    (member, bytes(secret.public_key), salt, bytes(wrapped)),
                )
            return secret

    def _open_session(self, member: int, secret: PrivateKey, now: float) -> Session:
        sid = self.members.open_session(member, now)
        k = secrets.token_bytes(SecretBox.KEY_SIZE)
        wrapped = SecretBox(k).encrypt(bytes(secret))
        with self.store.transaction() as db:
            db.execute(
                "INSERT INTO crew_sessions (sid, member, created, seen, wrapped) VALUES (?, ?, ?, ?, ?)",
                (sid, member, now, now, bytes(wrapped)),
            )
        return Session(f"{sid}.{_b64(k)}", sid, member, secret)

    def session(self, token: str) -> Session | None:
        """The session a token names, if it is valid and has not ended."""
        if not token or len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
            return None
        sid, _, key_text = token.partition(".")
        try:
            k = _unb64(key_text)
        except (binascii.Error, ValueError):
            return None
        if len(k) != SecretBox.KEY_SIZE:
            return None
        now = self.clock.now()
        with self.store.transaction() as db:
            row = db.execute(
                "SELECT member, created, seen, wrapped FROM crew_sessions WHERE sid = ?", (sid,)
            ).fetchone()
            if row is None:
                return None
            member, created, seen, wrapped = row
            if now - seen > SESSION_IDLE_S or now - created > SESSION_MAX_S:
                db.execute("DELETE FROM crew_sessions WHERE sid = ?", (sid,))
                return None
            db.execute("UPDATE crew_sessions SET seen = ? WHERE sid = ?", (now, sid))
        try:
            secret = PrivateKey(SecretBox(k).decrypt(bytes(wrapped)))
        except CryptoError:
            return None
        if not hmac.compare_digest(bytes(secret.public_key), self._public(member) or b""):
            return None
        self._relearn(member, secret)
        return Session(token, sid, member, secret)

    def close(self, session: Session) -> None:
        with self.store.transaction() as db:
            db.execute("DELETE FROM crew_sessions WHERE sid = ?", (session.sid,))
        self.members.close_session(session.sid)

    def _public(self, member: int) -> bytes | None:
        with self.store.transaction() as db:
            row = db.execute("SELECT public FROM crew_keys WHERE member = ?", (member,)).fetchone()
        return bytes(row[0]) if row else None

    # --- profile: consent and language -------------------------------------------------------------

    def profile(self, session: Session) -> Profile:
        with self.store.transaction() as db:
            row = db.execute(
                "SELECT lang, consent_version FROM crew_keys WHERE member = ?", (session.member,)
            ).fetchone()
        handle = self.members.handle(session.member) or ""
        lang, version = (row[0], row[1]) if row else (None, None)
        return Profile(session.member, handle, lang, version == CONSENT_VERSION)

    def consent(self, session: Session) -> None:
        with self.store.transaction() as db:
            db.execute(
                "UPDATE crew_keys SET consent_at = ?, consent_version = ? WHERE member = ?",
                (self.clock.now(), CONSENT_VERSION, session.member),
            )

    def set_language(self, session: Session, lang: str) -> None:
        with self.store.transaction() as db:
            db.execute("UPDATE crew_keys SET lang = ? WHERE member = ?", (lang, session.member))

    # --- replies -----------------------------------------------------------------------------------

    def _seal_legacy_replies(self, member: int) -> None:
        """Seal replies that arrived while this member had no key pair yet."""
        public = self._public(member)
        if public is None:
            return
        with self.store.transaction() as db:
            rows = db.execute(
                "SELECT id, sender, text FROM inbox WHERE member = ? AND text != '' "
                "AND id NOT IN (SELECT inbox_id FROM crew_sealed_inbox)",
                (member,),
            ).fetchall()
            for inbox_id, sender, text in rows:
                db.execute(
                    "INSERT INTO crew_sealed_inbox (inbox_id, member, sealed) VALUES (?, ?, ?)",
                    (inbox_id, member, _seal_reply(public, sender, text)),
                )
                db.execute("UPDATE inbox SET text = '', sender = '' WHERE id = ?", (inbox_id,))

    def inbox(self, session: Session, limit: int = 100) -> list[InboxEntry]:
        """This member's replies, newest first, opened with the session's key."""
        with self.store.transaction() as db:
            rows = db.execute(
                "SELECT i.sender, i.text, i.created, i.received, s.sealed FROM inbox i "
                "LEFT JOIN crew_sealed_inbox s ON s.inbox_id = i.id "
                "WHERE i.member = ? ORDER BY i.id DESC LIMIT ?",
                (session.member, limit),
            ).fetchall()
        box = SealedBox(session.secret)
        out: list[InboxEntry] = []
        for sender, text, created, received, sealed in rows:
            if sealed is not None:
                try:
                    sender, text = cbor2.loads(box.decrypt(bytes(sealed)))
                except (CryptoError, ValueError, cbor2.CBORDecodeError):
                    log.warning("member %d: a sealed reply did not open", session.member)
                    continue
            out.append(InboxEntry(str(sender), str(text), created, received))
        return out


def write_receipt(db: sqlite3.Connection, rid: int, member: int, opens: bool = True) -> None:
    """Inside the transaction that queues crew message ``rid``: its receipt, sealed to ``member``'s
    public key (nothing if the member has no key pair, or the accounts' tables do not exist). Unless
    ``opens``, it is sealed to a throwaway key instead: on disk it looks like any receipt, and nobody,
    the member included, finds the message with it (the covert alert)."""
    try:
        row = db.execute("SELECT public FROM crew_keys WHERE member = ?", (member,)).fetchone()
        if row is not None:
            public = PublicKey(bytes(row[0])) if opens else PrivateKey.generate().public_key
            sealed = SealedBox(public).encrypt(RECEIPT_PREFIX + str(rid).encode())
            db.execute("INSERT OR REPLACE INTO crew_receipts (rid, sealed) VALUES (?, ?)", (rid, sealed))
    except sqlite3.OperationalError:  # no accounts in this store (a bare desk in a simulation)
        return
