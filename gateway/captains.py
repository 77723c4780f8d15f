"""Captain accounts of the catch log, administered on the vessel: add one with a generated PIN, give
one a new PIN, list them.

The catch log (``gateway.catchlog``) owns the captains' table, the PIN rules and the sign-in; this
module only makes up PINs and turns the catch log's answers into what the ``seabridge captain``
command and the demo report. It must not take a PIN from the command line (a generated one is
printed; a chosen one is read from a file by the caller).
"""

from __future__ import annotations

import secrets
import sqlite3

from common.clock import Clock

from .catchlog import CatchLog
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
    pin = generate_pin() if pin is None else pin
    if not CatchLog(store, clock).set_pin(name, pin):
        raise KeyError(name)
    return pin


def captain_names(store: GatewayStore, clock: Clock) -> list[str]:
    return CatchLog(store, clock).captain_names()
