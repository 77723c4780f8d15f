"""Captain accounts of the catch log, administered on the vessel: add one with a generated PIN, give
one a new PIN, list them.

The catch log (``gateway.catchlog``) owns the captains' table, the PIN rules and the sign-in; this
module only creates and resets accounts for the ``seabridge captain`` command and the demo. It must not
take a PIN from the command line (a generated one is printed; a chosen one is read from a file or
standard input by the caller) and it reads time only from the clock it is given.
"""

from __future__ import annotations

import secrets
import sqlite3

from common.clock import Clock

from .catchlog import CatchInputError, CatchLog, _hash_pin
from .store import GatewayStore

PIN_DIGITS = 8  # a generated PIN; the catch log accepts 6 to 12 digits


class CaptainExists(ValueError):
    """A captain with this name is already registered."""


def generate_pin() -> str:
    return "".join(secrets.choice("0123456789") for _ in range(PIN_DIGITS))


def add_captain(store: GatewayStore, clock: Clock, name: str, pin: str | None = None) -> str:
    """Register captain ``name`` with ``pin`` (or a generated one); returns the PIN.
    Raises ``CaptainExists`` or ``CatchInputError`` (bad name or PIN)."""
    pin = generate_pin() if pin is None else pin
    try:
        CatchLog(store, clock).add_captain(name, pin)
    except sqlite3.IntegrityError:
        raise CaptainExists(f"a captain named {name.strip()!r} already exists") from None
    return pin


def set_pin(store: GatewayStore, clock: Clock, name: str, pin: str | None = None) -> str:
    """Give captain ``name`` a new PIN (or a generated one), close its sessions and clear its lockout;
    returns the PIN. Raises ``KeyError`` for an unknown captain, ``CatchInputError`` for a bad PIN."""
    CatchLog(store, clock)  # the catch log's tables exist from here on
    pin = generate_pin() if pin is None else pin
    if not (pin.isascii() and pin.isdigit() and 6 <= len(pin) <= 12):
        raise CatchInputError("pin", "problem_pin_format", "6 to 12 digits")
    name = name.strip()
    salt = secrets.token_bytes(16)
    with store._tx() as db:
        row = db.execute("SELECT id FROM catch_captains WHERE handle = ?", (name,)).fetchone()
        if row is None:
            raise KeyError(name)
        db.execute(
            "UPDATE catch_captains SET pin_salt = ?, pin_hash = ? WHERE id = ?",
            (salt, _hash_pin(pin, salt), row[0]),
        )
        db.execute("DELETE FROM catch_sessions WHERE captain = ?", (row[0],))
        db.execute("DELETE FROM catch_failures WHERE handle = ?", (name,))
    return pin


def captain_names(store: GatewayStore, clock: Clock) -> list[str]:
    CatchLog(store, clock)
    with store._tx() as db:
        return [str(r[0]) for r in db.execute("SELECT handle FROM catch_captains ORDER BY handle")]
