"""Who may do what on the dashboard: roles, permissions, password hashing, lock-out and CSRF tokens.

It owns the role table (what each role may see and do), hashing and checking passwords with scrypt
(standard library, memory-hard), the lock-out policy after repeated failed logins, and the random
tokens for sessions and CSRF. It stores nothing and reads no clock: callers pass ``now`` and keep the
state (``accounts`` persists users, sessions and the audit log).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    ADMINISTRATOR = "administrator"
    HOTLINE = "hotline"
    OWNER = "owner"
    VIEWER = "viewer"


# Permissions. Crew content ("crew") belongs to the hotline role alone.
FLEET = "fleet"  # vessel status, map, plots
SOS = "sos"  # see vessel SOS alerts
ACK_SOS = "ack-sos"  # acknowledge a vessel SOS
CREW = "crew"  # read crew conversations, reply, personal-safety alerts (audited)
CATCH = "catch"  # catch logs and exports
ADMIN = "admin"  # users, vessels, audit log

PERMISSIONS: dict[Role, frozenset[str]] = {
    Role.ADMINISTRATOR: frozenset({FLEET, SOS, ACK_SOS, CATCH, ADMIN}),
    Role.HOTLINE: frozenset({FLEET, SOS, ACK_SOS, CREW}),
    Role.OWNER: frozenset({FLEET, SOS, ACK_SOS, CATCH}),
    Role.VIEWER: frozenset({FLEET, SOS}),
}

ROLE_ALIASES = {"admin": Role.ADMINISTRATOR, "fleet-owner": Role.OWNER, "fleet_owner": Role.OWNER}

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,31}$")
MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 256

# scrypt parameters: 16 MiB of memory per check (n * r * 128 bytes), well under OpenSSL's 32 MiB cap.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1


class AuthError(ValueError):
    """A user-supplied value (name, role, password) was refused; ``str()`` says why."""


def parse_role(value: str) -> Role:
    value = value.strip().lower()
    if value in ROLE_ALIASES:
        return ROLE_ALIASES[value]
    try:
        return Role(value)
    except ValueError:
        raise AuthError(f"unknown role {value!r}: one of {', '.join(r.value for r in Role)}") from None


def check_username(name: str) -> str:
    name = name.strip().lower()
    if not USERNAME.match(name):
        raise AuthError("user names are 1 to 32 characters: a-z, 0-9, '.', '_' or '-'")
    return name


def check_password(password: str) -> str:
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise AuthError(f"passwords are {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters long")
    return password


def hash_password(password: str, salt: bytes | None = None) -> str:
    """``scrypt$n$r$p$salt$hash`` (base64); a fresh 16-byte salt unless one is given."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, maxmem=64 * 1024 * 1024
    )
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode("utf-8"),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=64 * 1024 * 1024,
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


# A hash to check unknown user names against, so they take as long as known ones.
DUMMY_HASH = hash_password("not-a-password", salt=b"\0" * 16)


@dataclass(frozen=True)
class LockoutPolicy:
    max_failures: int = 5  # consecutive failed logins before the account locks
    lock_s: float = 900.0  # how long it stays locked

    def after_failure(self, failures: int, now: float) -> tuple[int, float | None]:
        """New failure count and lock expiry (None: not locked) after one more failure."""
        failures += 1
        if failures >= self.max_failures:
            return 0, now + self.lock_s
        return failures, None


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What the server stores for a session token: a stolen table does not give live cookies."""
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def same_token(given: str | None, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(str(given).encode(), expected.encode())


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    fleet: str | None  # None: every fleet (owners always have one)

    def can(self, permission: str) -> bool:
        return permission in PERMISSIONS[self.role]

    def sees_fleet(self, fleet: str) -> bool:
        return self.fleet is None or self.fleet == fleet


@dataclass(frozen=True)
class Session:
    user: User
    csrf: str
    created: float
