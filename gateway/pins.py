"""PINs on the vessel: the one scrypt hash every PIN is stored under, and the lockout that grows with
repeated wrong PINs for one handle.

Crew accounts and the captain's catch-log role both use it, each with its own failures table (so a
crew handle and a captain handle never lock each other). It owns the lockout policy and the SQL of
those failures tables; it must not decide what a handle or a PIN may look like, and takes time only
from the caller (``now``).
"""

from __future__ import annotations

import hashlib
import hmac
import os

from .store import GatewayStore

LOCK_AFTER_FAILURES = 5  # wrong PINs for one handle before it is locked
LOCK_BASE_S = 30.0  # first lockout; doubles with each further wrong PIN
LOCK_MAX_S = 3600.0


def hash_pin(pin: str, salt: bytes) -> bytes:
    return hashlib.scrypt(pin.encode("utf-8"), salt=salt, n=2**14, r=8, p=1, dklen=32)


def new_pin_hash(pin: str) -> tuple[bytes, bytes]:
    """A fresh salt and the PIN's hash under it."""
    salt = os.urandom(16)
    return salt, hash_pin(pin, salt)


def pin_matches(pin: str, salt: bytes, stored: bytes) -> bool:
    return hmac.compare_digest(hash_pin(pin, bytes(salt)), bytes(stored))


def lockout_s(failures: int) -> float:
    """How long a handle stays locked after ``failures`` wrong PINs in a row."""
    if failures < LOCK_AFTER_FAILURES:
        return 0.0
    return min(LOCK_MAX_S, LOCK_BASE_S * 2 ** (failures - LOCK_AFTER_FAILURES))


class PinLockout:
    """Wrong-PIN counts per handle in ``table`` of the gateway store, and the lockout they cause."""

    def __init__(self, store: GatewayStore, table: str) -> None:
        if not table.isidentifier():
            raise ValueError(f"not a table name: {table!r}")
        self.store = store
        self.table = table
        with store.schema() as db:
            db[table].create(
                {"handle": str, "failures": int, "locked_until": float},
                pk="handle",
                not_null={"failures", "locked_until"},
                if_not_exists=True,
            )

    def locked_for(self, handle: str, now: float) -> int:
        """Whole seconds until ``handle`` may try again (0: it may try now)."""
        with self.store.transaction() as db:
            row = db.execute(f"SELECT locked_until FROM {self.table} WHERE handle = ?", (handle,)).fetchone()
        return max(0, int(row[0] - now + 0.999)) if row and row[0] > now else 0

    def failed(self, handle: str, now: float) -> int:
        """Count a wrong PIN for ``handle`` (locking it when due); returns the failures in a row."""
        # Raw SQL in one explicit transaction: two wrong PINs at once must both count.
        with self.store.transaction() as db:
            row = db.execute(f"SELECT failures FROM {self.table} WHERE handle = ?", (handle,)).fetchone()
            failures = (row[0] if row else 0) + 1
            db.execute(
                f"INSERT OR REPLACE INTO {self.table} (handle, failures, locked_until) VALUES (?, ?, ?)",
                (handle, failures, now + lockout_s(failures)),
            )
        return failures

    def cleared(self, handle: str) -> None:
        """The right PIN was given: forget the wrong ones."""
        with self.store.transaction() as db:
            db.execute(f"DELETE FROM {self.table} WHERE handle = ?", (handle,))
